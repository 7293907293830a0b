"""GraphQL API of access: sign-in, the current actor, users, teams, roles, API keys, sharing."""

from __future__ import annotations

from crm_graph.domains import SchemaPart

SCHEMA = SchemaPart()
