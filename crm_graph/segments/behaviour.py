"""The conditions the segments domain adds to the customer filter language: value (``rfm``,
``valueTier``, on the newest stored RFM run) and membership of other segments (``segment``).

Registered through ``crm_register_filters`` by ``crm_graph.segments.plugin``, like any plugin's
conditions. Each compiles to SQL against the outer ``customers`` row; the ``prepare`` functions
read beforehand what compiling needs (the newest RFM run, the referenced segments and, for
dynamic ones, their stored filters, which are prepared in turn).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import filters as f
from crm_graph.core import ids
from crm_graph.core.extensions import FilterContext
from crm_graph.customers.models import Customer
from crm_graph.segments.models import RfmGroup, RfmRun, RfmScore, Segment, SegmentKind, SegmentMember, ValueTier

INT_OPS = ("eq", "neq", "in", "gt", "gte", "lt", "lte", "isNull")
RFM = "rfm"  # FilterContext.state key: the newest RFM run's id (shared by rfm and valueTier)
SEGMENTS = "segment"  # FilterContext.state key: SegmentState


class SegmentCycle(f.FilterError):
    """Segments whose filters refer to each other in a circle."""


@dataclass
class SegmentState:
    segments: dict[int, Segment] = field(default_factory=dict)
    stack: list[int] = field(default_factory=list)


# --- value: the newest stored RFM run ------------------------------------------------------------


async def prepare_rfm(session: AsyncSession, ctx: FilterContext, data: Mapping[str, Any]) -> None:
    if RFM not in ctx.state:
        ctx.state[RFM] = await session.scalar(sa.select(sa.func.max(RfmRun.id)))


def _on_latest_run(ctx: FilterContext, condition: sa.ColumnElement[bool], ops: Mapping[str, Any]) -> sa.ColumnElement[bool]:
    """``condition`` on the customer's row of the newest RFM run, as an indexed semi-join.

    A customer the run did not score has no value: they match only operators that accept a
    missing value (``neq``, ``isNull: true``), exactly as a column that is null would.
    """
    run = ctx.state.get(RFM) or 0
    rows = sa.select(RfmScore.customer_id).where(RfmScore.run_id == run)
    matched = Customer.id.in_(rows.where(condition))
    accepts_missing = all(op == "neq" or (op == "isNull" and value) for op, value in ops.items() if value is not None)
    if accepts_missing and ops:
        return sa.or_(matched, Customer.id.not_in(rows))
    return matched


def rfm_condition(ctx: FilterContext, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    """Conditions on the newest stored RFM run; a customer it did not score has null values."""
    ops = f.operators(ops, path, ("recencyScore", "frequencyScore", "monetaryScore", "group"))
    clauses = []
    for name, column in (("recencyScore", RfmScore.recency_score), ("frequencyScore", RfmScore.frequency_score),
                         ("monetaryScore", RfmScore.monetary_score)):
        if name in ops:
            condition = f.comparable_condition(column, ops[name], f"{path}.{name}", f.whole_number)
            clauses.append(_on_latest_run(ctx, condition, f.operators(ops[name], path, INT_OPS)))
    if "group" in ops:
        condition = f.enum_condition(RfmScore.group, ops["group"], f"{path}.group", RfmGroup.__members__)
        clauses.append(_on_latest_run(ctx, condition, ops["group"]))
    return sa.and_(sa.true(), *clauses)


def value_tier_condition(ctx: FilterContext, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    condition = f.enum_condition(RfmScore.value_tier, ops, path, ValueTier.__members__)
    return _on_latest_run(ctx, condition, ops)


# --- membership of other segments ------------------------------------------------------------------


def _state(ctx: FilterContext) -> SegmentState:
    state = ctx.state.get(SEGMENTS)
    if state is None:
        state = ctx.state[SEGMENTS] = SegmentState(stack=[ctx.within] if ctx.within is not None else [])
    return state


async def prepare_segments(
    session: AsyncSession, ctx: FilterContext, data: Mapping[str, Any]
) -> Sequence[Mapping[str, Any]]:
    """Load the segments ``data`` refers to; the stored filters of dynamic ones are prepared next."""
    state = _state(ctx)
    wanted: set[int] = set()
    _segment_ids(data, wanted)
    wanted -= set(state.segments)
    if not wanted:
        return []
    rows = list(await session.scalars(sa.select(Segment).where(Segment.id.in_(wanted))))
    for segment in rows:
        state.segments[segment.id] = segment
    return [s.filter for s in rows if s.kind is SegmentKind.DYNAMIC and s.filter]


def segment_condition(ctx: FilterContext, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    """Membership of other segments: ``in`` (all of them) and ``notIn`` (none of them)."""
    ops = f.operators(ops, path, ("in", "notIn"))
    clauses = []
    for op, values in ops.items():
        for i, gid in enumerate(f.check_in(values, f"{path}.{op}")):
            here = f"{path}.{op}.{i}"
            try:
                segment_id = ids.decode_as(gid, "Segment")
            except ValueError as exc:
                raise f.FilterError(here, str(exc)) from None
            member = _membership(ctx, segment_id, here)
            clauses.append(member if op == "in" else sa.not_(member))
    return sa.and_(sa.true(), *clauses)


def _membership(ctx: FilterContext, segment_id: int, path: str) -> sa.ColumnElement[bool]:
    state = _state(ctx)
    segment = state.segments.get(segment_id)
    if segment is None or segment.deleted_at is not None:
        raise f.FilterError(path, "no such segment (it may have been deleted)")
    if segment.kind is not SegmentKind.DYNAMIC:
        return sa.exists().where(SegmentMember.segment_id == segment_id, SegmentMember.customer_id == Customer.id)
    if segment_id in state.stack:
        names = " -> ".join(state.segments[s].name if s in state.segments else f"#{s}" for s in [*state.stack, segment_id])
        raise SegmentCycle(path, f"segments refer to each other in a cycle: {names}")
    assert ctx.compile is not None  # set by the customer filter compiler
    state.stack.append(segment_id)
    try:
        return ctx.compile(segment.filter or {})
    except SegmentCycle as exc:
        raise SegmentCycle(path, exc.reason) from None
    except f.FilterError as exc:
        raise f.FilterError(path, f"segment {segment.name!r} no longer validates ({exc})") from None
    finally:
        state.stack.pop()


def _segment_ids(data: Any, out: set[int]) -> None:
    if isinstance(data, Mapping):
        for key, value in data.items():
            if key == "segment" and isinstance(value, Mapping):
                for gid in [*(value.get("in") or []), *(value.get("notIn") or [])]:
                    try:
                        out.add(ids.decode_as(gid, "Segment"))
                    except (ValueError, TypeError):
                        pass  # reported with its path when compiled
            else:
                _segment_ids(value, out)
    elif isinstance(data, list):
        for item in data:
            _segment_ids(item, out)
