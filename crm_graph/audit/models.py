"""The security audit log: one row per mutation (whatever its outcome) and per refused request.

Append-only. Rows hold who asked (principal, kind, user, key, session, role, address, user agent),
what they asked for (the GraphQL field, its declared permission, the global IDs involved, the
*names* of the input fields) and how it ended. Never a value: the log is read by administrators
who must not learn passwords, tokens or a customer's details from it, and it must not become a
second copy of personal data that an erasure would have to chase.

Nothing here references ``users`` or ``api_keys`` by foreign key: the log outlives the
principals it names. Retention (deleting old rows) is out of scope for now; the ORM refuses to
update or delete a row (``_refuse_changes``), and the API has no way to.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from crm_graph.core.access import guard_object
from crm_graph.db.base import Base, IdMixin
from crm_graph.db.types import IdType, JSONType, UTCDateTime, enum_column


class AuditOutcome(enum.Enum):
    OK = "OK"  # the mutation ran and returned no errors
    USER_ERROR = "USER_ERROR"  # it returned user errors (validation, not found, ...) or a client error
    DENIED = "DENIED"  # refused: the role, a plugin's crm_authorize, or the record's write rule
    UNAUTHENTICATED = "UNAUTHENTICATED"  # no (valid) credentials for a field that needs them
    ERROR = "ERROR"  # an unexpected failure (the client saw INTERNAL_SERVER_ERROR)


class AuditEntry(IdMixin, Base):
    __tablename__ = "audit_log"

    at: Mapped[datetime] = mapped_column(UTCDateTime)
    principal: Mapped[str] = mapped_column(sa.String(200))  # Actor.label: "api_key:3", "user:5", "anonymous"
    actor_kind: Mapped[str] = mapped_column(sa.String(32))
    user_id: Mapped[int | None] = mapped_column(IdType)
    key_id: Mapped[int | None] = mapped_column(IdType)
    session_id: Mapped[int | None] = mapped_column(IdType)
    role: Mapped[str | None] = mapped_column(sa.String(64))
    operation: Mapped[str] = mapped_column(sa.String(100))  # the root field's GraphQL name
    action: Mapped[str | None] = mapped_column(sa.String(32))  # its declared permission, "create"
    object: Mapped[str | None] = mapped_column(sa.String(64))  # ... on "customers"; None: public
    entity_ids: Mapped[list[str]] = mapped_column(JSONType)  # global IDs in the arguments and the result
    changed_fields: Mapped[list[str]] = mapped_column(JSONType)  # names of the input's fields, never values
    outcome: Mapped[AuditOutcome] = mapped_column(enum_column(AuditOutcome))
    error_codes: Mapped[list[str]] = mapped_column(JSONType)
    reason: Mapped[str | None] = mapped_column(sa.String(500))  # why a request was refused
    address: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(300))

    __table_args__ = (
        sa.Index("ix_audit_log_at_id", "at", "id"),
        sa.Index("ix_audit_log_principal", "principal", "at", "id"),
        sa.Index("ix_audit_log_operation", "operation", "at", "id"),
        sa.Index("ix_audit_log_outcome", "outcome", "at", "id"),
    )


class AuditEntity(Base):
    """The entity IDs of an entry once more, one row each, so ``auditLog(filter: {entityId})`` is an
    index lookup on SQLite and PostgreSQL alike (``entity_ids`` is for reading)."""

    __tablename__ = "audit_log_entities"

    entity_id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    entry_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("audit_log.id", ondelete="CASCADE"), primary_key=True)


guard_object(AuditEntry, "audit_log")
guard_object(AuditEntity, "audit_log")


class AppendOnly(Exception):
    """Raised when code tries to change or delete audit rows."""


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntity, "before_update")
@event.listens_for(AuditEntry, "before_delete")
@event.listens_for(AuditEntity, "before_delete")
def _refuse_instance_changes(*_: object) -> None:
    raise AppendOnly("the audit log is append-only")


@event.listens_for(Session, "do_orm_execute")
def _refuse_changes(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and any(
        m.class_ in (AuditEntry, AuditEntity) for m in state.all_mappers
    ):
        raise AppendOnly("the audit log is append-only")
