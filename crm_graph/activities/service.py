"""Activity rules: log notes, calls, meetings, emails and tasks on a customer's timeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.activities.models import Activity, ActivityType, Direction
from crm_graph.core import errors as codes
from crm_graph.core import filters as f
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, NotFound, ValidationFailed
from crm_graph.core.events import record_event
from crm_graph.core.hooks import validate_with_plugins
from crm_graph.core.pagination import SortKey, parse_datetime
from crm_graph.customers import service as customers

MAX_DURATION_MINUTES = 24 * 60


def activity_payload(activity: Activity) -> dict[str, Any]:
    return {
        "id": activity.id,
        "customerId": activity.customer_id,
        "type": activity.type,
        "subject": activity.subject,
        "body": activity.body,
        "occurredAt": activity.occurred_at,
        "direction": activity.direction,
        "durationMinutes": activity.duration_minutes,
        "dueAt": activity.due_at,
        "assignee": activity.assignee,
        "completedAt": activity.completed_at,
        "version": activity.version,
    }


async def log_activity(session: AsyncSession, *, actor: Actor, data: Mapping[str, Any]) -> Activity:
    errors = ErrorCollector()
    customer_id = data.get("customerId")
    if customer_id is None or await customers.get_customer(session, customer_id) is None:
        errors.add("customerId", codes.NOT_FOUND, "The customer was not found.")
    kind = data.get("type")
    kind = kind if isinstance(kind, ActivityType) else ActivityType[kind] if kind in ActivityType.__members__ else None
    if kind is None or kind is ActivityType.TICKET:
        manual = ", ".join(t for t in ActivityType.__members__ if t != "TICKET")
        errors.add("type", codes.INVALID_VALUE, f"type is one of {manual}; TICKET entries come from the support desk.")
    subject = (data.get("subject") or "").strip()
    if not subject:
        errors.add("subject", codes.REQUIRED, "An activity needs a subject.")
    elif len(subject) > 300:
        errors.add("subject", codes.INVALID_VALUE, "At most 300 characters.")
    body = data.get("body")
    if body is not None and len(body) > 100_000:
        errors.add("body", codes.INVALID_VALUE, "At most 100,000 characters.")
    now = utcnow()
    occurred_at: datetime = data.get("occurredAt") or now
    direction = data.get("direction")
    if direction is not None and not isinstance(direction, Direction):
        direction = Direction[direction]
    if direction is not None and kind not in (ActivityType.CALL, ActivityType.EMAIL):
        errors.add("direction", codes.INVALID_VALUE, "Only calls and emails have a direction.")
    duration = data.get("durationMinutes")
    if duration is not None and not (0 <= duration <= MAX_DURATION_MINUTES):
        errors.add("durationMinutes", codes.INVALID_VALUE, f"Between 0 and {MAX_DURATION_MINUTES} minutes.")
    due_at = data.get("dueAt")
    assignee = (data.get("assignee") or "").strip() or None
    if kind is not ActivityType.TASK and (due_at is not None or assignee is not None):
        field = "dueAt" if due_at is not None else "assignee"
        errors.add(field, codes.INVALID_VALUE, "Only tasks have a due date and an assignee.")
    if assignee is not None and len(assignee) > 200:
        errors.add("assignee", codes.INVALID_VALUE, "At most 200 characters.")
    errors.raise_if_any()
    await validate_with_plugins(session, entity="activity", data=data, actor=actor)
    activity = Activity(
        customer_id=customer_id,
        type=kind,
        subject=subject,
        body=body,
        occurred_at=occurred_at,
        direction=direction,
        duration_minutes=duration,
        due_at=due_at,
        assignee=assignee,
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(activity)
    await session.flush()
    record_event(session, type="activity.created", entity_type="Activity", entity_id=activity.id, actor=actor,
                 payload=activity_payload(activity))
    return activity


async def add_system_entry(
    session: AsyncSession, *, customer_id: int, type: ActivityType, subject: str, body: str | None = None
) -> Activity:
    """A timeline entry written by another part of the CRM (e.g. a ticket opened or resolved).

    The change it reports has its own event, so no activity event is recorded for it.
    """
    now = utcnow()
    activity = Activity(customer_id=customer_id, type=type, subject=subject[:300], body=body, occurred_at=now,
                        version=1, created_at=now, updated_at=now)
    session.add(activity)
    return activity


async def complete_task(session: AsyncSession, *, actor: Actor, activity_id: int) -> Activity:
    activity = await get_activity(session, activity_id)
    if activity is None:
        raise NotFound("Activity")
    if activity.type is not ActivityType.TASK:
        raise ValidationFailed([codes.FieldError("id", codes.INVALID_STATE, "Only a task can be completed.")])
    if activity.completed_at is None:  # completing twice is harmless: the first time stands
        await validate_with_plugins(session, entity="activity", data={"id": activity_id, "complete": True}, actor=actor)
        activity.completed_at = utcnow()
        activity.updated_at = activity.completed_at
        await session.flush()
        record_event(session, type="activity.updated", entity_type="Activity", entity_id=activity.id, actor=actor,
                     payload=activity_payload(activity), changes={"fields": ["completedAt"]})
    return activity


async def get_activity(session: AsyncSession, activity_id: int) -> Activity | None:
    activity = await session.get(Activity, activity_id)
    if activity is None or activity.deleted_at is not None:
        return None
    return activity


async def activities_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Activity]:
    rows = await session.scalars(sa.select(Activity).where(Activity.id.in_(ids), Activity.deleted_at.is_(None)))
    return {a.id: a for a in rows}


ACTIVITY_FILTER: f.FilterSpec = {
    "type": f.column_enum(Activity.type, ActivityType.__members__),
    "subject": f.column_string(Activity.subject),
    "assignee": f.column_string(Activity.assignee),
    "customerId": f.column_comparable(Activity.customer_id, int),
    "occurredAt": f.column_comparable(Activity.occurred_at, f.aware_datetime),
    "dueAt": f.column_comparable(Activity.due_at, f.aware_datetime),
    "completedAt": f.column_comparable(Activity.completed_at, f.aware_datetime),
}

# The timeline order: newest first, id as tie-breaker.
TIMELINE = [
    SortKey(Activity.occurred_at, "occurred_at", True, parse_datetime),
    SortKey(Activity.id, "id", True, int),
]


def activity_select(filter: Mapping[str, Any] | None = None) -> sa.Select[tuple[Activity]]:
    """Live activities of live customers matching ``filter``."""
    from crm_graph.customers.models import Customer

    stmt = (
        sa.select(Activity)
        .join(Customer, Customer.id == Activity.customer_id)
        .where(Activity.deleted_at.is_(None), Customer.deleted_at.is_(None))
    )
    if filter:
        stmt = stmt.where(f.compile_filter(ACTIVITY_FILTER, filter))
    return stmt
