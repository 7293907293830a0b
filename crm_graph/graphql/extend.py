"""Type and filter extensions, as fields of the schema being built.

``CrmSchema.get_fields`` asks ``Extensions.fields(definition)`` for every object and input type
while Strawberry converts it: the type's own fields plus what domains and plugins registered
(``crm_graph.core.extensions``). Nothing is added to the Python classes, so another schema in
the same process (other plugins, a plugin blocked) has exactly its own fields.

Filter inputs (``CustomerFilter``) reach resolvers as plain mappings (``plain_filter``): the
filter language is plain data anyway (dynamic segments store it as JSON), and registered
conditions are then part of it like any built-in field.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Optional

import strawberry
from strawberry.annotation import StrawberryAnnotation
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

from crm_graph.core.extensions import FILTER_INPUTS, FilterCondition, Registry
from crm_graph.plugins import PluginError

CORE = "the core"


class Extensions:
    """The extra fields of one schema, by GraphQL type name, with their plugins."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._extra: dict[str, list[tuple[str, StrawberryField]]] = {}
        for type_name, items in registry.type_extensions.items():
            for plugin, extension in items:
                definition = getattr(extension.fields, "__strawberry_definition__", None)
                if not isinstance(definition, StrawberryObjectDefinition):
                    raise PluginError(plugin, f"type extension of {type_name}: {extension.fields!r} is not a Strawberry type")
                self._extra.setdefault(type_name, []).extend((plugin, f) for f in definition.fields)
        for entity, input_name in FILTER_INPUTS.items():
            for plugin_condition in registry.filters.get(entity, {}).values():
                plugin, condition = plugin_condition
                self._extra.setdefault(input_name, []).append((plugin, _input_field(condition)))
        self.seen: set[str] = set()

    def fields(self, definition: StrawberryObjectDefinition) -> list[StrawberryField]:
        extra = self._extra.get(definition.name)
        if not extra:
            return definition.fields
        self.seen.add(definition.name)
        owners = {_name(f): CORE for f in definition.fields}
        for plugin, item in extra:
            name = _name(item)
            if name in owners:
                raise PluginError(plugin, f"field {definition.name}.{name} clashes with {owners[name]}")
            owners[name] = f"plugin {plugin!r}"
        return [*definition.fields, *(item for _, item in extra)]

    def check_all_used(self) -> None:
        """A type extension of a type the schema does not have is a mistake worth stopping for."""
        for type_name, items in self._extra.items():
            if type_name not in self.seen:
                raise PluginError(items[0][0], f"extends type {type_name!r}, which the schema does not have")


def _name(item: StrawberryField) -> str:
    from strawberry.utils.str_converters import to_camel_case

    return item.graphql_name or to_camel_case(item.python_name)


def _input_field(condition: FilterCondition) -> StrawberryField:
    value_type = condition.input if condition.input is not None else strawberry.scalars.JSON
    item = strawberry.field(default=None, name=condition.name, description=condition.description)
    item.python_name = _snake(condition.name)
    item.type_annotation = StrawberryAnnotation(Optional[value_type])  # noqa: UP045 - built at run time
    return item


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


# --- filter inputs as plain data --------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A coerced GraphQL input value as the filter language's plain data: enum members become
    their names, nested inputs stay mappings with their GraphQL (camelCase) keys."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.name
    return value


def plain_filter(input_type: type) -> type:
    """Make a Strawberry filter input arrive in resolvers as a plain mapping (see module doc)."""
    definition = input_type.__strawberry_definition__  # type: ignore[attr-defined]
    definition.from_input = lambda _type, value, _context: plain(value)
    return input_type
