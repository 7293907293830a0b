"""Domain events and the transactional outbox.

A service records an event with ``record_event`` inside the same transaction as the change it
describes, so the event exists exactly when the change does. Delivery to plugins and webhooks
happens after commit, from the ``outbox`` table: the dispatcher (``core/dispatch.py``) fans each
event out into one ``event_deliveries`` row per subscriber and tracks every delivery on its own.
"""

from __future__ import annotations

import base64
import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from crm_graph.core.access import guard_object
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.observability import tracing
from crm_graph.db.base import Base, IdMixin
from crm_graph.db.types import IdType, JSONType, UTCDateTime, enum_column

# The event types the domains raise, with what each means. Webhook subscriptions are checked
# against this catalogue (``ticket.*`` and ``*`` match several); docs/events.md lists it, and a
# test fails when a service records a type that is missing here. Plugins that record events of
# their own add them with ``register_event_type``.
EVENT_TYPES: dict[str, str] = {
    **{
        f"{entity}.{verb}": f"A {entity} was {verb}."
        for entity in ("customer", "activity", "opportunity", "quote", "order", "payment", "ticket", "segment")
        for verb in ("created", "updated", "deleted")
    },
    "customer.restored": "A deleted customer was restored.",
    "customer.merged": "Duplicate customers were merged into this one.",
    **{
        f"{entity}.owner_changed": f"{'An' if entity[0] in 'aeiou' else 'A'} {entity} was given another owner or team "
        "(`changes.ownerId`, `changes.teamId`)."
        for entity in ("customer", "opportunity", "quote", "order", "ticket")
    },
    "customer.erased": "A customer's personal data was erased (a privacy request); `data` holds only `id` and `erasedAt`.",
    "custom_field.created": "A custom field definition was added.",
    "custom_field.updated": "A custom field definition's label, description, required flag or options changed.",
    "custom_field.deleted": "A custom field definition was removed, with every customer's value of it.",
    "opportunity.restored": "A deleted opportunity was restored.",
    "opportunity.stage_changed": "An opportunity moved to another pipeline stage.",
    "opportunity.won": "An opportunity was closed as won.",
    "opportunity.lost": "An opportunity was closed as lost.",
    "pipeline.created": "A sales pipeline was created.",
    "pipeline.updated": "A sales pipeline or its stages changed.",
    "product.created": "A product was added to the catalogue.",
    "product.updated": "A product changed.",
    "quote.sent": "A quote was sent to the customer.",
    "quote.accepted": "The customer accepted a quote.",
    "quote.rejected": "The customer rejected a quote.",
    "order.status_changed": "An order moved to another status (`changes.from`, `changes.to`).",
    "order.paid": "An order was paid in full.",
    "payment.recorded": "A payment was recorded against an order.",
    "ticket.assigned": "A support ticket was assigned to someone else.",
    "ticket.replied": "Someone replied on a support ticket.",
    "ticket.status_changed": "A support ticket moved to another status.",
    "ticket.resolved": "A support ticket was resolved.",
    "ticket.rated": "The customer rated the handling of a support ticket.",
    "ticket.sla_breached": "A support ticket missed its response or resolution target.",
    "sla_policy.created": "A service-level policy was created.",
    "sla_policy.updated": "A service-level policy changed.",
    "segment.restored": "A deleted segment was restored.",
    "segment.member_added": "Customers entered a segment (`data.customerIds`, up to 1,000 per event; `changeId`, `batch`, `batches` tie the events of one change together).",
    "segment.member_removed": "Customers left a segment (`data.customerIds`, up to 1,000 per event, batched like `segment.member_added`).",
}


def register_event_type(event_type: str, description: str) -> None:
    """Add an event type (``<entity>.<what happened>``, lower case) so webhook subscriptions can
    ask for it. For plugins that record events of their own; call it when the plugin is imported."""
    entity, dot, verb = event_type.partition(".")
    if not (dot and entity and verb and event_type == event_type.lower() and " " not in event_type and "*" not in event_type):
        raise ValueError(f"event types look like 'invoice.synced', not {event_type!r}")
    EVENT_TYPES.setdefault(event_type, description)


def matches(pattern: str, event_type: str) -> bool:
    """``*`` matches every event, ``ticket.*`` every ticket event, anything else itself only."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def known_pattern(pattern: str) -> bool:
    """Whether ``pattern`` can match at least one event type of ``EVENT_TYPES``."""
    return any(matches(pattern, t) for t in EVENT_TYPES)


def global_id(entity_type: str, pk: int | str) -> str:
    """The opaque ID the GraphQL API shows for ``entity_type`` number ``pk`` (``node(id:)`` takes it).

    The same encoding as ``crm_graph.graphql.relay.encode_global_id``, kept here so the core layer
    does not import the GraphQL layer.
    """
    return base64.urlsafe_b64encode(f"{entity_type}:{pk}".encode()).decode().rstrip("=")


class OutboxEvent(IdMixin, Base):
    __tablename__ = "outbox"

    event_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    type: Mapped[str] = mapped_column(sa.String(100), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(sa.String(200))
    entity_type: Mapped[str] = mapped_column(sa.String(64))
    entity_id: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # Set once the dispatcher has created this event's deliveries (one per subscriber).
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        sa.Index("ix_outbox_entity", "entity_type", "entity_id"),
        sa.Index("ix_outbox_pending", "dispatched_at", "id"),
    )

    def envelope(self) -> Event:
        return Event.from_row(self)


class DeliveryStatus(enum.Enum):
    PENDING = "PENDING"  # waiting for its first attempt or for a retry
    DELIVERING = "DELIVERING"  # claimed by a dispatcher, which holds it until `next_attempt_at`
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"  # given up: attempts exhausted, an answer that is not retried, or the subscriber left


class EventDelivery(IdMixin, Base):
    """One event for one subscriber: a plugin (``plugin:<name>``) or a webhook subscription
    (``webhook:<id>``). Each is retried and dead-lettered on its own."""

    __tablename__ = "event_deliveries"

    event_pk: Mapped[int] = mapped_column(IdType, sa.ForeignKey("outbox.id", ondelete="CASCADE"))
    subscriber: Mapped[str] = mapped_column(sa.String(200))
    # Webhook deliveries only. No foreign key: subscriptions are soft-deleted, and the delivery
    # history outlives them.
    subscription_id: Mapped[int | None] = mapped_column(IdType, nullable=True, index=True)
    event_type: Mapped[str] = mapped_column(sa.String(100))
    status: Mapped[DeliveryStatus] = mapped_column(enum_column(DeliveryStatus))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    # When the next attempt is due; while DELIVERING, when the claim lapses.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(sa.String(1000), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("event_pk", "subscriber"),
        sa.Index("ix_event_deliveries_due", "status", "next_attempt_at"),
    )


@dataclass(frozen=True)
class Event:
    """An event as plugins (``crm_on_event``) and webhook receivers see it.

    ``id`` is unique per event and stays the same across redeliveries: delivery is at least
    once, so consumers dedupe by it. ``entity_id`` is the entity's GraphQL ID; ``data`` is the
    entity as the API shows it after the change, ``changes`` what changed (or None).
    """

    id: str
    type: str
    occurred_at: datetime
    actor: str
    entity_type: str
    entity_id: str
    data: Mapping[str, Any] = field(default_factory=dict)
    changes: Mapping[str, Any] | None = None
    # The trace context (W3C ``traceparent`` headers) of the write that raised the event, when
    # tracing was on: its deliveries join that trace (crm_graph/observability/tracing.py).
    trace: Mapping[str, str] | None = None

    @classmethod
    def from_row(cls, row: OutboxEvent) -> Event:
        payload = row.payload or {}
        return cls(
            id=row.event_id,
            type=row.type,
            occurred_at=row.occurred_at,
            actor=row.actor,
            entity_type=row.entity_type,
            entity_id=global_id(row.entity_type, row.entity_id),
            data=payload.get("data", {}),
            changes=payload.get("changes"),
            trace=payload.get("trace"),
        )

    @property
    def entity_pk(self) -> str:
        """The entity's primary key inside this CRM (the GraphQL ID is ``entity_id``)."""
        padded = self.entity_id + "=" * (-len(self.entity_id) % 4)
        return base64.urlsafe_b64decode(padded.encode()).decode().partition(":")[2]

    def to_json(self) -> dict[str, Any]:
        """The JSON body of a webhook delivery."""
        return {
            "id": self.id,
            "type": self.type,
            "occurredAt": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "actor": self.actor,
            "entity": {"type": self.entity_type, "id": self.entity_id},
            "data": jsonable(dict(self.data)),
            "changes": jsonable(dict(self.changes)) if self.changes is not None else None,
        }


def jsonable(value: Any) -> Any:
    """Make a payload JSON-safe: timestamps and dates as ISO 8601, decimals as strings, enums by name."""
    if value is None or isinstance(value, (str, int, float)) and not isinstance(value, enum.Enum):
        return value  # most values of a payload: nothing to do
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.name
    return value


def record_event(
    session: AsyncSession,
    *,
    type: str,
    entity_type: str,
    entity_id: int | str,
    actor: Actor,
    payload: dict[str, Any],
    changes: dict[str, Any] | None = None,
) -> OutboxEvent:
    body = {"data": jsonable(payload)}
    if changes is not None:
        body["changes"] = jsonable(changes)
    trace_context = tracing.carrier()
    if trace_context is not None:
        body["trace"] = trace_context
    event = OutboxEvent(
        event_id=str(uuid.uuid4()),
        type=type,
        occurred_at=utcnow(),
        actor=actor.label,
        entity_type=entity_type,
        entity_id=str(entity_id),
        payload=body,
    )
    session.add(event)
    return event


async def write_events(session: AsyncSession, events: Sequence[OutboxEvent]) -> None:
    """Insert ``events`` (made by ``record_event``, so added to the session) in one statement.

    For writes that record many events at once (a batch of customers, a segment's membership
    change, an insights run): flushed as objects, each event would take an INSERT of its own on
    SQLite, which cannot hand back the ids of a multi-row insert in order, and nothing needs
    those ids here. Events recorded before these keep their place in the outbox."""
    if not events:
        return
    for event in events:
        session.expunge(event)
    await session.flush()
    columns = [a.key for a in sa.inspect(OutboxEvent).column_attrs if a.key != "id"]
    await session.execute(sa.insert(OutboxEvent), [{c: getattr(e, c) for c in columns} for e in events])


def _system_deliveries(scope: Any) -> Any:
    """Deliveries carry event payloads of every record: administrators and integrations only."""
    return None if scope.actor.view_all else sa.false()


guard_object(EventDelivery, "webhooks", extra=_system_deliveries)


def customers_of(event: Event) -> list[int]:
    """The customers an event is about: the customer itself, the ``customerId`` of an order, a
    ticket or an opportunity, the ``customerIds`` of a segment membership change."""
    from crm_graph.core import ids

    data = event.data or {}
    if event.entity_type == "Customer":
        try:  # the entity's global ID (events show entities as the API does)
            type_name, pk = ids.decode(event.entity_id)
        except ValueError:
            return []
        return [pk] if type_name == "Customer" else []
    if isinstance(data.get("customerIds"), list):
        return [int(c) for c in data["customerIds"] if isinstance(c, int) or (isinstance(c, str) and c.isdigit())]
    cid = data.get("customerId")
    return [int(cid)] if isinstance(cid, int) or (isinstance(cid, str) and cid.isdigit()) else []
