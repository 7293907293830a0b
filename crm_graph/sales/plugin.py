"""The sales domain's built-in plugin: the customer's opportunities, orders, quotes and purchase
statistics, and the ``orders`` and ``purchased`` filter conditions, added through the same hooks
a partner's plugin uses."""

from __future__ import annotations

from crm_graph import hookimpl
from crm_graph.core.extensions import FilterCondition, TypeExtension


@hookimpl
def crm_register_type_extensions() -> list[TypeExtension]:
    from crm_graph.sales.customer_fields import CustomerSalesFields

    return [TypeExtension("Customer", CustomerSalesFields)]


@hookimpl
def crm_register_filters() -> list[FilterCondition]:
    from crm_graph.sales.customer_conditions import orders_condition, purchased_condition
    from crm_graph.sales.customer_fields import OrdersBehaviourFilter, PurchasedFilter

    return [
        FilterCondition(
            "Customer", "orders", orders_condition, OrdersBehaviourFilter,
            description="Aggregates of the customer's counted orders: paid or fulfilled, never cancelled or refunded.",
        ),
        FilterCondition(
            "Customer", "purchased", purchased_condition, PurchasedFilter,
            description="The customer bought one of these products, or a product with one of these tags, in a counted order.",
        ),
    ]
