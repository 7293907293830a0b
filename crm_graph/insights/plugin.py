"""The insights domain's built-in plugin: ``Customer.lifetimeValue`` and the ``lifetimeValue``
filter condition, added through the same hooks a partner's plugin uses."""

from __future__ import annotations

from crm_graph import hookimpl
from crm_graph.core.extensions import FilterCondition, TypeExtension
from crm_graph.insights import events  # noqa: F401 - registers the event types


@hookimpl
def crm_register_type_extensions() -> list[TypeExtension]:
    from crm_graph.insights.customer_fields import CustomerValueFields

    return [TypeExtension("Customer", CustomerValueFields)]


@hookimpl
def crm_register_filters() -> list[FilterCondition]:
    from crm_graph.insights.filters import LifetimeValueFilter, lifetime_value_condition, prepare_value_run

    return [
        FilterCondition(
            "Customer", "lifetimeValue", lifetime_value_condition, LifetimeValueFilter,
            description="Figures in the newest customer-value run (probability alive, CLV...).", prepare=prepare_value_run,
        ),
    ]
