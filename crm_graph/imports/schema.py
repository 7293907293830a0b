"""GraphQL API of imports."""

from __future__ import annotations

from crm_graph.domains import SchemaPart

SCHEMA = SchemaPart()
