"""The activities domain's built-in plugin: the customer's timeline and the ``activities``
filter condition, added through the same hooks a partner's plugin uses."""

from __future__ import annotations

from crm_graph import hookimpl
from crm_graph.core.extensions import FilterCondition, TypeExtension


@hookimpl
def crm_register_type_extensions() -> list[TypeExtension]:
    from crm_graph.activities.customer_fields import CustomerActivityFields

    return [TypeExtension("Customer", CustomerActivityFields)]


@hookimpl
def crm_register_filters() -> list[FilterCondition]:
    from crm_graph.activities.customer_conditions import activities_condition
    from crm_graph.activities.customer_fields import ActivitiesBehaviourFilter

    return [
        FilterCondition(
            "Customer", "activities", activities_condition, ActivitiesBehaviourFilter,
            description="The customer's timeline: how many activities and when the latest one occurred.",
        )
    ]
