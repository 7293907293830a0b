"""GraphQL API of the sales domain: products, pipelines, opportunities, quotes, orders, payments.

Thin: types and inputs in ``types``/``inputs``, resolvers that call ``crm_graph.sales.service``.
The fields sales adds to ``Customer`` live in ``crm_graph.sales.customer_fields``, registered by
``crm_graph.sales.plugin``.
"""

from crm_graph.domains import SchemaPart
from crm_graph.sales.schema.types import NODES
from crm_graph.sales.schema.mutations import SalesMutation
from crm_graph.sales.schema.queries import SalesQuery

SCHEMA = SchemaPart(query=SalesQuery, mutation=SalesMutation, nodes=NODES)
