"""Periodic jobs: scheduled RFM runs and the SLA breach check, and `crm-graph segments refresh`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from crm_graph.core.clock import frozen_clock
from crm_graph.core.events import OutboxEvent
from crm_graph.core.jobs import Scheduler, default_jobs
from crm_graph.segments.models import RfmRun, Segment
from crm_graph.settings import PROJECT_ROOT
from tests.segments.factories import NOW, customer, days_ago, order


async def _runs(db) -> int:
    async with db.reader() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(RfmRun)))


async def test_rfm_job_stores_a_run_once_per_interval(db, settings):
    async with db.writer() as session, session.begin():
        with frozen_clock(NOW):
            buyer = await customer(session, lastName="Buyer")
        order(session, buyer, "10", days_ago(3))
    (rfm_job,) = [j for j in default_jobs(db, settings) if j.name == "rfm-refresh"]
    with frozen_clock(NOW) as clock:
        assert await Scheduler.run_once(rfm_job) == "scored 1 customers"
        assert await Scheduler.run_once(rfm_job) == "newest run is fresh"
        clock.advance(seconds=settings.rfm_refresh_interval + 1)
        assert await Scheduler.run_once(rfm_job) == "scored 1 customers"
    assert await _runs(db) == 2


async def test_sla_job_records_breaches_when_time_passes(client, db, settings):
    from tests.customers.test_schema import create

    with frozen_clock(NOW) as clock:
        await client.mutate('mutation { createSlaPolicy(input: {name: "Fast", firstResponseMinutes: 30, resolutionMinutes: 120}) '
                            "{ slaPolicy { id } errors { field code message } } }")
        person = await create(client, kind="PERSON", lastName="Waiting")
        await client.mutate('mutation($c: ID!) { createTicket(input: {customerId: $c, subject: "Hello?", channel: EMAIL, priority: NORMAL}) '
                            "{ ticket { id } errors { field code message } } }", {"c": person["id"]})
        woken = []
        (sla_job,) = [j for j in default_jobs(db, settings, lambda: woken.append(1)) if j.name == "sla-breaches"]
        assert await Scheduler.run_once(sla_job) == "0 new breaches"
        clock.advance(minutes=31)
        assert await Scheduler.run_once(sla_job) == "1 new breaches"
        assert await Scheduler.run_once(sla_job) == "0 new breaches"
    assert woken == [1]
    async with db.reader() as session:
        breaches = await session.scalar(sa.select(sa.func.count()).where(OutboxEvent.type == "ticket.sla_breached"))
    assert breaches == 1


async def test_a_failing_job_is_logged_and_does_not_stop_the_scheduler(caplog):
    from crm_graph.core.jobs import Job

    calls = []

    async def boom() -> str:
        calls.append(1)
        raise RuntimeError("database gone")

    scheduler = Scheduler([Job("boom", 0.01, boom)])
    scheduler.start()
    await asyncio.sleep(0.1)
    await scheduler.stop()
    assert len(calls) >= 2
    assert "job boom failed" in caplog.text


async def test_segments_refresh_command(db, database_url):
    async with db.writer() as session, session.begin():
        with frozen_clock(NOW):
            buyer = await customer(session, lastName="Buyer", tags=["beta"])
            segment = Segment(name="Beta", kind="SNAPSHOT", filter={"tags": {"containsAny": ["beta"]}}, version=1,
                              created_at=NOW, updated_at=NOW)
            session.add(segment)
        # The command runs on the real clock, so the order is a day before the real today.
        order(session, buyer, "10", datetime.now(UTC) - timedelta(days=1))
    env = {**os.environ, "CRM_DATABASE_URL": database_url}
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "crm_graph.cli", "segments", "refresh"], env=env, cwd=PROJECT_ROOT,
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "refreshed 1 snapshot segments; RFM run scored 1 customers"
    assert await _runs(db) == 1


async def test_outbox_pruning_keeps_what_is_not_settled(db, settings):
    from crm_graph.core.events import DeliveryStatus, EventDelivery
    from crm_graph.core.jobs import prune_outbox

    old = NOW - timedelta(days=45)
    async with db.writer() as session, session.begin():
        events = []
        for n, (when, statuses) in enumerate([
            (old, [DeliveryStatus.DELIVERED, DeliveryStatus.DELIVERED]),  # settled and old: pruned
            (old, [DeliveryStatus.DELIVERED, DeliveryStatus.DEAD]),  # a dead delivery may be retried: kept
            (old, [DeliveryStatus.PENDING]),  # not delivered yet: kept
            (NOW - timedelta(days=2), [DeliveryStatus.DELIVERED]),  # recent: kept
        ]):
            event = OutboxEvent(event_id=f"00000000-0000-0000-0000-00000000000{n}", type="customer.updated", occurred_at=when,
                                actor="system", entity_type="Customer", entity_id="1", payload={}, dispatched_at=when)
            session.add(event)
            await session.flush()
            events.append(event.id)
            for i, status in enumerate(statuses):
                session.add(EventDelivery(event_pk=event.id, subscriber=f"s{i}", event_type="customer.updated", status=status,
                                          attempts=1, next_attempt_at=when, created_at=when))
    with frozen_clock(NOW):
        assert await prune_outbox(db, 30) == "1 events older than 30 days removed"
    async with db.reader() as session:
        left = list(await session.scalars(sa.select(OutboxEvent.id).order_by(OutboxEvent.id)))
        deliveries = await session.scalar(sa.select(sa.func.count()).select_from(EventDelivery))
    assert left == events[1:]
    assert deliveries == 4  # the pruned event's two deliveries went with it
