"""GraphQL API of the sales domain."""

from crm_graph.domains import SchemaPart

SCHEMA = SchemaPart()
