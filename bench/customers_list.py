"""How fast is a page of customers through GraphQL, next to the same data read with raw SQL?

    .venv/bin/python bench/customers_list.py [--customers 20000] [--runs 30] [--postgresql]

Builds a fresh database (SQLite file, or a throwaway PostgreSQL with --postgresql), loads
generated customers with emails, phones, tags and activities by bulk insert, then times:
  graphql  the nested query a frontend sends, through the whole ASGI app in-process;
  raw sql  the same rows fetched with hand-written SQL over the same driver (page, emails,
           phones, tags, latest 3 activities per customer) and nothing else;
and prints milliseconds per request and the ratio. Nothing here is asserted; it only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from crm_graph.app import create_app  # noqa: E402
from crm_graph.db import migrate  # noqa: E402
from crm_graph.db.session import Database  # noqa: E402
from crm_graph.settings import Settings  # noqa: E402

QUERY = """
query($after: String) {
  customers(first: 100, after: $after, orderBy: [{field: DISPLAY_NAME}], filter: {country: {in: ["DE", "FR"]}}) {
    totalCount
    pageInfo { endCursor }
    edges { node { id displayName primaryEmail phones { number } tags
      activities(first: 3) { edges { node { type subject occurredAt } } } } }
  }
}
"""

RAW = [
    "SELECT id, display_name FROM customers WHERE deleted_at IS NULL AND country IN ('DE', 'FR') "
    "ORDER BY display_name, id LIMIT 101",
    "SELECT count(*) FROM customers WHERE deleted_at IS NULL AND country IN ('DE', 'FR')",
    "SELECT customer_id, address, is_primary FROM customer_emails WHERE customer_id IN ({ids}) ORDER BY customer_id, position",
    "SELECT customer_id, number FROM customer_phones WHERE customer_id IN ({ids}) ORDER BY customer_id, position",
    "SELECT customer_id, tag FROM customer_tags WHERE customer_id IN ({ids}) ORDER BY customer_id, tag",
    "SELECT * FROM (SELECT customer_id, type, subject, occurred_at, row_number() OVER "
    "(PARTITION BY customer_id ORDER BY occurred_at DESC, id DESC) AS n FROM activities "
    "WHERE customer_id IN ({ids}) AND deleted_at IS NULL) t WHERE n <= 3",
]


async def load(db: Database, count: int) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    countries = ["DE", "FR", "US", "GB", "JP", "BR", "IN", "ES"]
    customers, emails, phones, tags, activities = [], [], [], [], []
    for i in range(1, count + 1):
        created = now - timedelta(minutes=rng.randint(0, 10**6))
        customers.append(dict(id=i, kind="PERSON", first_name=f"F{i}", last_name=f"L{rng.randint(0, 10**6)}",
                              display_name=f"F{i} L{rng.randint(0, 10**6)}", lifecycle_stage="STABILITY",
                              consent_status="UNKNOWN", country=rng.choice(countries), version=1,
                              created_at=created, updated_at=created))
        emails.append(dict(customer_id=i, address=f"c{i}@example.com", is_primary=True, position=0))
        phones.append(dict(customer_id=i, number=f"+4930{i:07d}", is_primary=True, position=0))
        for tag in rng.sample(["vip", "b2b", "eco", "retail", "newsletter"], 2):
            tags.append(dict(customer_id=i, tag=tag))
        for j in range(5):
            at = created + timedelta(hours=j)
            activities.append(dict(customer_id=i, type="NOTE", subject=f"note {j}", occurred_at=at, version=1,
                                   created_at=at, updated_at=at))
    from crm_graph.activities.models import Activity
    from crm_graph.customers.models import Customer, CustomerEmail, CustomerPhone, CustomerTag

    async with db.writer() as session, session.begin():
        for model, rows in ((Customer, customers), (CustomerEmail, emails), (CustomerPhone, phones),
                            (CustomerTag, tags), (Activity, activities)):
            for start in range(0, len(rows), 5000):
                await session.execute(sa.insert(model), rows[start:start + 5000])


async def time_graphql(app, runs: int) -> list[float]:
    samples = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http:
        for _ in range(runs):
            start = time.perf_counter()
            response = await http.post("/graphql", json={"query": QUERY})
            samples.append(time.perf_counter() - start)
            assert "errors" not in response.json(), response.text
    return samples


async def time_raw(db: Database, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        async with db.engine.connect() as conn:
            page = (await conn.exec_driver_sql(RAW[0])).all()
            ids = ",".join(str(row[0]) for row in page[:100])
            await conn.exec_driver_sql(RAW[1])
            for statement in RAW[2:]:
                (await conn.exec_driver_sql(statement.format(ids=ids))).all()
        samples.append(time.perf_counter() - start)
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args()

    server = None
    tmp = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    if args.postgresql:
        from crm_graph.testing.postgres import TemporaryPostgres
        import asyncpg

        server = TemporaryPostgres().start()
        conn = await asyncpg.connect(server.dsn())
        await conn.execute("CREATE DATABASE bench")
        await conn.close()
        settings = Settings(database_url=server.url("bench"))
    else:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp / 'bench.sqlite3'}")
    try:
        await asyncio.to_thread(migrate.upgrade, settings)
        db = Database.from_settings(settings)
        start = time.perf_counter()
        await load(db, args.customers)
        print(f"database: {db.dialect}; loaded {args.customers} customers, {5 * args.customers} activities "
              f"in {time.perf_counter() - start:.1f}s")
        if db.dialect == "postgresql":
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("ANALYZE")
                await conn.commit()  # ANALYZE inside a rolled-back transaction leaves no statistics
        app = create_app(settings, db=db)
        await time_graphql(app, 3)  # warm caches
        await time_raw(db, 3)
        graphql = await time_graphql(app, args.runs)
        raw = await time_raw(db, args.runs)
        g, r = statistics.median(graphql) * 1000, statistics.median(raw) * 1000
        print(f"page of 100 customers with phones, tags and 3 activities each ({args.runs} runs, median):")
        print(f"  graphql  {g:8.2f} ms   (p90 {sorted(graphql)[int(0.9 * len(graphql))] * 1000:.2f} ms)")
        print(f"  raw sql  {r:8.2f} ms   (p90 {sorted(raw)[int(0.9 * len(raw))] * 1000:.2f} ms)")
        print(f"  ratio    {g / r:8.2f} x")
        await db.dispose()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
