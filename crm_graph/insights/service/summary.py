"""The models' inputs from the orders, in SQL: per customer, repeat purchase days, recency, age
and the mean value of the repeat purchases.

A purchase is a UTC day with at least one counted order (``counted_orders()``: paid or
fulfilled, not cancelled or refunded) in the run's currency; orders of one day add up to one
purchase. With ``d_1 < ... < d_n`` a customer's purchase days on or before ``as_of``:

- frequency ``x = n - 1`` (repeat purchases: the first one only starts the relationship),
- recency ``t_x = d_n - d_1`` and age ``T = as_of - d_1``, in whole days,
- average spend: the mean value of days ``d_2 .. d_n`` (null when ``x = 0``), as the
  Gamma-Gamma model wants: the first purchase is left out of the spend model too.

Deleted customers are left out. One statement: a ``GROUP BY`` of days under a ``GROUP BY`` of
customers (and currencies, when the run's currency is still to be chosen).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.access import SKIP_OPTION
from crm_graph.core.money import AmountType
from crm_graph.customers.models import Customer
from crm_graph.sales.models import Order
from crm_graph.sales.service.reports import counted_orders

def day_key(timestamp: Any, dialect: str) -> sa.ColumnElement[Any]:
    """The UTC day of ``timestamp``, as a value that groups, sorts and compares by day."""
    if dialect == "sqlite":
        # Stored as fixed-width naive UTC text (``YYYY-MM-DD HH:MM:SS.ffffff``): its first ten
        # characters are the day, with no date parsing per order.
        return sa.func.substr(timestamp, 1, 10)
    return sa.cast(sa.func.timezone("UTC", timestamp), sa.Date)


def end_of(as_of: date) -> datetime:
    return datetime.combine(as_of + timedelta(days=1), time(), tzinfo=UTC)


def day_literal(day: date, dialect: str) -> sa.ColumnElement[Any]:
    return sa.literal(day.isoformat()) if dialect == "sqlite" else sa.literal(day, sa.Date)


def days_between(earlier: Any, later: Any, dialect: str) -> sa.ColumnElement[int]:
    """Whole days from ``earlier`` to ``later`` (two day keys)."""
    if dialect == "sqlite":
        return sa.cast(sa.func.julianday(later) - sa.func.julianday(earlier), sa.Integer)
    return later - earlier


def summary_select(as_of: date, currency: str | None, dialect: str) -> sa.Select[Any]:
    """customer_id, currency, orders, frequency, recency_days, age_days, repeat_spend of every live
    customer with a counted order on or before ``as_of``: in ``currency``, or per currency."""
    day = day_key(Order.ordered_at, dialect)
    last = day_literal(as_of, dialect)
    # SQLite: on the day, not the timestamp, so the cut-off takes no index (its planner would
    # range over the ordered_at index for nearly every row, slower than scanning the table).
    # PostgreSQL's planner weighs the range with its statistics, so the timestamp stays.
    cutoff = day <= last if dialect == "sqlite" else Order.ordered_at < end_of(as_of)
    where = [counted_orders(), cutoff]
    if currency is not None:
        where.append(Order.currency == currency)
    # SQLite would walk the (customer, ordered_at) index to group by customer, one table lookup
    # per order; "+ 0" (its idiom for "not through an index") makes it scan the table instead.
    customer = Order.customer_id + 0 if dialect == "sqlite" else Order.customer_id
    days = (
        sa.select(
            customer.label("customer_id"), Order.currency.label("currency"), day.label("day"),
            sa.func.count().label("orders"), sa.func.sum(Order.total).label("spend"),
        )
        .where(*where)
        .group_by(customer, Order.currency, day)
        .subquery("days")
    )
    first = sa.func.min(days.c.day).over(partition_by=(days.c.customer_id, days.c.currency))
    marked = sa.select(days, first.label("first_day")).subquery("marked")
    repeat_spend = sa.func.sum(sa.case((marked.c.day > marked.c.first_day, marked.c.spend)))
    per_customer = (
        sa.select(
            marked.c.customer_id,
            marked.c.currency,
            sa.func.sum(marked.c.orders).label("orders"),
            (sa.func.count() - 1).label("frequency"),
            days_between(sa.func.min(marked.c.day), sa.func.max(marked.c.day), dialect).label("recency_days"),
            days_between(sa.func.min(marked.c.day), last, dialect).label("age_days"),
            sa.type_coerce(repeat_spend, AmountType).label("repeat_spend"),
        )
        .group_by(marked.c.customer_id, marked.c.currency)
        .subquery("per_customer")
    )
    return (
        sa.select(per_customer)
        .join(Customer, sa.and_(Customer.id == per_customer.c.customer_id, Customer.deleted_at.is_(None)))
        .order_by(per_customer.c.customer_id)
        .execution_options(**{SKIP_OPTION: True})  # a run covers every customer, whoever asks
    )


@dataclass
class Summary:
    """The inputs of every customer, as arrays in ``customer_ids`` order (days, not time units)."""

    currency: str | None
    customer_ids: np.ndarray
    frequency: np.ndarray
    recency_days: np.ndarray
    age_days: np.ndarray
    average_spend: list[Decimal | None]

    def __len__(self) -> int:
        return len(self.customer_ids)

    @property
    def spend(self) -> np.ndarray:
        """Average spend as floats for the fit (0 where there is none)."""
        return np.array([float(v) if v is not None else 0.0 for v in self.average_spend], dtype=np.float64)


async def read_summary(session: AsyncSession, *, as_of: date, currency: str | None = None) -> Summary:
    """The inputs in ``currency``; without one, in the currency with the most counted orders on or
    before ``as_of`` (ties: alphabetical), the rule RFM follows too: amounts of two currencies are
    never added up. Read in the same statement, so the orders are scanned once."""
    dialect = session.get_bind().dialect.name
    rows: Sequence[Any] = (await session.execute(summary_select(as_of, currency, dialect))).all()
    if currency is None and rows:
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.currency] = counts.get(row.currency, 0) + int(row.orders)
        currency = min(counts, key=lambda c: (-counts[c], c))
        rows = [row for row in rows if row.currency == currency]
    average = [
        (Decimal(row.repeat_spend) / row.frequency).quantize(Decimal("0.0001"))
        if row.frequency > 0 and row.repeat_spend is not None else None
        for row in rows
    ]

    def column(name: str, dtype: Any) -> np.ndarray:
        return np.array([getattr(row, name) for row in rows], dtype=dtype)

    return Summary(
        currency=currency if rows else None,
        customer_ids=column("customer_id", np.int64),
        frequency=column("frequency", np.float64),
        recency_days=column("recency_days", np.float64),
        age_days=column("age_days", np.float64),
        average_spend=average,
    )
