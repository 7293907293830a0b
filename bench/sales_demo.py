"""Sales reads on the demo data: time and SQL statements per request.

    .venv/bin/python bench/sales_demo.py [--customers 300] [--runs 20] [--postgresql]

Builds a fresh database (SQLite file, or a throwaway PostgreSQL with --postgresql), loads the
demo customers and the sales demo data through the services (and reports how long that took),
then times, through the whole ASGI app in-process:
  opportunities  a page of 50 with customer, stage, line items and products;
  summary        pipelineSummary of the default pipeline;
  customers      100 customers with their stats, latest orders and open opportunities;
and prints milliseconds per request (median) and SQL statements per request. Nothing here is
asserted; it only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import sqlalchemy as sa

from crm_graph.app import create_app
from crm_graph.testing.auth import bearer, make_key
from crm_graph.core.clock import utcnow
from crm_graph.customers.models import Customer
from crm_graph.db import migrate
from crm_graph.db.session import Database
from crm_graph.sales.seed_sales import seed_sales
from crm_graph.seed import seed_demo
from crm_graph.settings import Settings

QUERIES = {
    "opportunities": """
      { opportunities(first: 50) { edges { node { title amount { amount currency } probability
          customer { displayName } stage { name } lineItems { quantity product { sku name } } } } } }
    """,
    "summary": """
      { pipelineSummary { currency openCount wonCount lostCount winRate averageDaysToWin
          weightedForecast { amount } stages { stage { name } count amount { amount } weightedAmount { amount } }
          months { month weightedAmount { amount } } } }
    """,
    "customers": """
      { customers(first: 100) { edges { node { displayName
          stats { orderCount totalSpent { amount currency } averageOrderValue { amount } lastOrderAt }
          orders(first: 3) { totalCount edges { node { number total { amount } paymentStatus } } }
          opportunities(first: 3, filter: {status: {eq: OPEN}}) { edges { node { title stage { name } } } } } } } }
    """,
}


async def run(settings: Settings, customers: int, runs: int) -> None:
    started = time.perf_counter()
    await seed_demo(settings, count=customers)
    seeded_customers = time.perf_counter()
    db = Database.from_settings(settings)
    async with db.writer() as session, session.begin():
        ids = list(await session.scalars(sa.select(Customer.id).order_by(Customer.id)))
        result = await seed_sales(session, now=utcnow(), customer_ids=ids)
    print(f"demo customers: {seeded_customers - started:.1f}s; sales demo data: {time.perf_counter() - seeded_customers:.1f}s; {result}")

    statements = 0

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        nonlocal statements
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
            statements += 1

    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    # Timings, not rate limits: the bench sends more than one client's budget.
    app = create_app(dataclasses.replace(settings, rate_limit_capacity=0), db=db)
    key, _ = await make_key(db, settings)  # an administrator: no record rules apply
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost", headers=bearer(key)) as client:
        for name, query in QUERIES.items():
            timings = []
            for _ in range(runs):
                statements = 0
                start = time.perf_counter()
                response = await client.post("/graphql", json={"query": query})
                timings.append((time.perf_counter() - start) * 1000)
                body = response.json()
                assert "errors" not in body, body["errors"]
            print(f"{name:14} {statistics.median(timings):8.1f} ms   {statements} statements")
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args()
    if args.postgresql:
        import asyncpg

        from crm_graph.testing.postgres import TemporaryPostgres

        server = TemporaryPostgres().start()
        try:
            async def create() -> None:
                conn = await asyncpg.connect(server.dsn())
                await conn.execute("CREATE DATABASE bench")
                await conn.close()

            asyncio.run(create())
            migrate.upgrade(Settings(database_url=server.url("bench")))
            asyncio.run(run(Settings(database_url=server.url("bench")), args.customers, args.runs))
        finally:
            server.stop()
        return
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp}/bench.sqlite3")
        migrate.upgrade(settings)  # Alembic runs its own event loop: before ours starts
        asyncio.run(run(settings, args.customers, args.runs))


if __name__ == "__main__":
    main()
