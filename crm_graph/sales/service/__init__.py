"""Rules of the sales domain, one module per aggregate. Inputs are plain camelCase mappings (the
GraphQL inputs after ``to_plain``, with global IDs decoded to primary keys); every function takes
``session`` and ``actor`` as keyword arguments where it writes, and raises the typed errors of
``crm_graph.core.errors`` with the codes of ``crm_graph.sales.codes``."""

from crm_graph.sales.service import (
    opportunities,
    orders,
    pipelines,
    products,
    quotes,
    reports,
)

__all__ = ["opportunities", "orders", "pipelines", "products", "quotes", "reports"]
