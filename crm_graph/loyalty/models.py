"""Tables of the loyalty domain.

The ledger is the truth: every change of a customer's points is one ``LoyaltyEntry``, never
edited afterwards but for the ``remaining`` of a lot. Entries that add points (earn, a positive
adjustment, a restore) are *lots*: each has its own availability (pending until the return
window ends) and expiry, and ``remaining`` says how much of it is unspent. Entries that take
points (redeem, expire, a negative adjustment, a reversal) consume lots, soonest-expiring
first, and ``LoyaltyAllocation`` records which lot gave how much, so a refund can restore what
an order spent.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_graph.core.access import Scope, guard_object
from crm_graph.customers.models import Customer
from crm_graph.db.base import Base, IdMixin, TimestampMixin, VersionMixin
from crm_graph.core.money import AmountType, fixed_decimal
from crm_graph.db.types import IdType, UTCDateTime, enum_column

RateType = fixed_decimal(12, 4)  # points per currency unit, multipliers, percentages


class EntryKind(enum.Enum):
    EARN = "EARN"  # from a payment, an event award or earnPoints
    REDEEM = "REDEEM"  # spent on a reward or an order
    EXPIRE = "EXPIRE"  # a lot ran out unspent
    ADJUST = "ADJUST"  # a correction by hand, either way
    REVERSE = "REVERSE"  # a refund or cancellation took back what the order earned
    RESTORE = "RESTORE"  # a refund or cancellation gave back what the order spent


class RuleKind(enum.Enum):
    SPEND = "SPEND"  # `points` per currency unit paid, in `currency`
    PRODUCT = "PRODUCT"  # `points` per currency unit paid for lines of `product`
    TAG = "TAG"  # `points` per currency unit paid for lines of products tagged `tag`
    EVENT = "EVENT"  # `points` once per event of `event_type` about the customer
    SEGMENT_MULTIPLIER = "SEGMENT_MULTIPLIER"  # members of `segment` earn `multiplier` times


class CouponStatus(enum.Enum):
    AVAILABLE = "AVAILABLE"
    RESERVED = "RESERVED"
    REDEEMED = "REDEEMED"
    VOID = "VOID"


class LoyaltyTier(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "loyalty_tiers"

    key: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    # Qualifying points (earned, less reversals, within the qualifying window) to reach the tier.
    threshold: Mapped[int] = mapped_column(sa.Integer, unique=True)
    multiplier: Mapped[Decimal] = mapped_column(RateType)


class LoyaltyRule(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "loyalty_rules"

    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[RuleKind] = mapped_column(enum_column(RuleKind))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    points: Mapped[Decimal | None] = mapped_column(RateType)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    product_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("products.id", ondelete="CASCADE"))
    tag: Mapped[str | None] = mapped_column(sa.String(64))
    event_type: Mapped[str | None] = mapped_column(sa.String(100))
    segment_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("segments.id", ondelete="CASCADE"))
    multiplier: Mapped[Decimal | None] = mapped_column(RateType)
    # At most `cap_points` from this rule per customer in any `cap_days` days.
    cap_points: Mapped[int | None] = mapped_column(sa.Integer)
    cap_days: Mapped[int | None] = mapped_column(sa.Integer)
    # The points' life from when they become available; the program's default when null.
    expiry_days: Mapped[int | None] = mapped_column(sa.Integer)


class LoyaltyReward(IdMixin, TimestampMixin, VersionMixin, Base):
    """What points buy: a single-use coupon issued on redemption."""

    __tablename__ = "loyalty_rewards"

    key: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    cost: Mapped[int] = mapped_column(sa.Integer)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    percent_off: Mapped[Decimal | None] = mapped_column(RateType)
    amount_off: Mapped[Decimal | None] = mapped_column(AmountType)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    valid_days: Mapped[int] = mapped_column(sa.Integer, default=30)


class LoyaltyAccount(Base):
    """A customer's standing: the tier and when it is next reviewed. Balances come from lots.
    Its row is locked by every change of the customer's points, which serialises them."""

    __tablename__ = "loyalty_accounts"

    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    tier_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("loyalty_tiers.id", ondelete="SET NULL"))
    tier_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The end of the tier's qualifying period: a downgrade happens then, not before.
    tier_review_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoyaltyEntry(IdMixin, Base):
    __tablename__ = "loyalty_entries"

    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[EntryKind] = mapped_column(enum_column(EntryKind))
    points: Mapped[int] = mapped_column(sa.Integer)  # signed: what the entry did to the balance
    # Lots only: unspent points, when they become available and when they expire.
    remaining: Mapped[int] = mapped_column(sa.Integer, default=0)
    available_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expiry_noticed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Where it came from: "payment:<id>", "event:<id>", "api", "automation:<flow>", "refund:<id>".
    source: Mapped[str] = mapped_column(sa.String(200))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    idempotency_key: Mapped[str] = mapped_column(sa.String(200))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    order_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("orders.id", ondelete="SET NULL"), index=True)
    rule_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("loyalty_rules.id", ondelete="SET NULL"), index=True)
    reward_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("loyalty_rewards.id", ondelete="SET NULL"))
    # A reversal that found fewer points than it should take (the customer had spent them).
    shortfall: Mapped[int] = mapped_column(sa.Integer, default=0)
    actor: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("customer_id", "idempotency_key"),
        sa.Index("ix_loyalty_entries_customer_id_id", "customer_id", "id"),
        sa.Index("ix_loyalty_entries_lots", "customer_id", "remaining", "expires_at"),
        sa.Index("ix_loyalty_entries_expires_at", "expires_at"),
    )


class LoyaltyAllocation(Base):
    """``points`` of lot ``lot_id`` were consumed by entry ``entry_id``."""

    __tablename__ = "loyalty_allocations"

    entry_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("loyalty_entries.id", ondelete="CASCADE"), primary_key=True)
    lot_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("loyalty_entries.id", ondelete="CASCADE"), primary_key=True, index=True)
    points: Mapped[int] = mapped_column(sa.Integer)


class LoyaltyRefund(IdMixin, Base):
    """An amount of an order refunded, as the loyalty ledger has applied it (its reversal and
    restore are the entries with source ``refund:<id>``)."""

    __tablename__ = "loyalty_refunds"

    order_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal] = mapped_column(AmountType)
    idempotency_key: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (sa.UniqueConstraint("order_id", "idempotency_key"),)


class Coupon(IdMixin, Base):
    __tablename__ = "loyalty_coupons"

    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    customer_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    status: Mapped[CouponStatus] = mapped_column(enum_column(CouponStatus))
    percent_off: Mapped[Decimal | None] = mapped_column(RateType)
    amount_off: Mapped[Decimal | None] = mapped_column(AmountType)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    reserved_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reservation: Mapped[str | None] = mapped_column(sa.String(200))
    order_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("orders.id", ondelete="SET NULL"))
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    batch: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    # Who issued it, once: "<customer>:<key>" for issue_coupon, the reward entry for rewards.
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(260), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


def _visible_through(column: sa.orm.InstrumentedAttribute) -> object:
    def extra(scope: Scope) -> sa.ColumnElement[bool] | None:
        condition = scope.condition(Customer, "read")
        return None if condition is None else column.in_(sa.select(Customer.id).where(condition))
    return extra


# Program settings (tiers, rules, rewards) need `loyalty:read`; a customer's points and coupons
# are visible when the customer is.
for _model in (LoyaltyTier, LoyaltyRule, LoyaltyReward):
    guard_object(_model, "loyalty")
guard_object(LoyaltyAccount, "loyalty", _visible_through(LoyaltyAccount.customer_id))  # type: ignore[arg-type]
guard_object(LoyaltyEntry, "loyalty", _visible_through(LoyaltyEntry.customer_id))  # type: ignore[arg-type]
guard_object(LoyaltyAllocation, "loyalty")
guard_object(LoyaltyRefund, "loyalty")
_customer_coupon = _visible_through(Coupon.customer_id)  # type: ignore[arg-type]


def _coupon_visible(scope: Scope) -> sa.ColumnElement[bool] | None:
    """Batch codes (no customer) for everyone with `loyalty:read`; a customer's when the customer is."""
    own = _customer_coupon(scope)  # type: ignore[operator]
    return None if own is None else sa.or_(Coupon.customer_id.is_(None), own)


guard_object(Coupon, "loyalty", _coupon_visible)
