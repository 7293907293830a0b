"""Enrolments processed per second by the automation engine, next to the bare SQL writes they
come down to.

    .venv/bin/python bench/automation.py [--customers 2000] [--postgresql] [--concurrency 8]

Bulk-inserts customers into a fresh database (a SQLite file, or a throwaway PostgreSQL with
--postgresql), activates a flow of four steps that stay in the database (a condition on the
customer, the award_points action through the loyalty ledger, the update_customer action adding
a tag, an exit), then times:
  enrol        one trigger event per customer applied as the subscriber applies it
               (engine.handle_event: the customer's open enrolments, the flow's rule, the
               enrolment, its step log and the automation.enrolled event);
  run          engine.drain until every enrolment has finished: claims under a lease, then each
               step in its own transaction with its step log and action record;
  bare sql     per customer, in one transaction, the rows those steps leave behind, written with
               plain INSERTs (an enrolment, four step-log rows, two action records, a ledger
               entry, a tag) and one UPDATE;
and prints enrolments per second and the ratio to the bare SQL. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa  # noqa: E402

from common import bench_settings  # noqa: E402
from crm_graph import plugins as plugin_manager  # noqa: E402
from crm_graph.automation import engine, service  # noqa: E402
from crm_graph.automation.models import AutomationEnrolment, EnrolmentStatus  # noqa: E402
from crm_graph.core import ids  # noqa: E402
from crm_graph.core.actor import SYSTEM  # noqa: E402
from crm_graph.core.clock import frozen_clock  # noqa: E402
from crm_graph.core.events import Event  # noqa: E402
from crm_graph.customers.models import Customer  # noqa: E402
from crm_graph.db.session import Database  # noqa: E402

NOW = datetime(2026, 11, 2, 10, tzinfo=UTC)
FLOW = {
    "name": "Bench", "trigger": {"kind": "EVENT", "eventType": "customer.created"},
    "steps": [
        {"key": "known", "type": "CONDITION", "condition": {"lifecycleStage": {"eq": "STABILITY"}}, "yes": "points", "no": "END"},
        {"key": "points", "type": "ACTION", "action": "award_points", "params": {"points": 50, "reason": "bench"}},
        {"key": "tag", "type": "ACTION", "action": "update_customer", "params": {"addTags": ["benched"]}},
        {"key": "done", "type": "EXIT"},
    ],
}


async def load(db: Database, customers: int) -> None:
    rows = [dict(id=i, kind="PERSON", last_name=f"L{i}", display_name=f"L{i}", lifecycle_stage="STABILITY",
                 consent_status="UNKNOWN", version=1, created_at=NOW, updated_at=NOW) for i in range(1, customers + 1)]
    async with db.writer() as session, session.begin():
        for start in range(0, len(rows), 10000):
            await session.execute(sa.insert(Customer), rows[start:start + 10000])


async def bare_sql(db: Database, customers: int, flow_id: int, version_id: int) -> float:
    """The rows the engine leaves behind, written with plain INSERTs and one UPDATE, one
    transaction per customer: an enrolment, its step log, two action records, a ledger entry
    and a tag."""
    from crm_graph.automation.models import ActionRunStatus, AutomationActionRun, AutomationStepRun, StepOutcome
    from crm_graph.customers.models import CustomerTag
    from crm_graph.loyalty.models import EntryKind, LoyaltyEntry

    began = time.perf_counter()
    for cid in range(1, customers + 1):
        async with db.writer() as session, session.begin():
            enrolment = (await session.execute(sa.insert(AutomationEnrolment).returning(AutomationEnrolment.id), [dict(
                flow_id=flow_id, version_id=version_id, customer_id=cid, status=EnrolmentStatus.ACTIVE,
                trigger_key=f"bare:{cid}", step_key="known", next_run_at=NOW, attempts=0, context={}, enrolled_at=NOW)])).scalar_one()
            await session.execute(sa.insert(AutomationStepRun), [
                dict(enrolment_id=enrolment, flow_id=flow_id, step_key=k, outcome=StepOutcome.COMPLETED, detail="bare", at=NOW)
                for k in ("known", "points", "tag", "done")])
            await session.execute(sa.insert(AutomationActionRun), [
                dict(enrolment_id=enrolment, step_key=k, customer_id=cid, action=k, message=False,
                     status=ActionRunStatus.DONE, result={}, started_at=NOW, done_at=NOW) for k in ("points", "tag")])
            await session.execute(sa.insert(LoyaltyEntry), [dict(
                customer_id=cid, kind=EntryKind.EARN, points=50, remaining=50, available_at=NOW, source="bare",
                idempotency_key=f"bare-{cid}", request_hash="x", shortfall=0, actor="bench", created_at=NOW)])
            await session.execute(sa.insert(CustomerTag), [dict(customer_id=cid, tag="bare")])
            await session.execute(sa.update(AutomationEnrolment).where(AutomationEnrolment.id == enrolment)
                                  .values(status=EnrolmentStatus.COMPLETED, finished_at=NOW, step_key=None))
    return time.perf_counter() - began


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--postgresql", action="store_true")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    settings, cleanup = await bench_settings("automation", args.postgresql)
    try:
        await asyncio.to_thread(plugin_manager.upgrade, settings)
        db = Database.from_settings(settings)
        pm = plugin_manager.make_plugin_manager(settings)
        runtime = engine.runtime_of(settings, pm)
        runtime = dataclasses.replace(runtime, config=dataclasses.replace(
            runtime.config, concurrency=args.concurrency, batch_size=500))
        await load(db, args.customers)
        with frozen_clock(NOW):
            async with db.writer() as session, session.begin():
                flow = await service.create_flow(session, actor=SYSTEM, runtime=runtime, data=FLOW)
                flow = await service.activate_flow(session, actor=SYSTEM, runtime=runtime, flow_id=flow.id)
                flow_id, version_id = flow.id, flow.current_version_id
            began = time.perf_counter()
            for cid in range(1, args.customers + 1):
                await engine.handle_event(db, runtime, Event(
                    id=str(uuid.uuid4()), type="customer.created", occurred_at=NOW, actor="bench",
                    entity_type="Customer", entity_id=ids.encode("Customer", cid), data={"id": cid}))
            enrol = time.perf_counter() - began
            began = time.perf_counter()
            result = await engine.drain(db, runtime)
            run = time.perf_counter() - began
        async with db.reader() as session:
            done = await session.scalar(sa.select(sa.func.count()).select_from(AutomationEnrolment)
                                        .where(AutomationEnrolment.status == EnrolmentStatus.COMPLETED))
        bare = await bare_sql(db, args.customers, flow_id, version_id)
        await db.dispose()
    finally:
        cleanup()
    n = args.customers
    print(f"{'PostgreSQL' if args.postgresql else 'SQLite'}, {n} customers, concurrency {args.concurrency}: "
          f"{done} enrolments completed, {result.steps} steps")
    print(f"  enrol      {enrol:7.2f} s  {n / enrol:8.0f} enrolments/s")
    print(f"  run        {run:7.2f} s  {n / run:8.0f} enrolments/s  ({result.steps / run:.0f} steps/s)")
    print(f"  together   {enrol + run:7.2f} s  {n / (enrol + run):8.0f} enrolments/s")
    print(f"  bare sql   {bare:7.2f} s  {n / bare:8.0f} customers/s  (engine / bare: {(enrol + run) / bare:.1f}x)")


if __name__ == "__main__":
    asyncio.run(main())
