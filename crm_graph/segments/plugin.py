"""The segments domain's built-in plugin: ``Customer.segments`` and ``Customer.rfm``, and the
``rfm``, ``valueTier`` and ``segment`` filter conditions, added through the same hooks a
partner's plugin uses."""

from __future__ import annotations

from crm_graph import hookimpl
from crm_graph.core.extensions import FilterCondition, TypeExtension


@hookimpl
def crm_register_type_extensions() -> list[TypeExtension]:
    from crm_graph.segments.customer_fields import CustomerSegmentFields

    return [TypeExtension("Customer", CustomerSegmentFields)]


@hookimpl
def crm_register_filters() -> list[FilterCondition]:
    from crm_graph.segments import behaviour as b
    from crm_graph.segments.filter_inputs import RfmFilter, SegmentMembershipFilter, ValueTierFilter

    return [
        FilterCondition(
            "Customer", "rfm", b.rfm_condition, RfmFilter,
            description="Scores and group in the newest stored RFM run; a customer it did not score has null values.",
            prepare=b.prepare_rfm,
        ),
        FilterCondition(
            "Customer", "valueTier", b.value_tier_condition, ValueTierFilter,
            description="Tier in the newest stored RFM run.", prepare=b.prepare_rfm,
        ),
        FilterCondition(
            "Customer", "segment", b.segment_condition, SegmentMembershipFilter,
            description="Membership of other segments; a deleted segment or a cycle of segments gives a filter error.",
            prepare=b.prepare_segments,
        ),
    ]
