"""Segments (static, dynamic, snapshot), their members, and stored RFM / value-tier runs."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_graph.core.money import AmountType
from crm_graph.core.access import guard_child, guard_object
from crm_graph.customers.models import Customer
from crm_graph.db.base import Base, IdMixin, SoftDeleteMixin, TimestampMixin, VersionMixin
from crm_graph.db.types import IdType, JSONType, UTCDateTime, enum_column


class SegmentKind(enum.Enum):
    STATIC = "STATIC"
    DYNAMIC = "DYNAMIC"
    SNAPSHOT = "SNAPSHOT"


class RfmGroup(enum.Enum):
    CHAMPIONS = "CHAMPIONS"
    LOYAL = "LOYAL"
    POTENTIAL_LOYALIST = "POTENTIAL_LOYALIST"
    NEW = "NEW"
    PROMISING = "PROMISING"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"
    ABOUT_TO_SLEEP = "ABOUT_TO_SLEEP"
    AT_RISK = "AT_RISK"
    CANNOT_LOSE = "CANNOT_LOSE"
    HIBERNATING = "HIBERNATING"
    LOST = "LOST"


class ValueTier(enum.Enum):
    KEY = "KEY"
    ORDINARY = "ORDINARY"
    POTENTIAL = "POTENTIAL"


class Segment(IdMixin, TimestampMixin, VersionMixin, SoftDeleteMixin, Base):
    __tablename__ = "segments"

    name: Mapped[str] = mapped_column(sa.String(200), index=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    kind: Mapped[SegmentKind] = mapped_column(enum_column(SegmentKind))
    # The CustomerFilter as JSON (GraphQL field names); null for STATIC segments.
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SegmentMember(Base):
    """Members of STATIC and SNAPSHOT segments (DYNAMIC membership is never stored)."""

    __tablename__ = "segment_members"

    segment_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RfmRun(IdMixin, Base):
    """One RFM and value-tier computation: as of a date, over a window, in one currency."""

    __tablename__ = "rfm_runs"

    as_of: Mapped[date] = mapped_column(sa.Date)
    window_days: Mapped[int] = mapped_column(sa.Integer)
    currency: Mapped[str] = mapped_column(sa.String(3))
    customer_count: Mapped[int] = mapped_column(sa.Integer)
    revenue: Mapped[Decimal] = mapped_column(AmountType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (sa.Index("ix_rfm_runs_params", "as_of", "window_days", "currency"),)


class RfmScore(Base):
    """A customer's values in one run. Customers with an open opportunity but no order in the
    window have a row too (POTENTIAL tier), with null RFM values."""

    __tablename__ = "rfm_scores"

    run_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("rfm_runs.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    recency_days: Mapped[int | None] = mapped_column(sa.Integer)
    frequency: Mapped[int | None] = mapped_column(sa.Integer)
    monetary: Mapped[Decimal | None] = mapped_column(AmountType)
    recency_score: Mapped[int | None] = mapped_column(sa.SmallInteger)
    frequency_score: Mapped[int | None] = mapped_column(sa.SmallInteger)
    monetary_score: Mapped[int | None] = mapped_column(sa.SmallInteger)
    group: Mapped[RfmGroup | None] = mapped_column(enum_column(RfmGroup))
    value_tier: Mapped[ValueTier | None] = mapped_column(enum_column(ValueTier))

    __table_args__ = (
        sa.Index("ix_rfm_scores_run_group", "run_id", "group"),
        sa.Index("ix_rfm_scores_run_tier", "run_id", "value_tier"),
    )


guard_object(Segment, "segments")
guard_object(RfmRun, "segments")
# Membership and scores are the customer's: a hidden customer is in no segment and has no score.
guard_child(SegmentMember, "segments", Customer, "customer_id")
guard_child(RfmScore, "segments", Customer, "customer_id")
