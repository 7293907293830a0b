"""Lifecycle stages from behaviour: each customer's order volume over two consecutive windows,
their number of orders and the days since the last one decide EXPLORATION, FORMATION,
STABILITY, DECLINE or CHURNED (the rules and thresholds are in docs/insights.md).

The stage is the customer's own ``lifecycle_stage`` (``Customer.lifecycleStage``). A run
computes every customer's stage in SQL (one ``INSERT ... SELECT`` into ``customer_lifecycles``),
then reads the customers whose stage is to change (one statement) and writes their stage, a
history row and a ``customer.lifecycle_changed`` event each. A pinned stage (set by hand) wins
over the computed one until it is unpinned; runs keep computing the customer's stage meanwhile
(``computed_stage``), so unpinning returns to the newest computed one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import errors as codes
from crm_graph.core.access import SKIP_OPTION, scope_of
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import FieldError, ValidationFailed
from crm_graph.core.events import record_event, write_events
from crm_graph.customers.models import Customer
from crm_graph.insights.config import InsightsSettings
from crm_graph.customers.models import LifecycleStage
from crm_graph.insights.models import (
    CustomerLifecycle,
    CustomerLifecycleState,
    LifecycleChangeSource,
    LifecycleRun,
    LifecycleStageChange,
)
from crm_graph.insights.service import locks
from crm_graph.insights.service.summary import day_key, day_literal, days_between
from crm_graph.sales.models import Order
from crm_graph.sales.service.reports import counted_orders

MAX_NOTE = 500


def _skip(stmt: Any) -> Any:
    return stmt.execution_options(**{SKIP_OPTION: True})


def _ratio(value: float) -> sa.ColumnElement[Any]:
    return sa.cast(sa.literal(str(Decimal(repr(value)))), sa.Numeric(12, 4))


def writable_customers(session: AsyncSession) -> sa.ColumnElement[bool] | None:
    """The customers the session's actor may change (None: every one). A run changes the
    customers' stage, so it covers only those: the scheduled job, as the system, covers all."""
    scope = scope_of(session.sync_session)
    if scope is None or scope.unrestricted:
        return None
    if not scope.actor.can("customers", "update"):
        return sa.false()
    return scope.condition(Customer, "write")


def stages_select(as_of: date, config: InsightsSettings, dialect: str,
                  only: sa.ColumnElement[bool] | None = None) -> sa.Select[Any]:
    """customer_id, stage, currency, orders, volume, previous_volume, days_since_last_order of
    every live customer with a counted order on or before ``as_of``, in their main currency
    (the one with most counted orders; ties: alphabetical)."""
    window = config.lifecycle_window_days
    day = day_key(Order.ordered_at, dialect)
    current_from = day_literal(as_of - timedelta(days=window), dialect)  # exclusive
    previous_from = day_literal(as_of - timedelta(days=2 * window), dialect)
    in_current = day > current_from
    in_previous = sa.and_(day > previous_from, day <= current_from)
    orders = sa.func.count()
    per_currency = (
        sa.select(
            Order.customer_id, Order.currency, orders.label("orders"), sa.func.max(day).label("last_day"),
            sa.func.coalesce(sa.func.sum(sa.case((in_current, Order.total))), 0).label("volume"),
            sa.func.coalesce(sa.func.sum(sa.case((in_previous, Order.total))), 0).label("previous_volume"),
            sa.func.row_number().over(partition_by=Order.customer_id, order_by=(orders.desc(), Order.currency)).label("rank"),
        )
        .where(counted_orders(), day <= day_literal(as_of, dialect))
        .group_by(Order.customer_id, Order.currency)
        .subquery("per_currency")
    )
    p = per_currency.c
    since = days_between(p.last_day, day_literal(as_of, dialect), dialect)
    stage = sa.case(
        (since >= config.lifecycle_churned_after_days, LifecycleStage.CHURNED.name),
        (p.orders <= config.lifecycle_trial_orders, LifecycleStage.EXPLORATION.name),
        (sa.and_(p.volume > 0, p.volume >= p.previous_volume * _ratio(config.lifecycle_growth_ratio)),
         LifecycleStage.FORMATION.name),
        (p.volume <= p.previous_volume * _ratio(config.lifecycle_decline_ratio), LifecycleStage.DECLINE.name),
        else_=LifecycleStage.STABILITY.name,
    )
    return _skip(
        sa.select(p.customer_id, stage.label("stage"), p.currency, p.orders, p.volume, p.previous_volume,
                  since.label("days_since_last_order"))
        .join(Customer, sa.and_(Customer.id == p.customer_id, Customer.deleted_at.is_(None)))
        .where(p.rank == 1, *([only] if only is not None else []))
    )


@dataclass
class Change:
    customer_id: int
    before: LifecycleStage | None
    after: LifecycleStage | None


async def refresh_stages(session: AsyncSession, *, actor: Actor, config: InsightsSettings,
                         as_of: date | None = None) -> LifecycleRun:
    """Compute and store a run; move the current stage of every unpinned customer whose stage
    changed, with its history row and event."""
    today = utcnow().date()
    as_of = as_of or today
    if as_of > today:
        raise ValidationFailed([FieldError("asOf", codes.INVALID_VALUE, f"asOf is in the future ({as_of.isoformat()}).")])
    dialect = session.get_bind().dialect.name
    await locks.serialise(session, locks.LIFECYCLE)
    at = utcnow()
    run = LifecycleRun(as_of=as_of, window_days=config.lifecycle_window_days,
                       churned_after_days=config.lifecycle_churned_after_days, trial_orders=config.lifecycle_trial_orders,
                       growth_ratio=config.lifecycle_growth_ratio, decline_ratio=config.lifecycle_decline_ratio,
                       customer_count=0, changed=0, complete=True, created_at=at)
    session.add(run)
    await session.flush()
    only = writable_customers(session)
    run.complete = only is None
    computed = stages_select(as_of, config, dialect, only).subquery("computed")
    columns = ["run_id", "customer_id", "stage", "currency", "orders", "volume", "previous_volume", "days_since_last_order"]
    await session.execute(sa.insert(CustomerLifecycle).from_select(columns, sa.select(
        sa.literal(run.id, CustomerLifecycle.run_id.type), *(computed.c[c] for c in columns[1:]))))

    # The customers of the run whose stage or computed stage is to change, with what they have now.
    state = CustomerLifecycleState
    row = CustomerLifecycle
    pinned = sa.func.coalesce(state.pinned, sa.false())
    rows = (await session.execute(_skip(
        sa.select(row.customer_id, row.stage, state.customer_id.is_not(None).label("known"), pinned.label("pinned"),
                  Customer.lifecycle_stage.label("current"))
        .join(Customer, Customer.id == row.customer_id)
        .outerjoin(state, state.customer_id == row.customer_id)
        .where(row.run_id == run.id,
               sa.or_(state.customer_id.is_(None), state.computed_stage.is_distinct_from(row.stage),
                      sa.and_(~pinned, Customer.lifecycle_stage != row.stage)))
        .order_by(row.customer_id)
    ))).all()
    connection = await session.connection()
    moved = [r for r in rows if not r.pinned and r.current != r.stage]
    fresh = [{"customer_id": r.customer_id, "computed_stage": r.stage, "run_id": run.id, "since": at, "pinned": False,
              "pinned_at": None, "pinned_by": None, "pin_note": None} for r in rows if not r.known]
    if fresh:
        await connection.execute(sa.insert(state.__table__), fresh)
    # Set-based from here: the run's rows hold every stage, so no per-customer parameters.
    table, customers, lc = state.__table__, Customer.__table__, CustomerLifecycle.__table__
    covered = sa.select(lc.c.customer_id).where(lc.c.run_id == run.id)
    if moved:
        # Those whose stage moves: unpinned, and their stage is not the computed one (before it is set).
        await connection.execute(
            sa.update(table).where(~table.c.pinned, table.c.customer_id.in_(
                sa.select(lc.c.customer_id).join(customers, customers.c.id == lc.c.customer_id)
                .where(lc.c.run_id == run.id, customers.c.lifecycle_stage != lc.c.stage)))
            .values(since=at))
        computed = sa.select(lc.c.stage).where(lc.c.run_id == run.id, lc.c.customer_id == customers.c.id).scalar_subquery()
        await connection.execute(
            sa.update(customers)
            .where(customers.c.lifecycle_stage != computed, customers.c.id.in_(
                sa.select(lc.c.customer_id).join(table, table.c.customer_id == lc.c.customer_id)
                .where(lc.c.run_id == run.id, ~table.c.pinned)))
            .values(lifecycle_stage=computed, version=customers.c.version + 1, updated_at=at))
    # Every covered customer's state names the newest run that covered them and its stage.
    stage_of = sa.select(lc.c.stage).where(lc.c.run_id == run.id, lc.c.customer_id == table.c.customer_id).scalar_subquery()
    await connection.execute(
        sa.update(table).where(table.c.customer_id.in_(covered)).values(run_id=run.id, computed_stage=stage_of))
    changes = [Change(r.customer_id, r.current, r.stage) for r in moved]
    await _record(session, changes, LifecycleChangeSource.RUN, actor, at, run_id=run.id)
    run.customer_count = int(await session.scalar(_skip(
        sa.select(sa.func.count()).where(CustomerLifecycle.run_id == run.id))) or 0)
    run.changed = len(changes)
    await session.flush()
    return run


async def _record(session: AsyncSession, changes: Iterable[Change], source: LifecycleChangeSource, actor: Actor,
                  at: datetime, *, run_id: int | None = None, pinned: bool = False) -> None:
    """History rows (one ``executemany``: a run changes customers whoever started it) and events."""
    changes = sorted(changes, key=lambda c: c.customer_id)
    if not changes:
        return
    connection = await session.connection()
    await connection.execute(sa.insert(LifecycleStageChange.__table__), [
        {"customer_id": c.customer_id, "from_stage": c.before, "to_stage": c.after, "source": source, "run_id": run_id,
         "actor": actor.label, "changed_at": at} for c in changes])
    await write_events(session, [
        record_event(session, type="customer.lifecycle_changed", entity_type="Customer", entity_id=c.customer_id,
                     actor=actor, payload={"customerId": c.customer_id, "from": c.before, "to": c.after,
                                           "source": source, "pinned": pinned})
        for c in changes])


async def _state_of(session: AsyncSession, customer_id: int) -> tuple[Customer, CustomerLifecycleState | None]:
    await locks.serialise(session, locks.LIFECYCLE)  # a run could be inserting this customer's state
    customer = await session.scalar(sa.select(Customer).where(Customer.id == customer_id, Customer.deleted_at.is_(None)))
    if customer is None:
        raise ValidationFailed([FieldError("customerId", codes.NOT_FOUND, "The customer was not found.")])
    state = await session.scalar(sa.select(CustomerLifecycleState).where(CustomerLifecycleState.customer_id == customer_id))
    return customer, state


async def pin_stage(session: AsyncSession, *, actor: Actor, customer_id: int, stage: LifecycleStage,
                    note: str | None = None) -> CustomerLifecycleState:
    """Set the customer's stage by hand; runs no longer change it until it is unpinned. The
    customer changes (its version too), so pinning needs the right to change the customer."""
    if note is not None and len(note) > MAX_NOTE:
        raise ValidationFailed([FieldError("note", codes.INVALID_VALUE, f"note is at most {MAX_NOTE} characters.")])
    customer, state = await _state_of(session, customer_id)
    at = utcnow()
    if state is None:
        state = CustomerLifecycleState(customer_id=customer_id, computed_stage=None, run_id=None, since=at, pinned=False)
        session.add(state)
    before = customer.lifecycle_stage
    state.pinned, state.pinned_at, state.pinned_by, state.pin_note = True, at, actor.label, note
    if before != stage:
        customer.lifecycle_stage, state.since = stage, at
        await _record(session, [Change(customer_id, before, stage)], LifecycleChangeSource.PIN, actor, at, pinned=True)
    await session.flush()
    return state


async def unpin_stage(session: AsyncSession, *, actor: Actor, customer_id: int) -> CustomerLifecycleState:
    """Lift a pin: the customer's stage is the newest computed one again (unchanged if no run
    covered them yet)."""
    customer, state = await _state_of(session, customer_id)
    if state is None or not state.pinned:
        raise ValidationFailed([FieldError("customerId", codes.INVALID_STATE, "The customer's lifecycle stage is not pinned.")])
    at = utcnow()
    before = customer.lifecycle_stage
    state.pinned, state.pinned_at, state.pinned_by, state.pin_note = False, None, None, None
    if state.computed_stage is not None and before != state.computed_stage:
        customer.lifecycle_stage, state.since = state.computed_stage, at
        await _record(session, [Change(customer_id, before, state.computed_stage)], LifecycleChangeSource.UNPIN, actor, at)
    await session.flush()
    return state


# --- reading ---------------------------------------------------------------------------------------


async def latest_run(session: AsyncSession) -> LifecycleRun | None:
    return await session.scalar(sa.select(LifecycleRun).order_by(LifecycleRun.id.desc()).limit(1))


async def states_for(
    session: AsyncSession, customer_ids: list[int]
) -> dict[int, tuple[CustomerLifecycleState, CustomerLifecycle | None, date | None]]:
    """Each customer's current state, with their row in the newest run that covered them and
    that run's day: one statement."""
    rows = (await session.execute(
        sa.select(CustomerLifecycleState, CustomerLifecycle, LifecycleRun.as_of)
        .outerjoin(CustomerLifecycle, sa.and_(CustomerLifecycle.run_id == CustomerLifecycleState.run_id,
                                              CustomerLifecycle.customer_id == CustomerLifecycleState.customer_id))
        .outerjoin(LifecycleRun, LifecycleRun.id == CustomerLifecycleState.run_id)
        .where(CustomerLifecycleState.customer_id.in_(customer_ids))
    )).all()
    return {state.customer_id: (state, row, day) for state, row, day in rows}


async def history_for(session: AsyncSession, customer_ids: list[int], *, first: int) -> dict[int, list[LifecycleStageChange]]:
    """The newest ``first`` changes of each customer, newest first, in one statement."""
    number = sa.func.row_number().over(
        partition_by=LifecycleStageChange.customer_id,
        order_by=(LifecycleStageChange.changed_at.desc(), LifecycleStageChange.id.desc())).label("n")
    inner = sa.select(LifecycleStageChange, number).where(LifecycleStageChange.customer_id.in_(customer_ids)).subquery()
    alias = sa.orm.aliased(LifecycleStageChange, inner)
    rows = await session.scalars(sa.select(alias).where(inner.c.n <= first).order_by(inner.c.n))
    out: dict[int, list[LifecycleStageChange]] = {c: [] for c in customer_ids}
    for row in rows:
        out[row.customer_id].append(row)
    return out
