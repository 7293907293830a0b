"""The communication history on a customer's timeline: notes, calls, meetings, emails, tasks."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_graph.core.access import guard_child
from crm_graph.customers.models import Customer
from crm_graph.db.base import Base, IdMixin, SoftDeleteMixin, TimestampMixin, VersionMixin
from crm_graph.db.types import IdType, UTCDateTime, enum_column


class ActivityType(enum.Enum):
    NOTE = "NOTE"
    CALL = "CALL"
    MEETING = "MEETING"
    EMAIL = "EMAIL"
    TASK = "TASK"
    # Written by the support desk when a ticket is opened or resolved; not logged by hand.
    TICKET = "TICKET"


class Direction(enum.Enum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class Activity(IdMixin, TimestampMixin, VersionMixin, SoftDeleteMixin, Base):
    __tablename__ = "activities"

    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"))
    type: Mapped[ActivityType] = mapped_column(enum_column(ActivityType))
    subject: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str | None] = mapped_column(sa.Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    direction: Mapped[Direction | None] = mapped_column(enum_column(Direction))
    duration_minutes: Mapped[int | None] = mapped_column(sa.Integer)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    assignee: Mapped[str | None] = mapped_column(sa.String(200), index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # The timeline: newest first per customer, with the id as tie-breaker for cursors.
        sa.Index("ix_activities_customer_timeline", "customer_id", "occurred_at", "id"),
        sa.Index("ix_activities_occurred_at_id", "occurred_at", "id"),
    )


guard_child(Activity, "activities", Customer, "customer_id")
