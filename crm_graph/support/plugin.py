"""The support domain's built-in plugin: the customer's tickets and the ``tickets`` filter
condition, added through the same hooks a partner's plugin uses."""

from __future__ import annotations

from crm_graph import hookimpl
from crm_graph.core.extensions import FilterCondition, TypeExtension


@hookimpl
def crm_register_type_extensions() -> list[TypeExtension]:
    from crm_graph.support.customer_fields import CustomerSupportFields

    return [TypeExtension("Customer", CustomerSupportFields)]


@hookimpl
def crm_register_filters() -> list[FilterCondition]:
    from crm_graph.support.customer_conditions import tickets_condition
    from crm_graph.support.customer_fields import TicketsBehaviourFilter

    return [
        FilterCondition(
            "Customer", "tickets", tickets_condition, TicketsBehaviourFilter,
            description="Counts of the customer's support tickets.",
        )
    ]
