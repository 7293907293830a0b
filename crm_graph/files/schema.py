"""GraphQL API of files."""

from __future__ import annotations

from crm_graph.domains import SchemaPart

SCHEMA = SchemaPart()
