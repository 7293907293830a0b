"""The ``marketingEngagement`` condition of the customer filter: "clicked campaign X", "opened
in the last 30 days", "no opens in 90 days". Registered through ``crm_register_filters`` (see
``FILTERS``), so it works in ``customers(filter:)``, nested in ``and``/``or``/``not``, and in
stored dynamic segments, which keep it as plain data (``{"kind": "OPENED", "withinDays": 90,
"none": true}``) and compile it again on every read.

It compiles to ``EXISTS`` (or ``NOT EXISTS``) over ``crm_marketing_engagements`` on the
``(customer_id, kind, at)`` index; engagements that name no customer (a provider's result for an
unknown address) match nobody.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import strawberry

from crm_graph.core import filters as f
from crm_graph.core import ids
from crm_graph.core.extensions import FilterCondition, FilterContext
from crm_graph.customers.models import Customer
from crm_marketing.models import Engagement, EngagementKind

MAX_WITHIN_DAYS = 3650
NAME = "marketingEngagement"


@strawberry.enum(name="MarketingEngagementKind", description="What a customer did with marketing mail.")
class MarketingEngagementKind(enum.Enum):
    OPENED = strawberry.enum_value("OPENED", description="Opened a marketing mail.")
    CLICKED = strawberry.enum_value("CLICKED", description="Clicked a link in a marketing mail.")
    UNSUBSCRIBED = strawberry.enum_value("UNSUBSCRIBED", description="Unsubscribed.")
    BOUNCED = strawberry.enum_value("BOUNCED", description="A hard bounce.")
    COMPLAINED = strawberry.enum_value("COMPLAINED", description="Marked as spam.")


KINDS = tuple(MarketingEngagementKind.__members__)


@strawberry.input(
    name="MarketingEngagementFilter",
    description="Customers by their engagement with marketing mail (crm_marketing plugin): who has (or, with "
    "`none: true`, has not) an engagement of `kind`, of one campaign and within the last days when given. "
    'E.g. `{kind: CLICKED, campaignId: "..."}`, or `{kind: OPENED, withinDays: 90, none: true}` for no opens in 90 days.',
)
class MarketingEngagementFilter:
    kind: MarketingEngagementKind = strawberry.field(description="The engagement to look for.")
    campaign_id: strawberry.ID | None = strawberry.field(default=None, description="The Campaign's ID.")
    within_days: int | None = strawberry.field(
        default=None, description=f"Only engagements of the last N days (1 to {MAX_WITHIN_DAYS}).")
    none: bool = strawberry.field(
        default=False, description="false: has such an engagement; true: has none.")


def engagement_condition(ctx: FilterContext, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    ops = f.operators(ops, path, ("kind", "campaignId", "withinDays", "none"))
    kind = ops.get("kind")
    if kind is None:
        raise f.FilterError(f"{path}.kind", f"kind is required: one of {', '.join(KINDS)}")
    if kind not in KINDS:
        raise f.FilterError(f"{path}.kind", f"unknown kind {str(kind)[:40]!r}; use one of {', '.join(KINDS)}")
    conditions = [Engagement.customer_id == Customer.id, Engagement.kind == EngagementKind[kind]]
    if "campaignId" in ops:
        value = ops["campaignId"]
        try:
            if not isinstance(value, str):
                raise ValueError("expected an ID string")
            pk = ids.decode_as(value, "Campaign")
        except ValueError as exc:
            raise f.FilterError(f"{path}.campaignId", f"not a Campaign ID ({exc})") from None
        conditions.append(Engagement.campaign_id == pk)
    if "withinDays" in ops:
        days = ops["withinDays"]
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_WITHIN_DAYS:
            raise f.FilterError(f"{path}.withinDays",
                                f"withinDays is a whole number of days from 1 to {MAX_WITHIN_DAYS}, not {days!r}")
        conditions.append(Engagement.at >= ctx.now - timedelta(days=days))
    none = ops.get("none", False)
    if not isinstance(none, bool):
        raise f.FilterError(f"{path}.none", "expected true or false")
    found = sa.exists().where(*conditions)
    return sa.not_(found) if none else found


FILTERS: list[FilterCondition] = [
    FilterCondition(
        "Customer", NAME, engagement_condition, MarketingEngagementFilter,
        description="By engagement with marketing mail: opens, clicks, unsubscribes, bounces, complaints "
        "(crm_marketing plugin).",
    )
]
