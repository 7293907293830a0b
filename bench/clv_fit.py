"""Time a customer-value run: the SQL summary of the orders, the model fits, and the stored rows.

    .venv/bin/python bench/clv_fit.py [--customers 100000] [--orders 1000000] [--postgresql]

Generates customers who buy as the BG/NBD model says (a Gamma-distributed purchase rate, a
Beta-distributed chance of dropping out after each purchase, first purchases spread over two
years, some days with two orders) until about --orders orders exist, by bulk insert into a
fresh database (a SQLite file, or a throwaway PostgreSQL with --postgresql). Then times, on the
same data:
  summary      the per-customer inputs (purchase days, recency, age, repeat spend): one SQL
               statement, fetched to the client;
  fit          BG/NBD over the distinct (x, t_x, T) and Gamma-Gamma over the repeat buyers;
  predict      probability alive, expected purchases and CLV of every customer (numpy);
  refresh      the whole refreshCustomerValueModel service call, stored rows included, with
               the number of SQL statements it ran;
  filter       a customer page filtered on the newest run (alive < 0.3 and CLV > 100), page of
               100, best of three;
and prints seconds, the statement count and the fitted against the generating parameters.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from common import bench_settings  # noqa: E402
from crm_graph.core.clock import frozen_clock  # noqa: E402
from crm_graph.customers.models import Customer  # noqa: E402
from crm_graph.db import migrate  # noqa: E402
from crm_graph.db.session import Database  # noqa: E402
from crm_graph.insights.models import TimeUnit  # noqa: E402
from crm_graph.insights.service import fit, refresh_model  # noqa: E402
from crm_graph.insights.service.runs import ValueConfig, _fit_purchases  # noqa: E402
from crm_graph.insights.service.summary import read_summary  # noqa: E402
from crm_graph.sales.models import Order  # noqa: E402

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
TRUE = {"r": 0.8, "alpha": 12.0, "a": 0.6, "b": 5.0}  # in days
SPEND = {"p": 4.0, "q": 3.0, "gamma": 20.0}


def simulate(customers: int, orders: int, seed: int = 5) -> list[tuple[int, float, Decimal]]:
    """(customer, days before NOW, total) of every order."""
    rng = np.random.default_rng(seed)
    out: list[tuple[int, float, Decimal]] = []
    rate = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], customers)
    drop = rng.beta(TRUE["a"], TRUE["b"], customers)
    scale = rng.gamma(SPEND["q"], 1 / SPEND["gamma"], customers)  # nu: spend is Gamma(p, nu)
    first = rng.uniform(0, 730, customers)
    for cid in range(customers):
        t, repeat = first[cid], False  # days before NOW
        while len(out) < orders:
            total = Decimal(f"{rng.gamma(SPEND['p'], 1 / scale[cid]):.2f}")
            out.append((cid + 1, t, total))
            if rng.random() < 0.05:  # a second order the same day
                out.append((cid + 1, max(t - 0.01, 0.0), total))
            if repeat and rng.random() < drop[cid]:  # after each repeat purchase, a chance to drop out
                break
            t -= rng.exponential(1 / rate[cid])
            repeat = True
            if t < 0:
                break
    return out


async def load(db: Database, customers: int, orders: int) -> int:
    rows = [dict(id=i, kind="PERSON", last_name=f"L{i}", display_name=f"L{i}", lifecycle_stage="STABILITY",
                 consent_status="UNKNOWN", version=1, created_at=NOW, updated_at=NOW) for i in range(1, customers + 1)]
    made = simulate(customers, orders)
    async with db.writer() as session, session.begin():
        for start in range(0, len(rows), 20000):
            await session.execute(sa.insert(Customer), rows[start:start + 20000])
        batch = []
        for n, (customer_id, days, total) in enumerate(made, start=1):
            at = NOW - timedelta(days=days)
            batch.append(dict(number=f"B-{n:08d}", customer_id=customer_id, status="FULFILLED", payment_status="PAID",
                              currency="EUR", subtotal=total, discount=0, tax_rate=0, tax=0, total=total,
                              paid_amount=total, ordered_at=at, origin="EXTERNAL", version=1, created_at=at, updated_at=at))
            if len(batch) == 20000:
                await session.execute(sa.insert(Order), batch)
                batch = []
        if batch:
            await session.execute(sa.insert(Order), batch)
    return len(made)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args()
    settings, stop = await bench_settings("clv", args.postgresql)
    try:
        await asyncio.to_thread(migrate.upgrade, settings)
        db = Database.from_settings(settings)
        start = time.perf_counter()
        made = await load(db, args.customers, args.orders)
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()
        print(f"{db.dialect}: {args.customers} customers, {made} orders loaded in {time.perf_counter() - start:.0f}s")
        as_of = NOW.date()

        t0 = time.perf_counter()
        async with db.reader() as session:
            summary = await read_summary(session, as_of=as_of, currency="EUR")
        t_summary = time.perf_counter() - t0
        x, t_x, T, m = summary.frequency, summary.recency_days, summary.age_days, summary.spend
        t0 = time.perf_counter()
        purchases = _fit_purchases(x, t_x, T)
        spend = fit.fit_gamma_gamma(x[(x > 0) & (m > 0)], m[(x > 0) & (m > 0)])
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        fit.probability_alive(purchases, x, t_x, T)
        fit.expected_purchases(purchases, 365, x, t_x, T)
        fit.clv(purchases, spend, x, t_x, T, m, horizon_days=365, discount_rate=0.1, days_per_unit=1)
        t_predict = time.perf_counter() - t0
        distinct = len(np.unique(np.column_stack([x, t_x, T]), axis=0))

        statements = 0

        def count(*_: object) -> None:
            nonlocal statements
            statements += 1

        sa.event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        t0 = time.perf_counter()
        with frozen_clock(NOW):
            async with db.writer() as session, session.begin():
                run = await refresh_model(session, as_of=as_of, time_unit=TimeUnit.DAY, config=ValueConfig())
        t_refresh = time.perf_counter() - t0
        sa.event.remove(db.engine.sync_engine, "before_cursor_execute", count)

        from crm_graph.customers.service import customer_select

        t_filter = float("inf")
        for _ in range(3):  # best of three: the first also builds the filter registry
            t0 = time.perf_counter()
            async with db.reader() as session:
                stmt = await customer_select(session, filter={"lifetimeValue": {"probabilityAlive": {"lt": "0.3"}, "clv": {"gt": "100"}}})
                page = (await session.scalars(stmt.order_by(Customer.id).limit(100))).all()
            t_filter = min(t_filter, time.perf_counter() - t0)

        print(f"  customers fitted {len(summary)}, repeat buyers {int((x > 0).sum())}, distinct (x, t_x, T) {distinct}")
        print(f"  summary (SQL)  {t_summary:8.3f} s")
        print(f"  fit (scipy)    {t_fit:8.3f} s   BG/NBD r={purchases.r:.3f} alpha={purchases.alpha:.2f} a={purchases.a:.3f} "
              f"b={purchases.b:.3f}  (generated with {TRUE})")
        print(f"                            Gamma-Gamma p={spend.p:.2f} q={spend.q:.2f} gamma={spend.gamma:.2f} (generated with {SPEND})")
        print(f"  predict        {t_predict:8.3f} s")
        print(f"  refresh (all)  {t_refresh:8.3f} s   {statements} SQL statements; run {run.id}, {run.customer_count} rows stored")
        print(f"  filter page    {t_filter * 1000:8.0f} ms  ({len(page)} customers)")
        print(f"  shares of refresh: summary {t_summary / t_refresh:.0%}, fit {t_fit / t_refresh:.0%}, predict {t_predict / t_refresh:.0%}")
        await db.dispose()
    finally:
        stop()


if __name__ == "__main__":
    asyncio.run(main())
