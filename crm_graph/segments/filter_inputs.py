"""Inputs of the conditions the segments domain adds to ``CustomerFilter``: ``rfm``, ``valueTier``
and ``segment`` (registered by ``crm_graph.segments.plugin``)."""

from __future__ import annotations

import strawberry

from crm_graph.graphql.inputs import IntFilter, enum_filter
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
