"""Inputs of the conditions the segments domain adds to ``CustomerFilter``: ``rfm``, ``valueTier``
and ``segment`` (registered by ``crm_graph.segments.plugin``)."""

from __future__ import annotations

import strawberry

from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.inputs import IntFilter, enum_filter
from crm_graph.segments.models import RfmGroup, ValueTier

graphql_enum(
    RfmGroup,
    "Named RFM groups, from the recency and frequency scores (and monetary, for CANNOT_LOSE); "
    "see docs/segments.md for the rules.",
    {
        "CHAMPIONS": "Recency 5, frequency 4 or 5: bought recently and often.",
        "LOYAL": "Recency 3 or 4, frequency 4 or 5.",
        "POTENTIAL_LOYALIST": "Recency 4 or 5, frequency 2 or 3.",
        "NEW": "Recency 5, frequency 1: a recent first buyer.",
        "PROMISING": "Recency 4, frequency 1.",
        "NEEDS_ATTENTION": "Recency 3, frequency 3.",
        "ABOUT_TO_SLEEP": "Recency 3, frequency 1 or 2.",
        "AT_RISK": "Recency 1 or 2, frequency 3 or 4, monetary below 5: bought often, but not lately.",
        "CANNOT_LOSE": "Recency 1 or 2 with frequency 5 or monetary 5: a top customer who has not bought lately.",
        "HIBERNATING": "Recency 1 or 2, frequency 1 or 2, monetary below 5, other than LOST.",
        "LOST": "Recency 1, frequency 1, monetary below 5.",
    },
)
graphql_enum(
    ValueTier,
    "Pareto tiers by revenue: KEY customers bring the first 80% of revenue, ORDINARY the next 15%, "
    "POTENTIAL the rest (and customers with only older orders or an open opportunity).",
    {
        "KEY": "The top customers who together bring the first 80% of revenue.",
        "ORDINARY": "The customers who bring the next 15%.",
        "POTENTIAL": "The rest, and customers with only older orders or an open opportunity.",
    },
)

RfmGroupFilter = enum_filter(RfmGroup, "RfmGroupFilter")
ValueTierFilter = enum_filter(ValueTier, "ValueTierFilter")


@strawberry.input(description="Conditions on the newest stored RFM run (see `rfmAnalysis`).")
class RfmFilter:
    recency_score: IntFilter | None = strawberry.field(default=None, description="Recency score, 1 to 5 (5: most recent).")
    frequency_score: IntFilter | None = strawberry.field(default=None, description="Frequency score, 1 to 5 (5: most orders).")
    monetary_score: IntFilter | None = strawberry.field(default=None, description="Monetary score, 1 to 5 (5: most revenue).")
    group: RfmGroupFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="The named RFM group."
    )


@strawberry.input(description="Membership of other segments: in all of `in`, in none of `notIn`.")
class SegmentMembershipFilter:
    in_: list[strawberry.ID] | None = strawberry.field(
        default=None, name="in", description="Global IDs of Segments the customer is a member of, every one of them."
    )
    not_in: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Global IDs of Segments the customer is a member of none of."
    )
