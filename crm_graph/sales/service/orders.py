"""Orders and payments: what was sold, and what was paid for it.

Status: PENDING -> CONFIRMED -> FULFILLED, with CANCELLED (nothing paid yet) and REFUNDED
(something was paid) as exits; ``ORDER_TRANSITIONS`` is the whole table. The payment status
follows the payments: UNPAID, PARTIALLY_PAID, PAID once the paid amount reaches the total, and
REFUNDED with the order.

Idempotency: an order's external references are unique per system, and so is a payment's. The
writes that clients retry (``upsertOrder``, ``recordPayment``) look the reference up first and,
when a concurrent request wins the race to insert it, catch the unique-constraint violation inside
a savepoint and carry on with the row the winner wrote. Payments also lock their order row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite runs one writer at a time), so two payments of
one order are applied one after the other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import money
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, NotFound
from crm_graph.core.events import record_event
from crm_graph.core.filters import compile_filter
from crm_graph.core.hooks import validate_with_plugins
from crm_graph.customers import service as customers
from crm_graph.sales import codes
from crm_graph.sales.filters import ORDER_FILTER
from crm_graph.sales.models import (
    Order,
    OrderExternalRef,
    OrderLineItem,
    OrderOrigin,
    OrderStatus,
    Payment,
    PaymentStatus,
)
from crm_graph.sales.service.common import (
    PricedLine,
    check,
    check_version,
    currency,
    enum_value,
    fail,
    line_items,
    money_input,
    next_number,
    percent,
    text,
    totals,
)

ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED, OrderStatus.REFUNDED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.FULFILLED, OrderStatus.CANCELLED, OrderStatus.REFUNDED}),
    OrderStatus.FULFILLED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}
# Statuses an order may be created (or imported) with.
INITIAL_STATUSES = frozenset({OrderStatus.PENDING, OrderStatus.CONFIRMED, OrderStatus.FULFILLED})
NUMBER_PREFIX = "SO"


# --- reading ------------------------------------------------------------------------------


async def get_order(session: AsyncSession, order_id: int, *, lock: bool = False) -> Order | None:
    stmt = sa.select(Order).where(Order.id == order_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(stmt)


async def orders_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Order]:
    rows = await session.scalars(sa.select(Order).where(Order.id.in_(ids)))
    return {o.id: o for o in rows}


def order_select(filter: Mapping[str, Any] | None = None) -> sa.Select[tuple[Order]]:
    """Orders stay listed when their customer is deleted: they are financial records."""
    stmt = sa.select(Order)
    if filter:
        stmt = stmt.where(compile_filter(ORDER_FILTER, filter))
    return stmt


async def lines_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[OrderLineItem]]:
    rows = await session.scalars(
        sa.select(OrderLineItem).where(OrderLineItem.order_id.in_(ids)).order_by(OrderLineItem.order_id, OrderLineItem.position)
    )
    out: dict[int, list[OrderLineItem]] = defaultdict(list)
    for row in rows:
        out[row.order_id].append(row)
    return out


async def refs_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[OrderExternalRef]]:
    rows = await session.scalars(
        sa.select(OrderExternalRef).where(OrderExternalRef.order_id.in_(ids)).order_by(OrderExternalRef.order_id, OrderExternalRef.id)
    )
    out: dict[int, list[OrderExternalRef]] = defaultdict(list)
    for row in rows:
        out[row.order_id].append(row)
    return out


async def payments_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[Payment]]:
    rows = await session.scalars(
        sa.select(Payment).where(Payment.order_id.in_(ids)).order_by(Payment.order_id, Payment.paid_at, Payment.id)
    )
    out: dict[int, list[Payment]] = defaultdict(list)
    for row in rows:
        out[row.order_id].append(row)
    return out


async def payments_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Payment]:
    rows = await session.scalars(sa.select(Payment).where(Payment.id.in_(ids)))
    return {p.id: p for p in rows}


async def order_by_ref(session: AsyncSession, system: str, external_id: str, *, lock: bool = False) -> Order | None:
    stmt = (
        sa.select(Order)
        .join(OrderExternalRef, OrderExternalRef.order_id == Order.id)
        .where(OrderExternalRef.system == system, OrderExternalRef.external_id == external_id)
    )
    if lock:
        stmt = stmt.with_for_update(of=Order).execution_options(populate_existing=True)
    return await session.scalar(stmt)


def payment_status(order: Order) -> PaymentStatus:
    if order.status is OrderStatus.REFUNDED:
        return PaymentStatus.REFUNDED
    if order.paid_amount <= 0:
        return PaymentStatus.UNPAID
    if order.paid_amount >= order.total:
        return PaymentStatus.PAID
    return PaymentStatus.PARTIALLY_PAID


async def order_payload(
    session: AsyncSession, order: Order, *, lines: list[OrderLineItem] | None = None, refs: list[OrderExternalRef] | None = None
) -> dict[str, Any]:
    """The order as the API shows it, for events. Pass ``lines``/``refs`` when they are at hand."""
    if lines is None:
        lines = (await lines_for(session, [order.id])).get(order.id, [])
    if refs is None:
        refs = (await refs_for(session, [order.id])).get(order.id, [])
    return {
        "id": order.id,
        "number": order.number,
        "customerId": order.customer_id,
        "status": order.status,
        "paymentStatus": order.payment_status,
        "currency": order.currency,
        "subtotal": order.subtotal,
        "discount": order.discount,
        "taxRate": order.tax_rate,
        "tax": order.tax,
        "total": order.total,
        "paidAmount": order.paid_amount,
        "orderedAt": order.ordered_at,
        "origin": order.origin,
        "opportunityId": order.opportunity_id,
        "quoteId": order.quote_id,
        "externalRefs": [{"system": r.system, "externalId": r.external_id} for r in refs],
        "lineItems": [
            {"productId": li.product_id, "sku": li.sku, "description": li.description, "quantity": li.quantity,
             "unitPrice": li.unit_price, "discountPercent": li.discount_percent, "total": li.total}
            for li in lines
        ],
        "version": order.version,
    }


# --- writing ------------------------------------------------------------------------------


@dataclass
class OrderSpec:
    """A validated order input."""

    customer_id: int
    currency: str
    lines: list[PricedLine]
    tax_rate: Decimal
    ordered_at: datetime | None
    status: OrderStatus | None
    ref: tuple[str, str] | None


def external_ref(data: Any, field: str, errors: ErrorCollector, *, required: bool) -> tuple[str, str] | None:
    if data is None:
        if required:
            errors.add(field, codes.REQUIRED, "Give the external reference {system, externalId}.")
        return None
    if not isinstance(data, Mapping):
        errors.add(field, codes.INVALID_VALUE, "An external reference is {system, externalId}.")
        return None
    system = check(errors, f"{field}.system", text, data.get("system"), 64, required=True, what="The system")
    external_id = check(errors, f"{field}.externalId", text, data.get("externalId"), 200, required=True, what="The external ID")
    return (system, external_id) if system and external_id else None


async def _spec(session: AsyncSession, data: Mapping[str, Any], errors: ErrorCollector, *, ref_required: bool) -> OrderSpec | None:
    ref = external_ref(data.get("externalRef"), "externalRef", errors, required=ref_required)
    customer_id = data.get("customerId")
    if customer_id is None:
        errors.add("customerId", codes.REQUIRED, "An order belongs to a customer.")
    elif await customers.get_customer(session, customer_id) is None:
        errors.add("customerId", codes.NOT_FOUND, "The customer was not found.")
    code = check(errors, "currency", currency, data["currency"]) if data.get("currency") is not None else None
    tax_rate = check(errors, "taxRate", percent, data["taxRate"]) if data.get("taxRate") is not None else Decimal(0)
    ordered_at = data.get("orderedAt")
    if ordered_at is not None and (not isinstance(ordered_at, datetime) or ordered_at.tzinfo is None):
        errors.add("orderedAt", codes.INVALID_VALUE, "Give a timestamp with a time zone (e.g. 2026-01-31T10:00:00Z).")
    status = None
    if data.get("status") is not None:
        status = check(errors, "status", enum_value, OrderStatus, data["status"])
    items = data.get("lineItems")
    if not items:
        errors.add("lineItems", codes.REQUIRED, "An order has at least one line item.")
        lines: list[PricedLine] = []
    else:
        lines, code = await line_items(session, items, errors, currency=code, require_product=False)
    if code is None and not errors:
        errors.add("currency", codes.REQUIRED, "Give the order's currency.")
    if errors:
        return None
    assert customer_id is not None and code is not None and tax_rate is not None
    return OrderSpec(customer_id, code, lines, tax_rate, ordered_at, status, ref)


async def create_order(session: AsyncSession, *, actor: Actor, data: Mapping[str, Any]) -> Order:
    """Create an order. With an ``externalRef`` that exists already, return that order unchanged."""
    errors = ErrorCollector()
    ref = external_ref(data.get("externalRef"), "externalRef", errors, required=False)
    errors.raise_if_any()
    if ref is not None:
        existing = await order_by_ref(session, *ref)
        if existing is not None:
            return existing
    spec = await _spec(session, data, errors, ref_required=False)
    errors.raise_if_any()
    assert spec is not None
    _initial_status(spec)
    await validate_with_plugins(session, entity="order", data=data, actor=actor)
    origin = OrderOrigin.EXTERNAL if ref else OrderOrigin.DIRECT
    order, _ = await _insert_or_find(session, actor, spec, origin)
    return order


async def upsert_order(session: AsyncSession, *, actor: Actor, data: Mapping[str, Any]) -> tuple[Order, bool]:
    """Create or update the order with ``externalRef``; returns ``(order, created)``.

    Sending the same payload again changes nothing (same version, no event); a changed payload
    updates the order and bumps its version.
    """
    errors = ErrorCollector()
    spec = await _spec(session, data, errors, ref_required=True)
    errors.raise_if_any()
    assert spec is not None and spec.ref is not None
    await validate_with_plugins(session, entity="order", data=data, actor=actor)
    existing = await order_by_ref(session, *spec.ref, lock=True)
    if existing is None:
        _initial_status(spec)
        order, created = await _insert_or_find(session, actor, spec, OrderOrigin.EXTERNAL)
        if created:
            return order, True
        existing = order
    await _apply_update(session, actor, existing, spec)
    return existing, False


def _initial_status(spec: OrderSpec) -> None:
    if spec.status is not None and spec.status not in INITIAL_STATUSES:
        raise fail("status", codes.INVALID_STATE,
                   f"A new order is {', '.join(s.name for s in sorted(INITIAL_STATUSES, key=lambda s: s.name))}.")


async def _insert_or_find(session: AsyncSession, actor: Actor, spec: OrderSpec, origin: OrderOrigin) -> tuple[Order, bool]:
    """Insert the order; if a concurrent request inserted the same external reference first,
    return that request's order instead (``created`` False)."""
    if spec.ref is None:
        order = await create_order_record(
            session, actor=actor, customer_id=spec.customer_id, currency=spec.currency, lines=spec.lines,
            tax_rate=spec.tax_rate, origin=origin, ordered_at=spec.ordered_at, status=spec.status or OrderStatus.PENDING,
        )
        return order, True
    try:
        async with session.begin_nested():
            order, rows, refs = await _insert_order(
                session, customer_id=spec.customer_id, currency=spec.currency, lines=spec.lines, tax_rate=spec.tax_rate,
                origin=origin, ordered_at=spec.ordered_at, status=spec.status or OrderStatus.PENDING, ref=spec.ref,
            )
    except IntegrityError:
        winner = await order_by_ref(session, *spec.ref, lock=True)
        if winner is None:
            raise
        return winner, False
    record_event(session, type="order.created", entity_type="Order", entity_id=order.id, actor=actor,
                 payload=await order_payload(session, order, lines=rows, refs=refs))
    return order, True


async def create_order_record(
    session: AsyncSession,
    *,
    actor: Actor,
    customer_id: int,
    currency: str,
    lines: list[PricedLine],
    tax_rate: Decimal,
    origin: OrderOrigin,
    ordered_at: datetime | None = None,
    status: OrderStatus = OrderStatus.PENDING,
    opportunity_id: int | None = None,
    quote_id: int | None = None,
) -> Order:
    """Write an order from validated, priced lines and record ``order.created``."""
    order, rows, refs = await _insert_order(
        session, customer_id=customer_id, currency=currency, lines=lines, tax_rate=tax_rate, origin=origin,
        ordered_at=ordered_at, status=status, opportunity_id=opportunity_id, quote_id=quote_id,
    )
    record_event(session, type="order.created", entity_type="Order", entity_id=order.id, actor=actor,
                 payload=await order_payload(session, order, lines=rows, refs=refs))
    return order


async def _insert_order(
    session: AsyncSession,
    *,
    customer_id: int,
    currency: str,
    lines: list[PricedLine],
    tax_rate: Decimal,
    origin: OrderOrigin,
    ordered_at: datetime | None,
    status: OrderStatus,
    opportunity_id: int | None = None,
    quote_id: int | None = None,
    ref: tuple[str, str] | None = None,
) -> tuple[Order, list[OrderLineItem], list[OrderExternalRef]]:
    now = utcnow()
    summed = totals(lines, tax_rate, currency)
    order = Order(
        number=await next_number(session, "order", NUMBER_PREFIX, 6),
        customer_id=customer_id,
        status=status,
        payment_status=PaymentStatus.UNPAID,
        currency=currency,
        paid_amount=Decimal(0),
        ordered_at=ordered_at or now,
        origin=origin,
        opportunity_id=opportunity_id,
        quote_id=quote_id,
        version=1,
        created_at=now,
        updated_at=now,
        **summed.columns(),
    )
    session.add(order)
    await session.flush()
    rows = [OrderLineItem(order_id=order.id, position=i, **line.columns()) for i, line in enumerate(lines)]
    refs = [OrderExternalRef(order_id=order.id, system=ref[0], external_id=ref[1])] if ref is not None else []
    session.add_all([*rows, *refs])
    await session.flush()
    return order, rows, refs


async def _apply_update(session: AsyncSession, actor: Actor, order: Order, spec: OrderSpec) -> None:
    current_lines = (await lines_for(session, [order.id])).get(order.id, [])
    before = await order_payload(session, order)
    same_lines = [PricedLine.from_row(r).comparable() for r in current_lines] == [line.comparable() for line in spec.lines]
    status = spec.status if spec.status is not None else order.status
    unchanged = (
        same_lines
        and order.customer_id == spec.customer_id
        and order.currency == spec.currency
        and order.tax_rate == spec.tax_rate
        and (spec.ordered_at is None or order.ordered_at == spec.ordered_at)
        and status is order.status
    )
    if unchanged:
        return
    if status is not order.status:
        check_transition(order, status)
    if spec.currency != order.currency and order.paid_amount > 0:
        raise fail("currency", codes.CURRENCY_MISMATCH, f"Payments were recorded in {order.currency}; the currency cannot change.")
    if not same_lines or spec.currency != order.currency or order.tax_rate != spec.tax_rate:
        await session.execute(sa.delete(OrderLineItem).where(OrderLineItem.order_id == order.id))
        session.add_all(OrderLineItem(order_id=order.id, position=i, **line.columns()) for i, line in enumerate(spec.lines))
        for key, value in totals(spec.lines, spec.tax_rate, spec.currency).columns().items():
            setattr(order, key, value)
    order.customer_id = spec.customer_id
    order.currency = spec.currency
    if spec.ordered_at is not None:
        order.ordered_at = spec.ordered_at
    previous_status, previous_payment = order.status, order.payment_status
    order.status = status
    order.payment_status = payment_status(order)
    order.updated_at = utcnow()
    await session.flush()
    after = await order_payload(session, order)
    changed = sorted(k for k in after if after[k] != before.get(k) and k != "version")
    record_event(session, type="order.updated", entity_type="Order", entity_id=order.id, actor=actor,
                 payload=after, changes={"fields": changed, "before": {k: before[k] for k in changed}})
    await _status_events(session, actor, order, previous_status, previous_payment, after)


async def _status_events(
    session: AsyncSession, actor: Actor, order: Order, previous: OrderStatus, previous_payment: PaymentStatus,
    payload: dict[str, Any] | None = None,
) -> None:
    """``order.status_changed`` and ``order.paid``, when they happened."""
    became_paid = order.payment_status is PaymentStatus.PAID and previous_payment is not PaymentStatus.PAID
    if order.status is previous and not became_paid:
        return
    if payload is None:
        payload = await order_payload(session, order)
    if order.status is not previous:
        record_event(session, type="order.status_changed", entity_type="Order", entity_id=order.id, actor=actor,
                     payload=payload, changes={"from": previous, "to": order.status})
    if became_paid:
        record_event(session, type="order.paid", entity_type="Order", entity_id=order.id, actor=actor, payload=payload)


def check_transition(order: Order, target: OrderStatus) -> None:
    """Raise unless the status table allows ``order`` to move to ``target``."""
    if target not in ORDER_TRANSITIONS[order.status]:
        raise fail("status", codes.INVALID_STATE, f"An order cannot go from {order.status.name} to {target.name}.")
    if target is OrderStatus.CANCELLED and order.paid_amount > 0:
        raise fail("status", codes.INVALID_STATE, "Payments were recorded for this order: refund it (REFUNDED) instead.")
    if target is OrderStatus.REFUNDED and order.paid_amount <= 0:
        raise fail("status", codes.INVALID_STATE, "Nothing was paid for this order: cancel it (CANCELLED) instead.")


async def update_order_status(
    session: AsyncSession, *, actor: Actor, order_id: int, status: Any, expected_version: int | None
) -> Order:
    order = await get_order(session, order_id, lock=True)
    if order is None:
        raise NotFound("Order")
    check_version(expected_version, order.version)
    errors = ErrorCollector()
    target = check(errors, "status", enum_value, OrderStatus, status)
    errors.raise_if_any()
    if target is order.status:
        return order
    check_transition(order, target)
    await validate_with_plugins(session, entity="order", data={"id": order_id, "status": target.name}, actor=actor)
    previous, previous_payment = order.status, order.payment_status
    order.status = target
    order.payment_status = payment_status(order)
    order.updated_at = utcnow()
    await session.flush()
    await _status_events(session, actor, order, previous, previous_payment)
    return order


# --- payments -----------------------------------------------------------------------------


def payment_payload(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.id,
        "orderId": payment.order_id,
        "amount": {"amount": payment.amount, "currency": payment.currency},
        "paidAt": payment.paid_at,
        "externalRef": {"system": payment.external_system, "externalId": payment.external_id}
        if payment.external_system else None,
    }


async def _payment_by_ref(session: AsyncSession, ref: tuple[str, str]) -> Payment | None:
    return await session.scalar(
        sa.select(Payment).where(Payment.external_system == ref[0], Payment.external_id == ref[1])
    )


def _replayed(payment: Payment, order: Order, value: money.Money | None) -> tuple[Payment, Order]:
    """The same external reference again: the first payment stands if the request is the same."""
    if payment.order_id != order.id or (value is not None and (payment.amount != value.amount or payment.currency != value.currency)):
        raise fail("externalRef", codes.EXTERNAL_REF_CONFLICT,
                   "This reference identifies another payment (a different order or amount).")
    return payment, order


async def record_payment(session: AsyncSession, *, actor: Actor, data: Mapping[str, Any]) -> tuple[Payment, Order]:
    """Record a payment against an order. Idempotent on ``externalRef``: the same payment sent
    twice is recorded once, and the second call returns the first."""
    order_id = data.get("orderId")
    order = await get_order(session, order_id, lock=True) if order_id is not None else None
    if order is None:
        raise NotFound("Order", field="orderId")
    errors = ErrorCollector()
    ref = external_ref(data.get("externalRef"), "externalRef", errors, required=False)
    value = money_input(data.get("amount"), "amount", errors, positive=True, places=money.SCALE)
    if ref is not None and not errors:
        existing = await _payment_by_ref(session, ref)
        if existing is not None:
            return _replayed(existing, order, value)
    if value is not None and value.currency != order.currency:
        errors.add("amount.currency", codes.CURRENCY_MISMATCH, f"The order is in {order.currency}.")
    paid_at = data.get("paidAt")
    if paid_at is not None and (not isinstance(paid_at, datetime) or paid_at.tzinfo is None):
        errors.add("paidAt", codes.INVALID_VALUE, "Give a timestamp with a time zone.")
    errors.raise_if_any()
    assert value is not None
    if order.status in (OrderStatus.CANCELLED, OrderStatus.REFUNDED):
        raise fail("orderId", codes.INVALID_STATE, f"The order is {order.status.name}; it takes no payments.")
    balance = order.total - order.paid_amount
    if value.amount > balance:
        raise fail("amount.amount", codes.OVERPAYMENT,
                   f"The balance due is {money.display(balance, order.currency)} {order.currency}.")
    await validate_with_plugins(session, entity="payment", data=data, actor=actor)
    now = utcnow()
    payment = Payment(
        order_id=order.id, amount=value.amount, currency=value.currency, paid_at=paid_at or now,
        external_system=ref[0] if ref else None, external_id=ref[1] if ref else None, created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(payment)
            await session.flush()
    except IntegrityError:
        if ref is None:
            raise
        winner = await _payment_by_ref(session, ref)
        if winner is None:
            raise
        return _replayed(winner, order, value)
    paid = await session.scalar(sa.select(sa.func.sum(Payment.amount)).where(Payment.order_id == order.id))
    previous, previous_payment = order.status, order.payment_status
    order.paid_amount = paid or Decimal(0)
    order.payment_status = payment_status(order)
    order.updated_at = now
    await session.flush()
    record_event(session, type="payment.recorded", entity_type="Payment", entity_id=payment.id, actor=actor,
                 payload=payment_payload(payment))
    await _status_events(session, actor, order, previous, previous_payment)
    return payment, order
