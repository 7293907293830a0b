"""Time an RFM analysis next to the bare SQL aggregate it is built on.

    .venv/bin/python bench/rfm.py [--customers 100000] [--orders 1000000] [--demo] [--postgresql]

Generates customers and orders by bulk insert into a fresh database (a SQLite file, or a
throwaway PostgreSQL with --postgresql), or with --demo loads the demo data of `make serve`,
then times, on the same data:
  bare sql      SELECT customer_id, max(ordered_at), count(*), sum(total) ... GROUP BY customer_id
                over the counted orders of the window, fetched to the client;
  rfmAnalysis   the whole analysis as the API runs it: scores by RANK() windows, groups, tiers,
                stored as a run (INSERT ... SELECT), plus the group table and the 5x5 grid;
  filter        a customer list filtered on the stored run (rfm group + value tier), page of 100;
  orders filter customers who spent over 1,000 in the last year but ordered nothing in the last
                90 days (the behavioural filter language), page of 100 and its total count;
and prints seconds and ratios. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa  # noqa: E402

from common import bench_settings  # noqa: E402
from crm_graph.core.clock import frozen_clock  # noqa: E402
from crm_graph.customers.models import Customer  # noqa: E402
from crm_graph.db import migrate  # noqa: E402
from crm_graph.db.session import Database  # noqa: E402
from crm_graph.sales.models import Order  # noqa: E402
from crm_graph.segments import service  # noqa: E402
from crm_graph.segments.values import in_window  # noqa: E402
from crm_graph.settings import Settings  # noqa: E402

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


async def load(db: Database, customers: int, orders: int) -> None:
    rng = random.Random(3)
    async with db.writer() as session, session.begin():
        rows = [dict(id=i, kind="PERSON", last_name=f"L{i}", display_name=f"L{i}", lifecycle_stage="STABILITY",
                     consent_status="UNKNOWN", version=1, created_at=NOW, updated_at=NOW) for i in range(1, customers + 1)]
        for start in range(0, len(rows), 20000):
            await session.execute(sa.insert(Customer), rows[start:start + 20000])
        # Purchase frequency follows a long tail: a few customers buy very often.
        weights = [rng.paretovariate(1.2) for _ in range(customers)]
        buyers = rng.choices(range(1, customers + 1), weights=weights, k=orders)
        batch = []
        for n, customer_id in enumerate(buyers, start=1):
            at = NOW - timedelta(minutes=rng.randint(0, 2 * 365 * 24 * 60))
            total = Decimal(rng.randint(500, 50000)) / 100
            paid = rng.random() > 0.08
            batch.append(dict(number=f"B-{n:08d}", customer_id=customer_id, status="FULFILLED" if paid else "CANCELLED",
                              payment_status="PAID" if paid else "UNPAID", currency="EUR", subtotal=total,
                              discount=0, tax_rate=0, tax=0, total=total, paid_amount=total if paid else 0,
                              ordered_at=at, origin="EXTERNAL", version=1, created_at=at, updated_at=at))
            if len(batch) == 20000:
                await session.execute(sa.insert(Order), batch)
                batch = []
        if batch:
            await session.execute(sa.insert(Order), batch)


async def timed(label: str, work, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        await work()
        best = min(best, time.perf_counter() - start)
    print(f"  {label:<14} {best:8.3f} s  (best of {runs})")
    return best


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--postgresql", action="store_true")
    parser.add_argument("--demo", action="store_true", help="the demo data set instead of generated data")
    args = parser.parse_args()
    settings, stop = await bench_settings("rfm", args.postgresql)
    try:
        await asyncio.to_thread(migrate.upgrade, settings)
        db = Database.from_settings(settings)
        start = time.perf_counter()
        if args.demo:
            from crm_graph.seed import seed_demo

            with frozen_clock(NOW):
                await seed_demo(settings)
            async with db.reader() as session:
                args.customers = await session.scalar(sa.select(sa.func.count()).select_from(Customer))
                args.orders = await session.scalar(sa.select(sa.func.count()).select_from(Order))
        else:
            await load(db, args.customers, args.orders)
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()  # ANALYZE inside a rolled-back transaction leaves no statistics
        print(f"{db.dialect}: {args.customers} customers, {args.orders} orders loaded in {time.perf_counter() - start:.0f}s")

        as_of = NOW.date()

        async def bare() -> None:
            stmt = (sa.select(Order.customer_id, sa.func.max(Order.ordered_at), sa.func.count(), sa.func.sum(Order.total))
                    .where(in_window(as_of, 365, "EUR")).group_by(Order.customer_id))
            async with db.reader() as session:
                (await session.execute(stmt)).all()

        async def analysis() -> None:
            with frozen_clock(NOW):
                async with db.writer() as session, session.begin():
                    result = await service.rfm_analysis(session, as_of=as_of, window_days=365, currency="EUR", recompute=True)
            assert result is not None and result.run.customer_count > 0

        async def filtered() -> None:
            from crm_graph.customers.service import customer_select

            with frozen_clock(NOW):
                async with db.reader() as session:
                    stmt = await customer_select(session, filter={"rfm": {"group": {"in": ["AT_RISK", "CANNOT_LOSE"]}},
                                                                  "valueTier": {"eq": "KEY"}})
                    (await session.scalars(stmt.order_by(Customer.id).limit(100))).all()

        async def behaviour() -> None:
            from crm_graph.customers.service import customer_select

            with frozen_clock(NOW):
                async with db.reader() as session:
                    stmt = await customer_select(session, filter={"and": [
                        {"orders": {"windowDays": 365, "totalSpent": {"gt": "1000"}}},
                        {"orders": {"windowDays": 90, "count": {"eq": 0}}}]})
                    (await session.scalars(stmt.order_by(Customer.id).limit(100))).all()
                    await session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery()))

        b = await timed("bare sql", bare)
        a = await timed("rfmAnalysis", analysis)
        f = await timed("filter", filtered)
        o = await timed("orders filter", behaviour)
        print(f"  ratio rfmAnalysis / bare sql: {a / b:.1f}x; filtered page: {f * 1000:.0f} ms; "
              f"orders filter page + count: {o * 1000:.0f} ms")
        await db.dispose()
    finally:
        stop()


if __name__ == "__main__":
    asyncio.run(main())
