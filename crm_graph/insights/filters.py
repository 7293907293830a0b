"""The ``lifetimeValue`` condition of the customer filter language: conditions on a customer's
row in the newest customer-value run, so "probability alive under 0.3 and CLV over 1,000" is a
list filter or a dynamic segment.

Registered by ``crm_graph.insights.plugin``. ``prepare_value_run`` reads the newest run's id
once per compilation; the condition is then an indexed semi-join on that run's rows. A customer
the run does not cover (no counted order in its currency, or added since) has no values: they
match only operators that accept a missing value (``neq``, ``isNull: true``), as a null column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import filters as f
from crm_graph.core.extensions import FilterContext
from crm_graph.customers.models import Customer
from crm_graph.customers.models import LifecycleStage
from crm_graph.customers.schema import LifecycleStageFilter
from crm_graph.graphql.inputs import DecimalFilter, IntFilter
from crm_graph.insights.models import CustomerLifecycleState, CustomerValue, CustomerValueRun
from crm_graph.sales.filters import bounded_decimal

RUN = "lifetimeValue"  # FilterContext.state key: the newest run's id


@strawberry.input(
    description="Conditions on the customer's figures in the newest customer-value run (`customerValueModel`). "
    "A customer the run does not cover has no figures and matches only `isNull: true` (and `neq`)."
)
class LifetimeValueFilter:
    probability_alive: DecimalFilter | None = strawberry.field(default=None, description="0 to 1.")
    expected_purchases: DecimalFilter | None = strawberry.field(
        default=None, description="Purchases expected over the run's horizon (CRM_CLV_HORIZON_DAYS).")
    clv: DecimalFilter | None = strawberry.field(
        default=None, description="Amount in the run's currency over its horizon and discount rate.")
    expected_spend: DecimalFilter | None = strawberry.field(default=None, description="Expected value of one future purchase.")
    average_spend: DecimalFilter | None = strawberry.field(default=None, description="Mean value of the repeat purchases.")
    frequency: IntFilter | None = strawberry.field(default=None, description="Repeat purchase days.")
    recency_days: IntFilter | None = strawberry.field(default=None, description="Days from the first to the last purchase.")
    age_days: IntFilter | None = strawberry.field(default=None, description="Days from the first purchase to the run's asOf.")


def _finite(value: Any) -> float:
    number = float(f.decimal_number(value))
    if not math.isfinite(number):
        raise ValueError("expected a finite number")
    return number


# filter key -> (column, parse of one value)
FIELDS: dict[str, tuple[Any, Any]] = {
    "probabilityAlive": (CustomerValue.probability_alive, _finite),
    "expectedPurchases": (CustomerValue.expected_purchases, _finite),
    "clv": (CustomerValue.clv, bounded_decimal),
    "expectedSpend": (CustomerValue.expected_spend, bounded_decimal),
    "averageSpend": (CustomerValue.average_spend, bounded_decimal),
    "frequency": (CustomerValue.frequency, f.whole_number),
    "recencyDays": (CustomerValue.recency_days, f.whole_number),
    "ageDays": (CustomerValue.age_days, f.whole_number),
}


async def prepare_value_run(session: AsyncSession, ctx: FilterContext, data: Mapping[str, Any]) -> None:
    if RUN not in ctx.state:
        ctx.state[RUN] = await session.scalar(sa.select(sa.func.max(CustomerValueRun.id)))


def lifetime_value_condition(ctx: FilterContext, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    ops = f.operators(ops, path, FIELDS)
    run = ctx.state.get(RUN) or 0
    rows = sa.select(CustomerValue.customer_id).where(CustomerValue.run_id == run)
    clauses = []
    for name, value in ops.items():
        column, parse = FIELDS[name]
        here = f"{path}.{name}"
        condition = f.comparable_condition(column, value, here, parse)
        matched = Customer.id.in_(rows.where(condition))
        present = f.operators(value, here, f.COMPARABLE_OPS)
        # Only the average spend is null in a row (no repeat purchase): there `isNull` is about
        # the column, and a customer without a row has none either.
        accepts_missing = bool(present) and all(op == "neq" or (op == "isNull" and v) for op, v in present.items())
        clauses.append(sa.or_(matched, Customer.id.not_in(rows)) if accepts_missing else matched)
    return sa.and_(sa.true(), *clauses)


# --- lifecycle ------------------------------------------------------------------------------------
# The stage itself is the customer's column (the core `lifecycleStage` condition); these are about
# how it is kept.


@strawberry.input(description="How the customer's lifecycle stage is kept: pinned by hand or not, and what the newest "
                  "lifecycle run computed. A customer no run covered and nobody pinned has no computed stage and is not pinned.")
class LifecycleFilter:
    pinned: bool | None = strawberry.field(default=None, description="true: pinned by hand; false: kept by the runs.")
    computed_stage: LifecycleStageFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="The stage the newest run computed, pinned or not.")


def lifecycle_condition(ctx: FilterContext, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    ops = f.operators(ops, path, ("pinned", "computedStage"))
    state = CustomerLifecycleState
    rows = sa.select(state.customer_id)
    clauses = []
    if ops.get("pinned") is not None:
        if not isinstance(ops["pinned"], bool):
            raise f.FilterError(f"{path}.pinned", "expected true or false")
        pinned = Customer.id.in_(rows.where(state.pinned))
        clauses.append(pinned if ops["pinned"] else ~pinned)
    if "computedStage" in ops:
        here = f"{path}.computedStage"
        condition = f.enum_condition(state.computed_stage, ops["computedStage"], here, LifecycleStage.__members__)
        matched = Customer.id.in_(rows.where(condition))
        present = f.operators(ops["computedStage"], here, f.ENUM_OPS)
        if present and all(op == "neq" or (op == "isNull" and v) for op, v in present.items()):
            matched = sa.or_(matched, Customer.id.not_in(rows))
        clauses.append(matched)
    return sa.and_(sa.true(), *clauses)
