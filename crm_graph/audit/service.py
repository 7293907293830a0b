"""Writing audit rows and reading them back. No GraphQL here.

``record`` opens its own short write transaction on the database it is given, which callers pass
unscoped: a refused or rolled-back request is audited all the same, and writing the log is not
something the actor's scope could forbid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.audit.models import AuditEntity, AuditEntry, AuditOutcome
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.pagination import SortKey, parse_datetime

MAX_IDS = 100  # entity IDs kept per row (a batch of 100 customers fits)
MAX_NAMES = 100  # field names kept per row
USER_AGENT_LENGTH = 300
REASON_LENGTH = 500

# Newest first; the id breaks ties between rows of the same instant.
NEWEST_FIRST = [
    SortKey(AuditEntry.at, "at", descending=True, parse=parse_datetime),
    SortKey(AuditEntry.id, "id", descending=True),
]


def _clip(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else None


def _distinct(values: Iterable[str], limit: int, length: int) -> list[str]:
    out: list[str] = []
    for value in values:
        value = value[:length]
        if value not in out:
            out.append(value)
            if len(out) == limit:
                break
    return out


async def record(
    db: Any,
    *,
    actor: Actor,
    operation: str,
    action: str | None,
    object: str | None,
    outcome: AuditOutcome,
    entity_ids: Iterable[str] = (),
    changed_fields: Iterable[str] = (),
    error_codes: Iterable[str] = (),
    reason: str | None = None,
    address: str | None = None,
    user_agent: str | None = None,
) -> AuditEntry:
    """Append one row, in a transaction of its own on ``db`` (a ``Database``; pass it unscoped)."""
    ids = _distinct(entity_ids, MAX_IDS, 200)
    entry = AuditEntry(
        at=utcnow(),
        principal=actor.label[:200],
        actor_kind=actor.kind,
        user_id=actor.user_id,
        key_id=actor.key_id,
        session_id=actor.session_id,
        role=actor.role,
        operation=operation[:100],
        action=action,
        object=object,
        entity_ids=ids,
        changed_fields=sorted(_distinct(changed_fields, MAX_NAMES, 100)),
        outcome=outcome,
        error_codes=_distinct(error_codes, MAX_NAMES, 100),
        reason=_clip(reason, REASON_LENGTH),
        address=_clip(address, 64),
        user_agent=_clip(user_agent, USER_AGENT_LENGTH),
    )
    async with db.writer() as session, session.begin():
        session.add(entry)
        await session.flush()
        session.add_all([AuditEntity(entity_id=i, entry_id=entry.id) for i in ids])
    return entry


def audit_select(
    *,
    principal: str | None = None,
    operation: str | None = None,
    outcome: AuditOutcome | None = None,
    entity_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> sa.Select[tuple[AuditEntry]]:
    """Rows matching every condition given: ``since <= at < until``; ``entity_id`` is any global
    ID the row names."""
    stmt = sa.select(AuditEntry)
    if principal is not None:
        stmt = stmt.where(AuditEntry.principal == principal)
    if operation is not None:
        stmt = stmt.where(AuditEntry.operation == operation)
    if outcome is not None:
        stmt = stmt.where(AuditEntry.outcome == outcome)
    if entity_id is not None:
        stmt = stmt.where(AuditEntry.id.in_(sa.select(AuditEntity.entry_id).where(AuditEntity.entity_id == entity_id)))
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    return stmt


async def entries_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, AuditEntry]:
    rows = await session.scalars(sa.select(AuditEntry).where(AuditEntry.id.in_(ids)))
    return {row.id: row for row in rows}
