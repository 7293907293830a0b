"""The models' inputs from hand-built order histories: purchases counted per UTC day, recency and
age in whole days from the first purchase, only counted orders of the run's currency up to and
including the as-of day, deleted customers left out; and the stored run built on them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from crm_graph.core.clock import frozen_clock
from crm_graph.customers.models import Customer
from crm_graph.insights.models import CustomerValue, TimeUnit
from crm_graph.insights.service import ValueConfig, refresh_model
from crm_graph.insights.service.summary import read_summary
from crm_graph.sales.models import OrderStatus, PaymentStatus
from tests.segments.factories import NOW, customer, order

AS_OF = date(2026, 6, 30)


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def day(n: int) -> date:
    """``n`` days before AS_OF."""
    return AS_OF - timedelta(days=n)


async def _histories(db) -> dict[str, int]:
    async with db.writer() as session, session.begin():
        with frozen_clock(NOW):
            ids = {name: await customer(session, lastName=name) for name in ("Ann", "Bob", "Cy", "Dee", "Eve", "Fay")}
        # Ann: two orders on her first day (one purchase of 15), then days 3 and 10 after it.
        order(session, ids["Ann"], "10.00", at(day(40), 9))
        order(session, ids["Ann"], "5.00", at(day(40), 18))
        order(session, ids["Ann"], "20.00", at(day(37)))
        order(session, ids["Ann"], "30.00", at(day(30)))
        # ... and orders that do not count: cancelled, unpaid and unfulfilled, another currency, after asOf.
        order(session, ids["Ann"], "999", at(day(5)), status=OrderStatus.CANCELLED, payment=PaymentStatus.UNPAID)
        order(session, ids["Ann"], "999", at(day(4)), status=OrderStatus.CONFIRMED, payment=PaymentStatus.UNPAID)
        order(session, ids["Ann"], "999", at(day(3)), currency="USD")
        order(session, ids["Ann"], "999", at(AS_OF + timedelta(days=1), 0, 1))
        # Bob: one purchase only.
        order(session, ids["Bob"], "42.50", at(day(100)))
        # Cy: 23:59 and 00:01 are two days; the last order on asOf itself counts.
        order(session, ids["Cy"], "1.00", at(day(2), 23, 59))
        order(session, ids["Cy"], "2.00", at(day(1), 0, 1))
        order(session, ids["Cy"], "4.00", at(AS_OF, 23, 59))
        # Dee: deleted. Eve: only USD orders. Fay: no orders.
        order(session, ids["Dee"], "10", at(day(20)))
        order(session, ids["Dee"], "10", at(day(10)))
        order(session, ids["Eve"], "10", at(day(20)), currency="USD")
        await session.execute(sa.update(Customer).where(Customer.id == ids["Dee"]).values(deleted_at=NOW))
    return ids


async def test_summary_counts_purchase_days_and_whole_days(db):
    ids = await _histories(db)
    async with db.reader() as session:
        summary = await read_summary(session, as_of=AS_OF, currency="EUR")
    got = {
        int(cid): (int(x), int(rec), int(age), avg)
        for cid, x, rec, age, avg in zip(summary.customer_ids, summary.frequency, summary.recency_days,
                                         summary.age_days, summary.average_spend, strict=True)
    }
    assert got == {
        ids["Ann"]: (2, 10, 40, Decimal("25.0000")),  # repeat days 20 and 30
        ids["Bob"]: (0, 0, 100, None),
        ids["Cy"]: (2, 2, 2, Decimal("3.0000")),  # repeat days 2 and 4
    }


async def test_as_of_cuts_the_history_at_the_end_of_that_day(db):
    ids = await _histories(db)
    async with db.reader() as session:
        summary = await read_summary(session, as_of=day(1), currency="EUR")
    cy = list(summary.customer_ids).index(ids["Cy"])
    assert (summary.frequency[cy], summary.recency_days[cy], summary.age_days[cy]) == (1, 1, 1)
    assert summary.average_spend[cy] == Decimal("2.0000")
    ann = list(summary.customer_ids).index(ids["Ann"])
    assert (summary.frequency[ann], summary.age_days[ann]) == (2, 39)


async def _many(db, n: int = 60) -> None:
    """n customers with 1 to 6 purchases at steady, customer-specific rhythms."""
    async with db.writer() as session, session.begin():
        with frozen_clock(NOW):
            ids = [await customer(session, lastName=f"M{i:03d}") for i in range(n)]
        for i, cid in enumerate(ids):
            first = 20 + (i * 37) % 300
            for k in range(1 + i % 6):
                n_days = first - k * (3 + i % 11)
                if n_days >= 0:
                    order(session, cid, f"{10 + (i * 7) % 90 + k}.00", at(day(n_days)))


async def test_week_and_day_runs_are_the_same_model_in_two_units(db):
    await _many(db)
    config = ValueConfig(min_repeat_customers=10)
    async with db.writer() as session, session.begin():
        days = await refresh_model(session, as_of=AS_OF, time_unit=TimeUnit.DAY, config=config)
        weeks = await refresh_model(session, as_of=AS_OF, time_unit=TimeUnit.WEEK, config=config)
    # Stretching time by 7 only rescales alpha: the other parameters and every prediction stay.
    assert days.alpha == pytest.approx(7 * weeks.alpha, rel=1e-4)
    for name in ("r", "a", "b", "p", "q", "gamma"):
        assert getattr(days, name) == pytest.approx(getattr(weeks, name), rel=1e-4), name
    async with db.reader() as session:
        rows = {}
        for run in (days, weeks):
            found = await session.scalars(sa.select(CustomerValue).where(CustomerValue.run_id == run.id))
            rows[run.id] = {r.customer_id: r for r in found}
    assert len(rows[days.id]) == len(rows[weeks.id]) == days.customer_count == 60
    for cid, in_days in rows[days.id].items():
        in_weeks = rows[weeks.id][cid]
        assert (in_days.frequency, in_days.recency_days, in_days.age_days) == (in_weeks.frequency, in_weeks.recency_days, in_weeks.age_days)
        assert in_days.probability_alive == pytest.approx(in_weeks.probability_alive, rel=1e-3, abs=1e-6)
        assert in_days.expected_purchases == pytest.approx(in_weeks.expected_purchases, rel=1e-3, abs=1e-6)
        assert abs(in_days.clv - in_weeks.clv) <= max(Decimal("0.01"), in_weeks.clv / 1000)


async def test_a_run_costs_the_same_statements_whatever_the_number_of_customers(db, sql_counter):
    counts = []
    for extra in (0, 60):
        if extra:
            await _many(db, extra)
        else:
            await _many(db, 30)
        sql_counter.count = 0
        async with db.writer() as session, session.begin():
            run = await refresh_model(session, as_of=AS_OF, time_unit=TimeUnit.DAY, config=ValueConfig(min_repeat_customers=10))
        counts.append(sql_counter.count)
        assert run.customer_count == 30 + extra
    # the summary (which also chooses the currency), the run, one executemany of its rows
    assert counts[0] == counts[1] <= 3
