"""Recording events and reading the trail back. No GraphQL here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_audit.models import AuditEntry
from crm_graph.core import ids
from crm_graph.core.access import SKIP_OPTION
from crm_graph.core.clock import utcnow
from crm_graph.core.events import Event, jsonable
from crm_graph.core.pagination import SortKey, parse_datetime
from crm_graph.db.session import Database

# Newest first; the id breaks ties between events of the same instant.
NEWEST_FIRST = [
    SortKey(AuditEntry.occurred_at, "occurred_at", descending=True, parse=parse_datetime),
    SortKey(AuditEntry.id, "id", descending=True),
]


def _values(event: Event) -> dict[str, Any]:
    changes = jsonable(dict(event.changes)) if event.changes is not None else None
    fields = changes.get("fields") if isinstance(changes, dict) else None
    return {
        "event_id": event.id,
        "event_type": event.type,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "entity_pk": _pk(event.entity_id),
        "actor": event.actor,
        "occurred_at": event.occurred_at,
        "recorded_at": utcnow(),
        "changed_fields": list(fields) if isinstance(fields, list) else None,
        "changes": changes,
        "data": jsonable(dict(event.data)),
    }


def _pk(global_id: str) -> int | None:
    try:
        return ids.decode(global_id)[1]
    except ValueError:
        return None


async def record(db: Database, event: Event) -> bool:
    """Keep ``event``; a redelivery of an event already kept changes nothing.

    Returns whether a row was written. Dedupes in SQL (``ON CONFLICT DO NOTHING`` on the unique
    event id), so two workers delivering the same event at once cannot write it twice.
    """
    dialect = postgresql if db.dialect == "postgresql" else sqlite
    statement = dialect.insert(AuditEntry).values(**_values(event)).on_conflict_do_nothing(index_elements=["event_id"])
    async with db.writer() as session, session.begin():
        result = await session.execute(statement)
    return bool(result.rowcount)


def audit_select(
    *,
    entity_id: str | None = None,
    event_type: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
) -> sa.Select[tuple[AuditEntry]]:
    """Entries matching every condition given. ``event_type`` may end in ``.*`` (``ticket.*``)."""
    stmt = sa.select(AuditEntry)
    if entity_id is not None:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    if event_type is not None:
        if event_type.endswith(".*"):
            stmt = stmt.where(AuditEntry.event_type.startswith(event_type[:-1], autoescape=True))
        elif event_type != "*":
            stmt = stmt.where(AuditEntry.event_type == event_type)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor == actor)
    if since is not None:
        stmt = stmt.where(AuditEntry.occurred_at >= since)
    return stmt


async def entries_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, AuditEntry]:
    rows = await session.scalars(sa.select(AuditEntry).where(AuditEntry.id.in_(ids)))
    return {row.id: row for row in rows}


# --- privacy requests (crm_export_customer_data, crm_erase_customer_data) ---------------------------

ERASED = {"erased": True}


async def entries_about(session: AsyncSession, entity_ids: Sequence[str]) -> list[AuditEntry]:
    """Every entry about one of ``entity_ids`` (a customer and its records), oldest first."""
    if not entity_ids:
        return []
    stmt = sa.select(AuditEntry).where(AuditEntry.entity_id.in_(list(entity_ids)))
    # A privacy request: the core has checked that the caller may see the customer; its copies
    # here go with it whoever may read the history itself.
    stmt = stmt.execution_options(**{SKIP_OPTION: True})
    return list(await session.scalars(stmt.order_by(AuditEntry.occurred_at, AuditEntry.id)))


async def erase_entries(session: AsyncSession, entity_ids: Sequence[str]) -> int:
    """Keep that the changes happened (type, time, who, which fields), drop what they said."""
    if not entity_ids:
        return 0
    statement = (
        sa.update(AuditEntry)
        .where(AuditEntry.entity_id.in_(list(entity_ids)))
        .values(data=ERASED, changes=None)
        .execution_options(synchronize_session=False, **{SKIP_OPTION: True})  # see entries_about
    )
    result = await session.execute(statement)
    return int(result.rowcount or 0)


def to_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "eventId": entry.event_id,
        "eventType": entry.event_type,
        "entityType": entry.entity_type,
        "entityId": entry.entity_id,
        "actor": entry.actor,
        "occurredAt": entry.occurred_at.isoformat(),
        "changedFields": entry.changed_fields,
        "changes": entry.changes,
        "data": entry.data,
    }


# --- what the plugin adds to customers (Customer.lastChange, CustomerFilter.changes) ----------------


async def latest_about_customers(session: AsyncSession, customer_ids: Sequence[int]) -> dict[int, AuditEntry]:
    """The newest entry about each of the customers, in one query for all of them."""
    newest = (
        sa.select(sa.func.max(AuditEntry.id))
        .where(AuditEntry.entity_type == "Customer", AuditEntry.entity_pk.in_(list(customer_ids)))
        .group_by(AuditEntry.entity_pk)
    )
    rows = await session.scalars(sa.select(AuditEntry).where(AuditEntry.id.in_(newest)))
    return {row.entity_pk: row for row in rows if row.entity_pk is not None}


def changes_condition(ctx: Any, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    """``changes: {since, actor, count}``: customers whose recorded changes (since a time, by an
    actor) number ``count`` (at least one when ``count`` is not given). A correlated count on the
    ``(entity_type, entity_pk, occurred_at)`` index. Callers who may not read the change history
    see no changes, as with ``changeHistory`` itself."""
    from crm_graph.core import filters as f
    from crm_graph.customers.models import Customer

    ops = f.operators(ops, path, ("since", "actor", "count"))
    conditions = [AuditEntry.entity_type == "Customer", AuditEntry.entity_pk == Customer.id]
    if "since" in ops:
        try:
            conditions.append(AuditEntry.occurred_at >= f.aware_datetime(ops["since"]))
        except (TypeError, ValueError) as exc:
            raise f.FilterError(f"{path}.since", str(exc)) from None
    if "actor" in ops:
        if not isinstance(ops["actor"], str):
            raise f.FilterError(f"{path}.actor", "expected a string such as \"user:42\"")
        conditions.append(AuditEntry.actor == ops["actor"])
    counted = sa.select(sa.func.count()).where(*conditions).scalar_subquery()
    return f.comparable_condition(counted, ops.get("count") or {"gte": 1}, f"{path}.count", f.whole_number)
