"""GraphQL API of the loyalty domain: ``Customer.loyalty``, the points mutations (each with an
``idempotencyKey``), the program's tiers, rules and rewards, and coupons (docs/loyalty.md)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.types import Info

from crm_graph.core.clock import utcnow
from crm_graph.domains import SchemaPart
from crm_graph.graphql import access
from crm_graph.graphql.context import Context
from crm_graph.graphql.errors import ClientError, UserError
from crm_graph.graphql.money import Money, MoneyInput
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.graphql.relay import decode_global_id, encode_global_id
from crm_graph.loyalty import service
from crm_graph.loyalty.models import Coupon as CouponModel
from crm_graph.loyalty.models import CouponStatus, EntryKind, RuleKind
from crm_graph.loyalty.models import LoyaltyEntry as EntryModel
from crm_graph.loyalty.models import LoyaltyReward as RewardModel
from crm_graph.loyalty.models import LoyaltyRule as RuleModel
from crm_graph.loyalty.models import LoyaltyTier as TierModel

strawberry.enum(EntryKind, description="EARN, REDEEM, EXPIRE, ADJUST; REVERSE and RESTORE come from refunds and cancellations.")
strawberry.enum(RuleKind, description="SPEND: points per currency unit paid. PRODUCT / TAG: per unit paid for those lines. "
                "EVENT: points per event about the customer. SEGMENT_MULTIPLIER: members earn `multiplier` times.")
strawberry.enum(CouponStatus, description="AVAILABLE, RESERVED (held by a checkout until `reservedUntil`), REDEEMED, VOID.")

HISTORY_MAX = 100


@strawberry.type(description="Points a customer can spend now (`active`) and points waiting for the return window (`pending`).")
class LoyaltyBalance:
    active: int
    pending: int


@strawberry.type(description="A level of the program, reached by qualifying points within the qualifying window.")
class LoyaltyTier:
    id: strawberry.ID
    key: str
    name: str
    threshold: int = strawberry.field(description="Qualifying points needed.")
    multiplier: Decimal = strawberry.field(description="Earning rate of the tier's members (1: the base rate).")

    @classmethod
    def from_model(cls, m: TierModel) -> LoyaltyTier:
        return cls(id=encode_global_id("LoyaltyTier", m.id), key=m.key, name=m.name, threshold=m.threshold, multiplier=m.multiplier)


@strawberry.type(description="One line of the ledger. Positive entries are lots: `remaining` of them is unspent.")
class LoyaltyEntry:
    id: strawberry.ID
    kind: EntryKind
    points: int = strawberry.field(description="What the entry did to the balance (negative: taken).")
    remaining: int = strawberry.field(description="For lots: points not yet spent, expired or reversed.")
    source: str = strawberry.field(description="`payment:<id>`, `event:<id>`, `api`, `automation:<flow>`, `refund:<id>`, `lot:<id>`...")
    reason: str | None
    available_at: datetime | None = strawberry.field(description="Lots: when they count as active (after the return window).")
    expires_at: datetime | None
    shortfall: int = strawberry.field(description="Reversals: points already spent that could not be taken back.")
    order_id: strawberry.ID | None
    created_at: datetime

    @classmethod
    def from_model(cls, m: EntryModel) -> LoyaltyEntry:
        return cls(id=encode_global_id("LoyaltyEntry", m.id), kind=m.kind, points=m.points, remaining=m.remaining,
                   source=m.source, reason=m.reason, available_at=m.available_at, expires_at=m.expires_at,
                   shortfall=m.shortfall, order_id=encode_global_id("Order", m.order_id) if m.order_id else None,
                   created_at=m.created_at)


@strawberry.type(description="A single-use coupon.")
class Coupon:
    code: str
    status: CouponStatus
    percent_off: Decimal | None
    amount_off: Money | None
    customer_id: strawberry.ID | None = strawberry.field(description="Whose it is; null for a batch code anyone may use.")
    expires_at: datetime | None
    reserved_until: datetime | None
    reservation: str | None
    order_id: strawberry.ID | None = strawberry.field(description="The order it was redeemed on.")
    redeemed_at: datetime | None
    batch: str | None

    @classmethod
    def from_model(cls, m: CouponModel) -> Coupon:
        held = m.status is CouponStatus.RESERVED and m.reserved_until is not None and m.reserved_until > utcnow()
        return cls(code=m.code, status=m.status if m.status is not CouponStatus.RESERVED or held else CouponStatus.AVAILABLE,
                   percent_off=m.percent_off, amount_off=Money.maybe(m.amount_off, m.currency),
                   customer_id=encode_global_id("Customer", m.customer_id) if m.customer_id else None,
                   expires_at=m.expires_at, reserved_until=m.reserved_until if held else None,
                   reservation=m.reservation if held else None,
                   order_id=encode_global_id("Order", m.order_id) if m.order_id else None, redeemed_at=m.redeemed_at, batch=m.batch)


@strawberry.type(description="A customer's standing in the loyalty program.")
class CustomerLoyalty:
    customer_pk: strawberry.Private[int]
    balance: LoyaltyBalance
    tier: LoyaltyTier | None
    tier_since: datetime | None
    tier_review_at: datetime | None = strawberry.field(description="When the tier is reviewed: a downgrade can only happen then.")
    qualifying_points: int = strawberry.field(description="Points earned (less reversed) within the qualifying window.")
    next_tier: LoyaltyTier | None
    points_to_next_tier: int | None = strawberry.field(description="Qualifying points still missing for the next tier; null at the top.")

    @strawberry.field(description=f"Ledger entries, newest first (at most {HISTORY_MAX}).")
    async def history(self, info: Info, first: int = 20) -> list[LoyaltyEntry]:
        if not 0 < first <= HISTORY_MAX:
            raise ClientError(f"`first` must be 1 to {HISTORY_MAX}.")
        async with info.context.db.reader() as session:
            return [LoyaltyEntry.from_model(e) for e in await service.history(session, self.customer_pk, first)]

    @strawberry.field(description="The customer's coupons, newest first.")
    async def coupons(self, info: Info, first: int = 20) -> list[Coupon]:
        import sqlalchemy as sa

        if not 0 < first <= HISTORY_MAX:
            raise ClientError(f"`first` must be 1 to {HISTORY_MAX}.")
        async with info.context.db.reader() as session:
            rows = await session.scalars(sa.select(CouponModel).where(CouponModel.customer_id == self.customer_pk)
                                         .order_by(CouponModel.id.desc()).limit(first))
            return [Coupon.from_model(c) for c in rows]


async def _loyalty_batch(session: Any, ids: list[int]) -> dict[int, CustomerLoyalty]:
    now = utcnow()
    found = await service.balances(session, ids, now)
    accounts = await service.accounts(session, ids)
    qualifying = await service.qualifying_points(session, ids, now=now)
    ladder = await service.tiers(session)
    out = {}
    for cid in ids:
        account = accounts.get(cid)
        tier = next((t for t in ladder if account is not None and t.id == account.tier_id), None)
        above = [t for t in ladder if t.threshold > qualifying[cid] and (tier is None or t.threshold > tier.threshold)]
        nxt = above[0] if above else None
        out[cid] = CustomerLoyalty(
            customer_pk=cid, balance=LoyaltyBalance(active=found[cid].active, pending=found[cid].pending),
            tier=LoyaltyTier.from_model(tier) if tier else None, tier_since=account.tier_since if account else None,
            tier_review_at=account.tier_review_at if account else None, qualifying_points=qualifying[cid],
            next_tier=LoyaltyTier.from_model(nxt) if nxt else None,
            points_to_next_tier=nxt.threshold - qualifying[cid] if nxt else None)
    return out


@strawberry.type
class CustomerLoyaltyFields:
    @strawberry.field(description="Points, tier and history in the loyalty program (null without `loyalty:read`).")
    async def loyalty(self, info: Info) -> CustomerLoyalty | None:
        if not info.context.actor.can("loyalty", "read"):
            return None
        return await info.context.loader("customer.loyalty", _loyalty_batch).load(self.pk)  # type: ignore[attr-defined]


@strawberry.type(description="How customers earn points.")
class LoyaltyRule:
    id: strawberry.ID
    name: str
    kind: RuleKind
    active: bool
    points: Decimal | None
    currency: str | None
    product_id: strawberry.ID | None
    tag: str | None
    event_type: str | None
    segment_id: strawberry.ID | None
    multiplier: Decimal | None
    cap_points: int | None
    cap_days: int | None
    expiry_days: int | None

    @classmethod
    def from_model(cls, m: RuleModel) -> LoyaltyRule:
        return cls(id=encode_global_id("LoyaltyRule", m.id), name=m.name, kind=m.kind, active=m.active, points=m.points,
                   currency=m.currency, product_id=encode_global_id("Product", m.product_id) if m.product_id else None,
                   tag=m.tag, event_type=m.event_type,
                   segment_id=encode_global_id("Segment", m.segment_id) if m.segment_id else None,
                   multiplier=m.multiplier, cap_points=m.cap_points, cap_days=m.cap_days, expiry_days=m.expiry_days)


@strawberry.type(description="What points buy: redeeming it issues a single-use coupon.")
class LoyaltyReward:
    key: str
    name: str
    cost: int
    active: bool
    percent_off: Decimal | None
    amount_off: Money | None
    valid_days: int

    @classmethod
    def from_model(cls, m: RewardModel) -> LoyaltyReward:
        return cls(key=m.key, name=m.name, cost=m.cost, active=m.active, percent_off=m.percent_off,
                   amount_off=Money.maybe(m.amount_off, m.currency), valid_days=m.valid_days)


# --- inputs and payloads -----------------------------------------------------------------------


@strawberry.input
class EarnPointsInput:
    customer_id: strawberry.ID
    points: int
    idempotency_key: str = strawberry.field(description="The same key again returns the first entry and changes nothing.")
    reason: str | None = None
    pending_days: int = strawberry.field(default=0, description="Days before the points count as active.")
    expires_at: datetime | None = None


@strawberry.input
class RedeemPointsInput:
    customer_id: strawberry.ID
    idempotency_key: str
    reward_key: str | None = strawberry.field(default=None, description="Redeem a reward: its coupon comes back in the payload.")
    points: int | None = strawberry.field(default=None, description="Points to spend (a reward's cost if omitted).")
    order_id: strawberry.ID | None = strawberry.field(default=None, description="Spent on this order: a refund gives them back in proportion.")
    reason: str | None = None


@strawberry.input
class AdjustPointsInput:
    customer_id: strawberry.ID
    points: int = strawberry.field(description="Signed: positive adds available points, negative takes active ones.")
    reason: str
    idempotency_key: str


@strawberry.input
class ReverseOrderPointsInput:
    order_id: strawberry.ID
    refunded_amount: MoneyInput | None = strawberry.field(
        default=None, description="The part of the order refunded now; null: everything not yet refunded.")
    idempotency_key: str


@strawberry.type
class PointsPayload:
    entry: LoyaltyEntry | None
    balance: LoyaltyBalance | None
    coupon: Coupon | None = None
    errors: list[UserError]


@strawberry.type
class ReverseOrderPointsPayload:
    reversed: LoyaltyEntry | None = strawberry.field(description="What was taken back of the points the order earned.")
    restored: LoyaltyEntry | None = strawberry.field(description="What was given back of the points spent on the order.")
    errors: list[UserError]


@strawberry.input
class LoyaltyTierInput:
    key: str | None = None
    name: str | None = None
    threshold: int | None = None
    multiplier: Decimal | None = None


@strawberry.type
class LoyaltyTierPayload:
    tier: LoyaltyTier | None
    errors: list[UserError]


@strawberry.input
class LoyaltyRuleInput:
    kind: RuleKind | None = None
    name: str | None = None
    active: bool | None = None
    points: Decimal | None = strawberry.field(default=None, description="Per currency unit (SPEND, PRODUCT, TAG) or per event (EVENT).")
    currency: str | None = strawberry.field(default=None, description="SPEND: only payments in this currency.")
    product_id: strawberry.ID | None = None
    tag: str | None = None
    event_type: str | None = None
    segment_id: strawberry.ID | None = None
    multiplier: Decimal | None = None
    cap_points: int | None = strawberry.field(default=None, description="At most this many points from the rule per customer ...")
    cap_days: int | None = strawberry.field(default=None, description="... in any this many days.")
    expiry_days: int | None = strawberry.field(default=None, description="The points' life; the program's default if null.")


@strawberry.type
class LoyaltyRulePayload:
    rule: LoyaltyRule | None
    errors: list[UserError]


@strawberry.input
class LoyaltyRewardInput:
    key: str
    name: str
    cost: int
    percent_off: Decimal | None = None
    amount_off: MoneyInput | None = None
    valid_days: int = 30
    active: bool = True


@strawberry.type
class LoyaltyRewardPayload:
    reward: LoyaltyReward | None
    errors: list[UserError]


@strawberry.input
class IssueCouponInput:
    customer_id: strawberry.ID
    idempotency_key: str
    percent_off: Decimal | None = None
    amount_off: MoneyInput | None = None
    valid_days: int = 30
    prefix: str = ""


@strawberry.input
class GenerateCouponsInput:
    batch: str = strawberry.field(description="A name for the batch, used once.")
    count: int
    percent_off: Decimal | None = None
    amount_off: MoneyInput | None = None
    valid_days: int | None = 30
    prefix: str = ""


@strawberry.type
class CouponPayload:
    coupon: Coupon | None
    errors: list[UserError]


@strawberry.type
class GenerateCouponsPayload:
    count: int
    codes: list[str]
    errors: list[UserError]


def _customer(gid: strawberry.ID) -> int:
    return decode_global_id(gid, "Customer")[1]


async def _balance_of(session: Any, customer_id: int) -> LoyaltyBalance:
    b = (await service.balances(session, [customer_id]))[customer_id]
    return LoyaltyBalance(active=b.active, pending=b.pending)


def _money(value: MoneyInput | None) -> tuple[Decimal | None, str | None]:
    return (value.amount, value.currency.strip().upper()) if value is not None else (None, None)


@strawberry.type
class LoyaltyQuery:
    @access.query("loyalty", description="The program's tiers, lowest first.")
    async def loyalty_tiers(self, info: Info) -> list[LoyaltyTier]:
        async with info.context.db.reader() as session:
            return [LoyaltyTier.from_model(t) for t in await service.tiers(session)]

    @access.query("loyalty", description="The earning rules.")
    async def loyalty_rules(self, info: Info) -> list[LoyaltyRule]:
        import sqlalchemy as sa

        async with info.context.db.reader() as session:
            return [LoyaltyRule.from_model(r) for r in await session.scalars(sa.select(RuleModel).order_by(RuleModel.id))]

    @access.query("loyalty", description="What points buy.")
    async def loyalty_rewards(self, info: Info) -> list[LoyaltyReward]:
        import sqlalchemy as sa

        async with info.context.db.reader() as session:
            return [LoyaltyReward.from_model(r) for r in await session.scalars(sa.select(RewardModel).order_by(RewardModel.cost))]

    @access.query("loyalty", description="A coupon by its code (null if there is none, or it is another's the caller may not see).")
    async def coupon(self, info: Info, code: str) -> Coupon | None:
        import sqlalchemy as sa

        async with info.context.db.reader() as session:
            found = await session.scalar(sa.select(CouponModel).where(CouponModel.code == code.strip().upper()))
            return Coupon.from_model(found) if found else None


@strawberry.type
class LoyaltyMutation:
    @access.mutation("loyalty", "create", description="Award points (raises `loyalty.points_earned`).")
    async def earn_points(self, info: Info, input: EarnPointsInput) -> PointsPayload:
        ctx: Context = info.context
        cid = _customer(input.customer_id)

        async def work(session: Any) -> Any:
            entry = await service.earn_points(session, actor=ctx.actor, customer_id=cid, points=input.points,
                                              idempotency_key=input.idempotency_key, reason=input.reason,
                                              pending_days=input.pending_days, expires_at=input.expires_at)
            return entry, await _balance_of(session, cid)

        done, errors = await unit_of_work(info, work)
        return PointsPayload(entry=LoyaltyEntry.from_model(done[0]) if done else None, balance=done[1] if done else None, errors=errors)

    @access.mutation("loyalty", "create", description="Spend active points on a reward (its coupon is in the payload) or an order.")
    async def redeem_points(self, info: Info, input: RedeemPointsInput) -> PointsPayload:
        ctx: Context = info.context
        cid = _customer(input.customer_id)
        order = decode_global_id(input.order_id, "Order")[1] if input.order_id is not None else None

        async def work(session: Any) -> Any:
            entry, coupon = await service.redeem_points(session, actor=ctx.actor, customer_id=cid, points=input.points,
                                                        idempotency_key=input.idempotency_key, reward_key=input.reward_key,
                                                        order_id=order, reason=input.reason)
            return entry, coupon, await _balance_of(session, cid)

        done, errors = await unit_of_work(info, work)
        if done is None:
            return PointsPayload(entry=None, balance=None, errors=errors)
        return PointsPayload(entry=LoyaltyEntry.from_model(done[0]), coupon=Coupon.from_model(done[1]) if done[1] else None,
                             balance=done[2], errors=[])

    @access.mutation("loyalty", "update", description="Correct a balance by hand, with a reason (raises `loyalty.points_adjusted`).")
    async def adjust_points(self, info: Info, input: AdjustPointsInput) -> PointsPayload:
        ctx: Context = info.context
        cid = _customer(input.customer_id)

        async def work(session: Any) -> Any:
            entry = await service.adjust_points(session, actor=ctx.actor, customer_id=cid, points=input.points,
                                                idempotency_key=input.idempotency_key, reason=input.reason)
            return entry, await _balance_of(session, cid)

        done, errors = await unit_of_work(info, work)
        return PointsPayload(entry=LoyaltyEntry.from_model(done[0]) if done else None, balance=done[1] if done else None, errors=errors)

    @access.mutation("loyalty", "update", description="Apply a partial refund of an order to the ledger: that share of its "
                     "points is reversed and that share of the points spent on it restored. Cancelling or refunding an "
                     "order does this for the rest by itself.")
    async def reverse_order_points(self, info: Info, input: ReverseOrderPointsInput) -> ReverseOrderPointsPayload:
        ctx: Context = info.context
        order = decode_global_id(input.order_id, "Order")[1]
        amount, currency = _money(input.refunded_amount)

        async def work(session: Any) -> Any:
            from crm_graph.sales.models import Order

            found = await session.get(Order, order)
            if found is not None and currency is not None and currency != found.currency:
                raise service.fail("refundedAmount.currency", "CURRENCY_MISMATCH", f"The order is in {found.currency}.")
            return await service.reverse_order_points(session, actor=ctx.actor, order_id=order, refunded_amount=amount,
                                                      idempotency_key=input.idempotency_key)

        done, errors = await unit_of_work(info, work)
        if done is None:
            return ReverseOrderPointsPayload(reversed=None, restored=None, errors=errors)
        return ReverseOrderPointsPayload(reversed=LoyaltyEntry.from_model(done[0]) if done[0] else None,
                                         restored=LoyaltyEntry.from_model(done[1]) if done[1] else None, errors=[])

    @access.mutation("loyalty", "update", description="Add a tier: key, name, threshold, multiplier.")
    async def create_loyalty_tier(self, info: Info, input: LoyaltyTierInput) -> LoyaltyTierPayload:
        data = _tier_data(input)
        done, errors = await unit_of_work(info, lambda s: service.save_tier(s, actor=info.context.actor, data=data))
        return LoyaltyTierPayload(tier=LoyaltyTier.from_model(done) if done else None, errors=errors)

    @access.mutation("loyalty", "update", description="Change a tier; members are re-ranked when they next earn or are reviewed.")
    async def update_loyalty_tier(self, info: Info, id: strawberry.ID, input: LoyaltyTierInput) -> LoyaltyTierPayload:
        pk = decode_global_id(id, "LoyaltyTier")[1]
        data = _tier_data(input)
        done, errors = await unit_of_work(info, lambda s: service.save_tier(s, actor=info.context.actor, data=data, tier_id=pk))
        return LoyaltyTierPayload(tier=LoyaltyTier.from_model(done) if done else None, errors=errors)

    @access.mutation("loyalty", "update", description="Add an earning rule.")
    async def create_loyalty_rule(self, info: Info, input: LoyaltyRuleInput) -> LoyaltyRulePayload:
        return await _save_rule(info, input, None)

    @access.mutation("loyalty", "update", description="Change an earning rule (only the fields given).")
    async def update_loyalty_rule(self, info: Info, id: strawberry.ID, input: LoyaltyRuleInput) -> LoyaltyRulePayload:
        return await _save_rule(info, input, decode_global_id(id, "LoyaltyRule")[1])

    @access.mutation("loyalty", "update", description="Add or change (by key) a reward.")
    async def save_loyalty_reward(self, info: Info, input: LoyaltyRewardInput) -> LoyaltyRewardPayload:
        amount, currency = _money(input.amount_off)
        data = {"key": input.key, "name": input.name, "cost": input.cost, "percentOff": input.percent_off,
                "amountOff": amount, "currency": currency, "validDays": input.valid_days, "active": input.active}
        done, errors = await unit_of_work(info, lambda s: service.save_reward(s, actor=info.context.actor, data=data))
        return LoyaltyRewardPayload(reward=LoyaltyReward.from_model(done) if done else None, errors=errors)

    @access.mutation("loyalty", "create", description="Issue a customer a single-use coupon; the same key again returns it.")
    async def issue_coupon(self, info: Info, input: IssueCouponInput) -> CouponPayload:
        amount, currency = _money(input.amount_off)
        cid = _customer(input.customer_id)
        done, errors = await unit_of_work(info, lambda s: service.issue_coupon(
            s, actor=info.context.actor, customer_id=cid, idempotency_key=input.idempotency_key, percent_off=input.percent_off,
            amount_off=amount, currency=currency, valid_days=input.valid_days, prefix=input.prefix))
        return CouponPayload(coupon=Coupon.from_model(done) if done else None, errors=errors)

    @access.mutation("loyalty", "update", description=f"Generate up to {service.MAX_BATCH:,} unassigned single-use codes as a named batch.")
    async def generate_coupons(self, info: Info, input: GenerateCouponsInput) -> GenerateCouponsPayload:
        amount, currency = _money(input.amount_off)
        done, errors = await unit_of_work(info, lambda s: service.generate_coupons(
            s, actor=info.context.actor, count=input.count, batch=input.batch, percent_off=input.percent_off,
            amount_off=amount, currency=currency, valid_days=input.valid_days, prefix=input.prefix))
        return GenerateCouponsPayload(count=len(done or []), codes=[c.code for c in done or []], errors=errors)

    @access.mutation("loyalty", "create", description="Hold a coupon for a checkout for `minutes` (default 15).")
    async def reserve_coupon(self, info: Info, code: str, reservation: str, minutes: int = 15) -> CouponPayload:
        done, errors = await unit_of_work(info, lambda s: service.reserve_coupon(
            s, actor=info.context.actor, code=code.strip().upper(), reservation=reservation, minutes=minutes))
        return CouponPayload(coupon=Coupon.from_model(done) if done else None, errors=errors)

    @access.mutation("loyalty", "create", description="Let go of a coupon held by `reservation`.")
    async def release_coupon(self, info: Info, code: str, reservation: str) -> CouponPayload:
        done, errors = await unit_of_work(info, lambda s: service.release_coupon(
            s, actor=info.context.actor, code=code.strip().upper(), reservation=reservation))
        return CouponPayload(coupon=Coupon.from_model(done) if done else None, errors=errors)

    @access.mutation("loyalty", "create", description="Use a coupon on an order, once (raises `coupon.redeemed`).")
    async def redeem_coupon(self, info: Info, code: str, order_id: strawberry.ID, reservation: str | None = None) -> CouponPayload:
        order = decode_global_id(order_id, "Order")[1]
        done, errors = await unit_of_work(info, lambda s: service.redeem_coupon(
            s, actor=info.context.actor, code=code.strip().upper(), order_id=order, reservation=reservation))
        return CouponPayload(coupon=Coupon.from_model(done) if done else None, errors=errors)


def _tier_data(input: LoyaltyTierInput) -> dict[str, Any]:
    given = {"key": input.key, "name": input.name, "threshold": input.threshold, "multiplier": input.multiplier}
    return {k: v for k, v in given.items() if v is not None}


async def _save_rule(info: Info, input: LoyaltyRuleInput, rule_id: int | None) -> LoyaltyRulePayload:
    data = {"kind": input.kind.name if input.kind else None, "name": input.name, "active": input.active,
            "points": input.points, "currency": input.currency.strip().upper() if input.currency else None,
            "productId": decode_global_id(input.product_id, "Product")[1] if input.product_id else None,
            "tag": input.tag, "eventType": input.event_type,
            "segmentId": decode_global_id(input.segment_id, "Segment")[1] if input.segment_id else None,
            "multiplier": input.multiplier, "capPoints": input.cap_points, "capDays": input.cap_days,
            "expiryDays": input.expiry_days}
    done, errors = await unit_of_work(info, lambda s: service.save_rule(s, actor=info.context.actor, data=data, rule_id=rule_id))
    return LoyaltyRulePayload(rule=LoyaltyRule.from_model(done) if done else None, errors=errors)


SCHEMA = SchemaPart(query=LoyaltyQuery, mutation=LoyaltyMutation)
