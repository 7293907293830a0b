"""Quotes: a priced offer made from an opportunity, numbered Q-<year>-<n>.

Status: DRAFT -> SENT -> ACCEPTED or REJECTED. A DRAFT or SENT quote whose ``validUntil`` date has
passed reads as EXPIRED (computed when read, in SQL for filters, so no job has to flip it) and
can be neither sent nor accepted. Accepting creates the order (origin QUOTE) and wins the
opportunity. A quote copies everything a document needs (lines with SKUs, totals, currency, the
customer's name and billing address at the time), so later edits elsewhere do not change it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, NotFound
from crm_graph.core.events import record_event
from crm_graph.core.filters import compile_filter
from crm_graph.core.hooks import validate_with_plugins
from crm_graph.customers import service as customers
from crm_graph.sales import codes
from crm_graph.sales.filters import quote_filter
from crm_graph.sales.models import (
    OpportunityStatus,
    Order,
    OrderOrigin,
    Product,
    Quote,
    QuoteLineItem,
    QuoteStatus,
)
from crm_graph.sales.service import opportunities as opportunity_service
from crm_graph.sales.service import orders as order_service
from crm_graph.sales.service.common import (
    PricedLine,
    check,
    fail,
    next_number,
    percent,
    text,
    totals,
)

NUMBER_PREFIX = "Q"
DEFAULT_VALIDITY_DAYS = 30


def today() -> date:
    return utcnow().date()


def effective_status(quote: Quote, on: date | None = None) -> QuoteStatus:
    """What the client sees: an open quote past its validity date is EXPIRED."""
    if quote.status in (QuoteStatus.DRAFT, QuoteStatus.SENT) and quote.valid_until < (on or today()):
        return QuoteStatus.EXPIRED
    return quote.status


def quote_select(filter: Mapping[str, Any] | None = None) -> sa.Select[tuple[Quote]]:
    stmt = sa.select(Quote)
    if filter:
        stmt = stmt.where(compile_filter(quote_filter(today()), filter))
    return stmt


async def get_quote(session: AsyncSession, quote_id: int, *, lock: bool = False) -> Quote | None:
    stmt = sa.select(Quote).where(Quote.id == quote_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(stmt)


async def quotes_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Quote]:
    rows = await session.scalars(sa.select(Quote).where(Quote.id.in_(ids)))
    return {q.id: q for q in rows}


async def lines_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[QuoteLineItem]]:
    rows = await session.scalars(
        sa.select(QuoteLineItem).where(QuoteLineItem.quote_id.in_(ids)).order_by(QuoteLineItem.quote_id, QuoteLineItem.position)
    )
    out: dict[int, list[QuoteLineItem]] = defaultdict(list)
    for row in rows:
        out[row.quote_id].append(row)
    return out


async def orders_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, Order]:
    rows = await session.scalars(sa.select(Order).where(Order.quote_id.in_(ids)))
    return {o.quote_id: o for o in rows if o.quote_id is not None}


async def quote_payload(session: AsyncSession, quote: Quote) -> dict[str, Any]:
    lines = (await lines_for(session, [quote.id])).get(quote.id, [])
    return {
        "id": quote.id,
        "number": quote.number,
        "opportunityId": quote.opportunity_id,
        "customerId": quote.customer_id,
        "status": effective_status(quote),
        "currency": quote.currency,
        "validUntil": quote.valid_until,
        "subtotal": quote.subtotal,
        "discount": quote.discount,
        "taxRate": quote.tax_rate,
        "tax": quote.tax,
        "total": quote.total,
        "customerName": quote.customer_name,
        "billingAddress": quote.billing_address,
        "lineItems": [
            {"productId": li.product_id, "sku": li.sku, "description": li.description, "quantity": li.quantity,
             "unitPrice": li.unit_price, "discountPercent": li.discount_percent, "total": li.total}
            for li in lines
        ],
        "version": quote.version,
    }


async def create_quote(session: AsyncSession, *, actor: Actor, data: Mapping[str, Any]) -> Quote:
    errors = ErrorCollector()
    opportunity = None
    if data.get("opportunityId") is None:
        errors.add("opportunityId", codes.REQUIRED, "A quote is made from an opportunity.")
    else:
        opportunity = await opportunity_service.get_opportunity(session, data["opportunityId"])
        if opportunity is None:
            errors.add("opportunityId", codes.NOT_FOUND, "The opportunity was not found.")
        elif opportunity.status is not OpportunityStatus.OPEN:
            errors.add("opportunityId", codes.INVALID_STATE, f"The opportunity is {opportunity.status.name}; quote open ones.")
    valid_until = data.get("validUntil") or today() + timedelta(days=DEFAULT_VALIDITY_DAYS)
    if not isinstance(valid_until, date):
        errors.add("validUntil", codes.INVALID_VALUE, "Expected a date (YYYY-MM-DD).")
    elif valid_until < today():
        errors.add("validUntil", codes.OUT_OF_RANGE, "A quote cannot be valid only in the past.")
    tax_rate = check(errors, "taxRate", percent, data["taxRate"]) if data.get("taxRate") is not None else Decimal(0)
    errors.raise_if_any()
    assert opportunity is not None and tax_rate is not None
    customer = await customers.get_customer(session, opportunity.customer_id)
    if customer is None:
        raise fail("opportunityId", codes.INVALID_STATE, "The opportunity's customer was deleted.")
    lines = await _lines_from(session, opportunity)
    if not lines:
        raise fail("opportunityId", codes.NOTHING_TO_QUOTE, "The opportunity has neither line items nor an amount to quote.")
    await validate_with_plugins(session, entity="quote", data=data, actor=actor)
    addresses = (await customers.addresses_for(session, [customer.id])).get(customer.id, [])
    address = next((a for a in addresses if a.is_primary), addresses[0] if addresses else None)
    now = utcnow()
    quote = Quote(
        number=await next_number(session, "quote", NUMBER_PREFIX, 4),
        opportunity_id=opportunity.id,
        customer_id=customer.id,
        status=QuoteStatus.DRAFT,
        currency=opportunity.currency,
        valid_until=valid_until,
        customer_name=customer.display_name,
        billing_address=None if address is None else {
            "line1": address.line1, "line2": address.line2, "postalCode": address.postal_code,
            "city": address.city, "region": address.region, "country": address.country,
        },
        version=1,
        created_at=now,
        updated_at=now,
        **totals(lines, tax_rate, opportunity.currency).columns(),
    )
    session.add(quote)
    await session.flush()
    session.add_all(QuoteLineItem(quote_id=quote.id, position=i, **line.columns()) for i, line in enumerate(lines))
    await session.flush()
    record_event(session, type="quote.created", entity_type="Quote", entity_id=quote.id, actor=actor,
                 payload=await quote_payload(session, quote))
    return quote


async def _lines_from(session: AsyncSession, opportunity: Any) -> list[PricedLine]:
    rows = (await opportunity_service.lines_for(session, [opportunity.id])).get(opportunity.id, [])
    if not rows:
        if opportunity.amount > 0:
            return [PricedLine(None, None, opportunity.title[:300], Decimal(1), opportunity.amount, Decimal(0)).priced(opportunity.currency)]
        return []
    skus = dict((await session.execute(
        sa.select(Product.id, Product.sku).where(Product.id.in_({r.product_id for r in rows}))
    )).all())
    lines = []
    for row in rows:
        line = PricedLine.from_row(row)
        line.sku = skus.get(row.product_id)
        lines.append(line)
    return lines


async def _require(session: AsyncSession, quote_id: int) -> Quote:
    quote = await get_quote(session, quote_id, lock=True)
    if quote is None:
        raise NotFound("Quote")
    return quote


async def send_quote(session: AsyncSession, *, actor: Actor, quote_id: int) -> Quote:
    """DRAFT -> SENT. Sending a sent quote again changes nothing."""
    quote = await _require(session, quote_id)
    status = effective_status(quote)
    if status is QuoteStatus.SENT:
        return quote
    if status is QuoteStatus.EXPIRED:
        raise fail("id", codes.QUOTE_EXPIRED, f"The quote expired on {quote.valid_until.isoformat()}; create a new one.")
    if status is not QuoteStatus.DRAFT:
        raise fail("id", codes.INVALID_STATE, f"The quote is {status.name}.")
    await validate_with_plugins(session, entity="quote", data={"id": quote_id, "status": "SENT"}, actor=actor)
    quote.status = QuoteStatus.SENT
    quote.sent_at = quote.updated_at = utcnow()
    await session.flush()
    record_event(session, type="quote.sent", entity_type="Quote", entity_id=quote.id, actor=actor,
                 payload=await quote_payload(session, quote))
    return quote


async def accept_quote(session: AsyncSession, *, actor: Actor, quote_id: int) -> tuple[Quote, Order | None]:
    """SENT -> ACCEPTED: creates the order and wins the opportunity. Accepting again returns both."""
    quote = await _require(session, quote_id)
    status = effective_status(quote)
    if status is QuoteStatus.ACCEPTED:
        return quote, (await orders_for(session, [quote.id])).get(quote.id)
    if status is QuoteStatus.EXPIRED:
        raise fail("id", codes.QUOTE_EXPIRED, f"The quote expired on {quote.valid_until.isoformat()}; it can no longer be accepted.")
    if status is QuoteStatus.DRAFT:
        raise fail("id", codes.INVALID_STATE, "Send the quote before it can be accepted.")
    if status is not QuoteStatus.SENT:
        raise fail("id", codes.INVALID_STATE, f"The quote is {status.name}.")
    opportunity = await opportunity_service.get_opportunity(session, quote.opportunity_id, lock=True)
    if opportunity is None:
        raise fail("id", codes.INVALID_STATE, "The quote's opportunity was deleted.")
    if opportunity.status is not OpportunityStatus.OPEN:
        raise fail("id", codes.INVALID_STATE, f"The opportunity is {opportunity.status.name} already.")
    if await customers.get_customer(session, quote.customer_id) is None:
        raise fail("id", codes.INVALID_STATE, "The quote's customer was deleted.")
    await validate_with_plugins(session, entity="quote", data={"id": quote_id, "status": "ACCEPTED"}, actor=actor)
    now = utcnow()
    quote.status = QuoteStatus.ACCEPTED
    quote.accepted_at = quote.updated_at = now
    lines = [PricedLine.from_row(r) for r in (await lines_for(session, [quote.id])).get(quote.id, [])]
    order = await order_service.create_order_record(
        session, actor=actor, customer_id=quote.customer_id, currency=quote.currency, lines=lines,
        tax_rate=quote.tax_rate, origin=OrderOrigin.QUOTE, opportunity_id=opportunity.id, quote_id=quote.id,
    )
    await opportunity_service.close(session, actor, opportunity, won=True)
    await session.flush()
    record_event(session, type="quote.accepted", entity_type="Quote", entity_id=quote.id, actor=actor,
                 payload={**await quote_payload(session, quote), "orderId": order.id})
    record_event(session, type="opportunity.won", entity_type="Opportunity", entity_id=opportunity.id, actor=actor,
                 payload={**await opportunity_service.opportunity_payload(session, opportunity), "orderId": order.id})
    return quote, order


async def reject_quote(session: AsyncSession, *, actor: Actor, quote_id: int, reason: Any = None) -> Quote:
    """SENT (or expired) -> REJECTED. Rejecting a rejected quote changes nothing."""
    quote = await _require(session, quote_id)
    if quote.status is QuoteStatus.REJECTED:
        return quote
    if quote.status is not QuoteStatus.SENT:
        raise fail("id", codes.INVALID_STATE, f"Only a sent quote can be rejected; this one is {effective_status(quote).name}.")
    errors = ErrorCollector()
    why = check(errors, "reason", text, reason, 500)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="quote", data={"id": quote_id, "status": "REJECTED", "reason": why}, actor=actor)
    quote.status = QuoteStatus.REJECTED
    quote.rejection_reason = why
    quote.rejected_at = quote.updated_at = utcnow()
    await session.flush()
    record_event(session, type="quote.rejected", entity_type="Quote", entity_id=quote.id, actor=actor,
                 payload=await quote_payload(session, quote))
    return quote
