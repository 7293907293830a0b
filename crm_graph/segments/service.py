"""Segment rules: static, dynamic and snapshot segments, membership, and value analyses.

- STATIC: members are added and removed explicitly.
- DYNAMIC: a stored customer filter; membership is whatever matches now, evaluated in SQL.
- SNAPSHOT: a filter applied at creation and on ``refresh_segment``; in between the members are
  stored and may also be added or removed by hand.
A filter is checked when it is saved. One that stops validating later (a custom field deleted,
a referenced segment deleted) makes the segment invalid, with the reason, instead of failing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
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
from crm_graph.customers.models import Customer
from crm_graph.segments import rfm
from crm_graph.segments.models import RfmRun, Segment, SegmentKind, SegmentMember, ValueTier
from crm_graph.segments.values import main_currency, ranked_revenue, revenue_by_customer, tier_case

INVALID_FILTER = "INVALID_FILTER"
MAX_MEMBERS_PER_CALL = 1000
DEFAULT_WINDOW_DAYS = 365


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


# --- membership -----------------------------------------------------------------------------


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
    """The live segments each customer belongs to: stored memberships in one query, then one
    query per valid DYNAMIC segment for the whole batch of customers."""
    out: dict[int, list[Segment]] = defaultdict(list)
    stored = await session.execute(
        sa.select(SegmentMember.customer_id, Segment)
        .join(Segment, Segment.id == SegmentMember.segment_id)
        .where(SegmentMember.customer_id.in_(customer_ids), Segment.deleted_at.is_(None))
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


# --- writing ---------------------------------------------------------------------------------


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
        await _refresh_snapshot(session, segment, actor)
    return segment


async def update_segment(
    session: AsyncSession, *, actor: Actor, segment_id: int, data: Mapping[str, Any], expected_version: int | None
) -> Segment:
    segment = await _live(session, segment_id)
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
    segment = await _live(session, segment_id)
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


async def _live(session: AsyncSession, segment_id: int) -> Segment:
    segment = await get_segment(session, segment_id)
    if segment is None:
        raise NotFound("Segment")
    return segment


async def _editable(session: AsyncSession, segment_id: int, customer_ids: Sequence[int]) -> Segment:
    segment = await _live(session, segment_id)
    if segment.kind is SegmentKind.DYNAMIC:
        raise ValidationFailed([FieldError("segmentId", codes.INVALID_STATE,
                                           "A DYNAMIC segment's members follow its filter; change the filter instead.")])
    if len(customer_ids) > MAX_MEMBERS_PER_CALL:
        raise ValidationFailed([FieldError("customerIds", codes.TOO_MANY, f"At most {MAX_MEMBERS_PER_CALL} per call.")])
    return segment


async def _current_members(session: AsyncSession, segment_id: int, customer_ids: Sequence[int] | None = None) -> set[int]:
    stmt = sa.select(SegmentMember.customer_id).where(SegmentMember.segment_id == segment_id)
    if customer_ids is not None:
        stmt = stmt.where(SegmentMember.customer_id.in_(customer_ids))
    return set(await session.scalars(stmt))


def _member_event(session: AsyncSession, actor: Actor, segment: Segment, customer_id: int, added: bool) -> None:
    record_event(
        session,
        type="segment.member_added" if added else "segment.member_removed",
        entity_type="Segment",
        entity_id=segment.id,
        actor=actor,
        payload={"segmentId": segment.id, "segmentName": segment.name, "customerId": customer_id},
    )


async def add_customers(session: AsyncSession, *, actor: Actor, segment_id: int, customer_ids: Sequence[int]) -> Segment:
    """Add customers (idempotent: members already present are left as they are)."""
    segment = await _editable(session, segment_id, customer_ids)
    wanted = list(dict.fromkeys(customer_ids))
    live = set(await session.scalars(sa.select(Customer.id).where(Customer.id.in_(wanted), Customer.deleted_at.is_(None))))
    errors = ErrorCollector()
    for i, customer_id in enumerate(customer_ids):
        if customer_id not in live:
            errors.add(f"customerIds.{i}", codes.NOT_FOUND, "The customer was not found.")
    errors.raise_if_any()
    await validate_with_plugins(session, entity="segment_members",
                                data={"segmentId": segment_id, "add": wanted}, actor=actor)
    present = await _current_members(session, segment.id, wanted)
    now = utcnow()
    for customer_id in wanted:
        if customer_id not in present:
            session.add(SegmentMember(segment_id=segment.id, customer_id=customer_id, added_at=now))
            _member_event(session, actor, segment, customer_id, True)
    await session.flush()
    return segment


async def remove_customers(session: AsyncSession, *, actor: Actor, segment_id: int, customer_ids: Sequence[int]) -> Segment:
    segment = await _editable(session, segment_id, customer_ids)
    await validate_with_plugins(session, entity="segment_members",
                                data={"segmentId": segment_id, "remove": list(customer_ids)}, actor=actor)
    present = await _current_members(session, segment.id, list(customer_ids))
    if present:
        await session.execute(
            sa.delete(SegmentMember).where(SegmentMember.segment_id == segment.id, SegmentMember.customer_id.in_(present))
        )
        for customer_id in sorted(present):
            _member_event(session, actor, segment, customer_id, False)
    return segment


async def refresh_segment(session: AsyncSession, *, actor: Actor, segment_id: int) -> Segment:
    segment = await _live(session, segment_id)
    if segment.kind is SegmentKind.STATIC:
        raise ValidationFailed([FieldError("id", codes.INVALID_STATE, "A STATIC segment has no filter to apply.")])
    if segment.kind is SegmentKind.SNAPSHOT:
        await _refresh_snapshot(session, segment, actor)
    else:
        reason = await validity(session, segment)
        if reason:
            raise ValidationFailed([FieldError("id", INVALID_FILTER, reason)])
        segment.refreshed_at = utcnow()
        await session.flush()
    return segment


async def _refresh_snapshot(session: AsyncSession, segment: Segment, actor: Actor) -> None:
    """Apply the filter now: members become exactly the matching customers (events for the diff)."""
    try:
        where = await build_condition(session, segment.filter or {}, within_segment=segment.id)
    except FilterError as exc:
        raise ValidationFailed([FieldError(exc.path, INVALID_FILTER, exc.reason)]) from None
    matching = set(await session.scalars(sa.select(Customer.id).where(Customer.deleted_at.is_(None), where)))
    present = await _current_members(session, segment.id)
    added, removed = matching - present, present - matching
    now = utcnow()
    if removed:
        await session.execute(
            sa.delete(SegmentMember).where(SegmentMember.segment_id == segment.id, SegmentMember.customer_id.in_(removed))
        )
    session.add_all(SegmentMember(segment_id=segment.id, customer_id=c, added_at=now) for c in sorted(added))
    for customer_id in sorted(added):
        _member_event(session, actor, segment, customer_id, True)
    for customer_id in sorted(removed):
        _member_event(session, actor, segment, customer_id, False)
    segment.refreshed_at = now
    await session.flush()


# --- value analyses --------------------------------------------------------------------------


@dataclass
class RfmAnalysis:
    run: RfmRun
    groups: list[rfm.GroupRow]
    grid: list[rfm.GridCell]
    previous: RfmRun | None
    movements: list[rfm.Movement]


async def _params(session: AsyncSession, as_of: date | None, window_days: int | None, currency: str | None,
                  ) -> tuple[date, int, str | None]:
    as_of = as_of or utcnow().date()
    window_days = DEFAULT_WINDOW_DAYS if window_days is None else window_days
    errors = ErrorCollector()
    if not 1 <= window_days <= 36600:
        errors.add("windowDays", codes.INVALID_VALUE, "windowDays is between 1 and 36600.")
    if currency is not None:
        from crm_graph.core.money import InvalidCurrency, currency_code

        try:
            currency = currency_code(currency)
        except InvalidCurrency as exc:
            errors.add("currency", codes.INVALID_VALUE, str(exc))
    errors.raise_if_any()
    return as_of, window_days, currency or await main_currency(session, as_of, window_days)


async def rfm_analysis(
    session: AsyncSession, *, as_of: date | None = None, window_days: int | None = None,
    currency: str | None = None, recompute: bool = False,
) -> RfmAnalysis | None:
    """The stored run for these parameters, computed and stored first when there is none (or
    when ``recompute``). None when no order counts in the window at all."""
    as_of, window_days, currency = await _params(session, as_of, window_days, currency)
    if currency is None:
        return None
    run = None if recompute else await rfm.find_run(session, as_of=as_of, window_days=window_days, currency=currency)
    if run is None:
        run = await rfm.compute_run(session, as_of=as_of, window_days=window_days, currency=currency)
    previous = await rfm.previous_run(session, run)
    # What the reader may see: totals and shares of the customers in their scope only.
    shown = await _as_seen(session, run)
    return RfmAnalysis(
        run=shown,
        groups=await rfm.group_table(session, run, shown.revenue),
        grid=await rfm.grid(session, run),
        previous=await _as_seen(session, previous) if previous else None,
        movements=await rfm.movements(session, run, previous) if previous else [],
    )


async def _as_seen(session: AsyncSession, run: Any) -> Any:
    """A detached copy of a stored run whose totals count only the customers the session's
    scope shows (for an unrestricted scope, the stored ones)."""
    shown = type(run)(**{c.key: getattr(run, c.key) for c in type(run).__table__.columns})
    shown.customer_count, shown.revenue = await rfm.totals(session, run)
    return shown


@dataclass
class TierRow:
    tier: ValueTier
    customers: int
    revenue: Decimal
    share_of_revenue: Decimal


@dataclass
class ValueConcentration:
    as_of: date
    window_days: int
    currency: str
    customers: int
    revenue: Decimal
    tiers: list[TierRow]
    top_10_percent_share: Decimal
    top_20_percent_share: Decimal


async def value_concentration(
    session: AsyncSession, *, as_of: date | None = None, window_days: int | None = None, currency: str | None = None
) -> ValueConcentration | None:
    """The Pareto view of revenue in the window, computed live in SQL."""
    as_of, window_days, currency = await _params(session, as_of, window_days, currency)
    if currency is None:
        return None
    ranked = ranked_revenue(revenue_by_customer(as_of, window_days, currency).subquery("revenue"))
    tier = tier_case(ranked.c.monetary, ranked.c.cumulative, ranked.c.total).label("tier")
    tiered = sa.select(ranked, tier).subquery("tiered")
    rows = (
        await session.execute(
            sa.select(tiered.c.tier, sa.func.count(), sa.func.sum(tiered.c.monetary)).group_by(tiered.c.tier)
        )
    ).all()
    top = (
        await session.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(tiered.c.monetary), 0),
                sa.func.coalesce(sa.func.sum(sa.case((tiered.c.position * 10 <= tiered.c.customers + 9, tiered.c.monetary), else_=0)), 0),
                sa.func.coalesce(sa.func.sum(sa.case((tiered.c.position * 5 <= tiered.c.customers + 4, tiered.c.monetary), else_=0)), 0),
            )
        )
    ).one()
    count, total = int(top[0]), _amount(top[1])
    found = {ValueTier[name]: (n, _amount(revenue)) for name, n, revenue in rows}

    def share(part: Decimal) -> Decimal:
        return (part / total).quantize(Decimal("0.0001")) if total else Decimal(0)

    tiers = [TierRow(t, found.get(t, (0, Decimal(0)))[0], found.get(t, (0, Decimal(0)))[1],
                     share(found.get(t, (0, Decimal(0)))[1])) for t in ValueTier]
    return ValueConcentration(as_of, window_days, currency, count, total, tiers, share(_amount(top[2])), share(_amount(top[3])))


def _amount(value: Any) -> Decimal:
    """Sums of amount columns come back as Decimal, except through CASE on SQLite (scaled integers)."""
    from crm_graph.core.money import SCALE

    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    return Decimal(int(value)).scaleb(-SCALE)


async def refresh_all(session: AsyncSession, *, actor: Actor, window_days: int = DEFAULT_WINDOW_DAYS) -> dict[str, int]:
    """Refresh every valid SNAPSHOT segment and store a new RFM run for today."""
    refreshed = 0
    snapshots = await session.scalars(
        sa.select(Segment).where(Segment.kind == SegmentKind.SNAPSHOT, Segment.deleted_at.is_(None))
    )
    for segment in list(snapshots):
        try:
            async with session.begin_nested():
                await _refresh_snapshot(session, segment, actor)
            refreshed += 1
        except ValidationFailed:
            continue
    analysis = await rfm_analysis(session, window_days=window_days, recompute=True)
    return {"snapshots": refreshed, "rfmCustomers": analysis.run.customer_count if analysis else 0}
