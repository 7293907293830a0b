"""How fast is a page of customers through GraphQL, next to the same data read with raw SQL?

    .venv/bin/python bench/customers_list.py [--customers 20000] [--runs 30] [--postgresql]

Builds a fresh database (SQLite file, or a throwaway PostgreSQL with --postgresql), loads
generated customers with emails, phones, tags and activities by bulk insert (half of them owned
by a representative of team North, half by one of team South), then times:
  graphql (admin)  the nested query a frontend sends, through the whole ASGI app in-process,
                   signed in with an administrator's API key (no record rules apply);
  graphql (rep)    the same, signed in as North's representative with customers shared TEAM:
                   the record rule is part of every statement;
  raw sql          the same rows fetched with hand-written SQL over the same driver (page,
                   emails, phones, tags, latest 3 activities per customer) and nothing else,
                   with and without the representative's owner/team condition;
  auth             verifying a bearer key: the first time (hash and one lookup) and cached;
and prints milliseconds per request and the ratios. Nothing here is asserted; it only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
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
from crm_graph.auth.models import User  # noqa: E402
from crm_graph.settings import Settings  # noqa: E402
from crm_graph.testing.auth import make_key, share  # noqa: E402

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

BENCH_SECRET = "bench-secret-key-of-at-least-thirty-two-chars"

RAW = [
    "SELECT id, display_name FROM customers WHERE deleted_at IS NULL AND country IN ('DE', 'FR') {rule}"
    "ORDER BY display_name, id LIMIT 101",
    "SELECT count(*) FROM customers WHERE deleted_at IS NULL AND country IN ('DE', 'FR') {rule}",
    "SELECT customer_id, address, is_primary FROM customer_emails WHERE customer_id IN ({ids}) ORDER BY customer_id, position",
    "SELECT customer_id, number FROM customer_phones WHERE customer_id IN ({ids}) ORDER BY customer_id, position",
    "SELECT customer_id, tag FROM customer_tags WHERE customer_id IN ({ids}) ORDER BY customer_id, tag",
    "SELECT * FROM (SELECT customer_id, type, subject, occurred_at, row_number() OVER "
    "(PARTITION BY customer_id ORDER BY occurred_at DESC, id DESC) AS n FROM activities "
    "WHERE customer_id IN ({ids}) AND deleted_at IS NULL) t WHERE n <= 3",
]


async def load(db: Database, count: int, owners: list[tuple[int, int]]) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    countries = ["DE", "FR", "US", "GB", "JP", "BR", "IN", "ES"]
    customers, emails, phones, tags, activities = [], [], [], [], []
    for i in range(1, count + 1):
        created = now - timedelta(minutes=rng.randint(0, 10**6))
        customers.append(dict(id=i, kind="PERSON", first_name=f"F{i}", last_name=f"L{rng.randint(0, 10**6)}",
                              display_name=f"F{i} L{rng.randint(0, 10**6)}", lifecycle_stage="STABILITY",
                              consent_status="UNKNOWN", country=rng.choice(countries), version=1,
                              created_at=created, updated_at=created, owner_id=owners[i % 2][0],
                              team_id=owners[i % 2][1]))
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


async def time_graphql(app, runs: int, key: str) -> list[float]:
    samples = []
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost", headers=headers) as http:
        for _ in range(runs):
            start = time.perf_counter()
            response = await http.post("/graphql", json={"query": QUERY})
            samples.append(time.perf_counter() - start)
            assert "errors" not in response.json(), response.text
    return samples


async def time_raw(db: Database, runs: int, rule: str = "") -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        async with db.engine.connect() as conn:
            page = (await conn.exec_driver_sql(RAW[0].format(rule=rule))).all()
            ids = ",".join(str(row[0]) for row in page[:100])
            await conn.exec_driver_sql(RAW[1].format(rule=rule))
            for statement in RAW[2:]:
                (await conn.exec_driver_sql(statement.format(ids=ids))).all()
        samples.append(time.perf_counter() - start)
    return samples


async def time_auth(db: Database, settings: Settings, key: str, runs: int) -> None:
    """Verifying a key: hash plus one indexed lookup the first time, then from the cache."""
    from crm_graph.auth.authenticate import Authenticator

    cold, warm = [], []
    for _ in range(runs):
        auth = Authenticator(db, settings)
        start = time.perf_counter()
        await auth.actor_for_token(key)
        cold.append(time.perf_counter() - start)
        start = time.perf_counter()
        await auth.actor_for_token(key)
        warm.append(time.perf_counter() - start)
        await auth.drain()
    print(f"auth: first check {statistics.median(cold) * 1000:.3f} ms (hash, key, user and custom roles looked up), "
          f"cached {statistics.median(warm) * 1e6:.1f} µs")


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
        settings = Settings(database_url=server.url("bench"), secret_key=BENCH_SECRET)
    else:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp / 'bench.sqlite3'}", secret_key=BENCH_SECRET)
    try:
        await asyncio.to_thread(migrate.upgrade, settings)
        db = Database.from_settings(settings)
        admin_key, _ = await make_key(db, settings, role="ADMIN", email="admin@example.com")
        rep_key, rep = await make_key(db, settings, role="SALES", email="north@example.com", team="North")
        _, other = await make_key(db, settings, role="SALES", email="south@example.com", team="South")
        async with db.writer() as session, session.begin():
            teams = dict((await session.execute(sa.select(User.id, User.team_id))).all())
        await share(db, "TEAM", "customers")
        start = time.perf_counter()
        await load(db, args.customers, [(rep, teams[rep]), (other, teams[other])])
        print(f"database: {db.dialect}; loaded {args.customers} customers, {5 * args.customers} activities "
              f"in {time.perf_counter() - start:.1f}s")
        if db.dialect == "postgresql":
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("ANALYZE")
                await conn.commit()  # ANALYZE inside a rolled-back transaction leaves no statistics
        # Timings, not rate limits: the bench sends more than one client's budget.
        app = create_app(dataclasses.replace(settings, rate_limit_capacity=0), db=db)
        rule = f"AND (owner_id = {rep} OR team_id = {teams[rep]}) "
        for key in (admin_key, rep_key):
            await time_graphql(app, 3, key)  # warm caches
        await time_raw(db, 3)
        admin = await time_graphql(app, args.runs, admin_key)
        scoped = await time_graphql(app, args.runs, rep_key)
        raw = await time_raw(db, args.runs)
        raw_scoped = await time_raw(db, args.runs, rule)
        a, s_, r, rs = (statistics.median(x) * 1000 for x in (admin, scoped, raw, raw_scoped))
        p90 = lambda xs: sorted(xs)[int(0.9 * len(xs))] * 1000  # noqa: E731
        print(f"page of 100 customers with phones, tags and 3 activities each ({args.runs} runs, median):")
        print(f"  graphql (admin)  {a:8.2f} ms   (p90 {p90(admin):.2f} ms)")
        print(f"  graphql (rep)    {s_:8.2f} ms   (p90 {p90(scoped):.2f} ms)")
        print(f"  raw sql          {r:8.2f} ms   (p90 {p90(raw):.2f} ms)")
        print(f"  raw sql + rule   {rs:8.2f} ms   (p90 {p90(raw_scoped):.2f} ms)")
        print(f"  ratio admin/raw {a / r:6.2f} x, rep/raw+rule {s_ / rs:6.2f} x, rep/admin {s_ / a:6.2f} x")
        await time_auth(db, settings, rep_key, args.runs)
        await db.dispose()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
