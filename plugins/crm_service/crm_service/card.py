"""The customer card: what an agent at the helpdesk should know of the person writing in,
from the CRM (lifetime value from the newest value run, open orders, the last opportunities,
the RFM group of the newest RFM run, the satisfaction index over rated tickets, open tickets).
Pushed to the helpdesk with each linked ticket, and served as JSON at
``GET /service/customers/{id}/card`` for a helpdesk page to show."""

from __future__ import annotations

import hashlib
import json
import os
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.helpdesk import CustomerCard
from crm_graph.customers.models import Customer, CustomerEmail
from crm_graph.insights.service.runs import values_for
from crm_graph.sales.models import Opportunity, Order, OrderStatus
from crm_graph.segments.models import RfmRun, RfmScore
from crm_graph.support.models import UNRESOLVED, Ticket
from crm_graph.support.service import satisfaction_index

OPEN_ORDERS = (OrderStatus.PENDING, OrderStatus.CONFIRMED)


def public_url() -> str | None:
    """CRM_PUBLIC_URL, the address the card links back to (unset: no link)."""
    return os.environ.get("CRM_PUBLIC_URL") or None


async def primary_email(session: AsyncSession, customer_id: int) -> str | None:
    return await session.scalar(sa.select(CustomerEmail.address).where(CustomerEmail.customer_id == customer_id)
                                .order_by(CustomerEmail.is_primary.desc(), CustomerEmail.position).limit(1))


def _money(amount: Decimal | None, currency: str | None) -> str | None:
    return None if amount is None or currency is None else f"{amount:.2f} {currency}"


async def customer_card(session: AsyncSession, customer_id: int, *, public_url: str | None = None) -> CustomerCard | None:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        return None
    email = await primary_email(session, customer_id)
    value = (await values_for(session, [customer_id])).get(customer_id)
    orders = (await session.execute(
        sa.select(Order.currency, sa.func.count(), sa.func.sum(Order.total))
        .where(Order.customer_id == customer_id, Order.status.in_(OPEN_ORDERS)).group_by(Order.currency)
        .order_by(sa.func.count().desc()))).all()
    opportunities = (await session.execute(
        sa.select(Opportunity.title, Opportunity.status, Opportunity.amount, Opportunity.currency)
        .where(Opportunity.customer_id == customer_id).order_by(Opportunity.created_at.desc(), Opportunity.id.desc())
        .limit(3))).all()
    rfm = await session.scalar(
        sa.select(RfmScore.group).join(RfmRun, RfmRun.id == RfmScore.run_id)
        .where(RfmScore.customer_id == customer_id).order_by(RfmRun.id.desc()).limit(1))
    rated = (await session.execute(sa.select(Ticket.rating, Ticket.rating_expectation).where(
        Ticket.customer_id == customer_id, Ticket.rating.is_not(None)))).all()
    indexes = [i for i in (satisfaction_index(r, e) for r, e in rated) if i is not None]
    open_tickets = await session.scalar(sa.select(sa.func.count()).select_from(Ticket).where(
        Ticket.customer_id == customer_id, Ticket.status.in_(UNRESOLVED)))
    return CustomerCard(
        reference=f"CRM-C-{customer_id}", name=customer.display_name, email=email,
        lifetime_value=_money(value[0].clv, value[1].currency) if value else None,
        open_orders=sum(count for _, count, _ in orders),
        open_order_value=_money(orders[0][2], orders[0][0]) if orders else None,
        last_opportunities=[f"{title} ({status.name}, {_money(amount, currency)})"
                            for title, status, amount, currency in opportunities],
        rfm_group=rfm.name if rfm is not None else None,
        satisfaction_index=round(sum(indexes) / len(indexes), 3) if indexes else None,
        tickets_open=open_tickets or 0,
        url=f"{public_url.rstrip('/')}/service/customers/{customer_id}/card" if public_url else None)


def card_hash(card: CustomerCard) -> str:
    return hashlib.sha256(json.dumps(card.as_dict(), sort_keys=True, default=str).encode()).hexdigest()
