"""GraphQL API of the support domain."""

from crm_graph.domains import SchemaPart

SCHEMA = SchemaPart()
