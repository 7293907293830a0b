"""Time the insights runs after lifetime value: churn assessment, lifecycle stages, product
association rules, and the per-customer reads of a page of 100.

    .venv/bin/python bench/insights.py [--customers 100000] [--orders 1000000] [--products 50] [--postgresql]

Loads the customers and orders of bench/clv_fit.py (buying as BG/NBD says), gives every order a
line of one of --products products (each customer keeps to a few, so co-purchases exist), stores
a customer-value run and two RFM runs 30 days apart, then times, as the system:
  churn        assessChurnRisks (one candidates statement, the writes);
  lifecycle    refreshLifecycleStages (INSERT ... SELECT of every stage, the changed states);
  rules        refreshProductAssociations (INSERT ... SELECT over the self-join of buyers);
  page         for 100 customers: lifecycle states, histories, recommendations, profitability;
with the SQL statements each ran. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa  # noqa: E402

from clv_fit import NOW, load  # noqa: E402
from common import bench_settings  # noqa: E402
from crm_graph.core.actor import SYSTEM  # noqa: E402
from crm_graph.core.clock import frozen_clock  # noqa: E402
from crm_graph.db import migrate  # noqa: E402
from crm_graph.db.session import Database  # noqa: E402
from crm_graph.insights.config import InsightsSettings  # noqa: E402
from crm_graph.insights.models import TimeUnit  # noqa: E402
from crm_graph.insights.service import ValueConfig, associations, churn, lifecycle, profitability, refresh_model  # noqa: E402
from crm_graph.sales.models import Order, OrderLineItem, Product  # noqa: E402
from crm_graph.segments import rfm  # noqa: E402


async def add_lines(db: Database, products: int) -> None:
    async with db.writer() as session, session.begin():
        await session.execute(sa.insert(Product), [
            dict(id=i, sku=f"P{i:03d}", name=f"Product {i}", unit_price=10 + i, currency="EUR", active=True, version=1,
                 created_at=NOW, updated_at=NOW) for i in range(1, products + 1)])
        # A customer's orders go to one of 3 products of their own neighbourhood of the catalogue.
        product = 1 + (Order.customer_id * 7 + Order.id % 3) % products
        await session.execute(sa.insert(OrderLineItem).from_select(
            ["order_id", "product_id", "sku", "position", "description", "quantity", "unit_price", "discount_percent",
             "subtotal", "discount", "total"],
            sa.select(Order.id, product, sa.literal("x"), sa.literal(1), sa.literal("x"), sa.literal(1), Order.total,
                      sa.literal(0), Order.total, sa.literal(0), Order.total)))


class Counter:
    def __init__(self, db: Database) -> None:
        self.count = 0
        sa.event.listen(db.engine.sync_engine, "before_cursor_execute", self._hit)

    def _hit(self, *_: Any) -> None:
        self.count += 1


async def timed(counter: Counter, label: str, work: Any) -> Any:
    counter.count = 0
    t0 = time.perf_counter()
    result = await work()
    print(f"  {label:<10} {time.perf_counter() - t0:8.2f} s  {counter.count:4d} statements  {result}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=50)
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args()
    settings, stop = await bench_settings("insights", args.postgresql)
    config = InsightsSettings()
    try:
        await asyncio.to_thread(migrate.upgrade, settings)
        db = Database.from_settings(settings)
        start = time.perf_counter()
        made = await load(db, args.customers, args.orders)
        await add_lines(db, args.products)
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()
        print(f"{db.dialect}: {args.customers} customers, {made} orders with a line each, loaded in "
              f"{time.perf_counter() - start:.0f}s")
        with frozen_clock(NOW):
            async with db.writer() as session, session.begin():
                await refresh_model(session, as_of=NOW.date(), time_unit=TimeUnit.WEEK, config=ValueConfig())
                for days in (30, 0):
                    await rfm.compute_run(session, as_of=NOW.date() - timedelta(days=days), window_days=365, currency="EUR")
            counter = Counter(db)

            async def churn_run() -> str:
                async with db.writer() as session, session.begin():
                    found = await churn.assess(session, actor=SYSTEM, config=config)
                return f"{found.raised} at risk"

            async def lifecycle_run() -> str:
                async with db.writer() as session, session.begin():
                    run = await lifecycle.refresh_stages(session, actor=SYSTEM, config=config)
                return f"{run.customer_count} customers, {run.changed} changed"

            async def rules_run() -> str:
                async with db.writer() as session, session.begin():
                    run = await associations.refresh_rules(session, config=config)
                return f"{run.rule_count} rules over {run.customers} customers"

            async def page() -> str:
                async with db.reader() as session:
                    ids = list((await session.scalars(sa.select(Order.customer_id).distinct().limit(100))).all())
                counter.count = 0
                async with db.reader() as session:
                    await lifecycle.states_for(session, ids)
                    await lifecycle.history_for(session, ids, first=5)
                    found = await associations.recommendations_for(session, ids, first=5)
                    await profitability.for_customers(session, ids, config=config, window_days=None, sources=[])
                return f"{sum(len(v) for v in found.values())} recommendations"

            await timed(counter, "churn", churn_run)
            await timed(counter, "lifecycle", lifecycle_run)
            await timed(counter, "lifecycle", lifecycle_run)  # again: nothing changes
            await timed(counter, "rules", rules_run)
            await timed(counter, "page", page)
        await db.dispose()
    finally:
        stop()


if __name__ == "__main__":
    asyncio.run(main())
