"""Changing who is in a segment, as SQL over sets.

Every change is one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING customer_id`` and
one ``DELETE ... RETURNING customer_id`` over ``segment_members``, whatever the number of
customers: the filter, or the list of ids given as a single array parameter, decides the rows
in the database, and ``RETURNING`` says which customers actually entered or left, so events name
exactly the rows this transaction changed. Two transactions changing the same members cannot
both report one change: the second insert of a key does nothing (``ON CONFLICT``), the second
delete of a row finds it gone, and refreshes hold the segment's row lock on PostgreSQL.

Who may change what (docs/segments.md): membership rows are the customer's. An actor sees and
changes only memberships of customers their scope shows; a customer hidden from them is
neither added nor removed, and one they may read but not change refuses the whole change with
``FORBIDDEN``. DYNAMIC segments are the exception: their stored rows are only the membership last
seen by the diff, which always compares every customer (the filter alone decides who is in).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import errors as codes
from crm_graph.core.access import SKIP_OPTION, AccessDenied, scope_of
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, FieldError, ValidationFailed
from crm_graph.core.events import OutboxEvent, record_event, write_events
from crm_graph.core.filters import FilterError
from crm_graph.core.hooks import validate_with_plugins
from crm_graph.customers.filters import build_condition
from crm_graph.customers.models import Customer
from crm_graph.db.types import UTCDateTime
from crm_graph.segments.models import Segment, SegmentKind, SegmentMember
from crm_graph.segments.service.reads import INVALID_FILTER, live_segment

MAX_MEMBERS_PER_CALL = 1000  # what one GraphQL call may name; service callers may pass more
MEMBER_EVENT_BATCH = 1000  # customer ids per segment.member_added / member_removed event


@dataclass
class MembershipChange:
    """Who entered and who left, ascending ids."""

    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)


# --- SQL building blocks -----------------------------------------------------------------------


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _id_column(session: AsyncSession, ids: Sequence[int]) -> sa.ColumnElement[int]:
    """A column over the given ids, from one bound parameter whatever their number: a
    PostgreSQL array through ``unnest``, a JSON array through SQLite's ``json_each``."""
    values = [int(i) for i in ids]
    if _dialect(session) == "postgresql":
        param = sa.bindparam("member_ids", values, type_=postgresql.ARRAY(sa.BigInteger()), unique=True)
        return sa.func.unnest(param).table_valued("id").render_derived().c.id
    return sa.func.json_each(sa.bindparam("member_ids", json.dumps(values), unique=True)).table_valued("value").c.value


def _is_member(segment_id: int) -> sa.ColumnElement[bool]:
    return sa.exists().where(SegmentMember.segment_id == segment_id, SegmentMember.customer_id == Customer.id)


def _is_not(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """NOT that treats NULL as false (a filter on a missing value may yield NULL)."""
    return sa.case((condition, 1), else_=0) == 0


def _as_read(session: AsyncSession, stmt: Any, *, everyone: bool) -> Any:
    """``stmt`` under the session's read rules, stated explicitly: the access layer adds them to
    selects by itself, but to an UPDATE or DELETE it adds the write rules (which would change
    what the filter inside sees) and to an INSERT ... SELECT nothing. ``everyone``: no rules."""
    stmt = stmt.execution_options(**{SKIP_OPTION: True})
    scope = scope_of(session)  # type: ignore[arg-type]
    if not everyone and scope is not None and not scope.unrestricted:
        stmt = stmt.options(*scope.options("read"))
    return stmt


async def _insert(session: AsyncSession, segment_id: int, where: sa.ColumnElement[bool], *, everyone: bool) -> list[int]:
    """Add the live customers meeting ``where`` who are not members yet; returns who was added.

    Members already there are skipped by the primary key (ON CONFLICT DO NOTHING), not by a
    NOT EXISTS: PostgreSQL plans that anti-join from the table's statistics, and when they say
    ``segment_members`` is (nearly) empty, as before a first large refresh, it rescans the rows
    the same statement is inserting once per customer (100,000 members: minutes, not seconds).
    """
    rows = sa.select(sa.literal(segment_id), Customer.id, sa.literal(utcnow(), UTCDateTime())).where(
        Customer.deleted_at.is_(None), where
    )  # always a WHERE: SQLite needs one before ON CONFLICT in INSERT ... SELECT
    insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    stmt = (
        insert(SegmentMember).from_select(["segment_id", "customer_id", "added_at"], rows)
        .on_conflict_do_nothing().returning(SegmentMember.customer_id)
    )
    return sorted(await session.scalars(_as_read(session, stmt, everyone=everyone)))


async def _delete(session: AsyncSession, segment_id: int, where: sa.ColumnElement[bool], *, everyone: bool) -> list[int]:
    """Remove the members meeting ``where`` (a condition on ``segment_members``); returns who left."""
    stmt = (
        sa.delete(SegmentMember).where(SegmentMember.segment_id == segment_id, where)
        .returning(SegmentMember.customer_id).execution_options(synchronize_session=False)
    )
    return sorted(await session.scalars(_as_read(session, stmt, everyone=everyone)))


async def _check_writable(session: AsyncSession, candidates: sa.ColumnElement[bool]) -> None:
    """``FORBIDDEN`` when a customer meeting ``candidates`` (about to enter or leave) is one the
    actor may read but not change. One statement, and none for actors without record rules."""
    scope = scope_of(session)  # type: ignore[arg-type]
    if scope is None or scope.unrestricted:
        return
    write = scope.condition(Customer, "write")
    if write is None:
        return
    hit = await session.scalar(sa.select(Customer.id).where(candidates, _is_not(write)).limit(1))
    if hit is not None:
        raise AccessDenied("You may read but not change this record of customers.")


# --- events ------------------------------------------------------------------------------------


async def member_events(session: AsyncSession, actor: Actor, segment: Segment, change: MembershipChange) -> None:
    """One event per batch of ``MEMBER_EVENT_BATCH`` customers; the batches of one change share
    a ``changeId`` (docs/events.md)."""
    events: list[OutboxEvent] = []
    for kind, ids in (("segment.member_added", change.added), ("segment.member_removed", change.removed)):
        if not ids:
            continue
        change_id = str(uuid.uuid4())
        batches = (len(ids) + MEMBER_EVENT_BATCH - 1) // MEMBER_EVENT_BATCH
        for n, start in enumerate(range(0, len(ids), MEMBER_EVENT_BATCH), start=1):
            events.append(record_event(
                session, type=kind, entity_type="Segment", entity_id=segment.id, actor=actor,
                payload={"segmentId": segment.id, "segmentName": segment.name, "segmentKind": segment.kind,
                         "customerIds": ids[start:start + MEMBER_EVENT_BATCH], "changeId": change_id,
                         "batch": n, "batches": batches, "total": len(ids)},
            ))
    # One INSERT for all of them (``write_events``).
    await write_events(session, events)


# --- static changes ----------------------------------------------------------------------------


async def _editable(session: AsyncSession, segment_id: int, customer_ids: Sequence[int], limit: int | None) -> Segment:
    segment = await live_segment(session, segment_id)
    if segment.kind is SegmentKind.DYNAMIC:
        raise ValidationFailed([FieldError("segmentId", codes.INVALID_STATE,
                                           "A DYNAMIC segment's members follow its filter; change the filter instead.")])
    if limit is not None and len(customer_ids) > limit:
        raise ValidationFailed([FieldError("customerIds", codes.TOO_MANY, f"At most {limit} per call.")])
    return segment


async def add_customers(
    session: AsyncSession, *, actor: Actor, segment_id: int, customer_ids: Sequence[int],
    limit: int | None = MAX_MEMBERS_PER_CALL,
) -> Segment:
    """Add customers (idempotent: members already present are left as they are). ``limit``
    caps the ids of one call (None: any number; they travel as one parameter)."""
    segment = await _editable(session, segment_id, customer_ids, limit)
    wanted = list(dict.fromkeys(int(i) for i in customer_ids))
    if not wanted:
        return segment
    given = _id_column(session, wanted)
    missing = set(await session.scalars(sa.select(given).where(~sa.exists().where(
        Customer.id == given, Customer.deleted_at.is_(None)))))
    if missing:
        errors = ErrorCollector()
        for i, customer_id in enumerate(customer_ids):
            if customer_id in missing:
                errors.add(f"customerIds.{i}", codes.NOT_FOUND, "The customer was not found.")
        errors.raise_if_any()
    await validate_with_plugins(session, entity="segment_members",
                                data={"segmentId": segment_id, "add": wanted}, actor=actor)
    chosen = Customer.id.in_(sa.select(_id_column(session, wanted)))
    await _check_writable(session, sa.and_(chosen, ~_is_member(segment.id)))
    added = await _insert(session, segment.id, chosen, everyone=False)
    await member_events(session, actor, segment, MembershipChange(added=added))
    await session.flush()
    return segment


async def remove_customers(
    session: AsyncSession, *, actor: Actor, segment_id: int, customer_ids: Sequence[int],
    limit: int | None = MAX_MEMBERS_PER_CALL,
) -> Segment:
    """Remove customers; those who are not members are ignored."""
    segment = await _editable(session, segment_id, customer_ids, limit)
    await validate_with_plugins(session, entity="segment_members",
                                data={"segmentId": segment_id, "remove": list(customer_ids)}, actor=actor)
    if not customer_ids:
        return segment
    chosen = sa.select(_id_column(session, customer_ids))
    await _check_writable(session, sa.and_(Customer.id.in_(chosen), _is_member(segment.id)))
    removed = await _delete(session, segment.id, SegmentMember.customer_id.in_(chosen), everyone=False)
    await member_events(session, actor, segment, MembershipChange(removed=removed))
    await session.flush()
    return segment


# --- applying a filter -------------------------------------------------------------------------


async def apply_filter(session: AsyncSession, segment: Segment, *, everyone: bool) -> MembershipChange:
    """Make the stored members exactly the live customers matching the filter: one DELETE of
    those who no longer match, one INSERT of those who newly do. ``FilterError`` when the filter
    no longer validates (nothing is changed then)."""
    where = await build_condition(session, segment.filter or {}, within_segment=segment.id)
    matches = sa.and_(Customer.deleted_at.is_(None), where)
    if not everyone:
        member = _is_member(segment.id)
        await _check_writable(session, sa.or_(sa.and_(matches, ~member), sa.and_(member, _is_not(matches))))
    still = sa.exists().where(Customer.id == SegmentMember.customer_id, matches)
    removed = await _delete(session, segment.id, ~still, everyone=everyone)
    added = await _insert(session, segment.id, where, everyone=everyone)
    return MembershipChange(added=added, removed=removed)


async def refresh_snapshot(session: AsyncSession, segment: Segment, actor: Actor) -> MembershipChange:
    """Apply the filter now, with the actor's rules: members become exactly the matching
    customers the actor can see (events for the difference)."""
    try:
        change = await apply_filter(session, segment, everyone=False)
    except FilterError as exc:
        raise ValidationFailed([FieldError(exc.path, INVALID_FILTER, exc.reason)]) from None
    await member_events(session, actor, segment, change)
    segment.refreshed_at = utcnow()
    await session.flush()
    return change


async def track_dynamic(session: AsyncSession, segment: Segment, actor: Actor) -> MembershipChange:
    """Compare a DYNAMIC segment's last seen members with its filter over every customer, store
    what matches now and announce the difference. ``FilterError`` when the filter no longer
    validates: the last seen members are then kept until it does again."""
    change = await apply_filter(session, segment, everyone=True)
    await member_events(session, actor, segment, change)
    return change


async def diff_dynamic(session: AsyncSession, *, actor: Actor, segment_id: int) -> MembershipChange | None:
    """The periodic diff of one DYNAMIC segment, in the caller's (short) transaction. None when
    there is nothing to do: the segment is gone, not DYNAMIC, its filter does not validate, or
    another process is diffing it right now (PostgreSQL; that one announces the change)."""
    segment = await session.scalar(
        sa.select(Segment).where(Segment.id == segment_id).with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if segment is None or segment.deleted_at is not None or segment.kind is not SegmentKind.DYNAMIC:
        return None
    try:
        change = await track_dynamic(session, segment, actor)
    except FilterError:
        return None
    # Bookkeeping, not an edit: the version stays, so clients' expectedVersion stays valid.
    await session.execute(sa.update(Segment.__table__).where(Segment.__table__.c.id == segment.id)
                          .values(refreshed_at=utcnow()))
    return change
