"""GraphQL API of the webhooks domain."""

from crm_graph.domains import SchemaPart

SCHEMA = SchemaPart()
