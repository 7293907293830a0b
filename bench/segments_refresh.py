"""Time snapshot refreshes of a large segment next to the bare SQL that moves the same rows.

    .venv/bin/python bench/segments_refresh.py [--members 100000] [--postgresql]

Generates customers by bulk insert into a fresh database (a SQLite file, or a throwaway
PostgreSQL with --postgresql): `--members` in one country, a tenth as many elsewhere. Then, on a
SNAPSHOT segment "country is DE", times three refreshes as the API runs them (filter compiled,
members inserted and deleted as SQL over sets, batched events written to the outbox):
  first        every member enters (the segment was created before they matched);
  no change    nothing moves;
  churn        a tenth of the members leave and as many others enter;
and, after each, the same INSERT ... SELECT and DELETE written by hand for a second segment,
over the same data, with RETURNING and nothing else (no events). It also times adding all the
members to a STATIC segment by id (one array parameter) and the diff of a DYNAMIC segment after
the churn. It prints statements and seconds per step and the ratio to the bare SQL; nothing is
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa  # noqa: E402

from common import bench_settings  # noqa: E402
from crm_graph.core.actor import SYSTEM  # noqa: E402
from crm_graph.customers.models import Customer  # noqa: E402
from crm_graph.db import migrate  # noqa: E402
from crm_graph.db.session import Database  # noqa: E402
from crm_graph.segments import service  # noqa: E402
from crm_graph.settings import Settings  # noqa: E402

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)

RAW = [
    "DELETE FROM segment_members WHERE segment_id = :s AND NOT EXISTS (SELECT 1 FROM customers c "
    "WHERE c.id = segment_members.customer_id AND c.deleted_at IS NULL AND c.country = 'DE') RETURNING customer_id",
    "INSERT INTO segment_members (segment_id, customer_id, added_at) SELECT :s, c.id, :now FROM customers c "
    "WHERE c.deleted_at IS NULL AND c.country = 'DE' ON CONFLICT DO NOTHING RETURNING customer_id",
]


class Counter:
    def __init__(self, db: Database) -> None:
        self.count = 0
        sa.event.listen(db.engine.sync_engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, conn, cursor, statement: str, *args) -> None:  # type: ignore[no-untyped-def]
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
            self.count += 1


async def load(db: Database, members: int) -> list[int]:
    """Customers 1..members + members // 10, all outside DE for now; returns the ids."""
    total = members + members // 10
    rows = [dict(id=i, kind="PERSON", last_name=f"L{i}", display_name=f"L{i}", country="FR", lifecycle_stage="STABILITY",
                 consent_status="UNKNOWN", version=1, created_at=NOW, updated_at=NOW) for i in range(1, total + 1)]
    async with db.writer() as session, session.begin():
        for start in range(0, total, 20000):
            await session.execute(sa.insert(Customer), rows[start:start + 20000])
    return list(range(1, total + 1))


async def set_country(db: Database, ids: list[int], country: str) -> None:
    async with db.writer() as session, session.begin():
        for start in range(0, len(ids), 20000):
            chunk = ids[start:start + 20000]
            await session.execute(sa.update(Customer).where(Customer.id.between(chunk[0], chunk[-1])).values(country=country))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args()
    settings, stop = await bench_settings("segments", args.postgresql)
    try:
        await asyncio.to_thread(migrate.upgrade, settings)
        db = Database.from_settings(settings)
        counter = Counter(db)
        start = time.perf_counter()
        ids = await load(db, args.members)
        members, others = ids[:args.members], ids[args.members:]
        async with db.writer() as session, session.begin():
            filter = {"country": {"eq": "DE"}}
            snapshot = await service.create_segment(session, actor=SYSTEM, data={"name": "DE", "kind": "SNAPSHOT", "filter": filter})
            dynamic = await service.create_segment(session, actor=SYSTEM, data={"name": "DE live", "kind": "DYNAMIC", "filter": filter})
            raw = await service.create_segment(session, actor=SYSTEM, data={"name": "raw", "kind": "STATIC"})
            static = await service.create_segment(session, actor=SYSTEM, data={"name": "by id", "kind": "STATIC"})
        await set_country(db, members, "DE")
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()
        print(f"{db.dialect}: {len(ids)} customers loaded in {time.perf_counter() - start:.0f}s; "
              f"{args.members} match the segment")

        async def step(label: str, work) -> tuple[int, float]:  # type: ignore[no-untyped-def]
            counter.count = 0
            began = time.perf_counter()
            moved = await work()
            seconds = time.perf_counter() - began
            print(f"  {label:<40} {counter.count:3d} statements {seconds:8.3f} s   {moved}")
            return counter.count, seconds

        async def refresh() -> str:
            async with db.writer() as session, session.begin():
                await service.refresh_segment(session, actor=SYSTEM, segment_id=snapshot.id)
            return ""

        async def bare() -> str:
            async with db.writer() as session, session.begin():
                left = (await session.execute(sa.text(RAW[0]), {"s": raw.id})).all()
                entered = (await session.execute(sa.text(RAW[1]), {"s": raw.id, "now": NOW})).all()
            return f"{len(entered)} entered, {len(left)} left"

        async def diff() -> str:
            async with db.writer() as session, session.begin():
                change = await service.diff_dynamic(session, actor=SYSTEM, segment_id=dynamic.id)
            return f"{len(change.added)} entered, {len(change.removed)} left"

        async def add_by_id() -> str:
            async with db.writer() as session, session.begin():
                await service.add_customers(session, actor=SYSTEM, segment_id=static.id, customer_ids=members, limit=None)
            return f"{len(members)} ids"

        rows = []
        for label in ("first (all enter)", "no change", "churn (10% out, 10% in)"):
            if label.startswith("churn"):
                churn = args.members // 10
                await set_country(db, members[:churn], "FR")
                await set_country(db, others[:churn], "DE")
            api = await step(f"refreshSegment: {label}", refresh)
            sql = await step(f"bare sql: {label}", bare)
            rows.append((label, api, sql))
            if label.startswith("first"):
                await step("dynamic diff: all enter", diff)
        await step("dynamic diff: churn", diff)
        await step("add 100% by id (static)", add_by_id)
        print("  ratios refreshSegment / bare sql: " + "; ".join(
            f"{label}: {api[1] / sql[1]:.1f}x ({api[0]} vs {sql[0]} statements)" for label, api, sql in rows))
        await db.dispose()
    finally:
        stop()


if __name__ == "__main__":
    asyncio.run(main())
