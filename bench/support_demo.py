"""Support over the demo data: the figures of supportStats, and what the ticket queue costs.

    .venv/bin/python bench/support_demo.py [--customers 300] [--tickets 300] [--runs 20] [--postgresql]
                                           [--now 2026-11-22T12:00:00+00:00]

Builds a fresh database (SQLite file, or a throwaway PostgreSQL with --postgresql), loads the
demo customers and the demo tickets exactly as `crm-graph seed --demo` would, then prints:
  - supportStats over the demo period (the last 120 days),
  - the SQL statements of the agent queue query at page sizes 10 and 100,
  - milliseconds per request of that query and of supportStats through the whole ASGI app.
With --now the clock is frozen at that instant for the whole run, so SQLite and PostgreSQL see
the same data and must print the same figures. Nothing here is asserted; it only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from crm_graph.app import create_app  # noqa: E402
from crm_graph.testing.auth import bearer, make_key  # noqa: E402
from crm_graph.core.clock import frozen_clock, utcnow  # noqa: E402
from crm_graph.customers.models import Customer  # noqa: E402
from crm_graph.db import migrate  # noqa: E402
from crm_graph.db.session import Database  # noqa: E402
from crm_graph.seed import seed_demo  # noqa: E402
from crm_graph.settings import Settings  # noqa: E402
from crm_graph.support.seed_support import HISTORY_DAYS, seed_support  # noqa: E402

QUEUE = """
query($n: Int!) {
  tickets(first: $n, filter: {status: {in: [NEW, OPEN, PENDING]}}) {
    totalCount
    edges { node { number subject status priority assignee tags
      customer { displayName }
      sla { policy { name } firstResponseStatus resolutionStatus resolutionDueAt }
      comments(first: 3) { totalCount edges { node { body authorKind } } } } }
  }
}
"""

STATS = """
query($from: DateTime!, $to: DateTime!) {
  supportStats(from: $from, to: $to) {
    opened resolved openBacklog { priority count }
    firstResponseCompliance resolutionCompliance
    firstResponseTargets { met breached } resolutionTargets { met breached }
    firstResponseTime { count medianMinutes p90Minutes } resolutionTime { count medianMinutes p90Minutes }
    ratings csat averageRating satisfactionIndex
  }
  breached: tickets(filter: {slaBreached: true}) { totalCount }
  openBreached: tickets(filter: {slaBreached: true, status: {in: [NEW, OPEN, PENDING]}}) { totalCount }
  all: tickets { totalCount }
}
"""


class Counter:
    def __init__(self, db: Database) -> None:
        self.count = 0
        sa.event.listen(db.engine.sync_engine, "before_cursor_execute", self._on)

    def _on(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
            self.count += 1


async def main(args: argparse.Namespace, url: str) -> None:
    with frozen_clock(datetime.fromisoformat(args.now)) if args.now else nullcontext():
        await measure(args, url)


async def measure(args: argparse.Namespace, url: str) -> None:
    settings = Settings(database_url=url)
    await asyncio.to_thread(migrate.upgrade, settings)
    started = time.perf_counter()
    await seed_demo(settings, count=args.customers)
    db = Database.from_settings(settings)
    now = utcnow()
    async with db.reader() as session:
        ids = list(await session.scalars(sa.select(Customer.id).order_by(Customer.id)))
    async with db.writer() as session, session.begin():
        created = await seed_support(session, now=now, customer_ids=ids, count=args.tickets)
    print(f"database: {db.dialect}; demo data: {len(ids)} customers, {created} tickets in {time.perf_counter() - started:.1f} s")
    # Planner statistics, as autovacuum (PostgreSQL) or a periodic ANALYZE (SQLite) would keep them.
    async with db.writer() as session, session.begin():
        await session.execute(sa.text("ANALYZE"))

    # Timings, not rate limits: the bench sends more than one client's budget.
    app = create_app(dataclasses.replace(settings, rate_limit_capacity=0), db=db)
    key, _ = await make_key(db, settings)  # an administrator: no record rules apply
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost", headers=bearer(key)) as http:

        async def run(query: str, variables: dict[str, Any]) -> dict[str, Any]:
            body = (await http.post("/graphql", json={"query": query, "variables": variables})).json()
            assert "errors" not in body, body
            return body["data"]

        period = {"from": (now - timedelta(days=HISTORY_DAYS)).isoformat(), "to": now.isoformat()}
        data = await run(STATS, period)
        print(f"tickets: {data['all']['totalCount']}, breached: {data['breached']['totalCount']} "
              f"(still open: {data['openBreached']['totalCount']})")
        print("supportStats over the last", HISTORY_DAYS, "days:")
        print(json.dumps(data["supportStats"], indent=2))

        counter = Counter(db)
        for n in (10, 100):
            counter.count = 0
            page = await run(QUEUE, {"n": n})
            print(f"queue query, first {n}: {len(page['tickets']['edges'])} rows, {counter.count} SQL statements")

        for name, query, variables in (("queue (first 100)", QUEUE, {"n": 100}), ("supportStats", STATS, period)):
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                await run(query, variables)
                times.append((time.perf_counter() - t0) * 1000)
            print(f"{name}: median {statistics.median(times):.1f} ms over {args.runs} runs")
    await db.dispose()


async def _create_database(dsn: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--postgresql", action="store_true")
    parser.add_argument("--now", help="freeze the clock at this ISO 8601 instant (with a time zone)")
    options = parser.parse_args()
    if options.postgresql:
        from crm_graph.testing.postgres import TemporaryPostgres

        server = TemporaryPostgres().start()
        try:
            asyncio.run(_create_database(server.dsn(), "bench"))
            asyncio.run(main(options, server.url("bench")))
        finally:
            server.stop()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(main(options, f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"))
