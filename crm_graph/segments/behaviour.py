"""The parts of the customer filter language that look beyond the customer row.

Demographics (``age``), behaviour (``orders``, ``tickets``, ``activities``, ``purchased``), value
(``rfm``, ``valueTier``) and segment membership (``segment``). Each compiles to SQL: correlated
subqueries against the outer ``customers`` row. ``load_context`` reads, before compiling, what
the compiler needs from the database (the newest RFM run, the referenced segments).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.activities.models import Activity
from crm_graph.core import filters as f
from crm_graph.core import ids
from crm_graph.core.clock import utcnow
from crm_graph.customers.models import Customer
from crm_graph.sales.models import Order, OrderLineItem, ProductTag
from crm_graph.segments.models import RfmGroup, RfmRun, RfmScore, Segment, SegmentKind, SegmentMember, ValueTier
from crm_graph.segments.values import counted_order
from crm_graph.support.models import Ticket, TicketStatus

INT_OPS = ("eq", "neq", "in", "gt", "gte", "lt", "lte", "isNull")
OPEN_TICKET = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)
MAX_WINDOW_DAYS = 36600


class SegmentCycle(f.FilterError):
    """Segments whose filters refer to each other in a circle."""


@dataclass
class BehaviourContext:
    now: datetime
    latest_run_id: int | None = None
    segments: dict[int, Segment] = field(default_factory=dict)
    # Filled by the customer filter: compiles a stored filter (for DYNAMIC segments in `segment`).
    compile_stored: Any = None
    _stack: list[int] = field(default_factory=list)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected a whole number")
    return value


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise ValueError("expected a decimal number")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError("expected a decimal number") from None


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def age_condition(today: date, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    """Age in whole years, compiled to a range on ``birthday`` (so the birthday index serves it)."""
    birthday = Customer.birthday

    def at_least(n: int) -> sa.ColumnElement[bool]:
        return birthday <= _years_before(today, n)

    def at_most(n: int) -> sa.ColumnElement[bool]:
        return birthday > _years_before(today, n + 1)

    clauses = []
    for op, value in f.operators(ops, path, INT_OPS).items():
        if op == "isNull":
            clauses.append(birthday.is_(None) if value else birthday.is_not(None))
            continue
        try:
            numbers = [_int(v) for v in f.check_in(value, f"{path}.in")] if op == "in" else [_int(value)]
        except ValueError as exc:
            raise f.FilterError(f"{path}.{op}", str(exc)) from None
        if any(n < 0 or n > 200 for n in numbers):
            raise f.FilterError(f"{path}.{op}", "an age is between 0 and 200")
        n = numbers[0]
        if op == "eq":
            clauses.append(sa.and_(at_least(n), at_most(n)))
        elif op == "neq":
            clauses.append(sa.or_(sa.not_(sa.and_(at_least(n), at_most(n))), birthday.is_(None)))
        elif op == "in":
            clauses.append(sa.or_(sa.false(), *(sa.and_(at_least(k), at_most(k)) for k in numbers)))
        elif op == "gte":
            clauses.append(at_least(n))
        elif op == "gt":
            clauses.append(at_least(n + 1))
        elif op == "lte":
            clauses.append(at_most(n))
        else:
            clauses.append(at_most(n - 1))
    return sa.and_(sa.true(), *clauses)


def _window(ops: Mapping[str, Any], path: str, now: datetime) -> datetime | None:
    days = ops.get("windowDays")
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_WINDOW_DAYS:
        raise f.FilterError(f"{path}.windowDays", f"windowDays is a whole number of days from 1 to {MAX_WINDOW_DAYS}")
    return now - timedelta(days=days)


def orders_condition(ctx: BehaviourContext, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    """Aggregates over the customer's counted orders (paid or fulfilled, not cancelled/refunded),
    within ``windowDays`` when given and in ``currency`` when given."""
    ops = f.operators(ops, path, ("windowDays", "currency", "count", "totalSpent", "averageOrderValue",
                                  "firstOrderAt", "lastOrderAt"))
    conditions = [Order.customer_id == Customer.id, counted_order()]
    since = _window(ops, path, ctx.now)
    if since is not None:
        conditions.append(Order.ordered_at >= since)
    if ops.get("currency") is not None:
        conditions.append(Order.currency == str(ops["currency"]).upper())

    def aggregate(expression: Any) -> Any:
        return sa.select(expression).where(*conditions).scalar_subquery()

    measures = {
        "count": (aggregate(sa.func.count()), _int),
        "totalSpent": (sa.func.coalesce(aggregate(sa.func.sum(Order.total)), 0), _decimal),
        "averageOrderValue": (aggregate(sa.func.avg(Order.total)), _decimal),
        "firstOrderAt": (aggregate(sa.func.min(Order.ordered_at)), f.aware_datetime),
        "lastOrderAt": (aggregate(sa.func.max(Order.ordered_at)), f.aware_datetime),
    }
    clauses = []
    for name, (expression, parse) in measures.items():
        if name in ops:
            typed = sa.type_coerce(expression, Order.total.type) if name in ("totalSpent", "averageOrderValue") else expression
            clauses.append(f.comparable_condition(typed, ops[name], f"{path}.{name}", parse))
    return sa.and_(sa.true(), *clauses)


def tickets_condition(ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    ops = f.operators(ops, path, ("count", "openCount"))
    clauses = []
    for name, extra in (("count", sa.true()), ("openCount", Ticket.status.in_(OPEN_TICKET))):
        if name in ops:
            counted = sa.select(sa.func.count()).where(Ticket.customer_id == Customer.id, extra).scalar_subquery()
            clauses.append(f.comparable_condition(counted, ops[name], f"{path}.{name}", _int))
    return sa.and_(sa.true(), *clauses)


def activities_condition(ctx: BehaviourContext, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    ops = f.operators(ops, path, ("windowDays", "count", "lastAt"))
    conditions = [Activity.customer_id == Customer.id, Activity.deleted_at.is_(None)]
    since = _window(ops, path, ctx.now)
    if since is not None:
        conditions.append(Activity.occurred_at >= since)
    clauses = []
    if "count" in ops:
        counted = sa.select(sa.func.count()).where(*conditions).scalar_subquery()
        clauses.append(f.comparable_condition(counted, ops["count"], f"{path}.count", _int))
    if "lastAt" in ops:
        last = sa.select(sa.func.max(Activity.occurred_at)).where(*conditions).scalar_subquery()
        clauses.append(f.comparable_condition(last, ops["lastAt"], f"{path}.lastAt", f.aware_datetime))
    return sa.and_(sa.true(), *clauses)


def purchased_condition(ctx: BehaviourContext, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    """True when a counted order of the customer has a line of one of the products (or tags)."""
    ops = f.operators(ops, path, ("productIds", "productTags", "windowDays"))
    products: list[int] = []
    for i, gid in enumerate(f.check_in(ops.get("productIds", []), f"{path}.productIds")):
        try:
            products.append(ids.decode_as(gid, "Product"))
        except ValueError as exc:
            raise f.FilterError(f"{path}.productIds.{i}", str(exc)) from None
    tags = [str(t).strip().lower() for t in f.check_in(ops.get("productTags", []), f"{path}.productTags")]
    if not products and not tags:
        raise f.FilterError(path, "give productIds or productTags")
    which = []
    if products:
        which.append(OrderLineItem.product_id.in_(products))
    if tags:
        which.append(OrderLineItem.product_id.in_(sa.select(ProductTag.product_id).where(ProductTag.tag.in_(tags))))
    conditions = [Order.customer_id == Customer.id, counted_order(), sa.or_(*which)]
    since = _window(ops, path, ctx.now)
    if since is not None:
        conditions.append(Order.ordered_at >= since)
    return sa.exists().where(OrderLineItem.order_id == Order.id, *conditions)


def _on_latest_run(ctx: BehaviourContext, column: Any, condition: sa.ColumnElement[bool],
                   ops: Mapping[str, Any]) -> sa.ColumnElement[bool]:
    """``condition`` on the customer's row of the newest RFM run, as an indexed semi-join.

    A customer the run did not score has no value: they match only operators that accept a
    missing value (``neq``, ``isNull: true``), exactly as a column that is null would.
    """
    run = ctx.latest_run_id or 0
    rows = sa.select(RfmScore.customer_id).where(RfmScore.run_id == run)
    matched = Customer.id.in_(rows.where(condition))
    accepts_missing = all(op == "neq" or (op == "isNull" and value) for op, value in ops.items() if value is not None)
    if accepts_missing and ops:
        return sa.or_(matched, Customer.id.not_in(rows))
    return matched


def rfm_condition(ctx: BehaviourContext, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    """Conditions on the newest stored RFM run; a customer it did not score has null values."""
    ops = f.operators(ops, path, ("recencyScore", "frequencyScore", "monetaryScore", "group"))
    clauses = []
    for name, column in (("recencyScore", RfmScore.recency_score), ("frequencyScore", RfmScore.frequency_score),
                         ("monetaryScore", RfmScore.monetary_score)):
        if name in ops:
            condition = f.comparable_condition(column, ops[name], f"{path}.{name}", _int)
            clauses.append(_on_latest_run(ctx, column, condition, f.operators(ops[name], path, INT_OPS)))
    if "group" in ops:
        condition = f.enum_condition(RfmScore.group, ops["group"], f"{path}.group", RfmGroup.__members__)
        clauses.append(_on_latest_run(ctx, RfmScore.group, condition, ops["group"]))
    return sa.and_(sa.true(), *clauses)


def value_tier_condition(ctx: BehaviourContext, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    condition = f.enum_condition(RfmScore.value_tier, ops, path, ValueTier.__members__)
    return _on_latest_run(ctx, RfmScore.value_tier, condition, ops)


def segment_condition(ctx: BehaviourContext, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
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


def _membership(ctx: BehaviourContext, segment_id: int, path: str) -> sa.ColumnElement[bool]:
    segment = ctx.segments.get(segment_id)
    if segment is None or segment.deleted_at is not None:
        raise f.FilterError(path, "no such segment (it may have been deleted)")
    if segment.kind is not SegmentKind.DYNAMIC:
        return sa.exists().where(SegmentMember.segment_id == segment_id, SegmentMember.customer_id == Customer.id)
    if segment_id in ctx._stack:
        names = " -> ".join(ctx.segments[s].name for s in [*ctx._stack, segment_id])
        raise SegmentCycle(path, f"segments refer to each other in a cycle: {names}")
    ctx._stack.append(segment_id)
    try:
        return ctx.compile_stored(segment.filter or {})
    except SegmentCycle as exc:
        raise SegmentCycle(path, exc.reason) from None
    except f.FilterError as exc:
        raise f.FilterError(path, f"segment {segment.name!r} no longer validates ({exc})") from None
    finally:
        ctx._stack.pop()


def behaviour_spec(ctx: BehaviourContext) -> dict[str, f.Handler]:
    today = ctx.now.date()
    return {
        "age": lambda ops, path: age_condition(today, ops, path),
        "orders": lambda ops, path: orders_condition(ctx, ops, path),
        "tickets": tickets_condition,
        "activities": lambda ops, path: activities_condition(ctx, ops, path),
        "purchased": lambda ops, path: purchased_condition(ctx, ops, path),
        "rfm": lambda ops, path: rfm_condition(ctx, ops, path),
        "valueTier": lambda ops, path: value_tier_condition(ctx, ops, path),
        "segment": lambda ops, path: segment_condition(ctx, ops, path),
    }


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


def mentions(data: Any, keys: set[str]) -> bool:
    if isinstance(data, Mapping):
        return any(k in keys for k in data) or any(mentions(v, keys) for v in data.values())
    if isinstance(data, list):
        return any(mentions(v, keys) for v in data)
    return False


async def load_context(
    session: AsyncSession, data: Mapping[str, Any] | None, within_segment: int | None = None
) -> BehaviourContext:
    """Read what compiling ``data`` needs: the newest RFM run and every segment it reaches."""
    ctx = BehaviourContext(now=utcnow())
    if not data:
        return ctx
    if within_segment is not None:
        ctx._stack.append(within_segment)
    if mentions(data, {"rfm", "valueTier"}):
        ctx.latest_run_id = await session.scalar(sa.select(sa.func.max(RfmRun.id)))
    pending: set[int] = set()
    _segment_ids(data, pending)
    while pending:
        rows = await session.scalars(sa.select(Segment).where(Segment.id.in_(pending)))
        pending = set()
        for segment in rows:
            ctx.segments[segment.id] = segment
            if segment.kind is SegmentKind.DYNAMIC:
                if mentions(segment.filter, {"rfm", "valueTier"}) and ctx.latest_run_id is None:
                    ctx.latest_run_id = await session.scalar(sa.select(sa.func.max(RfmRun.id)))
                reached: set[int] = set()
                _segment_ids(segment.filter, reached)
                pending |= reached - set(ctx.segments)
    return ctx
