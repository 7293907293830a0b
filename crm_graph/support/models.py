"""Tables of the support domain: tickets, their thread, tags, external references and ratings,
and the SLA policies that set their service-level targets."""

from __future__ import annotations

import enum
from datetime import datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_graph.core.access import guard_child, guard_object, guard_owned
from crm_graph.db.base import Base, IdMixin, OwnedMixin, TimestampMixin, VersionMixin
from crm_graph.db.types import IdType, JSONType, UTCDateTime, enum_column


class TicketChannel(enum.Enum):
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    WEB = "WEB"
    CHAT = "CHAT"
    SOCIAL = "SOCIAL"
    IN_PERSON = "IN_PERSON"


class TicketPriority(enum.Enum):
    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    URGENT = "URGENT"


class TicketStatus(enum.Enum):
    NEW = "NEW"
    OPEN = "OPEN"
    PENDING = "PENDING"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"


# The resolution clock runs in these statuses and stands still in the others.
CLOCK_RUNNING = (TicketStatus.NEW, TicketStatus.OPEN)
# The open backlog: everything that still needs work or an answer.
UNRESOLVED = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)


class TicketAuthorKind(enum.Enum):
    AGENT = "AGENT"
    CUSTOMER = "CUSTOMER"


class SlaStatus(enum.Enum):
    PENDING = "PENDING"
    MET = "MET"
    BREACHED = "BREACHED"


class Weekday(enum.Enum):
    """ISO weekdays; ``.value`` is Python's ``date.weekday()`` number (Monday = 0)."""

    MONDAY = 0
    TUESDAY = 1
    WEDNESDAY = 2
    THURSDAY = 3
    FRIDAY = 4
    SATURDAY = 5
    SUNDAY = 6


MAX_TARGET_MINUTES = 366 * 24 * 60


class SlaPolicy(IdMixin, TimestampMixin, VersionMixin, Base):
    """Service-level targets for the tickets a policy applies to.

    Empty ``priorities``, ``channels`` or ``tags`` mean "any". A new ticket gets the active
    policy with the lowest ``rank`` among those that match it (ties: the older policy).
    Business hours are optional; without them the targets count around the clock.
    """

    __tablename__ = "sla_policies"

    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    rank: Mapped[int] = mapped_column(sa.Integer)
    active: Mapped[bool] = mapped_column(sa.Boolean)
    priorities: Mapped[list[str]] = mapped_column(JSONType)
    channels: Mapped[list[str]] = mapped_column(JSONType)
    tags: Mapped[list[str]] = mapped_column(JSONType)
    first_response_minutes: Mapped[int] = mapped_column(sa.Integer)
    resolution_minutes: Mapped[int] = mapped_column(sa.Integer)
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    weekdays: Mapped[list[str] | None] = mapped_column(JSONType)
    day_start: Mapped[time | None] = mapped_column(sa.Time)
    day_end: Mapped[time | None] = mapped_column(sa.Time)

    __table_args__ = (
        sa.CheckConstraint("first_response_minutes > 0", name="first_response_positive"),
        sa.CheckConstraint("resolution_minutes > 0", name="resolution_positive"),
        sa.Index("ix_sla_policies_rank_id", "rank", "id"),
    )


class Ticket(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, Base):
    """A customer's request. Its number is derived from the id (``T-000123``).

    SLA bookkeeping: the due times are fixed when the ticket is created (from its policy) and
    the resolution due time moves later by the business time the clock stood still
    (``clock_stopped_at`` marks since when, while PENDING, RESOLVED or CLOSED). A breach is
    stored once, at the moment it happened (the due time), by the first write or periodic check
    that notices it; until then reads and filters derive it from the due time and the clock.
    """

    __tablename__ = "tickets"

    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="SET NULL"))
    subject: Mapped[str] = mapped_column(sa.String(300))
    description: Mapped[str | None] = mapped_column(sa.Text)
    channel: Mapped[TicketChannel] = mapped_column(enum_column(TicketChannel))
    priority: Mapped[TicketPriority] = mapped_column(enum_column(TicketPriority))
    status: Mapped[TicketStatus] = mapped_column(enum_column(TicketStatus))
    assignee: Mapped[str | None] = mapped_column(sa.String(200), index=True)
    sla_policy_id: Mapped[int | None] = mapped_column(
        IdType, sa.ForeignKey("sla_policies.id", ondelete="SET NULL"), index=True
    )
    first_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    first_response_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    clock_stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rating: Mapped[int | None] = mapped_column(sa.Integer)
    rating_expectation: Mapped[int | None] = mapped_column(sa.Integer)
    rating_comment: Mapped[str | None] = mapped_column(sa.Text)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    __table_args__ = (
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        sa.CheckConstraint("rating_expectation BETWEEN 1 AND 5", name="rating_expectation_range"),
        sa.Index("ix_tickets_created_at_id", "created_at", "id"),
        sa.Index("ix_tickets_updated_at_id", "updated_at", "id"),
        sa.Index("ix_tickets_customer_created", "customer_id", "created_at", "id"),
        sa.Index("ix_tickets_contact_id", "contact_id"),
        sa.Index("ix_tickets_status_priority", "status", "priority"),
        # The periodic breach check scans running clocks by due time.
        sa.Index("ix_tickets_first_response_due_at", "first_response_due_at"),
        sa.Index("ix_tickets_resolution_due_at", "resolution_due_at"),
    )

    @property
    def number(self) -> str:
        return ticket_number(self.id)


def ticket_number(pk: int) -> str:
    return f"T-{pk:06d}"


def parse_ticket_number(number: Any) -> int | None:
    """The id behind ``T-000123`` (case and zero padding do not matter); None if not a number."""
    if not isinstance(number, str):
        return None
    text = number.strip().upper()
    text = text.removeprefix("T-")
    return int(text) if text.isdigit() and 0 < int(text) < 2**63 else None


class TicketTag(Base):
    __tablename__ = "ticket_tags"

    ticket_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(sa.String(64), primary_key=True, index=True)


class TicketComment(IdMixin, Base):
    """One entry of a ticket's thread: a public reply (seen by the customer) or an internal note."""

    __tablename__ = "ticket_comments"

    ticket_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("tickets.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(sa.Text)
    public: Mapped[bool] = mapped_column(sa.Boolean)
    author_kind: Mapped[TicketAuthorKind] = mapped_column(enum_column(TicketAuthorKind))
    author: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (sa.Index("ix_ticket_comments_thread", "ticket_id", "created_at", "id"),)


class TicketExternalRef(IdMixin, Base):
    """The ticket's record in another system (a helpdesk tool); unique per system."""

    __tablename__ = "ticket_external_refs"

    ticket_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    system: Mapped[str] = mapped_column(sa.String(64))
    external_id: Mapped[str] = mapped_column(sa.String(200))

    __table_args__ = (
        sa.UniqueConstraint("system", "external_id"),
        sa.UniqueConstraint("ticket_id", "system"),
    )


class TicketRating(IdMixin, Base):
    """Every satisfaction rating a ticket received; the newest one is also kept on the ticket."""

    __tablename__ = "ticket_ratings"

    ticket_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("tickets.id", ondelete="CASCADE"))
    rating: Mapped[int] = mapped_column(sa.Integer)
    expectation: Mapped[int | None] = mapped_column(sa.Integer)
    comment: Mapped[str | None] = mapped_column(sa.Text)
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rated_by: Mapped[str] = mapped_column(sa.String(200))

    __table_args__ = (sa.Index("ix_ticket_ratings_ticket", "ticket_id", "rated_at", "id"),)


guard_owned(Ticket, "tickets")
for _model in (TicketTag, TicketComment, TicketExternalRef, TicketRating):
    guard_child(_model, "tickets", Ticket, "ticket_id")
guard_object(SlaPolicy, "sla_policies")
