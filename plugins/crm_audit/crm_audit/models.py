"""The audit table. It lives on the plugin's own MetaData: the core's migrations never see it,
and the plugin's own Alembic branch (``migrations/versions``) creates it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_graph.core.access import guard_object
from crm_graph.db.base import NAMING_CONVENTION
from crm_graph.db.types import IdType, JSONType, UTCDateTime


class AuditBase(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class AuditEntry(AuditBase):
    """One domain event, as it happened. Written once per event id, whatever the redeliveries."""

    __tablename__ = "crm_audit_entries"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    event_type: Mapped[str] = mapped_column(sa.String(100))
    entity_type: Mapped[str] = mapped_column(sa.String(64))
    entity_id: Mapped[str] = mapped_column(sa.String(200))  # the entity's GraphQL ID
    entity_pk: Mapped[int | None] = mapped_column(IdType, nullable=True)  # its primary key, for joins
    actor: Mapped[str] = mapped_column(sa.String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_fields: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)

    __table_args__ = (
        sa.Index("ix_crm_audit_entries_entity", "entity_id", "occurred_at", "id"),
        sa.Index("ix_crm_audit_entries_occurred_at_id", "occurred_at", "id"),
        sa.Index("ix_crm_audit_entries_event_type", "event_type"),
        sa.Index("ix_crm_audit_entries_entity_pk", "entity_type", "entity_pk", "occurred_at"),
    )


# What the access layer adds to every query of this table: nothing for those who may read the
# audit log, no row for anybody else.
guard_object(AuditEntry, "audit_log")
