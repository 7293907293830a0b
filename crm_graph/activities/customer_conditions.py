"""The ``activities`` condition of the customer filter language (registered by
``crm_graph.activities.plugin``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from crm_graph.activities.models import Activity
from crm_graph.core import filters as f
from crm_graph.core.extensions import FilterContext
from crm_graph.customers.models import Customer


def activities_condition(ctx: FilterContext, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    ops = f.operators(ops, path, ("windowDays", "count", "lastAt"))
    conditions = [Activity.customer_id == Customer.id, Activity.deleted_at.is_(None)]
    since = f.window_start(ops, path, ctx.now)
    if since is not None:
        conditions.append(Activity.occurred_at >= since)
    clauses = []
    if "count" in ops:
        counted = sa.select(sa.func.count()).where(*conditions).scalar_subquery()
        clauses.append(f.comparable_condition(counted, ops["count"], f"{path}.count", f.whole_number))
    if "lastAt" in ops:
        last = sa.select(sa.func.max(Activity.occurred_at)).where(*conditions).scalar_subquery()
        clauses.append(f.comparable_condition(last, ops["lastAt"], f"{path}.lastAt", f.aware_datetime))
    return sa.and_(sa.true(), *clauses)
