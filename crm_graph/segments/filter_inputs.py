"""The behavioural part of ``CustomerFilter`` (CustomerFilter inherits this input)."""

from __future__ import annotations

import strawberry

from crm_graph.graphql.inputs import DateTimeFilter, DecimalFilter, IntFilter, enum_filter
from crm_graph.segments.models import RfmGroup, ValueTier

strawberry.enum(
    RfmGroup,
    description="Named RFM groups, from the recency and frequency scores (and monetary, for CANNOT_LOSE); "
    "see docs/segments.md for the rules.",
)
strawberry.enum(
    ValueTier,
    description="Pareto tiers by revenue: KEY customers bring the first 80% of revenue, ORDINARY the next 15%, "
    "POTENTIAL the rest (and customers with only older orders or an open opportunity).",
)

RfmGroupFilter = enum_filter(RfmGroup, "RfmGroupFilter")
ValueTierFilter = enum_filter(ValueTier, "ValueTierFilter")


@strawberry.input(
    description="Conditions on the customer's counted orders (paid or fulfilled; not cancelled or refunded), "
    "optionally within the last `windowDays` days and in one `currency`."
)
class OrdersBehaviourFilter:
    window_days: int | None = None
    currency: str | None = strawberry.field(default=None, description="Only orders in this currency; give it when comparing amounts in a business that sells in several.")
    count: IntFilter | None = None
    total_spent: DecimalFilter | None = None
    average_order_value: DecimalFilter | None = None
    first_order_at: DateTimeFilter | None = None
    last_order_at: DateTimeFilter | None = None


@strawberry.input(description="Conditions on the customer's support tickets.")
class TicketsBehaviourFilter:
    count: IntFilter | None = None
    open_count: IntFilter | None = strawberry.field(default=None, description="Tickets that are NEW, OPEN or PENDING.")


@strawberry.input(description="Conditions on the customer's timeline, optionally within the last `windowDays` days.")
class ActivitiesBehaviourFilter:
    window_days: int | None = None
    count: IntFilter | None = None
    last_at: DateTimeFilter | None = None


@strawberry.input(description="True when a counted order of the customer has one of these products (or a product with one of these tags).")
class PurchasedFilter:
    product_ids: list[strawberry.ID] | None = None
    product_tags: list[str] | None = None
    window_days: int | None = None


@strawberry.input(description="Conditions on the newest stored RFM run (see `rfmAnalysis`).")
class RfmFilter:
    recency_score: IntFilter | None = None
    frequency_score: IntFilter | None = None
    monetary_score: IntFilter | None = None
    group: RfmGroupFilter | None = None  # type: ignore[valid-type]


@strawberry.input(description="Membership of other segments: in all of `in`, in none of `notIn`.")
class SegmentMembershipFilter:
    in_: list[strawberry.ID] | None = strawberry.field(default=None, name="in")
    not_in: list[strawberry.ID] | None = None


@strawberry.input
class CustomerBehaviourFilter:
    age: IntFilter | None = strawberry.field(default=None, description="Age in whole years, from the birthday.")
    orders: OrdersBehaviourFilter | None = None
    tickets: TicketsBehaviourFilter | None = None
    activities: ActivitiesBehaviourFilter | None = None
    purchased: PurchasedFilter | None = None
    rfm: RfmFilter | None = None
    value_tier: ValueTierFilter | None = strawberry.field(default=None, description="Tier in the newest stored RFM run.")  # type: ignore[valid-type]
    segment: SegmentMembershipFilter | None = None
