"""Domain events and the transactional outbox.

A service records an event with ``record_event`` inside the same transaction as the change it
describes, so the event exists exactly when the change does. Delivery to plugins and webhooks
happens after commit, from the ``outbox`` table.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.db.base import Base, IdMixin
from crm_graph.db.types import JSONType, UTCDateTime


class OutboxEvent(IdMixin, Base):
    __tablename__ = "outbox"

    event_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    type: Mapped[str] = mapped_column(sa.String(100), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(sa.String(200))
    entity_type: Mapped[str] = mapped_column(sa.String(64))
    entity_id: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)

    __table_args__ = (sa.Index("ix_outbox_entity", "entity_type", "entity_id"),)


def jsonable(value: Any) -> Any:
    """Make a payload JSON-safe: timestamps and dates as ISO 8601, decimals as strings, enums by name."""
    import enum
    from datetime import date
    from decimal import Decimal

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
