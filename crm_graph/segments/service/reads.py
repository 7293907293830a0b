"""Reading segments and who is in them.

Membership is answered in SQL. STATIC and SNAPSHOT members are the rows of ``segment_members``;
a DYNAMIC segment's members are whoever matches its filter now, evaluated live on every read.
The ``segment_members`` rows of a DYNAMIC segment are only the membership last seen by the
periodic diff (``membership.diff_dynamic``), kept to announce entries and exits: no read of
members goes through them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.errors import NotFound
from crm_graph.core.filters import FilterError
from crm_graph.customers.filters import build_condition
from crm_graph.customers.models import Customer
from crm_graph.segments.models import Segment, SegmentKind, SegmentMember

INVALID_FILTER = "INVALID_FILTER"


def segment_payload(segment: Segment) -> dict[str, Any]:
    return {
        "id": segment.id,
        "name": segment.name,
        "description": segment.description,
        "kind": segment.kind,
        "filter": segment.filter,
        "refreshedAt": segment.refreshed_at,
        "version": segment.version,
    }


async def get_segment(session: AsyncSession, segment_id: int, *, include_deleted: bool = False) -> Segment | None:
    segment = await session.get(Segment, segment_id)
    if segment is None or (segment.deleted_at is not None and not include_deleted):
        return None
    return segment


async def live_segment(session: AsyncSession, segment_id: int, *, lock: bool = False) -> Segment:
    """The segment, not deleted, or ``NotFound``. ``lock`` takes its row lock (PostgreSQL) and
    reads it afresh: what changes its membership in bulk holds it, so two of those on one
    segment run one after the other."""
    if lock:
        segment = await session.scalar(
            sa.select(Segment).where(Segment.id == segment_id).with_for_update()
            .execution_options(populate_existing=True)
        )
    else:
        segment = await session.get(Segment, segment_id)
    if segment is None or segment.deleted_at is not None:
        raise NotFound("Segment")
    return segment


async def segments_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Segment]:
    rows = await session.scalars(sa.select(Segment).where(Segment.id.in_(ids), Segment.deleted_at.is_(None)))
    return {s.id: s for s in rows}


def segment_select(filter: Mapping[str, Any] | None = None) -> sa.Select[tuple[Segment]]:
    from crm_graph.core import filters as f

    stmt = sa.select(Segment).where(Segment.deleted_at.is_(None))
    if filter:
        spec = {
            "name": f.column_string(Segment.name),
            "kind": f.column_enum(Segment.kind, SegmentKind.__members__),
        }
        stmt = stmt.where(f.compile_filter(spec, filter))
    return stmt


async def condition(session: AsyncSession, segment: Segment) -> sa.ColumnElement[bool]:
    """SQL that is true for the segment's members (rows of ``customers``); ``FilterError`` if the
    stored filter of a DYNAMIC segment no longer validates."""
    if segment.kind is SegmentKind.DYNAMIC:
        return await build_condition(session, segment.filter or {}, within_segment=segment.id)
    return sa.exists().where(SegmentMember.segment_id == segment.id, SegmentMember.customer_id == Customer.id)


async def members_select(session: AsyncSession, segment: Segment) -> sa.Select[tuple[Customer]]:
    return sa.select(Customer).where(Customer.deleted_at.is_(None), await condition(session, segment))


async def validity(session: AsyncSession, segment: Segment) -> str | None:
    """None when the segment is usable, else why not."""
    if segment.kind is SegmentKind.STATIC:
        return None
    try:
        await build_condition(session, segment.filter or {}, within_segment=segment.id)
    except FilterError as exc:
        return str(exc)
    return None


async def size(session: AsyncSession, segment: Segment) -> int:
    stmt = await members_select(session, segment)
    return int(await session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery())) or 0)


async def segments_of(session: AsyncSession, customer_ids: Sequence[int]) -> dict[int, list[Segment]]:
    """The live segments each customer belongs to: stored memberships of STATIC and SNAPSHOT
    segments in one query, then one query per valid DYNAMIC segment for the whole batch."""
    out: dict[int, list[Segment]] = defaultdict(list)
    stored = await session.execute(
        sa.select(SegmentMember.customer_id, Segment)
        .join(Segment, Segment.id == SegmentMember.segment_id)
        .where(SegmentMember.customer_id.in_(customer_ids), Segment.deleted_at.is_(None),
               Segment.kind != SegmentKind.DYNAMIC)
        .order_by(Segment.name, Segment.id)
    )
    for customer_id, segment in stored.all():
        out[customer_id].append(segment)
    dynamic = await session.scalars(
        sa.select(Segment).where(Segment.kind == SegmentKind.DYNAMIC, Segment.deleted_at.is_(None))
    )
    for segment in dynamic:
        try:
            where = await condition(session, segment)
        except FilterError:
            continue  # an invalid segment has no members
        matching = await session.scalars(
            sa.select(Customer.id).where(Customer.id.in_(customer_ids), Customer.deleted_at.is_(None), where)
        )
        for customer_id in matching:
            out[customer_id].append(segment)
    for segments in out.values():
        segments.sort(key=lambda s: (s.name, s.id))
    return out
