"""Order-based customer value, in SQL: the orders that count, revenue per customer, value tiers.

Revenue is only added up within one currency: the CRM holds no exchange rates, so an analysis
covers the orders of one currency (by default the one with the most counted orders).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.customers.models import Customer
from crm_graph.sales.models import Opportunity, OpportunityStatus, Order
from crm_graph.sales.service.reports import counted_orders as counted_order
from crm_graph.segments.models import ValueTier


def window_bounds(as_of: date, window_days: int) -> tuple[datetime, datetime]:
    """(start, end]: the ``window_days`` days up to and including ``as_of`` (UTC days)."""
    end = datetime.combine(as_of + timedelta(days=1), time(), tzinfo=UTC)
    return end - timedelta(days=window_days), end


def in_window(as_of: date, window_days: int, currency: str) -> sa.ColumnElement[bool]:
    start, end = window_bounds(as_of, window_days)
    return sa.and_(counted_order(), Order.currency == currency, Order.ordered_at >= start, Order.ordered_at < end)


async def main_currency(session: AsyncSession, as_of: date, window_days: int) -> str | None:
    """The currency with the most counted orders in the window (ties: alphabetical)."""
    start, end = window_bounds(as_of, window_days)
    count = sa.func.count().label("n")
    stmt = (
        sa.select(Order.currency, count)
        .where(counted_order(), Order.ordered_at >= start, Order.ordered_at < end)
        .group_by(Order.currency)
        .order_by(count.desc(), Order.currency)
        .limit(1)
    )
    row = (await session.execute(stmt)).first()
    return row[0] if row else None


def revenue_by_customer(as_of: date, window_days: int, currency: str) -> sa.Select[Any]:
    """customer_id, last_at, frequency, monetary over counted orders of live customers.

    Orders are aggregated first and joined to customers after, so the join touches one row
    per customer rather than one per order.
    """
    per_customer = (
        sa.select(
            Order.customer_id.label("customer_id"),
            sa.func.max(Order.ordered_at).label("last_at"),
            sa.func.count().label("frequency"),
            sa.func.sum(Order.total).label("monetary"),
        )
        .where(in_window(as_of, window_days, currency))
        .group_by(Order.customer_id)
        .subquery("per_customer")
    )
    return sa.select(per_customer).join(
        Customer, sa.and_(Customer.id == per_customer.c.customer_id, Customer.deleted_at.is_(None))
    )


def tier_case(monetary: Any, cumulative: Any, total: Any) -> sa.Case[Any]:
    """KEY: the smallest set of customers (by revenue, largest first) bringing 80% of revenue;
    ORDINARY: the next 15%; POTENTIAL: the rest. A customer belongs to KEY when the revenue of
    everyone ranked above them is still below 80% (so the customer who crosses 80% is KEY)."""
    before = cumulative - monetary
    return sa.case(
        (before * 5 < total * 4, ValueTier.KEY.name),
        (before * 20 < total * 19, ValueTier.ORDINARY.name),
        else_=ValueTier.POTENTIAL.name,
    )


def ranked_revenue(revenue: sa.Subquery) -> sa.Subquery:
    """Each customer's revenue with its running total (largest first), rank, count and total."""
    order = (revenue.c.monetary.desc(), revenue.c.customer_id)
    return sa.select(
        revenue.c.customer_id,
        revenue.c.monetary,
        sa.func.sum(revenue.c.monetary).over(order_by=order, rows=(None, 0)).label("cumulative"),
        sa.func.row_number().over(order_by=order).label("position"),
        sa.func.count().over().label("customers"),
        sa.func.sum(revenue.c.monetary).over().label("total"),
    ).subquery("ranked")


def potential_customers(scored: Any) -> sa.Select[Any]:
    """Live customers, not among ``scored`` (a column of customer IDs), with a counted order at
    any time or an open opportunity. Set operations, so the planner hashes them."""
    buyers = sa.select(Order.customer_id).where(counted_order())
    open_deals = sa.select(Opportunity.customer_id).where(
        Opportunity.status == OpportunityStatus.OPEN, Opportunity.deleted_at.is_(None)
    )
    return sa.select(Customer.id).where(
        Customer.deleted_at.is_(None),
        Customer.id.in_(sa.union(buyers, open_deals)),
        Customer.id.not_in(sa.select(scored)),
    )
