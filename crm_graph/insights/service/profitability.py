"""Customer profitability: what a customer brought minus what serving them cost.

    profit = revenue - discounts - support cost - marketing cost

- revenue: the list value of the customer's counted orders (paid or fulfilled, not cancelled or
  refunded): the sum of their subtotals, before discounts and without tax;
- discounts: the discounts given on those orders;
- support cost: the support time of the customer's tickets at ``CRM_INSIGHTS_SUPPORT_HOURLY_RATE``,
  the time counted as ``SUPPORT_MINUTES_PER_TICKET`` per ticket plus ``SUPPORT_MINUTES_PER_REPLY``
  per agent comment (the CRM does not track working time; these are the standard handling times);
- marketing cost: ``MARKETING_COST_PER_MESSAGE`` per message sent, counted in every source the
  plugins register (``crm_messages_sent``: the email marketing plugin's campaign sends).

Amounts are in ``CRM_INSIGHTS_COST_CURRENCY``, the currency the rates are in: orders in other
currencies are left out (the CRM holds no exchange rates). Everything is counted from what the
reader may see, over the whole history or the last ``window_days``. One statement for a page of
customers, one per segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.clock import utcnow
from crm_graph.core.costs import SentMessages
from crm_graph.core.money import AmountType
from crm_graph.customers.models import Customer
from crm_graph.insights.config import InsightsSettings
from crm_graph.sales.models import Order
from crm_graph.sales.service.reports import counted_orders
from crm_graph.support.models import Ticket, TicketAuthorKind, TicketComment

CENT = Decimal("0.01")
MAX_WINDOW_DAYS = 36600


@dataclass
class Profitability:
    currency: str
    window_days: int | None
    customers: int
    orders: int
    revenue: Decimal
    discounts: Decimal
    tickets: int
    agent_replies: int
    support_minutes: float
    support_cost: Decimal
    messages: int
    marketing_cost: Decimal

    @property
    def cost_to_serve(self) -> Decimal:
        return self.discounts + self.support_cost + self.marketing_cost

    @property
    def profit(self) -> Decimal:
        return self.revenue - self.cost_to_serve


def _amount(value: Any) -> Decimal:
    return Decimal(value or 0)


def figures(row: Any, config: InsightsSettings, window_days: int | None, customers: int) -> Profitability:
    tickets, replies, messages = int(row.tickets or 0), int(row.replies or 0), int(row.messages or 0)
    minutes = tickets * config.support_minutes_per_ticket + replies * config.support_minutes_per_reply
    rate = Decimal(repr(config.support_hourly_rate))
    support = (Decimal(repr(minutes)) * rate / 60).quantize(CENT)
    marketing = (Decimal(messages) * Decimal(repr(config.marketing_cost_per_message))).quantize(CENT)
    return Profitability(
        currency=config.cost_currency, window_days=window_days, customers=customers, orders=int(row.orders or 0),
        revenue=_amount(row.revenue), discounts=_amount(row.discounts), tickets=tickets, agent_replies=replies,
        support_minutes=float(minutes), support_cost=support, messages=messages, marketing_cost=marketing,
    )


def _measures(customers: Any, config: InsightsSettings, since: datetime | None, sources: Sequence[SentMessages]) -> sa.Select[Any]:
    """customer id, orders, revenue, discounts, tickets, replies, messages of each customer
    ``customers`` (a select of customer ids) names."""
    def after(column: Any) -> list[Any]:
        return [column >= since] if since is not None else []

    orders = (
        sa.select(Order.customer_id.label("cid"), sa.func.count().label("orders"),
                  sa.type_coerce(sa.func.sum(Order.subtotal), AmountType).label("revenue"),
                  sa.type_coerce(sa.func.sum(Order.discount), AmountType).label("discounts"))
        .where(counted_orders(), Order.currency == config.cost_currency, Order.customer_id.in_(customers),
               *after(Order.ordered_at))
        .group_by(Order.customer_id).subquery("o")
    )
    tickets = (
        sa.select(Ticket.customer_id.label("cid"), sa.func.count().label("tickets"))
        .where(Ticket.customer_id.in_(customers), *after(Ticket.created_at))
        .group_by(Ticket.customer_id).subquery("t")
    )
    replies = (
        sa.select(Ticket.customer_id.label("cid"), sa.func.count().label("replies"))
        .join(TicketComment, TicketComment.ticket_id == Ticket.id)
        .where(Ticket.customer_id.in_(customers), TicketComment.author_kind == TicketAuthorKind.AGENT,
               *after(TicketComment.created_at))
        .group_by(Ticket.customer_id).subquery("r")
    )
    columns = [Customer.id.label("customer_id"), orders.c.orders, orders.c.revenue, orders.c.discounts, tickets.c.tickets,
               replies.c.replies]
    stmt = (
        sa.select(*columns)
        .outerjoin(orders, orders.c.cid == Customer.id)
        .outerjoin(tickets, tickets.c.cid == Customer.id)
        .outerjoin(replies, replies.c.cid == Customer.id)
        .where(Customer.id.in_(customers))
    )
    if sources:
        sent = sa.union_all(*(s.select() for s in sources)).subquery("sent")
        messages = (
            sa.select(sent.c.customer_id.label("cid"), sa.func.count().label("messages"))
            .where(sent.c.customer_id.in_(customers), *after(sent.c.sent_at))
            .group_by(sent.c.customer_id).subquery("m")
        )
        stmt = stmt.add_columns(messages.c.messages).outerjoin(messages, messages.c.cid == Customer.id)
    else:
        stmt = stmt.add_columns(sa.literal(0).label("messages"))
    return stmt


def since_of(window_days: int | None) -> datetime | None:
    return utcnow() - timedelta(days=window_days) if window_days is not None else None


async def for_customers(session: AsyncSession, customer_ids: Sequence[int], *, config: InsightsSettings,
                        window_days: int | None, sources: Sequence[SentMessages]) -> dict[int, Profitability]:
    """Each customer's profitability (of those the session's scope shows), one statement."""
    rows = await session.execute(_measures(list(customer_ids), config, since_of(window_days), sources))
    return {row.customer_id: figures(row, config, window_days, 1) for row in rows}


async def for_members(session: AsyncSession, members: sa.Select[Any], *, config: InsightsSettings,
                      window_days: int | None, sources: Sequence[SentMessages]) -> Profitability:
    """The sums over the customers ``members`` selects (their ids), one statement."""
    per = _measures(members, config, since_of(window_days), sources).subquery("per")
    row = (await session.execute(sa.select(
        sa.func.count().label("customers"), sa.func.sum(per.c.orders).label("orders"),
        sa.type_coerce(sa.func.sum(per.c.revenue), AmountType).label("revenue"),
        sa.type_coerce(sa.func.sum(per.c.discounts), AmountType).label("discounts"),
        sa.func.sum(per.c.tickets).label("tickets"), sa.func.sum(per.c.replies).label("replies"),
        sa.func.sum(per.c.messages).label("messages")))).one()
    return figures(row, config, window_days, int(row.customers or 0))
