"""GraphQL API of exports."""

from __future__ import annotations

from crm_graph.domains import SchemaPart

SCHEMA = SchemaPart()
