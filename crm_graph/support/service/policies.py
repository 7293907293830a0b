"""SLA policies: which tickets they cover, their targets and business hours."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_graph.core import errors as codes
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, FieldError, NotFound, ValidationFailed, VersionConflict
from crm_graph.core.events import record_event
from crm_graph.core.hooks import validate_with_plugins
from crm_graph.core.pagination import SortKey
from crm_graph.support import errors as support_codes
from crm_graph.support import sla
from crm_graph.support.filters import clean_tags
from crm_graph.support.models import (
    MAX_TARGET_MINUTES,
    SlaPolicy,
    TicketChannel,
    TicketPriority,
    Weekday,
)
from crm_graph.support.service.common import (
    InvalidValue,
    check_version,
    enum_names,
    text,
)

DEFAULT_RANK = 100
# Keys that always have a value; the others may be cleared with null (lists become "any").
_NOT_NULL = ("name", "firstResponseMinutes", "resolutionMinutes", "rank", "active")
MAX_RANK = 1_000_000

# Policies are listed in matching order: rank, then age.
POLICY_ORDER = [SortKey(SlaPolicy.rank, "rank", False, int), SortKey(SlaPolicy.id, "id", False, int)]


def policy_select() -> sa.Select[tuple[SlaPolicy]]:
    return sa.select(SlaPolicy)


async def policies_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, SlaPolicy]:
    rows = await session.scalars(sa.select(SlaPolicy).where(SlaPolicy.id.in_(ids)))
    return {p.id: p for p in rows}


async def matching_policy(session: AsyncSession, *, priority: str, channel: str, tags: list[str]) -> SlaPolicy | None:
    """The active policy with the lowest rank (then the oldest) that covers such a ticket."""
    policies = await session.scalars(
        sa.select(SlaPolicy).where(SlaPolicy.active.is_(True)).order_by(SlaPolicy.rank, SlaPolicy.id)
    )
    for policy in policies:
        if sla.policy_matches(policy, priority=priority, channel=channel, tags=tags):
            return policy
    return None


def policy_payload(policy: SlaPolicy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "name": policy.name,
        "description": policy.description,
        "rank": policy.rank,
        "active": policy.active,
        "priorities": policy.priorities,
        "channels": policy.channels,
        "tags": policy.tags,
        "firstResponseMinutes": policy.first_response_minutes,
        "resolutionMinutes": policy.resolution_minutes,
        "businessHours": None
        if policy.time_zone is None
        else {
            "timeZone": policy.time_zone,
            "weekdays": policy.weekdays,
            "startTime": policy.day_start.isoformat() if policy.day_start else None,
            "endTime": policy.day_end.isoformat() if policy.day_end else None,
        },
        "version": policy.version,
    }


async def create_sla_policy(session: AsyncSession, *, actor: Actor, data: Mapping[str, Any]) -> SlaPolicy:
    errors = ErrorCollector()
    now = utcnow()
    policy = SlaPolicy(
        rank=DEFAULT_RANK, active=True, priorities=[], channels=[], tags=[], version=1, created_at=now, updated_at=now
    )
    for key in ("name", "firstResponseMinutes", "resolutionMinutes"):
        if data.get(key) is None:
            errors.add(key, codes.REQUIRED, f"{key} is required.")
    await _apply(session, policy, {k: v for k, v in data.items() if v is not None or k not in _NOT_NULL}, errors)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="sla_policy", data=data, actor=actor)
    session.add(policy)
    await _flush_named(session, policy)
    record_event(session, type="sla_policy.created", entity_type="SlaPolicy", entity_id=policy.id, actor=actor,
                 payload=policy_payload(policy))
    return policy


async def update_sla_policy(
    session: AsyncSession, *, actor: Actor, policy_id: int, data: Mapping[str, Any], expected_version: int | None
) -> SlaPolicy:
    """Change a policy. Present keys set a value, absent keys keep it; ``businessHours: null``
    makes the policy count around the clock. Tickets keep the due times they were given."""
    policy = await session.get(SlaPolicy, policy_id)
    if policy is None:
        raise NotFound("SLA policy")
    check_version(expected_version, policy.version)
    before = policy_payload(policy)
    errors = ErrorCollector()
    for key in _NOT_NULL:
        if key in data and data[key] is None:
            errors.add(key, codes.REQUIRED, f"{key} cannot be cleared.")
    await _apply(session, policy, {k: v for k, v in data.items() if v is not None or k not in _NOT_NULL}, errors)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="sla_policy", data={**data, "id": policy_id}, actor=actor)
    policy.updated_at = utcnow()
    try:
        await _flush_named(session, policy)
    except StaleDataError:
        fresh = await session.scalar(sa.select(SlaPolicy.version).where(SlaPolicy.id == policy_id))
        raise VersionConflict(expected_version or policy.version, fresh or 0) from None
    after = policy_payload(policy)
    changed = sorted(k for k in after if after[k] != before.get(k) and k != "version")
    record_event(session, type="sla_policy.updated", entity_type="SlaPolicy", entity_id=policy.id, actor=actor,
                 payload=after, changes={"fields": changed, "before": {k: before.get(k) for k in changed}})
    return policy


async def _flush_named(session: AsyncSession, policy: SlaPolicy) -> None:
    """Write the policy; a name that another request gave its policy a moment ago (after the check
    in ``_apply``, before this write) is DUPLICATE, as one seen by the check is."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise ValidationFailed([FieldError(
            "name", codes.DUPLICATE, f"An SLA policy called {policy.name!r} was just created by another request."
        )]) from None


async def _apply(session: AsyncSession, policy: SlaPolicy, data: Mapping[str, Any], errors: ErrorCollector) -> None:
    if "name" in data:
        name = text(data, "name", 200, errors, required=True)
        if name is not None:
            clash = await session.scalar(
                sa.select(SlaPolicy.id).where(sa.func.lower(SlaPolicy.name) == name.lower(), SlaPolicy.id != (policy.id or 0))
            )
            if clash is not None:
                errors.add("name", codes.DUPLICATE, f"An SLA policy called {name!r} exists already.")
            policy.name = name
    if "description" in data:
        policy.description = text(data, "description", 10_000, errors)
    for key, attr in (("firstResponseMinutes", "first_response_minutes"), ("resolutionMinutes", "resolution_minutes")):
        if key in data:
            minutes = data[key]
            if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 < minutes <= MAX_TARGET_MINUTES:
                errors.add(key, support_codes.OUT_OF_RANGE,
                           f"A target is a whole number of minutes from 1 to {MAX_TARGET_MINUTES} (366 days).")
            else:
                setattr(policy, attr, minutes)
    if "rank" in data:
        rank = data["rank"]
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank <= MAX_RANK:
            errors.add("rank", support_codes.OUT_OF_RANGE, f"rank is a whole number from 0 to {MAX_RANK}.")
        else:
            policy.rank = rank
    if "active" in data:
        policy.active = bool(data["active"])
    if "priorities" in data:
        policy.priorities = enum_names(TicketPriority, data["priorities"], "priorities", errors)
    if "channels" in data:
        policy.channels = enum_names(TicketChannel, data["channels"], "channels", errors)
    if "tags" in data:
        try:
            policy.tags = clean_tags(data["tags"] or [])
        except InvalidValue as exc:
            errors.add("tags", codes.INVALID_VALUE, str(exc))
    if "businessHours" in data:
        _business_hours(policy, data["businessHours"], errors)


def _business_hours(policy: SlaPolicy, hours: Mapping[str, Any] | None, errors: ErrorCollector) -> None:
    if hours is None:
        policy.time_zone = policy.weekdays = policy.day_start = policy.day_end = None
        return
    field = "businessHours"
    ok = True
    try:
        time_zone = sla.zone(hours.get("timeZone")).key
    except sla.InvalidTimeZone:
        missing = not hours.get("timeZone")
        errors.add(f"{field}.timeZone", codes.REQUIRED if missing else support_codes.INVALID_TIME_ZONE,
                   "Give an IANA time zone name such as Europe/Berlin or America/New_York.")
        ok = False
    weekdays = enum_names(Weekday, hours.get("weekdays"), f"{field}.weekdays", errors)
    if not weekdays:
        errors.add(f"{field}.weekdays", codes.REQUIRED, "Business hours need at least one weekday.")
        ok = False
    times: dict[str, time] = {}
    for key in ("startTime", "endTime"):
        try:
            times[key] = _time(hours.get(key))
        except InvalidValue as exc:
            errors.add(f"{field}.{key}", codes.REQUIRED if hours.get(key) is None else codes.INVALID_VALUE, str(exc))
            ok = False
    if len(times) == 2 and times["startTime"] >= times["endTime"]:
        errors.add(f"{field}.endTime", support_codes.INVALID_BUSINESS_HOURS,
                   "The business day must end after it starts (hours across midnight are not supported).")
        ok = False
    if ok:
        policy.time_zone = time_zone
        policy.weekdays = weekdays
        policy.day_start = times["startTime"]
        policy.day_end = times["endTime"]


def _time(value: Any) -> time:
    if isinstance(value, time):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = time.fromisoformat(value)
        except ValueError:
            raise InvalidValue(f"{value!r} is not a time of day (HH:MM).") from None
    else:
        raise InvalidValue("A time of day (HH:MM) is required.")
    if parsed.tzinfo is not None:
        raise InvalidValue("Business hours are local times: give the time zone in timeZone, not here.")
    return parsed.replace(microsecond=0)
