"""Creating, changing, deleting and refreshing segments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_graph.core import errors as codes
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, FieldError, NotFound, ValidationFailed, VersionConflict
from crm_graph.core.events import jsonable, record_event
from crm_graph.core.filters import FilterError
from crm_graph.core.hooks import validate_with_plugins
from crm_graph.customers.filters import build_condition
from crm_graph.segments.models import Segment, SegmentKind
from crm_graph.segments.service.membership import refresh_snapshot, track_dynamic
from crm_graph.segments.service.reads import INVALID_FILTER, get_segment, live_segment, segment_payload, validity


def _kind(value: Any) -> SegmentKind | None:
    if isinstance(value, SegmentKind):
        return value
    return SegmentKind.__members__.get(value) if isinstance(value, str) else None


async def _check_filter(
    session: AsyncSession, kind: SegmentKind, data: Mapping[str, Any], errors: ErrorCollector, segment_id: int | None = None
) -> dict[str, Any] | None:
    filter = data.get("filter")
    if kind is SegmentKind.STATIC:
        if filter:
            errors.add("filter", codes.INVALID_VALUE, "A STATIC segment has no filter: add members instead.")
        return None
    if not filter:
        errors.add("filter", codes.REQUIRED, f"A {kind.name} segment needs a filter.")
        return None
    try:
        await build_condition(session, filter, within_segment=segment_id)
    except FilterError as exc:
        errors.add(exc.path, INVALID_FILTER, exc.reason)
        return None
    return jsonable(dict(filter))


def _name(data: Mapping[str, Any], errors: ErrorCollector) -> str | None:
    name = (data.get("name") or "").strip()
    if not name:
        errors.add("name", codes.REQUIRED, "A segment needs a name.")
        return None
    if len(name) > 200:
        errors.add("name", codes.INVALID_VALUE, "At most 200 characters.")
        return None
    return name


async def create_segment(session: AsyncSession, *, actor: Actor, data: Mapping[str, Any]) -> Segment:
    """A SNAPSHOT applies its filter at once; so does a DYNAMIC one, to start the membership its
    entry and exit events are counted from (both announce their first members)."""
    errors = ErrorCollector()
    name = _name(data, errors)
    kind = _kind(data.get("kind"))
    if kind is None:
        errors.add("kind", codes.INVALID_VALUE, "kind is STATIC, DYNAMIC or SNAPSHOT.")
        errors.raise_if_any()
    stored = await _check_filter(session, kind, data, errors)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="segment", data=data, actor=actor)
    now = utcnow()
    segment = Segment(name=name, description=data.get("description"), kind=kind, filter=stored, version=1,
                      created_at=now, updated_at=now)
    session.add(segment)
    await session.flush()
    record_event(session, type="segment.created", entity_type="Segment", entity_id=segment.id, actor=actor,
                 payload=segment_payload(segment))
    if kind is SegmentKind.SNAPSHOT:
        await refresh_snapshot(session, segment, actor)
    elif kind is SegmentKind.DYNAMIC:
        await track_dynamic(session, segment, actor)
    return segment


async def update_segment(
    session: AsyncSession, *, actor: Actor, segment_id: int, data: Mapping[str, Any], expected_version: int | None
) -> Segment:
    segment = await live_segment(session, segment_id)
    if expected_version is not None and expected_version != segment.version:
        raise VersionConflict(expected_version, segment.version)
    errors = ErrorCollector()
    before = segment_payload(segment)
    if "name" in data:
        segment.name = _name(data, errors) or segment.name
    if "description" in data:
        segment.description = data["description"]
    if "filter" in data:
        segment.filter = await _check_filter(session, segment.kind, data, errors, segment.id)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="segment", data={**data, "id": segment_id}, actor=actor)
    segment.updated_at = utcnow()
    try:
        await session.flush()
    except StaleDataError:
        raise VersionConflict(expected_version or segment.version, segment.version + 1) from None
    after = segment_payload(segment)
    changed = sorted(k for k in after if after[k] != before[k] and k != "version")
    record_event(session, type="segment.updated", entity_type="Segment", entity_id=segment.id, actor=actor,
                 payload=after, changes={"fields": changed})
    return segment


async def delete_segment(session: AsyncSession, *, actor: Actor, segment_id: int) -> Segment:
    segment = await live_segment(session, segment_id)
    await validate_with_plugins(session, entity="segment", data={"id": segment_id, "delete": True}, actor=actor)
    segment.deleted_at = utcnow()
    await session.flush()
    record_event(session, type="segment.deleted", entity_type="Segment", entity_id=segment.id, actor=actor,
                 payload=segment_payload(segment))
    return segment


async def restore_segment(session: AsyncSession, *, actor: Actor, segment_id: int) -> Segment:
    segment = await get_segment(session, segment_id, include_deleted=True)
    if segment is None:
        raise NotFound("Segment")
    if segment.deleted_at is not None:
        await validate_with_plugins(session, entity="segment", data={"id": segment_id, "restore": True}, actor=actor)
        segment.deleted_at = None
        await session.flush()
        record_event(session, type="segment.restored", entity_type="Segment", entity_id=segment.id, actor=actor,
                     payload=segment_payload(segment))
    return segment


async def refresh_segment(session: AsyncSession, *, actor: Actor, segment_id: int) -> Segment:
    """SNAPSHOT: apply the filter again. DYNAMIC: run its diff now (entry and exit events for
    whoever started or stopped matching since the last one), instead of at the next periodic run."""
    segment = await live_segment(session, segment_id, lock=True)
    if segment.kind is SegmentKind.STATIC:
        raise ValidationFailed([FieldError("id", codes.INVALID_STATE, "A STATIC segment has no filter to apply.")])
    if segment.kind is SegmentKind.SNAPSHOT:
        await refresh_snapshot(session, segment, actor)
        return segment
    reason = await validity(session, segment)
    if reason:
        raise ValidationFailed([FieldError("id", INVALID_FILTER, reason)])
    await track_dynamic(session, segment, actor)
    segment.refreshed_at = utcnow()
    await session.flush()
    return segment
