"""The core domains. Each is a package ``crm_graph.<name>`` with ``models.py``, ``service.py``
and ``schema.py``; its ``schema.py`` exposes ``SCHEMA = SchemaPart(...)``.

Adding a domain means adding its name here: its tables join the migrations' metadata and its
query and mutation fields join the schema.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

CORE_DOMAINS: tuple[str, ...] = (
    "auth", "audit", "customers", "activities", "sales", "support", "segments", "webhooks", "privacy", "ownership",
    "insights", "automation", "loyalty", "files", "search", "imports", "dedupe", "exports",
)


@dataclass(frozen=True)
class SchemaPart:
    """What one domain (or plugin) adds to the GraphQL schema."""

    query: type | None = None
    mutation: type | None = None
    subscription: type | None = None  # live fields, over WebSocket (crm_graph/graphql/subscriptions.py)
    types: list[Any] = field(default_factory=list)
    # Types whose global IDs `node(id)` resolves: crm_graph.core.extensions.NodeType items.
    nodes: list[Any] = field(default_factory=list)


def import_models() -> None:
    for name in CORE_DOMAINS:
        importlib.import_module(f"crm_graph.{name}.models")


def schema_parts() -> list[SchemaPart]:
    return [importlib.import_module(f"crm_graph.{name}.schema").SCHEMA for name in CORE_DOMAINS]
