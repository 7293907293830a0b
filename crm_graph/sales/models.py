"""Tables of the sales domain: products, pipelines and stages, opportunities, quotes, orders, payments.

Money is an amount column (``AmountType``: exact NUMERIC, scaled integers on SQLite) next to a
three-letter ``currency`` column; every line of a document shares the document's currency.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, column_property, mapped_column

from crm_graph.core.money import AmountType, fixed_decimal
from crm_graph.customers.models import AcquisitionChannel
from crm_graph.core.access import guard_child, guard_object, guard_owned
from crm_graph.customers.models import Customer  # noqa: F401 - customers' table is referenced
from crm_graph.db.base import (
    Base,
    IdMixin,
    OwnedMixin,
    SoftDeleteMixin,
    TimestampMixin,
    VersionMixin,
)
from crm_graph.db.types import IdType, JSONType, UTCDateTime, enum_column

QuantityType = fixed_decimal(19, 4)
PercentType = fixed_decimal(9, 4)
# Sort value of a missing expected close date: after every real date.
FAR_FUTURE = date(9999, 12, 31)


class StageKind(enum.Enum):
    OPEN = "OPEN"
    WON = "WON"
    LOST = "LOST"


class OpportunityStatus(enum.Enum):
    OPEN = "OPEN"
    WON = "WON"
    LOST = "LOST"


class QuoteStatus(enum.Enum):
    DRAFT = "DRAFT"
    SENT = "SENT"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class OrderStatus(enum.Enum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    FULFILLED = "FULFILLED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


class PaymentStatus(enum.Enum):
    UNPAID = "UNPAID"
    PARTIALLY_PAID = "PARTIALLY_PAID"
    PAID = "PAID"
    REFUNDED = "REFUNDED"


class OrderOrigin(enum.Enum):
    OPPORTUNITY = "OPPORTUNITY"
    QUOTE = "QUOTE"
    EXTERNAL = "EXTERNAL"
    DIRECT = "DIRECT"


class Product(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    unit_price: Mapped[Decimal] = mapped_column(AmountType)
    currency: Mapped[str] = mapped_column(sa.String(3))
    active: Mapped[bool] = mapped_column(sa.Boolean)

    __table_args__ = (
        sa.Index("ix_products_created_at_id", "created_at", "id"),
        sa.Index("ix_products_name_id", "name", "id"),
    )


class ProductTag(Base):
    __tablename__ = "product_tags"

    product_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(sa.String(64), primary_key=True, index=True)


class Pipeline(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "pipelines"

    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    is_default: Mapped[bool] = mapped_column(sa.Boolean)


class PipelineStage(IdMixin, Base):
    """A step of a pipeline. Removed stages keep their row (``removed_at``) so history stays readable."""

    __tablename__ = "pipeline_stages"

    pipeline_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("pipelines.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(100))
    position: Mapped[int] = mapped_column(sa.Integer)
    probability: Mapped[int] = mapped_column(sa.Integer)
    kind: Mapped[StageKind] = mapped_column(enum_column(StageKind))
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (sa.Index("ix_pipeline_stages_pipeline_position", "pipeline_id", "position"),)


class Opportunity(IdMixin, TimestampMixin, VersionMixin, SoftDeleteMixin, OwnedMixin, Base):
    __tablename__ = "opportunities"

    title: Mapped[str] = mapped_column(sa.String(300))
    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    pipeline_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("pipelines.id"))
    stage_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("pipeline_stages.id"), index=True)
    owner: Mapped[str | None] = mapped_column(sa.String(200), index=True)
    amount: Mapped[Decimal] = mapped_column(AmountType)
    currency: Mapped[str] = mapped_column(sa.String(3))
    # Set by hand; null means "the stage's probability".
    probability_override: Mapped[int | None] = mapped_column(sa.Integer)
    expected_close_date: Mapped[date | None] = mapped_column(sa.Date)
    source: Mapped[AcquisitionChannel | None] = mapped_column(enum_column(AcquisitionChannel))
    status: Mapped[OpportunityStatus] = mapped_column(enum_column(OpportunityStatus))
    lost_reason: Mapped[str | None] = mapped_column(sa.String(500))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stage_entered_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # Sort key for "expected close date": missing dates last, so keyset cursors never meet NULL.
    close_sort: Mapped[date] = column_property(
        sa.func.coalesce(expected_close_date, sa.literal(FAR_FUTURE, sa.Date())).label("close_sort")
    )

    __table_args__ = (
        sa.Index("ix_opportunities_created_at_id", "created_at", "id"),
        sa.Index("ix_opportunities_updated_at_id", "updated_at", "id"),
        sa.Index("ix_opportunities_pipeline_status", "pipeline_id", "status", "expected_close_date"),
        sa.Index("ix_opportunities_expected_close_date", "expected_close_date"),
    )


class LinePricing:
    """The priced part of a line, the same on opportunities, quotes and orders:
    ``subtotal = quantity x unit_price``, ``discount = subtotal x discount_percent / 100``,
    ``total = subtotal - discount``; subtotal and discount are rounded to the currency."""

    position: Mapped[int] = mapped_column(sa.Integer)
    description: Mapped[str] = mapped_column(sa.String(300))
    quantity: Mapped[Decimal] = mapped_column(QuantityType)
    unit_price: Mapped[Decimal] = mapped_column(AmountType)
    discount_percent: Mapped[Decimal] = mapped_column(PercentType)
    subtotal: Mapped[Decimal] = mapped_column(AmountType)
    discount: Mapped[Decimal] = mapped_column(AmountType)
    total: Mapped[Decimal] = mapped_column(AmountType)


class OpportunityLineItem(IdMixin, LinePricing, Base):
    __tablename__ = "opportunity_line_items"

    opportunity_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("opportunities.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("products.id"), index=True)


class StageHistory(IdMixin, Base):
    """One stay of an opportunity in a stage: entered, and left (null while it is still there)."""

    __tablename__ = "opportunity_stage_history"

    opportunity_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("opportunities.id", ondelete="CASCADE"))
    stage_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("pipeline_stages.id"), index=True)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    moved_by: Mapped[str] = mapped_column(sa.String(200))

    __table_args__ = (sa.Index("ix_opportunity_stage_history_timeline", "opportunity_id", "entered_at", "id"),)


class NumberSequence(Base):
    """Per-year counters behind quote and order numbers (Q-2026-0001)."""

    __tablename__ = "sales_number_sequences"

    scope: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    year: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(sa.Integer)


class Quote(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, Base):
    __tablename__ = "quotes"

    number: Mapped[str] = mapped_column(sa.String(32), unique=True)
    opportunity_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("opportunities.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    status: Mapped[QuoteStatus] = mapped_column(enum_column(QuoteStatus))
    currency: Mapped[str] = mapped_column(sa.String(3))
    valid_until: Mapped[date] = mapped_column(sa.Date)
    subtotal: Mapped[Decimal] = mapped_column(AmountType)
    discount: Mapped[Decimal] = mapped_column(AmountType)
    tax_rate: Mapped[Decimal] = mapped_column(PercentType)
    tax: Mapped[Decimal] = mapped_column(AmountType)
    total: Mapped[Decimal] = mapped_column(AmountType)
    # What a rendered document needs even if the customer record changes later.
    customer_name: Mapped[str] = mapped_column(sa.String(300))
    billing_address: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejection_reason: Mapped[str | None] = mapped_column(sa.String(500))

    __table_args__ = (sa.Index("ix_quotes_created_at_id", "created_at", "id"),)


class QuoteLineItem(IdMixin, LinePricing, Base):
    __tablename__ = "quote_line_items"

    quote_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("quotes.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("products.id", ondelete="SET NULL"))
    sku: Mapped[str | None] = mapped_column(sa.String(64))


class Order(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, Base):
    """A sale. Orders are financial records: they are never deleted, only cancelled or refunded."""

    __tablename__ = "orders"

    number: Mapped[str] = mapped_column(sa.String(32), unique=True)
    # RESTRICT: erasing a customer must anonymise, not silently drop, their orders.
    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="RESTRICT"))
    status: Mapped[OrderStatus] = mapped_column(enum_column(OrderStatus))
    payment_status: Mapped[PaymentStatus] = mapped_column(enum_column(PaymentStatus))
    currency: Mapped[str] = mapped_column(sa.String(3))
    subtotal: Mapped[Decimal] = mapped_column(AmountType)
    discount: Mapped[Decimal] = mapped_column(AmountType)
    tax_rate: Mapped[Decimal] = mapped_column(PercentType)
    tax: Mapped[Decimal] = mapped_column(AmountType)
    total: Mapped[Decimal] = mapped_column(AmountType)
    paid_amount: Mapped[Decimal] = mapped_column(AmountType)
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    origin: Mapped[OrderOrigin] = mapped_column(enum_column(OrderOrigin))
    opportunity_id: Mapped[int | None] = mapped_column(
        IdType, sa.ForeignKey("opportunities.id", ondelete="SET NULL"), index=True
    )
    quote_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("quotes.id", ondelete="SET NULL"), unique=True)

    __table_args__ = (
        sa.Index("ix_orders_created_at_id", "created_at", "id"),
        sa.Index("ix_orders_ordered_at_id", "ordered_at", "id"),
        # Customer statistics and the customer's order list.
        sa.Index("ix_orders_customer_ordered_at", "customer_id", "ordered_at", "id"),
    )


class OrderLineItem(IdMixin, LinePricing, Base):
    __tablename__ = "order_line_items"

    order_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("products.id", ondelete="SET NULL"))
    sku: Mapped[str | None] = mapped_column(sa.String(64))


class OrderExternalRef(IdMixin, Base):
    """The order's identity in another system (a shop, an accounting package): unique per system."""

    __tablename__ = "order_external_refs"

    order_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    system: Mapped[str] = mapped_column(sa.String(64))
    external_id: Mapped[str] = mapped_column(sa.String(200))

    __table_args__ = (sa.UniqueConstraint("system", "external_id"),)


class Payment(IdMixin, Base):
    __tablename__ = "payments"

    order_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal] = mapped_column(AmountType)
    currency: Mapped[str] = mapped_column(sa.String(3))
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)
    external_system: Mapped[str | None] = mapped_column(sa.String(64))
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (sa.UniqueConstraint("external_system", "external_id"),)


guard_owned(Opportunity, "opportunities")
guard_child(OpportunityLineItem, "opportunities", Opportunity, "opportunity_id")
guard_child(StageHistory, "opportunities", Opportunity, "opportunity_id")
guard_owned(Quote, "quotes")
guard_child(QuoteLineItem, "quotes", Quote, "quote_id")
guard_owned(Order, "orders")
for _model in (OrderLineItem, OrderExternalRef, Payment):
    guard_child(_model, "orders", Order, "order_id")
guard_object(Product, "products")
guard_object(ProductTag, "products")
guard_object(Pipeline, "pipelines")
guard_object(PipelineStage, "pipelines")
