"""The registries through which domains and plugins extend each other: fields on core types,
conditions in filters, node types and event subscribers.

Each is filled from hooks (``crm_register_type_extensions``, ``crm_register_filters``,
``crm_register_schema``'s node types, ``crm_register_subscribers``) when an application is built,
and lives on that application's objects (its schema, its ``Database``, its dispatcher), never in a
module global: two applications with different plugins in one process see different registries.
The core domains register through the same hooks as a partner's plugin (their ``plugin.py``
modules are core plugins), so no core type imports another domain's schema.

This module holds the plain descriptions; ``crm_graph/graphql/extend.py`` turns type extensions
into schema fields, and the filter compilers (``crm_graph/customers/filters.py``) read the filter
conditions. No GraphQL here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa

# The entities whose filter inputs take registered conditions, with the name of their input.
FILTER_INPUTS: dict[str, str] = {"Customer": "CustomerFilter"}


@dataclass(frozen=True)
class TypeExtension:
    """Fields a domain or plugin adds to a core GraphQL type.

    ``fields`` is a Strawberry type (``@strawberry.type class CustomerInvoiceFields: ...``) whose
    fields join ``type_name`` (``"Customer"``, ``"Order"``, ``"Opportunity"``, ``"Ticket"``,
    ``"Segment"``...). Resolvers receive the core object as ``self``: ``self.pk`` is the primary
    key on every core type. Batch through the request's loaders (``info.context.loader(...)``) so
    the number of statements does not grow with the page.
    """

    type_name: str
    fields: type


@dataclass
class FilterContext:
    """What the compilation of one filter knows: the time it is compiled at, what each condition
    loaded beforehand (``state``, by condition name) and, for conditions that compile stored
    filters (segment membership), a function compiling another filter of the same entity."""

    now: datetime
    state: dict[str, Any] = field(default_factory=dict)
    compile: Callable[[Mapping[str, Any]], sa.ColumnElement[bool]] | None = None
    within: int | None = None  # the segment whose own filter is being compiled, if any


# compile(ctx, operators, path) -> SQL condition on the entity's model; raise
# crm_graph.core.filters.FilterError(path, message) for a value that cannot be compiled.
Compile = Callable[[FilterContext, Mapping[str, Any], str], sa.ColumnElement[bool]]
# prepare(session, ctx, filter) -> further filter documents to prepare (e.g. stored filters the
# condition will compile), or None. Runs once per compilation, before any compile call.
Prepare = Callable[[Any, FilterContext, Mapping[str, Any]], Awaitable[Sequence[Mapping[str, Any]] | None]]


@dataclass(frozen=True)
class FilterCondition:
    """A condition a domain or plugin adds to an entity's filter input.

    ``name`` is the camelCase key in the filter (``campaignEngagement``); ``input`` the GraphQL
    input type of its value (a Strawberry input class, or one of ``crm_graph.graphql.inputs``'
    ``IntFilter``, ``StringFilter``...), ``compile`` turns the value into SQL on the entity's
    model. The condition works wherever the entity's filter does: list arguments, nested
    ``and``/``or``/``not``, and stored dynamic segments, which are validated by compiling them.
    """

    entity: str
    name: str
    compile: Compile
    input: Any = None
    description: str | None = None
    prepare: Prepare | None = None


@dataclass(frozen=True)
class NodeType:
    """A type whose global IDs ``node(id)`` and ``nodes(ids)`` resolve.

    ``resolve(info, pks)`` returns the objects in the order of ``pks`` (None for unknown ones);
    ``crm_graph.graphql.relay.node_resolver`` builds one from a batch function. ``type`` is the
    Strawberry class, added to the schema even when no field returns it.
    """

    name: str
    resolve: Callable[[Any, list[int]], Awaitable[list[Any]]]
    type: Any = None


@dataclass
class Registry:
    """One application's extensions, with who registered each (for clash messages)."""

    type_extensions: dict[str, list[tuple[str, TypeExtension]]] = field(default_factory=dict)
    filters: dict[str, dict[str, tuple[str, FilterCondition]]] = field(default_factory=dict)

    def conditions(self, entity: str) -> dict[str, FilterCondition]:
        return {name: condition for name, (_, condition) in self.filters.get(entity, {}).items()}


def build_registry(pm: Any) -> Registry:
    """Collect type extensions and filter conditions from every plugin (core plugins included).

    A condition whose name another plugin registered already for the same entity, or an entity
    without a filter input, is a ``PluginError`` naming the plugin. Field clashes on types are
    checked when the schema is built (``crm_graph.graphql.extend``), where the fields are known.
    """
    from crm_graph.plugins import PluginError, collect

    registry = Registry()
    # In registration order (core plugins first, as listed in CORE_PLUGINS), not pluggy's LIFO.
    for plugin, value in reversed(collect(pm, "crm_register_type_extensions")):
        for item in _items(value):
            if not isinstance(item, TypeExtension):
                raise PluginError(plugin, f"crm_register_type_extensions returned {type(item).__name__}, not a TypeExtension")
            registry.type_extensions.setdefault(item.type_name, []).append((plugin, item))
    for plugin, value in reversed(collect(pm, "crm_register_filters")):
        for item in _items(value):
            if not isinstance(item, FilterCondition):
                raise PluginError(plugin, f"crm_register_filters returned {type(item).__name__}, not a FilterCondition")
            if item.entity not in FILTER_INPUTS:
                known = ", ".join(sorted(FILTER_INPUTS))
                raise PluginError(plugin, f"filter condition {item.name!r}: {item.entity!r} takes no conditions (known: {known})")
            taken = registry.filters.setdefault(item.entity, {})
            if item.name in taken:
                raise PluginError(plugin, f"filter condition {item.entity}.{item.name} clashes with plugin {taken[item.name][0]!r}")
            taken[item.name] = (plugin, item)
    return registry


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


@cache
def core_registry() -> Registry:
    """The registry of the core plugins alone: for filters compiled outside an application (a
    script, a test that builds its own ``Database``)."""
    from crm_graph.plugins import make_plugin_manager
    from crm_graph.settings import Settings

    return build_registry(make_plugin_manager(Settings(), entry_points=False))


REGISTRY_KEY = "crm_extensions"


def registry_of(session: Any) -> Registry:
    """The registry of the application a session belongs to (see ``Database.use_extensions``)."""
    found = session.info.get(REGISTRY_KEY) if session is not None else None
    return found if found is not None else core_registry()
