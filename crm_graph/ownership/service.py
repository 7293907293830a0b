"""Reassigning records to another owner (and team).

A reassignment needs the ``assign`` permission of the record's object type (checked again by
the access layer at flush) and write access to the record; a record the actor cannot see is
NOT_FOUND, like a missing one. The new owner must be an active user; the team defaults to
theirs. Each changed record raises ``<entity>.owner_changed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.auth.models import Team, User
from crm_graph.core.access import AccessDenied, guards
from crm_graph.core.actor import Actor
from crm_graph.core.errors import ErrorCollector, FieldError, NotFound, ValidationFailed
from crm_graph.core.events import record_event

MAX_RECORDS = 100
EVENT_NAMES = {"Customer": "customer", "Opportunity": "opportunity", "Quote": "quote", "Order": "order", "Ticket": "ticket"}


def owned_model(type_name: str) -> Any:
    return next((m for m, g in guards().items() if g.owned and m.__name__ == type_name), None)


async def reassign(
    session: AsyncSession, *, actor: Actor, records: Sequence[tuple[str, int]], owner_id: int, team_id: int | None = None,
    keep_team: bool = False,
) -> list[Any]:
    """Give ``records`` ((type name, pk) pairs) to user ``owner_id``; returns the records."""
    if len(records) > MAX_RECORDS:
        raise ValidationFailed([FieldError("ids", "TOO_MANY", f"At most {MAX_RECORDS} records at once.")])
    owner = await session.get(User, owner_id)
    if owner is None or not owner.active:
        raise NotFound("User", "ownerId")
    if team_id is not None and await session.get(Team, team_id) is None:
        raise NotFound("Team", "teamId")
    errors = ErrorCollector()
    out = []
    for index, (type_name, pk) in enumerate(records):
        model = owned_model(type_name)
        if model is None:
            errors.add(f"ids.{index}", "INVALID_ID", f"A {type_name} has no owner.")
            continue
        obj = guards()[model].object
        if not actor.can(obj, "assign"):
            raise AccessDenied(f"Reassigning {obj} needs the `{obj}:assign` permission.", f"ids.{index}")
        record = await session.get(model, pk)
        if record is None or getattr(record, "deleted_at", None) is not None:
            errors.add(f"ids.{index}", "NOT_FOUND", f"{type_name} was not found.")
            continue
        new_team = record.team_id if keep_team else (team_id if team_id is not None else owner.team_id)
        changes = {}
        if record.owner_id != owner.id:
            changes["ownerId"] = {"from": record.owner_id, "to": owner.id}
        if record.team_id != new_team:
            changes["teamId"] = {"from": record.team_id, "to": new_team}
        if changes:
            record.owner_id, record.team_id = owner.id, new_team
            record_event(
                session, type=f"{EVENT_NAMES[type_name]}.owner_changed", entity_type=type_name, entity_id=record.id,
                actor=actor, payload={"id": record.id, "ownerId": owner.id, "teamId": new_team}, changes=changes,
            )
        out.append(record)
    if errors:
        raise ValidationFailed(errors.errors)
    await session.flush()
    return out


async def owners(session: AsyncSession, ids: Sequence[int]) -> dict[int, User]:
    return {u.id: u for u in await session.scalars(sa.select(User).where(User.id.in_(ids)))}


async def teams(session: AsyncSession, ids: Sequence[int]) -> dict[int, Team]:
    return {t.id: t for t in await session.scalars(sa.select(Team).where(Team.id.in_(ids)))}
