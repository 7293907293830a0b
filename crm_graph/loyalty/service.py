"""The loyalty ledger and program (docs/loyalty.md).

Every change of points takes the customer's account row under lock (``FOR UPDATE`` on
PostgreSQL; SQLite has one writer), so two changes of one customer never interleave, and every
change carries an idempotency key unique per customer: the same key again returns the first
entry and does nothing, the same key with another request is an ``IDEMPOTENCY_CONFLICT``.

The rules, in one place:

- A lot (earn, positive adjust, restore) is pending until ``available_at`` and expires at
  ``expires_at``; the active balance is the unspent rest of available, unexpired lots.
- Taking points (redeem, negative adjust, expire) consumes active lots soonest-expiring first
  (lots that never expire last, older first among equals). Redeeming more than the active
  balance is refused.
- A refund of part of an order reverses the same part of what the order earned and restores
  the same part of what it spent, rounded down, counted on the order's refunds so far: after
  refunds of 30% and 70%, exactly all of it. A reversal takes from the order's own lots first
  (pending or not, unexpired), then from the customer's other active lots; what the customer has already
  spent is not taken from later earnings: the entry records it as ``shortfall`` and the
  balance never goes below zero.
- Tiers: the qualifying points of the last ``tier_window_days`` (earned, less reversed) decide.
  A customer moves up the moment they qualify; a move down waits for the review at the end of
  the tier's period.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import errors as codes
from crm_graph.core import money
from crm_graph.core.actor import SYSTEM, Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, FieldError, NotFound, ValidationFailed
from crm_graph.core.events import record_event
from crm_graph.customers.models import Customer
from crm_graph.loyalty.config import LoyaltySettings, loyalty_settings
from crm_graph.loyalty.models import (
    Coupon,
    CouponStatus,
    EntryKind,
    LoyaltyAccount,
    LoyaltyAllocation,
    LoyaltyEntry,
    LoyaltyRefund,
    LoyaltyReward,
    LoyaltyRule,
    LoyaltyTier,
    RuleKind,
)

IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
MAX_POINTS = 100_000_000
MAX_KEY = 200
LOT_KINDS = (EntryKind.EARN, EntryKind.ADJUST, EntryKind.RESTORE)
QUALIFYING_KINDS = (EntryKind.EARN, EntryKind.REVERSE)
# Coupon codes: no 0/O, 1/I/L, so a code read aloud or typed from paper is the code.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10
MAX_BATCH = 10_000


def fail(field: str | None, code: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field, code, message)])


def _hash(request: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def _key(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_KEY:
        raise fail("idempotencyKey", codes.REQUIRED if not value else codes.INVALID_VALUE,
                   f"An idempotency key of 1 to {MAX_KEY} characters: the same key again does nothing twice.")
    return value


def _points(value: Any, field: str = "points", *, signed: bool = False) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value == 0 or abs(value) > MAX_POINTS or (value < 0 and not signed):
        limit = f"-{MAX_POINTS:,} to {MAX_POINTS:,}, not 0" if signed else f"1 to {MAX_POINTS:,}"
        raise fail(field, codes.INVALID_VALUE, f"Whole points, {limit}.")
    return value


def _reason(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 500):
        raise fail("reason", codes.INVALID_VALUE, "A text of at most 500 characters.")
    return value or None


def _is_currency(value: Any) -> bool:
    try:
        return money.currency_code(value) == value
    except money.InvalidCurrency:
        return False


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


# --- accounts and balances ---------------------------------------------------------------------


async def _lock_account(session: AsyncSession, customer_id: int, now: datetime) -> LoyaltyAccount:
    """The customer's account, created on first use, locked for this transaction."""
    account = await session.scalar(sa.select(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer_id)
                                   .with_for_update().execution_options(populate_existing=True))
    if account is not None:
        return account
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.deleted_at is not None:
        raise NotFound("Customer", "customerId")
    try:
        async with session.begin_nested():
            session.add(LoyaltyAccount(customer_id=customer_id, created_at=now, updated_at=now))
            await session.flush()
    except IntegrityError:
        pass  # created by a concurrent change: take its lock below
    return await session.scalar(sa.select(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer_id)
                                .with_for_update().execution_options(populate_existing=True))


def _active(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(LoyaltyEntry.remaining > 0, LoyaltyEntry.available_at <= now,
                   sa.or_(LoyaltyEntry.expires_at.is_(None), LoyaltyEntry.expires_at > now))


@dataclass(frozen=True)
class Balance:
    active: int
    pending: int


async def balances(session: AsyncSession, customer_ids: Sequence[int], now: datetime | None = None) -> dict[int, Balance]:
    """Active and pending points of each customer, in one query."""
    now = now or utcnow()
    live = sa.and_(LoyaltyEntry.remaining > 0, sa.or_(LoyaltyEntry.expires_at.is_(None), LoyaltyEntry.expires_at > now))
    rows = await session.execute(
        sa.select(LoyaltyEntry.customer_id,
                  sa.func.coalesce(sa.func.sum(sa.case((LoyaltyEntry.available_at <= now, LoyaltyEntry.remaining), else_=0)), 0),
                  sa.func.coalesce(sa.func.sum(sa.case((LoyaltyEntry.available_at > now, LoyaltyEntry.remaining), else_=0)), 0))
        .where(LoyaltyEntry.customer_id.in_(customer_ids), live).group_by(LoyaltyEntry.customer_id))
    out = {c: Balance(0, 0) for c in customer_ids}
    for customer_id, active, pending in rows:
        out[customer_id] = Balance(int(active), int(pending))
    return out


async def _replayed(session: AsyncSession, customer_id: int, key: str, request: Mapping[str, Any]) -> LoyaltyEntry | None:
    entry = await session.scalar(sa.select(LoyaltyEntry).where(LoyaltyEntry.customer_id == customer_id,
                                                               LoyaltyEntry.idempotency_key == key))
    if entry is not None and entry.request_hash != _hash(request):
        raise fail("idempotencyKey", IDEMPOTENCY_CONFLICT,
                   "This idempotency key was used for another request: use a new key for a new change.")
    return entry


def _entry(customer_id: int, kind: EntryKind, points: int, *, key: str, request: Mapping[str, Any], source: str,
           reason: str | None, actor: Actor, now: datetime, **more: Any) -> LoyaltyEntry:
    return LoyaltyEntry(customer_id=customer_id, kind=kind, points=points, remaining=more.pop("remaining", 0),
                        source=source[:200], reason=reason, idempotency_key=key, request_hash=_hash(request),
                        actor=actor.label[:64], created_at=now, shortfall=more.pop("shortfall", 0), **more)


def _event(session: AsyncSession, type: str, entry: LoyaltyEntry, actor: Actor, **data: Any) -> None:
    record_event(session, type=type, entity_type="Customer", entity_id=entry.customer_id, actor=actor,
                 payload={"customerId": entry.customer_id, "entryId": entry.id, "kind": entry.kind.name,
                          "points": entry.points, "source": entry.source, "orderId": entry.order_id, **data})


async def _consume(session: AsyncSession, entry: LoyaltyEntry, wanted: int, now: datetime, *,
                   first_from: Sequence[LoyaltyEntry] = ()) -> int:
    """Take up to ``wanted`` points for ``entry`` (flushed) from ``first_from`` (in order, pending
    or not), then from the customer's active lots soonest-expiring first; returns what it took."""
    taken = 0
    lots = list(first_from)
    seen = {lot.id for lot in lots}
    lots += [lot for lot in await session.scalars(
        sa.select(LoyaltyEntry).where(LoyaltyEntry.customer_id == entry.customer_id, _active(now))
        .order_by(LoyaltyEntry.expires_at.is_(None), LoyaltyEntry.expires_at, LoyaltyEntry.id)) if lot.id not in seen]
    for lot in lots:
        if taken >= wanted:
            break
        share = min(lot.remaining, wanted - taken)
        if share <= 0:
            continue
        lot.remaining -= share
        taken += share
        session.add(LoyaltyAllocation(entry_id=entry.id, lot_id=lot.id, points=share))
    await session.flush()  # the session does not autoflush: later reads of this transaction see it
    return taken


def _expiry(available_at: datetime, days: int | None, settings: LoyaltySettings) -> datetime | None:
    days = settings.expiry_days if days is None else days
    return available_at + timedelta(days=days) if days else None


# --- earning -----------------------------------------------------------------------------------


async def earn_points(
    session: AsyncSession, *, actor: Actor, customer_id: int, points: int, idempotency_key: str, source: str = "api",
    reason: str | None = None, pending_days: int = 0, expires_at: datetime | None = None, order_id: int | None = None,
    rule_id: int | None = None, settings: LoyaltySettings | None = None, available_at: datetime | None = None,
) -> LoyaltyEntry:
    """Award ``points`` (a lot): available after ``pending_days`` (or at ``available_at``),
    expiring at ``expires_at`` or after the program's expiry. Counts towards tiers."""
    key, points, reason = _key(idempotency_key), _points(points), _reason(reason)
    if not isinstance(pending_days, int) or not 0 <= pending_days <= 3650:
        raise fail("pendingDays", codes.INVALID_VALUE, "Days, 0 to 3650.")
    settings = settings or loyalty_settings()
    now = utcnow()
    available = available_at or now + timedelta(days=pending_days)
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= available):
        raise fail("expiresAt", codes.INVALID_VALUE, "A time with a time zone, after the points become available.")
    request = {"op": "earn", "points": points, "source": source, "pendingDays": pending_days, "availableAt": available_at,
               "expiresAt": expires_at, "orderId": order_id, "ruleId": rule_id}
    await _lock_account(session, customer_id, now)
    if (done := await _replayed(session, customer_id, key, request)) is not None:
        return done
    entry = _entry(customer_id, EntryKind.EARN, points, key=key, request=request, source=source, reason=reason,
                   actor=actor, now=now, remaining=points, available_at=available,
                   expires_at=expires_at or _expiry(available, None, settings), order_id=order_id, rule_id=rule_id)
    session.add(entry)
    await session.flush()
    _event(session, "loyalty.points_earned", entry, actor, availableAt=entry.available_at, expiresAt=entry.expires_at)
    await review_tier(session, customer_id, now=now, settings=settings, actor=actor)
    return entry


async def adjust_points(
    session: AsyncSession, *, actor: Actor, customer_id: int, points: int, idempotency_key: str, reason: str | None,
    source: str = "api", settings: LoyaltySettings | None = None,
) -> LoyaltyEntry:
    """A correction: positive adds an available lot (not counted towards tiers), negative takes
    from active points (refused beyond the active balance)."""
    key, points, reason = _key(idempotency_key), _points(points, signed=True), _reason(reason)
    if not reason and source == "api":
        raise fail("reason", codes.REQUIRED, "Say why the points are adjusted: the history shows it.")
    settings = settings or loyalty_settings()
    now = utcnow()
    request = {"op": "adjust", "points": points, "source": source}
    await _lock_account(session, customer_id, now)
    if (done := await _replayed(session, customer_id, key, request)) is not None:
        return done
    if points > 0:
        entry = _entry(customer_id, EntryKind.ADJUST, points, key=key, request=request, source=source, reason=reason,
                       actor=actor, now=now, remaining=points, available_at=now, expires_at=_expiry(now, None, settings))
        session.add(entry)
        await session.flush()
    else:
        entry = await _take(session, customer_id, -points, EntryKind.ADJUST, key=key, request=request, source=source,
                            reason=reason, actor=actor, now=now)
    _event(session, "loyalty.points_adjusted", entry, actor, reason=reason)
    return entry


async def _take(session: AsyncSession, customer_id: int, points: int, kind: EntryKind, *, now: datetime, **entry: Any) -> LoyaltyEntry:
    active = (await balances(session, [customer_id], now))[customer_id].active
    if points > active:
        raise fail("points", INSUFFICIENT_POINTS, f"The customer has {active} active points.")
    row = _entry(customer_id, kind, -points, now=now, **entry)
    session.add(row)
    await session.flush()
    await _consume(session, row, points, now)
    return row


# --- redemption --------------------------------------------------------------------------------


async def redeem_points(
    session: AsyncSession, *, actor: Actor, customer_id: int, idempotency_key: str, points: int | None = None,
    reward_key: str | None = None, order_id: int | None = None, reason: str | None = None,
) -> tuple[LoyaltyEntry, Coupon | None]:
    """Spend active points: on a reward (which issues its coupon; ``points`` defaults to its
    cost) or on an order (``orderId``: a refund gives them back in proportion)."""
    key, reason = _key(idempotency_key), _reason(reason)
    if reward_key is None and points is None:
        raise fail("rewardKey", codes.REQUIRED, "Redeem a reward (rewardKey) or points (points, optionally on orderId).")
    reward = None
    if reward_key is not None:
        reward = await session.scalar(sa.select(LoyaltyReward).where(LoyaltyReward.key == reward_key))
        if reward is None or not reward.active:
            raise NotFound("Reward", "rewardKey")
        if points is not None and points != reward.cost:
            raise fail("points", codes.INVALID_VALUE, f"The reward costs {reward.cost} points.")
        points = reward.cost
    points = _points(points)
    if order_id is not None:
        from crm_graph.sales.models import Order

        order = await session.get(Order, order_id)
        if order is None or order.customer_id != customer_id:
            raise NotFound("Order", "orderId")
    now = utcnow()
    request = {"op": "redeem", "points": points, "reward": reward_key, "orderId": order_id}
    await _lock_account(session, customer_id, now)
    if (done := await _replayed(session, customer_id, key, request)) is not None:
        coupon = await session.scalar(sa.select(Coupon).where(Coupon.idempotency_key == f"entry:{done.id}"))
        return done, coupon
    entry = await _take(session, customer_id, points, EntryKind.REDEEM, key=key, request=request,
                        source=f"reward:{reward_key}" if reward else (f"order:{order_id}" if order_id else "api"),
                        reason=reason, actor=actor, now=now, order_id=order_id, reward_id=reward.id if reward else None)
    coupon = None
    if reward is not None:
        coupon = await _new_coupon(session, customer_id=customer_id, percent_off=reward.percent_off,
                                   amount_off=reward.amount_off, currency=reward.currency,
                                   expires_at=now + timedelta(days=reward.valid_days), key=f"entry:{entry.id}",
                                   prefix=reward.key.upper()[:8], batch=None, now=now)
        record_event(session, type="coupon.issued", entity_type="Customer", entity_id=customer_id, actor=actor,
                     payload=coupon_payload(coupon))
    _event(session, "loyalty.points_redeemed", entry, actor, reward=reward_key,
           couponCode=coupon.code if coupon else None)
    return entry, coupon


# --- refunds and cancellations -----------------------------------------------------------------


async def reverse_order_points(
    session: AsyncSession, *, actor: Actor, order_id: int, refunded_amount: Decimal | None, idempotency_key: str,
) -> tuple[LoyaltyEntry | None, LoyaltyEntry | None]:
    """Apply a refund of ``refunded_amount`` of an order (None: all of what is left): reverse that
    share of the points it earned and restore that share of the points spent on it. Returns the
    reversal and the restore (None where there was nothing to do)."""
    from crm_graph.sales.models import Order

    key = _key(idempotency_key)
    order = await session.get(Order, order_id)
    if order is None:
        raise NotFound("Order", "orderId")
    now = utcnow()
    await _lock_account(session, order.customer_id, now)
    existing = await session.scalar(sa.select(LoyaltyRefund).where(LoyaltyRefund.order_id == order_id,
                                                                   LoyaltyRefund.idempotency_key == key))
    base = order.paid_amount if order.paid_amount > 0 else order.total
    so_far = Decimal(await session.scalar(sa.select(sa.func.coalesce(sa.func.sum(LoyaltyRefund.amount), 0))
                                          .where(LoyaltyRefund.order_id == order_id)) or 0)
    if existing is not None:
        if refunded_amount is not None and existing.amount != refunded_amount:
            raise fail("idempotencyKey", IDEMPOTENCY_CONFLICT, "This idempotency key was used for another refund.")
        return await _refund_entries(session, existing.id)
    if refunded_amount is None:
        refunded_amount = max(base - so_far, Decimal(0))
    elif refunded_amount <= 0 or so_far + refunded_amount > base:
        raise fail("refundedAmount.amount", codes.INVALID_VALUE,
                   f"More than 0 and at most what is left to refund ({max(base - so_far, Decimal(0))} {order.currency}).")
    refund = LoyaltyRefund(order_id=order_id, amount=refunded_amount, idempotency_key=key, created_at=now)
    session.add(refund)
    await session.flush()
    share = (so_far + refunded_amount) / base if base > 0 else Decimal(1)
    earned_lots = list(await session.scalars(sa.select(LoyaltyEntry).where(
        LoyaltyEntry.order_id == order_id, LoyaltyEntry.kind == EntryKind.EARN).order_by(LoyaltyEntry.id)))
    earned = sum(e.points for e in earned_lots)
    # What earlier reversals could not take (their shortfall) counts as reversed too: it is not asked for again.
    totals = dict((await session.execute(
        sa.select(LoyaltyEntry.kind, sa.func.sum(LoyaltyEntry.points - LoyaltyEntry.shortfall))
        .where(LoyaltyEntry.order_id == order_id,
               LoyaltyEntry.kind.in_((EntryKind.REVERSE, EntryKind.REDEEM, EntryKind.RESTORE)))
        .group_by(LoyaltyEntry.kind))).all())
    reversed_ = -int(totals.get(EntryKind.REVERSE) or 0)
    spent = -int(totals.get(EntryKind.REDEEM) or 0)
    restored = int(totals.get(EntryKind.RESTORE) or 0)
    to_reverse = min(_floor(earned * share), earned) - reversed_
    to_restore = min(_floor(spent * share), spent) - restored
    source = f"refund:{refund.id}"
    request = {"op": "refund", "refund": refund.id}
    reversal = restore = None
    if to_reverse > 0:
        reversal = _entry(order.customer_id, EntryKind.REVERSE, 0, key=f"{source}:reverse", request=request, source=source,
                          reason=None, actor=actor, now=now, order_id=order_id)
        session.add(reversal)
        await session.flush()
        live = [lot for lot in earned_lots if lot.expires_at is None or lot.expires_at > now]  # expired points are gone already
        taken = await _consume(session, reversal, to_reverse, now, first_from=live)
        reversal.points, reversal.shortfall = -taken, to_reverse - taken
        await session.flush()
        _event(session, "loyalty.points_reversed", reversal, actor, shortfall=reversal.shortfall)
    if to_restore > 0:
        settings = loyalty_settings()
        restore = _entry(order.customer_id, EntryKind.RESTORE, to_restore, key=f"{source}:restore", request=request,
                         source=source, reason=None, actor=actor, now=now, order_id=order_id, remaining=to_restore,
                         available_at=now, expires_at=_expiry(now, None, settings))
        session.add(restore)
        await session.flush()
        _event(session, "loyalty.points_restored", restore, actor)
    if reversal is not None:
        await review_tier(session, order.customer_id, now=now, actor=actor)
    return reversal, restore


async def _refund_entries(session: AsyncSession, refund_id: int) -> tuple[LoyaltyEntry | None, LoyaltyEntry | None]:
    rows = {e.kind: e for e in await session.scalars(sa.select(LoyaltyEntry).where(LoyaltyEntry.source == f"refund:{refund_id}"))}
    return rows.get(EntryKind.REVERSE), rows.get(EntryKind.RESTORE)


# --- earning rules on payments and events ------------------------------------------------------


async def _multiplier(session: AsyncSession, customer_id: int, rules: Sequence[LoyaltyRule]) -> Decimal:
    """The tier's multiplier times the highest of the segment multipliers the customer meets."""
    from crm_graph.core import ids
    from crm_graph.core.filters import FilterError
    from crm_graph.customers.filters import build_condition

    tier = await session.scalar(sa.select(LoyaltyTier.multiplier).join(LoyaltyAccount, LoyaltyAccount.tier_id == LoyaltyTier.id)
                                .where(LoyaltyAccount.customer_id == customer_id))
    best = Decimal(1)
    for rule in rules:
        if rule.kind is not RuleKind.SEGMENT_MULTIPLIER or rule.segment_id is None or (rule.multiplier or 0) <= best:
            continue
        try:
            condition = await build_condition(session, {"segment": {"in": [ids.encode("Segment", rule.segment_id)]}})
        except FilterError:
            continue  # the segment is gone
        if await session.scalar(sa.select(Customer.id).where(Customer.id == customer_id, condition)) is not None:
            best = rule.multiplier
    return (tier or Decimal(1)) * best


async def _capped(session: AsyncSession, rule: LoyaltyRule, customer_id: int, points: int, now: datetime) -> int:
    if not rule.cap_points or not rule.cap_days:
        return points
    earned = await session.scalar(sa.select(sa.func.coalesce(sa.func.sum(LoyaltyEntry.points), 0)).where(
        LoyaltyEntry.customer_id == customer_id, LoyaltyEntry.rule_id == rule.id, LoyaltyEntry.kind == EntryKind.EARN,
        LoyaltyEntry.created_at > now - timedelta(days=rule.cap_days)))
    return max(0, min(points, rule.cap_points - int(earned or 0)))


async def _award(session: AsyncSession, rule: LoyaltyRule, customer_id: int, raw: Decimal, multiplier: Decimal, *,
                 key: str, source: str, order_id: int | None, available: datetime, settings: LoyaltySettings,
                 actor: Actor, now: datetime) -> LoyaltyEntry | None:
    expires = _expiry(available, rule.expiry_days, settings)
    if expires is not None and expires <= max(now, available):
        return None  # a payment older than the points' life (a back-fill): nothing left to give
    points = await _capped(session, rule, customer_id, _floor(raw * multiplier), now)
    if points <= 0:
        return None
    return await earn_points(session, actor=actor, customer_id=customer_id, points=points, idempotency_key=key,
                             source=source, reason=rule.name, order_id=order_id, rule_id=rule.id,
                             available_at=available, expires_at=expires, settings=settings)


async def earn_for_payment(session: AsyncSession, payment_id: int, *, settings: LoyaltySettings | None = None) -> list[LoyaltyEntry]:
    """The points a payment earns under the active rules, once (keys ``payment:<id>:rule:<rule>``):
    SPEND rules on the amount, PRODUCT and TAG rules on the lines' share of the payment; pending
    through the return window counted from when it was paid."""
    from crm_graph.sales.models import Order, OrderLineItem, OrderStatus, Payment, ProductTag

    settings = settings or loyalty_settings()
    payment = await session.get(Payment, payment_id)
    if payment is None:
        return []
    order = await session.get(Order, payment.order_id)
    if order is None or order.status in (OrderStatus.CANCELLED, OrderStatus.REFUNDED) or order.total <= 0:
        return []
    rules = list(await session.scalars(sa.select(LoyaltyRule).where(LoyaltyRule.active.is_(True)).order_by(LoyaltyRule.id)))
    earning = [r for r in rules if r.kind in (RuleKind.SPEND, RuleKind.PRODUCT, RuleKind.TAG)]
    if not earning:
        return []
    lines = list(await session.scalars(sa.select(OrderLineItem).where(OrderLineItem.order_id == order.id)))
    product_ids = [line.product_id for line in lines if line.product_id is not None]
    tags: dict[int, set[str]] = {}
    for product_id, tag in await session.execute(sa.select(ProductTag.product_id, ProductTag.tag).where(ProductTag.product_id.in_(product_ids))):
        tags.setdefault(product_id, set()).add(tag)
    share = payment.amount / order.total
    multiplier = await _multiplier(session, order.customer_id, rules)
    now = utcnow()
    out = []
    for rule in earning:
        if rule.kind is RuleKind.SPEND:
            if rule.currency and rule.currency != payment.currency:
                continue
            raw = payment.amount * (rule.points or 0)
        else:
            fits = [line for line in lines if line.product_id is not None and (
                line.product_id == rule.product_id if rule.kind is RuleKind.PRODUCT else rule.tag in tags.get(line.product_id, ()))]
            raw = sum((line.total for line in fits), Decimal(0)) * share * (rule.points or 0)
        entry = await _award(session, rule, order.customer_id, raw, multiplier, key=f"payment:{payment.id}:rule:{rule.id}",
                             source=f"payment:{payment.id}", order_id=order.id, settings=settings, actor=SYSTEM, now=now,
                             available=payment.paid_at + timedelta(days=settings.return_window_days))
        if entry is not None:
            out.append(entry)
    return out


async def earn_for_event(session: AsyncSession, *, event_id: str, event_type: str, customer_ids: Sequence[int],
                         settings: LoyaltySettings | None = None) -> list[LoyaltyEntry]:
    """EVENT rules: their points once per event and customer (keys ``event:<id>:rule:<rule>``)."""
    from crm_graph.core.events import matches

    settings = settings or loyalty_settings()
    rules = list(await session.scalars(sa.select(LoyaltyRule).where(LoyaltyRule.active.is_(True)).order_by(LoyaltyRule.id)))
    awards = [r for r in rules if r.kind is RuleKind.EVENT and r.event_type and matches(r.event_type, event_type)]
    out = []
    now = utcnow()
    for customer_id in customer_ids:
        customer = await session.get(Customer, customer_id)
        if customer is None or customer.deleted_at is not None:
            continue
        multiplier = await _multiplier(session, customer_id, rules) if awards else Decimal(1)
        for rule in awards:
            entry = await _award(session, rule, customer_id, rule.points or Decimal(0), multiplier,
                                 key=f"event:{event_id}:rule:{rule.id}", source=f"event:{event_id}", order_id=None,
                                 available=now, settings=settings, actor=SYSTEM, now=now)
            if entry is not None:
                out.append(entry)
    return out


async def event_rule_patterns(session: AsyncSession) -> list[str]:
    return list(await session.scalars(sa.select(LoyaltyRule.event_type).where(
        LoyaltyRule.active.is_(True), LoyaltyRule.kind == RuleKind.EVENT, LoyaltyRule.event_type.is_not(None))))


# --- expiry ------------------------------------------------------------------------------------


async def expire_due(session: AsyncSession, *, now: datetime | None = None, limit: int = 5000) -> int:
    """EXPIRE entries for lots past their expiry with points left; returns how many."""
    now = now or utcnow()
    lots = list(await session.scalars(sa.select(LoyaltyEntry).where(
        LoyaltyEntry.remaining > 0, LoyaltyEntry.expires_at <= now).order_by(LoyaltyEntry.customer_id, LoyaltyEntry.id).limit(limit)))
    for lot in lots:
        await _lock_account(session, lot.customer_id, now)
        await session.refresh(lot)
        if lot.remaining <= 0:
            continue
        entry = _entry(lot.customer_id, EntryKind.EXPIRE, -lot.remaining, key=f"expire:{lot.id}", request={"op": "expire", "lot": lot.id},
                       source=f"lot:{lot.id}", reason=None, actor=SYSTEM, now=now)
        session.add(entry)
        await session.flush()
        await _consume(session, entry, lot.remaining, now, first_from=[lot])
        _event(session, "loyalty.points_expired", entry, SYSTEM, lotId=lot.id, expiredAt=lot.expires_at)
    return len(lots)


async def notify_expiring(session: AsyncSession, *, now: datetime | None = None, settings: LoyaltySettings | None = None) -> int:
    """One ``loyalty.points_expiring`` per customer whose points expire within the notice days
    and were not announced yet; returns how many events."""
    settings = settings or loyalty_settings()
    now = now or utcnow()
    horizon = now + timedelta(days=settings.expiry_notice_days)
    lots = list(await session.scalars(sa.select(LoyaltyEntry).where(
        LoyaltyEntry.remaining > 0, LoyaltyEntry.expires_at > now, LoyaltyEntry.expires_at <= horizon,
        LoyaltyEntry.available_at <= now, LoyaltyEntry.expiry_noticed_at.is_(None)).order_by(LoyaltyEntry.customer_id, LoyaltyEntry.expires_at)))
    by_customer: dict[int, list[LoyaltyEntry]] = {}
    for lot in lots:
        by_customer.setdefault(lot.customer_id, []).append(lot)
        lot.expiry_noticed_at = now
    for customer_id, group in by_customer.items():
        record_event(session, type="loyalty.points_expiring", entity_type="Customer", entity_id=customer_id, actor=SYSTEM,
                     payload={"customerId": customer_id, "points": sum(lot.remaining for lot in group),
                              "expiresAt": group[0].expires_at, "lots": [{"id": lot.id, "points": lot.remaining, "expiresAt": lot.expires_at} for lot in group]})
    await session.flush()
    return len(by_customer)


# --- tiers -------------------------------------------------------------------------------------


async def tiers(session: AsyncSession) -> list[LoyaltyTier]:
    return list(await session.scalars(sa.select(LoyaltyTier).order_by(LoyaltyTier.threshold)))


async def qualifying_points(session: AsyncSession, customer_ids: Sequence[int], *, now: datetime | None = None,
                            settings: LoyaltySettings | None = None) -> dict[int, int]:
    settings = settings or loyalty_settings()
    now = now or utcnow()
    rows = await session.execute(sa.select(LoyaltyEntry.customer_id, sa.func.sum(LoyaltyEntry.points)).where(
        LoyaltyEntry.customer_id.in_(customer_ids), LoyaltyEntry.kind.in_(QUALIFYING_KINDS),
        LoyaltyEntry.created_at > now - timedelta(days=settings.tier_window_days)).group_by(LoyaltyEntry.customer_id))
    out = {c: 0 for c in customer_ids}
    out.update({c: max(0, int(p or 0)) for c, p in rows})
    return out


def tier_for(points: int, ladder: Sequence[LoyaltyTier]) -> LoyaltyTier | None:
    reached = [t for t in ladder if t.threshold <= points]
    return reached[-1] if reached else None


async def review_tier(session: AsyncSession, customer_id: int, *, now: datetime, actor: Actor = SYSTEM,
                      settings: LoyaltySettings | None = None, period_end: bool = False) -> None:
    """Move the customer up at once when they qualify for a higher tier; move them down only
    at the review (``period_end``), to the tier their qualifying points reach then."""
    settings = settings or loyalty_settings()
    ladder = await tiers(session)
    account = await _lock_account(session, customer_id, now)
    if not ladder and account.tier_id is None:
        return
    points = (await qualifying_points(session, [customer_id], now=now, settings=settings))[customer_id]
    target = tier_for(points, ladder)
    current = next((t for t in ladder if t.id == account.tier_id), None)
    rank = {t.id: i for i, t in enumerate(ladder)}
    up = target is not None and (current is None or rank[target.id] > rank[current.id])
    down = period_end and (target is None or (current is not None and rank[target.id] < rank[current.id]))
    if period_end and not up and not down:
        account.tier_review_at = now + timedelta(days=settings.tier_window_days) if current else None
        account.updated_at = now
        return
    if not up and not down:
        return
    account.tier_id = target.id if target else None
    account.tier_since = now
    account.tier_review_at = now + timedelta(days=settings.tier_window_days) if target else None
    account.updated_at = now
    await session.flush()
    record_event(session, type="loyalty.tier_changed", entity_type="Customer", entity_id=customer_id, actor=actor,
                 payload={"customerId": customer_id, "from": current.key if current else None,
                          "to": target.key if target else None, "qualifyingPoints": points,
                          "direction": "UP" if up else "DOWN"})


async def review_due_tiers(session: AsyncSession, *, now: datetime | None = None, limit: int = 5000) -> int:
    now = now or utcnow()
    due = list(await session.scalars(sa.select(LoyaltyAccount.customer_id).where(
        LoyaltyAccount.tier_review_at <= now).order_by(LoyaltyAccount.tier_review_at).limit(limit)))
    for customer_id in due:
        await review_tier(session, customer_id, now=now, period_end=True)
    return len(due)


# --- coupons -----------------------------------------------------------------------------------


def coupon_payload(c: Coupon) -> dict[str, Any]:
    return {"code": c.code, "customerId": c.customer_id, "status": c.status.name, "percentOff": c.percent_off,
            "amountOff": c.amount_off, "currency": c.currency, "expiresAt": c.expires_at, "orderId": c.order_id}


def _code(prefix: str) -> str:
    body = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{prefix}-{body}" if prefix else body


def _number_in(value: Any, highest: Decimal | int) -> bool:
    """Whether ``value`` is a Decimal above 0, at most ``highest``, with at most the columns' four
    places. NaN and the infinities are not (comparing a NaN raises), nor are more places than the
    column keeps (they would be rounded away silently)."""
    return (isinstance(value, Decimal) and value.is_finite() and 0 < value <= highest
            and money.places(value.normalize()) <= money.SCALE)


def _offer(errors: ErrorCollector, percent_off: Any, amount_off: Any, currency: Any) -> None:
    if (percent_off is None) == (amount_off is None):
        errors.add("percentOff", codes.REQUIRED, "Give percentOff or amountOff (with currency).")
    if percent_off is not None and not _number_in(percent_off, 100):
        errors.add("percentOff", codes.INVALID_VALUE, "A percentage above 0, at most 100, with at most 4 decimal places.")
    if amount_off is not None:
        if not _number_in(amount_off, money.MAX_AMOUNT):
            errors.add("amountOff", codes.INVALID_VALUE, f"A positive amount up to {money.MAX_AMOUNT:,}, with at most 4 decimal places.")
        if not isinstance(currency, str) or not _is_currency(currency):
            errors.add("currency", codes.INVALID_VALUE, "An amount off needs an ISO 4217 currency.")


def _prefix(errors: ErrorCollector, prefix: Any) -> str:
    if not isinstance(prefix, str) or len(prefix) > 20 or not all(c.isascii() and (c.isalnum() or c == "-") for c in prefix):
        errors.add("prefix", codes.INVALID_VALUE, "Up to 20 letters, digits and -.")
        return ""
    return prefix.upper().rstrip("-")  # "WELCOME" and "WELCOME-" both make WELCOME-XXXXXXXXXX


async def _new_coupon(session: AsyncSession, *, customer_id: int | None, percent_off: Decimal | None,
                      amount_off: Decimal | None, currency: str | None, expires_at: datetime | None, key: str | None,
                      prefix: str, batch: str | None, now: datetime) -> Coupon:
    for _ in range(5):  # 31^10 codes: a clash is all but impossible, and then a new code is drawn
        coupon = Coupon(code=_code(prefix), customer_id=customer_id, status=CouponStatus.AVAILABLE, percent_off=percent_off,
                        amount_off=amount_off, currency=currency, expires_at=expires_at, batch=batch,
                        idempotency_key=key, created_at=now)
        try:
            async with session.begin_nested():
                session.add(coupon)
                await session.flush()
            return coupon
        except IntegrityError:
            if key is not None and await session.scalar(sa.select(Coupon.id).where(Coupon.idempotency_key == key)):
                raise
    raise RuntimeError("could not draw a unique coupon code")


async def issue_coupon(
    session: AsyncSession, *, actor: Actor, customer_id: int, idempotency_key: str, percent_off: Decimal | None = None,
    amount_off: Decimal | None = None, currency: str | None = None, valid_days: int = 30, prefix: str = "",
) -> Coupon:
    """A single-use coupon for one customer; the same key again returns the same coupon."""
    key = _key(idempotency_key)
    errors = ErrorCollector()
    _offer(errors, percent_off, amount_off, currency)
    prefix = _prefix(errors, prefix)
    if not isinstance(valid_days, int) or not 1 <= valid_days <= 3650:
        errors.add("validDays", codes.INVALID_VALUE, "Days, 1 to 3650.")
    errors.raise_if_any()
    scoped = f"{customer_id}:{key}"
    existing = await session.scalar(sa.select(Coupon).where(Coupon.idempotency_key == scoped))
    if existing is not None:
        return existing
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.deleted_at is not None:
        raise NotFound("Customer", "customerId")
    now = utcnow()
    coupon = await _new_coupon(session, customer_id=customer_id, percent_off=percent_off, amount_off=amount_off,
                               currency=currency, expires_at=now + timedelta(days=valid_days), key=scoped,
                               prefix=prefix, batch=None, now=now)
    record_event(session, type="coupon.issued", entity_type="Customer", entity_id=customer_id, actor=actor,
                 payload=coupon_payload(coupon))
    return coupon


async def generate_coupons(
    session: AsyncSession, *, actor: Actor, count: int, batch: str, percent_off: Decimal | None = None,
    amount_off: Decimal | None = None, currency: str | None = None, valid_days: int | None = 30, prefix: str = "",
) -> list[Coupon]:
    """``count`` unassigned single-use codes in ``batch`` (for print, partners, a campaign).
    A batch name already used is refused: generating again never doubles a batch."""
    errors = ErrorCollector()
    if not isinstance(count, int) or not 1 <= count <= MAX_BATCH:
        errors.add("count", codes.INVALID_VALUE, f"1 to {MAX_BATCH:,} codes at once.")
    if not isinstance(batch, str) or not batch.strip() or len(batch) > 64:
        errors.add("batch", codes.REQUIRED, "A batch name of 1 to 64 characters.")
    _offer(errors, percent_off, amount_off, currency)
    prefix = _prefix(errors, prefix)
    if valid_days is not None and (not isinstance(valid_days, int) or not 1 <= valid_days <= 3650):
        errors.add("validDays", codes.INVALID_VALUE, "Days, 1 to 3650 (or null: no expiry).")
    errors.raise_if_any()
    if await session.scalar(sa.select(Coupon.id).where(Coupon.batch == batch).limit(1)) is not None:
        raise fail("batch", codes.DUPLICATE, "A batch of this name exists.")
    now = utcnow()
    expires = now + timedelta(days=valid_days) if valid_days else None
    codes_: set[str] = set()
    while len(codes_) < count:
        codes_.add(_code(prefix))
    taken = set(await session.scalars(sa.select(Coupon.code).where(Coupon.code.in_(codes_))))
    while taken:
        codes_ -= taken
        fresh = {_code(prefix) for _ in range(len(taken))}
        taken = set(await session.scalars(sa.select(Coupon.code).where(Coupon.code.in_(fresh)))) | (fresh & codes_)
        codes_ |= fresh - taken
    out = [Coupon(code=c, customer_id=None, status=CouponStatus.AVAILABLE, percent_off=percent_off, amount_off=amount_off,
                  currency=currency, expires_at=expires, batch=batch, created_at=now) for c in sorted(codes_)]
    session.add_all(out)
    await session.flush()
    record_event(session, type="coupon.batch_generated", entity_type="CouponBatch", entity_id=batch, actor=actor,
                 payload={"batch": batch, "count": count, "expiresAt": expires})
    return out


async def _usable(session: AsyncSession, code: Any, now: datetime) -> Coupon:
    coupon = await session.scalar(sa.select(Coupon).where(Coupon.code == code).with_for_update()) if isinstance(code, str) else None
    if coupon is None:
        raise NotFound("Coupon", "code")
    if coupon.expires_at is not None and coupon.expires_at <= now:
        raise fail("code", codes.INVALID_STATE, "The coupon has expired.")
    if coupon.status in (CouponStatus.REDEEMED, CouponStatus.VOID):
        raise fail("code", codes.INVALID_STATE, f"The coupon is {coupon.status.name}.")
    return coupon


def _reserved_by_other(coupon: Coupon, reservation: str, now: datetime) -> bool:
    return (coupon.status is CouponStatus.RESERVED and coupon.reservation != reservation
            and coupon.reserved_until is not None and coupon.reserved_until > now)


async def reserve_coupon(session: AsyncSession, *, actor: Actor, code: str, reservation: str, minutes: int = 15) -> Coupon:
    """Hold a coupon for a checkout (``reservation``: the cart or order reference) for ``minutes``;
    the same reservation again extends it; another one is refused until the hold lapses."""
    if not isinstance(reservation, str) or not reservation or len(reservation) > 200:
        raise fail("reservation", codes.REQUIRED, "The cart or order reference holding the coupon (1 to 200 characters).")
    if not isinstance(minutes, int) or not 1 <= minutes <= 1440:
        raise fail("minutes", codes.INVALID_VALUE, "Minutes, 1 to 1440.")
    now = utcnow()
    coupon = await _usable(session, code, now)
    if _reserved_by_other(coupon, reservation, now):
        raise fail("code", codes.INVALID_STATE, "The coupon is held by another checkout.")
    coupon.status, coupon.reservation, coupon.reserved_until = CouponStatus.RESERVED, reservation, now + timedelta(minutes=minutes)
    await session.flush()
    return coupon


async def release_coupon(session: AsyncSession, *, actor: Actor, code: str, reservation: str) -> Coupon:
    now = utcnow()
    coupon = await _usable(session, code, now)
    if coupon.status is CouponStatus.RESERVED and coupon.reservation == reservation:
        coupon.status, coupon.reservation, coupon.reserved_until = CouponStatus.AVAILABLE, None, None
        await session.flush()
    return coupon


async def redeem_coupon(session: AsyncSession, *, actor: Actor, code: str, order_id: int, reservation: str | None = None) -> Coupon:
    """Use a coupon on an order, once. Redeeming the same coupon on the same order again returns
    it unchanged (a retried request); on another order it is refused."""
    from crm_graph.sales.models import Order

    now = utcnow()
    existing = await session.scalar(sa.select(Coupon).where(Coupon.code == code)) if isinstance(code, str) else None
    if existing is not None and existing.status is CouponStatus.REDEEMED and existing.order_id == order_id:
        return existing
    coupon = await _usable(session, code, now)
    order = await session.get(Order, order_id)
    if order is None:
        raise NotFound("Order", "orderId")
    if coupon.customer_id is not None and coupon.customer_id != order.customer_id:
        raise fail("code", codes.INVALID_STATE, "The coupon belongs to another customer.")
    if coupon.amount_off is not None and coupon.currency != order.currency:
        raise fail("code", "CURRENCY_MISMATCH", f"The coupon is in {coupon.currency}; the order in {order.currency}.")
    if _reserved_by_other(coupon, reservation or f"order:{order_id}", now):
        raise fail("code", codes.INVALID_STATE, "The coupon is held by another checkout.")
    coupon.status, coupon.order_id, coupon.redeemed_at = CouponStatus.REDEEMED, order_id, now
    coupon.reserved_until = None
    await session.flush()
    record_event(session, type="coupon.redeemed", entity_type="Customer", entity_id=order.customer_id, actor=actor,
                 payload=coupon_payload(coupon))
    return coupon


# --- program settings --------------------------------------------------------------------------


def _key_name(errors: ErrorCollector, data: Mapping[str, Any], partial: bool) -> None:
    if "key" in data or not partial:
        key = data.get("key")
        if not isinstance(key, str) or not key or len(key) > 40 or not all(c.isalnum() or c in "_-" for c in key):
            errors.add("key", codes.INVALID_VALUE, "1 to 40 letters, digits, _ and -.")
    if "name" in data or not partial:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            errors.add("name", codes.REQUIRED, "A name of 1 to 200 characters.")


async def _save(session: AsyncSession, obj: Any, field: str, message: str) -> Any:
    try:
        async with session.begin_nested():
            session.add(obj)
            await session.flush()
    except IntegrityError:
        raise fail(field, codes.DUPLICATE, message) from None
    return obj


async def save_tier(session: AsyncSession, *, actor: Actor, data: Mapping[str, Any], tier_id: int | None = None) -> LoyaltyTier:
    errors = ErrorCollector()
    _key_name(errors, data, tier_id is not None)
    threshold, multiplier = data.get("threshold"), data.get("multiplier")
    if ("threshold" in data or tier_id is None) and (not isinstance(threshold, int) or not 0 <= threshold <= MAX_POINTS):
        errors.add("threshold", codes.INVALID_VALUE, f"Qualifying points, 0 to {MAX_POINTS:,}.")
    if multiplier is not None and not _number_in(multiplier, 100):
        errors.add("multiplier", codes.INVALID_VALUE, "A factor above 0, at most 100 (1: the base rate).")
    errors.raise_if_any()
    if tier_id is None:
        tier = LoyaltyTier(key=data["key"], name=data["name"].strip(), threshold=threshold, multiplier=multiplier or Decimal(1), version=1)
    else:
        tier = await session.get(LoyaltyTier, tier_id)
        if tier is None:
            raise NotFound("Tier")
        for name, attr in (("key", "key"), ("name", "name"), ("threshold", "threshold"), ("multiplier", "multiplier")):
            if data.get(name) is not None:
                setattr(tier, attr, data[name])
    tier = await _save(session, tier, "threshold", "Another tier has this key or threshold.")
    record_event(session, type="loyalty_tier.saved", entity_type="LoyaltyTier", entity_id=tier.id, actor=actor,
                 payload={"id": tier.id, "key": tier.key, "threshold": tier.threshold, "multiplier": tier.multiplier})
    return tier


RULE_NEEDS = {
    RuleKind.SPEND: ("points",), RuleKind.PRODUCT: ("points", "productId"), RuleKind.TAG: ("points", "tag"),
    RuleKind.EVENT: ("points", "eventType"), RuleKind.SEGMENT_MULTIPLIER: ("segmentId", "multiplier"),
}


async def save_rule(session: AsyncSession, *, actor: Actor, data: Mapping[str, Any], rule_id: int | None = None) -> LoyaltyRule:
    from crm_graph.core.events import known_pattern
    from crm_graph.sales.models import Product
    from crm_graph.segments.models import Segment

    rule = None
    if rule_id is not None:
        rule = await session.get(LoyaltyRule, rule_id)
        if rule is None:
            raise NotFound("Rule")
    merged = {"kind": rule.kind.name, "name": rule.name, "points": rule.points, "currency": rule.currency,
              "productId": rule.product_id, "tag": rule.tag, "eventType": rule.event_type, "segmentId": rule.segment_id,
              "multiplier": rule.multiplier, "capPoints": rule.cap_points, "capDays": rule.cap_days,
              "expiryDays": rule.expiry_days, "active": rule.active} if rule else {}
    merged.update({k: v for k, v in data.items() if v is not None})
    errors = ErrorCollector()
    kind = RuleKind.__members__.get(str(merged.get("kind")))
    if kind is None:
        errors.add("kind", codes.INVALID_VALUE, f"One of {', '.join(RuleKind.__members__)}.")
    name = merged.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        errors.add("name", codes.REQUIRED, "A name of 1 to 200 characters.")
    for field in RULE_NEEDS.get(kind, ()):  # type: ignore[arg-type]
        if merged.get(field) is None:
            errors.add(field, codes.REQUIRED, f"A {kind.name} rule needs {field}.")  # type: ignore[union-attr]
    points = merged.get("points")
    if points is not None and not _number_in(points, 1_000_000):
        errors.add("points", codes.INVALID_VALUE, "Above 0, at most 1,000,000 (per currency unit, or per event).")
    if merged.get("multiplier") is not None and not _number_in(merged["multiplier"], 100):
        errors.add("multiplier", codes.INVALID_VALUE, "A factor above 0, at most 100.")
    if merged.get("currency") is not None and not _is_currency(merged["currency"]):
        errors.add("currency", codes.INVALID_VALUE, "An ISO 4217 currency code.")
    if (merged.get("capPoints") is None) != (merged.get("capDays") is None):
        errors.add("capPoints", codes.REQUIRED, "A cap needs both capPoints and capDays.")
    for field in ("capPoints", "capDays", "expiryDays"):
        value = merged.get(field)
        if value is not None and (not isinstance(value, int) or not 0 < value <= MAX_POINTS):
            errors.add(field, codes.INVALID_VALUE, "A positive whole number.")
    if merged.get("eventType") is not None and (not isinstance(merged["eventType"], str) or not known_pattern(merged["eventType"])):
        errors.add("eventType", codes.INVALID_VALUE, "An event type or pattern of the catalogue (docs/events.md).")
    if merged.get("productId") is not None and await session.get(Product, merged["productId"]) is None:
        errors.add("productId", codes.NOT_FOUND, "Product was not found.")
    if merged.get("segmentId") is not None:
        segment = await session.get(Segment, merged["segmentId"])
        if segment is None or segment.deleted_at is not None:
            errors.add("segmentId", codes.NOT_FOUND, "Segment was not found.")
    errors.raise_if_any()
    assert kind is not None
    if rule is None:
        rule = LoyaltyRule(version=1)
    rule.kind, rule.name = kind, name.strip()
    for field, attr in (("points", "points"), ("currency", "currency"), ("productId", "product_id"), ("tag", "tag"),
                        ("eventType", "event_type"), ("segmentId", "segment_id"), ("multiplier", "multiplier"),
                        ("capPoints", "cap_points"), ("capDays", "cap_days"), ("expiryDays", "expiry_days")):
        setattr(rule, attr, merged.get(field) if field in RULE_NEEDS[kind] or field in (
            "currency", "capPoints", "capDays", "expiryDays") else None)
    if kind is RuleKind.TAG and rule.tag:
        rule.tag = rule.tag.strip().lower()
    rule.active = bool(merged.get("active", True))
    session.add(rule)
    await session.flush()
    record_event(session, type="loyalty_rule.saved", entity_type="LoyaltyRule", entity_id=rule.id, actor=actor,
                 payload={"id": rule.id, "kind": rule.kind.name, "name": rule.name, "active": rule.active})
    return rule


async def save_reward(session: AsyncSession, *, actor: Actor, data: Mapping[str, Any]) -> LoyaltyReward:
    errors = ErrorCollector()
    _key_name(errors, data, False)
    cost = data.get("cost")
    if not isinstance(cost, int) or not 0 < cost <= MAX_POINTS:
        errors.add("cost", codes.INVALID_VALUE, f"Points, 1 to {MAX_POINTS:,}.")
    _offer(errors, data.get("percentOff"), data.get("amountOff"), data.get("currency"))
    days = data.get("validDays", 30)
    if not isinstance(days, int) or not 1 <= days <= 3650:
        errors.add("validDays", codes.INVALID_VALUE, "Days, 1 to 3650.")
    errors.raise_if_any()
    existing = await session.scalar(sa.select(LoyaltyReward).where(LoyaltyReward.key == data["key"]))
    reward = existing or LoyaltyReward(key=data["key"], version=1)
    reward.name, reward.cost, reward.valid_days = data["name"].strip(), cost, days
    reward.percent_off, reward.amount_off, reward.currency = data.get("percentOff"), data.get("amountOff"), data.get("currency")
    reward.active = data.get("active", True) is not False
    session.add(reward)
    await session.flush()
    record_event(session, type="loyalty_reward.saved", entity_type="LoyaltyReward", entity_id=reward.id, actor=actor,
                 payload={"id": reward.id, "key": reward.key, "cost": reward.cost, "active": reward.active})
    return reward


async def history(session: AsyncSession, customer_id: int, first: int) -> list[LoyaltyEntry]:
    return list(await session.scalars(sa.select(LoyaltyEntry).where(LoyaltyEntry.customer_id == customer_id)
                                      .order_by(LoyaltyEntry.id.desc()).limit(first)))


async def accounts(session: AsyncSession, customer_ids: Sequence[int]) -> dict[int, LoyaltyAccount]:
    return {a.customer_id: a for a in await session.scalars(sa.select(LoyaltyAccount).where(LoyaltyAccount.customer_id.in_(customer_ids)))}
