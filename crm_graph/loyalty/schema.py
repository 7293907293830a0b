"""GraphQL API of the loyalty domain: ``Customer.loyalty``, the points mutations (each with an
``idempotencyKey``), the program's tiers, rules and rewards, and coupons (docs/loyalty.md)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from crm_graph.core.clock import utcnow
from crm_graph.domains import SchemaPart
from crm_graph.graphql import access
from crm_graph.graphql.context import Context
from crm_graph.graphql.enums import graphql_enum
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

graphql_enum(EntryKind, "EARN, REDEEM, EXPIRE, ADJUST; REVERSE and RESTORE come from refunds and cancellations.", {
    "EARN": "Points awarded: by an earning rule on a payment or an event, or by `earnPoints`.",
    "REDEEM": "Points spent on a reward or an order (`redeemPoints`).",
    "EXPIRE": "The unspent rest of a lot that reached its `expiresAt`.",
    "ADJUST": "A correction by hand (`adjustPoints`), positive or negative.",
    "REVERSE": "A refund or cancellation took back what the order earned.",
    "RESTORE": "A refund or cancellation gave back what was spent on the order.",
})
graphql_enum(RuleKind, "SPEND: points per currency unit paid. PRODUCT / TAG: per unit paid for those lines. "
             "EVENT: points per event about the customer. SEGMENT_MULTIPLIER: members earn `multiplier` times.", {
                 "SPEND": "`points` per currency unit paid (only in `currency` when it is set).",
                 "PRODUCT": "`points` per currency unit paid for order lines of the product `productId`.",
                 "TAG": "`points` per currency unit paid for order lines of products tagged `tag`.",
                 "EVENT": "`points` once per event of `eventType` about the customer.",
                 "SEGMENT_MULTIPLIER": "Members of the segment `segmentId` earn `multiplier` times the points (the "
                 "highest such multiplier counts, times the tier's).",
             })
graphql_enum(CouponStatus, "AVAILABLE, RESERVED (held by a checkout until `reservedUntil`), REDEEMED, VOID.", {
    "AVAILABLE": "Can be reserved or redeemed until it expires (a lapsed hold shows as AVAILABLE).",
    "RESERVED": "Held by the checkout `reservation` until `reservedUntil`; others cannot use it meanwhile.",
    "REDEEMED": "Used on an order; it cannot be used again.",
    "VOID": "Cancelled; it cannot be used.",
})

HISTORY_MAX = 100


@strawberry.type(description="Points a customer can spend now (`active`) and points waiting for the return window (`pending`).")
class LoyaltyBalance:
    active: int = strawberry.field(description="Points available to spend now (unexpired, past their return window).")
    pending: int = strawberry.field(
        description="Points not available yet: their `availableAt` (the return window, or `pendingDays`) is to come.")


@strawberry.type(description="A level of the program, reached by qualifying points within the qualifying window.")
class LoyaltyTier:
    id: strawberry.ID = strawberry.field(description="Global ID of the tier, as `updateLoyaltyTier(id:)` takes it.")
    key: str = strawberry.field(description="Unique: 1 to 40 letters, digits, _ and -.")
    name: str = strawberry.field(description="What members see, e.g. Gold.")
    threshold: int = strawberry.field(description="Qualifying points needed.")
    multiplier: Decimal = strawberry.field(description="Earning rate of the tier's members (1: the base rate).")

    @classmethod
    def from_model(cls, m: TierModel) -> LoyaltyTier:
        return cls(id=encode_global_id("LoyaltyTier", m.id), key=m.key, name=m.name, threshold=m.threshold, multiplier=m.multiplier)


@strawberry.type(description="One line of the ledger. Positive entries are lots: `remaining` of them is unspent.")
class LoyaltyEntry:
    id: strawberry.ID = strawberry.field(description="Global ID of the entry.")
    kind: EntryKind = strawberry.field(description="What made the entry.")
    points: int = strawberry.field(description="What the entry did to the balance (negative: taken).")
    remaining: int = strawberry.field(description="For lots: points not yet spent, expired or reversed.")
    source: str = strawberry.field(description="`payment:<id>`, `event:<id>`, `api`, `automation:<flow>`, `refund:<id>`, `lot:<id>`...")
    reason: str | None = strawberry.field(
        description="Why, in words (the rule's name for earned points); at most 500 characters.")
    available_at: datetime | None = strawberry.field(description="Lots: when they count as active (after the return window).")
    expires_at: datetime | None = strawberry.field(description="Lots: when what is left of them expires; null: never.")
    shortfall: int = strawberry.field(description="Reversals: points already spent that could not be taken back.")
    order_id: strawberry.ID | None = strawberry.field(description="Global ID of the order it was earned or spent on, if any.")
    created_at: datetime = strawberry.field(description="When the entry was made.")

    @classmethod
    def from_model(cls, m: EntryModel) -> LoyaltyEntry:
        return cls(id=encode_global_id("LoyaltyEntry", m.id), kind=m.kind, points=m.points, remaining=m.remaining,
                   source=m.source, reason=m.reason, available_at=m.available_at, expires_at=m.expires_at,
                   shortfall=m.shortfall, order_id=encode_global_id("Order", m.order_id) if m.order_id else None,
                   created_at=m.created_at)


@strawberry.type(description="A single-use coupon.")
class Coupon:
    code: str = strawberry.field(description="What is typed at checkout: an optional `PREFIX-` and ten characters "
                                 "without 0, O, 1, I or L. Look-ups ignore case.")
    status: CouponStatus = strawberry.field(description="Whether it can still be used.")
    percent_off: Decimal | None = strawberry.field(description="Percentage off (above 0, at most 100); null for an amount off.")
    amount_off: Money | None = strawberry.field(
        description="Amount off, usable only on an order in its currency; null for a percentage off.")
    customer_id: strawberry.ID | None = strawberry.field(description="Whose it is; null for a batch code anyone may use.")
    expires_at: datetime | None = strawberry.field(description="From then on it cannot be used; null: never.")
    reserved_until: datetime | None = strawberry.field(description="When the hold of a RESERVED coupon lapses; null otherwise.")
    reservation: str | None = strawberry.field(description="The checkout holding a RESERVED coupon; null otherwise.")
    order_id: strawberry.ID | None = strawberry.field(description="The order it was redeemed on.")
    redeemed_at: datetime | None = strawberry.field(description="When it was redeemed; null before.")
    batch: str | None = strawberry.field(
        description="The batch of `generateCoupons` it belongs to; null for a customer's coupon.")

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
    balance: LoyaltyBalance = strawberry.field(description="Active and pending points now.")
    tier: LoyaltyTier | None = strawberry.field(description="The tier the customer holds; null: none.")
    tier_since: datetime | None = strawberry.field(description="When the customer reached (or fell to) the tier.")
    tier_review_at: datetime | None = strawberry.field(description="When the tier is reviewed: a downgrade can only happen then.")
    qualifying_points: int = strawberry.field(description="Points earned (less reversed) within the qualifying window.")
    next_tier: LoyaltyTier | None = strawberry.field(description="The next tier up; null at the top (or without tiers).")
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
    id: strawberry.ID = strawberry.field(description="Global ID of the rule, as `updateLoyaltyRule(id:)` takes it.")
    name: str = strawberry.field(description="Shown as the reason of the entries it makes.")
    kind: RuleKind = strawberry.field(description="What the rule awards points for.")
    active: bool = strawberry.field(description="Only active rules award points.")
    points: Decimal | None = strawberry.field(
        description="Per currency unit paid (SPEND, PRODUCT, TAG) or per event (EVENT); awards are rounded down.")
    currency: str | None = strawberry.field(description="SPEND: only payments in this currency (ISO 4217); null: any.")
    product_id: strawberry.ID | None = strawberry.field(description="PRODUCT: global ID of the product.")
    tag: str | None = strawberry.field(description="TAG: the product tag (lower case).")
    event_type: str | None = strawberry.field(description="EVENT: the event type or pattern, e.g. ticket.rated.")
    segment_id: strawberry.ID | None = strawberry.field(description="SEGMENT_MULTIPLIER: global ID of the segment.")
    multiplier: Decimal | None = strawberry.field(description="SEGMENT_MULTIPLIER: the factor its members earn by.")
    cap_points: int | None = strawberry.field(description="At most this many points from the rule per customer in "
                                              "any `capDays` days; null: no cap.")
    cap_days: int | None = strawberry.field(description="The period of `capPoints`, in days.")
    expiry_days: int | None = strawberry.field(description="Days the points live once available; null: the program's default.")

    @classmethod
    def from_model(cls, m: RuleModel) -> LoyaltyRule:
        return cls(id=encode_global_id("LoyaltyRule", m.id), name=m.name, kind=m.kind, active=m.active, points=m.points,
                   currency=m.currency, product_id=encode_global_id("Product", m.product_id) if m.product_id else None,
                   tag=m.tag, event_type=m.event_type,
                   segment_id=encode_global_id("Segment", m.segment_id) if m.segment_id else None,
                   multiplier=m.multiplier, cap_points=m.cap_points, cap_days=m.cap_days, expiry_days=m.expiry_days)


@strawberry.type(description="What points buy: redeeming it issues a single-use coupon.")
class LoyaltyReward:
    key: str = strawberry.field(description="Unique: what `redeemPoints(input: {rewardKey})` takes.")
    name: str = strawberry.field(description="What customers see.")
    cost: int = strawberry.field(description="Points it costs.")
    active: bool = strawberry.field(description="Only active rewards can be redeemed.")
    percent_off: Decimal | None = strawberry.field(description="The coupon's percentage off; null for an amount off.")
    amount_off: Money | None = strawberry.field(description="The coupon's amount off; null for a percentage off.")
    valid_days: int = strawberry.field(description="Days the issued coupon stays usable.")

    @classmethod
    def from_model(cls, m: RewardModel) -> LoyaltyReward:
        return cls(key=m.key, name=m.name, cost=m.cost, active=m.active, percent_off=m.percent_off,
                   amount_off=Money.maybe(m.amount_off, m.currency), valid_days=m.valid_days)


# --- inputs and payloads -----------------------------------------------------------------------


@strawberry.input(description="Points to award a customer by hand, as a lot that counts toward tiers.")
class EarnPointsInput:
    customer_id: strawberry.ID = strawberry.field(description="Global ID of the customer; unknown or deleted: NOT_FOUND.")
    points: int = strawberry.field(description="Whole points, 1 to 100,000,000.")
    idempotency_key: str = strawberry.field(description="The same key again returns the first entry and changes nothing.")
    reason: str | None = strawberry.field(default=None, description="Why, shown in the history; at most 500 characters.")
    pending_days: int = strawberry.field(default=0, description="Days before the points count as active.")
    expires_at: datetime | None = strawberry.field(
        default=None, description="With a time zone, after the points become available; null: the program's expiry.")


@strawberry.input(
    description="Active points to spend: on a reward (`rewardKey`) or as points (`points`, optionally on an order).")
class RedeemPointsInput:
    customer_id: strawberry.ID = strawberry.field(description="Global ID of the customer.")
    idempotency_key: str = strawberry.field(description="1 to 200 characters; the same key again returns the first "
                                            "redemption (and its coupon); with other values it is IDEMPOTENCY_CONFLICT.")
    reward_key: str | None = strawberry.field(default=None, description="Redeem a reward: its coupon comes back in the payload.")
    points: int | None = strawberry.field(default=None, description="Points to spend (a reward's cost if omitted).")
    order_id: strawberry.ID | None = strawberry.field(default=None, description="Spent on this order: a refund gives them back in proportion.")
    reason: str | None = strawberry.field(default=None, description="Why, shown in the history; at most 500 characters.")


@strawberry.input(description="A correction of a customer's points by hand.")
class AdjustPointsInput:
    customer_id: strawberry.ID = strawberry.field(description="Global ID of the customer.")
    points: int = strawberry.field(description="Signed: positive adds available points, negative takes active ones.")
    reason: str = strawberry.field(description="Why (required, at most 500 characters); shown in the history.")
    idempotency_key: str = strawberry.field(description="1 to 200 characters; the same key again returns the first entry "
                                            "and changes nothing.")


@strawberry.input(description="A partial refund of an order, to apply to the loyalty ledger.")
class ReverseOrderPointsInput:
    order_id: strawberry.ID = strawberry.field(description="Global ID of the order; unknown: NOT_FOUND.")
    refunded_amount: MoneyInput | None = strawberry.field(
        default=None, description="The part of the order refunded now; null: everything not yet refunded.")
    idempotency_key: str = strawberry.field(description="1 to 200 characters; the same key again returns the first "
                                            "result and changes nothing.")


@strawberry.type(description="What a points mutation answers: the ledger entry and the balance after it, or why not.")
class PointsPayload:
    entry: LoyaltyEntry | None = strawberry.field(description="The entry made (or found, for a repeated key); null on errors.")
    balance: LoyaltyBalance | None = strawberry.field(description="The customer's balance afterwards; null on errors.")
    coupon: Coupon | None = strawberry.field(default=None, description="The coupon a redeemed reward issued; null otherwise.")
    errors: list[UserError]


@strawberry.type(description="What `reverseOrderPoints` answers: the entries it made (null where there was nothing to do).")
class ReverseOrderPointsPayload:
    reversed: LoyaltyEntry | None = strawberry.field(description="What was taken back of the points the order earned.")
    restored: LoyaltyEntry | None = strawberry.field(description="What was given back of the points spent on the order.")
    errors: list[UserError]


@strawberry.input(description="A tier's fields; on update, null fields stay as they are.")
class LoyaltyTierInput:
    key: str | None = strawberry.field(default=None, description="Unique: 1 to 40 letters, digits, _ and -; required to create.")
    name: str | None = strawberry.field(default=None, description="1 to 200 characters; required to create.")
    threshold: int | None = strawberry.field(
        default=None, description="Qualifying points to reach the tier, 0 to 100,000,000, unique; required to create.")
    multiplier: Decimal | None = strawberry.field(
        default=None, description="Earning rate of its members, above 0 and at most 100; default 1 (the base rate).")


@strawberry.type(description="What a tier mutation answers: the tier, or why not.")
class LoyaltyTierPayload:
    tier: LoyaltyTier | None = strawberry.field(description="The tier as saved; null on errors.")
    errors: list[UserError]


@strawberry.input(description="An earning rule's fields; on update, null fields stay as they are. Each kind needs its "
                  "own fields (SPEND: points; PRODUCT: points, productId; TAG: points, tag; EVENT: points, eventType; "
                  "SEGMENT_MULTIPLIER: segmentId, multiplier); a missing one is REQUIRED.")
class LoyaltyRuleInput:
    kind: RuleKind | None = strawberry.field(default=None, description="Required to create.")
    name: str | None = strawberry.field(default=None, description="1 to 200 characters; required to create.")
    active: bool | None = strawberry.field(default=None, description="Default true when created.")
    points: Decimal | None = strawberry.field(default=None, description="Per currency unit (SPEND, PRODUCT, TAG) or per event (EVENT).")
    currency: str | None = strawberry.field(default=None, description="SPEND: only payments in this currency.")
    product_id: strawberry.ID | None = strawberry.field(default=None, description="PRODUCT: global ID of the product.")
    tag: str | None = strawberry.field(default=None, description="TAG: the product tag (stored in lower case).")
    event_type: str | None = strawberry.field(
        default=None, description="EVENT: an event type or pattern of the catalogue, e.g. ticket.rated.")
    segment_id: strawberry.ID | None = strawberry.field(
        default=None, description="SEGMENT_MULTIPLIER: global ID of the segment.")
    multiplier: Decimal | None = strawberry.field(
        default=None, description="SEGMENT_MULTIPLIER: the factor members earn by, above 0 and at most 100.")
    cap_points: int | None = strawberry.field(default=None, description="At most this many points from the rule per customer ...")
    cap_days: int | None = strawberry.field(default=None, description="... in any this many days.")
    expiry_days: int | None = strawberry.field(default=None, description="The points' life; the program's default if null.")


@strawberry.type(description="What a rule mutation answers: the rule, or why not.")
class LoyaltyRulePayload:
    rule: LoyaltyRule | None = strawberry.field(description="The rule as saved; null on errors.")
    errors: list[UserError]


@strawberry.input(description="A reward, whole: saving an existing key replaces all its fields. Give `percentOff` or "
                  "`amountOff`, not both.")
class LoyaltyRewardInput:
    key: str = strawberry.field(description="1 to 40 letters, digits, _ and -; an existing key changes that reward.")
    name: str = strawberry.field(description="1 to 200 characters.")
    cost: int = strawberry.field(description="Points, 1 to 100,000,000.")
    percent_off: Decimal | None = strawberry.field(
        default=None, description="The coupon's percentage off, above 0 and at most 100, at most 4 decimal places.")
    amount_off: MoneyInput | None = strawberry.field(default=None, description="The coupon's amount off, in its currency.")
    valid_days: int = strawberry.field(default=30, description="Days the issued coupon stays usable, 1 to 3650.")
    active: bool = strawberry.field(default=True, description="false: it cannot be redeemed.")


@strawberry.type(description="What `saveLoyaltyReward` answers: the reward, or why not.")
class LoyaltyRewardPayload:
    reward: LoyaltyReward | None = strawberry.field(description="The reward as saved; null on errors.")
    errors: list[UserError]


@strawberry.input(description="A single-use coupon for one customer. Give `percentOff` or `amountOff`, not both.")
class IssueCouponInput:
    customer_id: strawberry.ID = strawberry.field(description="Global ID of the customer; unknown or deleted: NOT_FOUND.")
    idempotency_key: str = strawberry.field(description="1 to 200 characters; the same key again (for the same customer) "
                                            "returns the coupon issued first.")
    percent_off: Decimal | None = strawberry.field(
        default=None, description="Percentage off, above 0 and at most 100, at most 4 decimal places.")
    amount_off: MoneyInput | None = strawberry.field(default=None, description="Amount off, in its currency.")
    valid_days: int = strawberry.field(default=30, description="Days it stays usable, 1 to 3650.")
    prefix: str = strawberry.field(default="", description="Up to 20 letters, digits and -, put before the code (upper-cased).")


@strawberry.input(description="A batch of unassigned coupon codes anyone may use. Give `percentOff` or `amountOff`, not both.")
class GenerateCouponsInput:
    batch: str = strawberry.field(description="A name for the batch, used once.")
    count: int = strawberry.field(description="Codes to generate, 1 to 10,000.")
    percent_off: Decimal | None = strawberry.field(
        default=None, description="Percentage off, above 0 and at most 100, at most 4 decimal places.")
    amount_off: MoneyInput | None = strawberry.field(default=None, description="Amount off, in its currency.")
    valid_days: int | None = strawberry.field(default=30, description="Days the codes stay usable, 1 to 3650; null: no expiry.")
    prefix: str = strawberry.field(default="", description="Up to 20 letters, digits and -, put before each code (upper-cased).")


@strawberry.type(description="What a coupon mutation answers: the coupon, or why not.")
class CouponPayload:
    coupon: Coupon | None = strawberry.field(description="The coupon as it is now; null on errors.")
    errors: list[UserError]


@strawberry.type(description="What `generateCoupons` answers: the codes of the new batch, or why not.")
class GenerateCouponsPayload:
    count: int = strawberry.field(description="Codes generated (0 on errors).")
    codes: list[str] = strawberry.field(description="The codes, in alphabetical order.")
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
    async def coupon(self, info: Info, code: Annotated[str, strawberry.argument(
            description="The code; case and surrounding spaces do not matter.")]) -> Coupon | None:
        import sqlalchemy as sa

        async with info.context.db.reader() as session:
            found = await session.scalar(sa.select(CouponModel).where(CouponModel.code == code.strip().upper()))
            return Coupon.from_model(found) if found else None


@strawberry.type
class LoyaltyMutation:
    @access.mutation("loyalty", "create", description="Award points (raises `loyalty.points_earned`).")
    async def earn_points(self, info: Info, input: Annotated[EarnPointsInput, strawberry.argument(
            description="Who gets how many points, and the idempotency key.")]) -> PointsPayload:
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
    async def redeem_points(self, info: Info, input: Annotated[RedeemPointsInput, strawberry.argument(
            description="What to spend; more than the active balance is INSUFFICIENT_POINTS.")]) -> PointsPayload:
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
    async def adjust_points(self, info: Info, input: Annotated[AdjustPointsInput, strawberry.argument(
            description="The correction; taking more than the active balance is INSUFFICIENT_POINTS.")]) -> PointsPayload:
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
    async def reverse_order_points(self, info: Info, input: Annotated[ReverseOrderPointsInput, strawberry.argument(
            description="The order and the amount refunded; more than is left to refund is INVALID_VALUE, another "
            "currency CURRENCY_MISMATCH.")]) -> ReverseOrderPointsPayload:
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
    async def create_loyalty_tier(self, info: Info, input: Annotated[LoyaltyTierInput, strawberry.argument(
            description="The new tier; a key or threshold another tier has is DUPLICATE.")]) -> LoyaltyTierPayload:
        data = _tier_data(input)
        done, errors = await unit_of_work(info, lambda s: service.save_tier(s, actor=info.context.actor, data=data))
        return LoyaltyTierPayload(tier=LoyaltyTier.from_model(done) if done else None, errors=errors)

    @access.mutation("loyalty", "update", description="Change a tier; members are re-ranked when they next earn or are reviewed.")
    async def update_loyalty_tier(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the tier (`loyaltyTiers`).")],
        input: Annotated[LoyaltyTierInput, strawberry.argument(description="The fields to change.")],
    ) -> LoyaltyTierPayload:
        pk = decode_global_id(id, "LoyaltyTier")[1]
        data = _tier_data(input)
        done, errors = await unit_of_work(info, lambda s: service.save_tier(s, actor=info.context.actor, data=data, tier_id=pk))
        return LoyaltyTierPayload(tier=LoyaltyTier.from_model(done) if done else None, errors=errors)

    @access.mutation("loyalty", "update", description="Add an earning rule.")
    async def create_loyalty_rule(self, info: Info, input: Annotated[LoyaltyRuleInput, strawberry.argument(
            description="The new rule.")]) -> LoyaltyRulePayload:
        return await _save_rule(info, input, None)

    @access.mutation("loyalty", "update", description="Change an earning rule (only the fields given).")
    async def update_loyalty_rule(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the rule (`loyaltyRules`).")],
        input: Annotated[LoyaltyRuleInput, strawberry.argument(description="The fields to change.")],
    ) -> LoyaltyRulePayload:
        return await _save_rule(info, input, decode_global_id(id, "LoyaltyRule")[1])

    @access.mutation("loyalty", "update", description="Add or change (by key) a reward.")
    async def save_loyalty_reward(self, info: Info, input: Annotated[LoyaltyRewardInput, strawberry.argument(
            description="The reward, all its fields.")]) -> LoyaltyRewardPayload:
        amount, currency = _money(input.amount_off)
        data = {"key": input.key, "name": input.name, "cost": input.cost, "percentOff": input.percent_off,
                "amountOff": amount, "currency": currency, "validDays": input.valid_days, "active": input.active}
        done, errors = await unit_of_work(info, lambda s: service.save_reward(s, actor=info.context.actor, data=data))
        return LoyaltyRewardPayload(reward=LoyaltyReward.from_model(done) if done else None, errors=errors)

    @access.mutation("loyalty", "create", description="Issue a customer a single-use coupon; the same key again returns it.")
    async def issue_coupon(self, info: Info, input: Annotated[IssueCouponInput, strawberry.argument(
            description="Whose coupon, and what it takes off.")]) -> CouponPayload:
        amount, currency = _money(input.amount_off)
        cid = _customer(input.customer_id)
        done, errors = await unit_of_work(info, lambda s: service.issue_coupon(
            s, actor=info.context.actor, customer_id=cid, idempotency_key=input.idempotency_key, percent_off=input.percent_off,
            amount_off=amount, currency=currency, valid_days=input.valid_days, prefix=input.prefix))
        return CouponPayload(coupon=Coupon.from_model(done) if done else None, errors=errors)

    @access.mutation("loyalty", "update", description=f"Generate up to {service.MAX_BATCH:,} unassigned single-use codes as a named batch.")
    async def generate_coupons(self, info: Info, input: Annotated[GenerateCouponsInput, strawberry.argument(
            description="The batch; a batch name already used is DUPLICATE.")]) -> GenerateCouponsPayload:
        amount, currency = _money(input.amount_off)
        done, errors = await unit_of_work(info, lambda s: service.generate_coupons(
            s, actor=info.context.actor, count=input.count, batch=input.batch, percent_off=input.percent_off,
            amount_off=amount, currency=currency, valid_days=input.valid_days, prefix=input.prefix))
        return GenerateCouponsPayload(count=len(done or []), codes=[c.code for c in done or []], errors=errors)

    @access.mutation("loyalty", "create", description="Hold a coupon for a checkout for `minutes` (default 15).")
    async def reserve_coupon(
        self, info: Info,
        code: Annotated[str, strawberry.argument(
            description="The coupon's code (any case); expired, REDEEMED or VOID is INVALID_STATE.")],
        reservation: Annotated[str, strawberry.argument(
            description="The cart or order reference that holds it, 1 to 200 characters. The same one again extends "
            "the hold; while another holds it, INVALID_STATE.")],
        minutes: Annotated[int, strawberry.argument(description="How long to hold it, 1 to 1440.")] = 15,
    ) -> CouponPayload:
        done, errors = await unit_of_work(info, lambda s: service.reserve_coupon(
            s, actor=info.context.actor, code=code.strip().upper(), reservation=reservation, minutes=minutes))
        return CouponPayload(coupon=Coupon.from_model(done) if done else None, errors=errors)

    @access.mutation("loyalty", "create", description="Let go of a coupon held by `reservation`.")
    async def release_coupon(
        self, info: Info,
        code: Annotated[str, strawberry.argument(description="The coupon's code (any case).")],
        reservation: Annotated[str, strawberry.argument(
            description="The reservation that holds it; any other changes nothing.")],
    ) -> CouponPayload:
        done, errors = await unit_of_work(info, lambda s: service.release_coupon(
            s, actor=info.context.actor, code=code.strip().upper(), reservation=reservation))
        return CouponPayload(coupon=Coupon.from_model(done) if done else None, errors=errors)

    @access.mutation("loyalty", "create", description="Use a coupon on an order, once (raises `coupon.redeemed`).")
    async def redeem_coupon(
        self, info: Info,
        code: Annotated[str, strawberry.argument(
            description="The coupon's code (any case); expired, VOID, REDEEMED on another order, another customer's "
            "or held by another checkout is INVALID_STATE.")],
        order_id: Annotated[strawberry.ID, strawberry.argument(
            description="Global ID of the order; an amount off in another currency is CURRENCY_MISMATCH. The same "
            "coupon on the same order again returns it unchanged.")],
        reservation: Annotated[str | None, strawberry.argument(
            description="The reservation that holds the coupon, when one does; a hold by any other is INVALID_STATE.")] = None,
    ) -> CouponPayload:
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
