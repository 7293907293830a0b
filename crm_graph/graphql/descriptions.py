"""What of a schema has no description: its types, fields, arguments, input fields and enum
values, named by their schema coordinates (``Customer.displayName``, ``Query.customers(first:)``,
``CustomerKind.PERSON``). GraphiQL's docs pane is the API reference, so every one of them should
say what it is; tests/graphql/test_descriptions.py holds the core schema to all of them.

    .venv/bin/python -m crm_graph.graphql.descriptions [--core]   # lists what is missing
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
)
from graphql.type.introspection import introspection_types
from graphql.type.scalars import specified_scalar_types

_BUILT_IN = set(introspection_types) | set(specified_scalar_types)


def coordinates(schema: GraphQLSchema) -> Iterator[tuple[str, str | None]]:
    """Each describable member of the schema with its description (None or "" when it has none)."""
    for name in sorted(schema.type_map):
        if name in _BUILT_IN:
            continue
        named: GraphQLNamedType = schema.type_map[name]
        yield name, named.description
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in named.fields.items():
                yield f"{name}.{field_name}", field.description
                for arg_name, arg in field.args.items():
                    yield f"{name}.{field_name}({arg_name}:)", arg.description
        elif isinstance(named, GraphQLInputObjectType):
            for field_name, input_field in named.fields.items():
                yield f"{name}.{field_name}", input_field.description
        elif isinstance(named, GraphQLEnumType):
            for value_name, value in named.values.items():
                yield f"{name}.{value_name}", value.description
        elif isinstance(named, GraphQLUnionType):
            pass  # a union's members are types, described where they are defined


def missing(schema: GraphQLSchema) -> list[str]:
    return [coordinate for coordinate, text in coordinates(schema) if not (text and text.strip())]


def coverage(schema: GraphQLSchema) -> tuple[int, int]:
    """(described, total)."""
    entries = list(coordinates(schema))
    return sum(1 for _, text in entries if text and text.strip()), len(entries)


def core_schema() -> GraphQLSchema:
    """The schema of the core domains alone, without any plugin."""
    from crm_graph.graphql.schema import build_schema
    from crm_graph.plugins import make_plugin_manager
    from crm_graph.settings import Settings

    settings = Settings.from_env()
    return build_schema(settings, make_plugin_manager(settings, entry_points=False))._schema


def main(argv: list[str]) -> int:
    if "--core" in argv:
        schema = core_schema()
    else:
        from crm_graph.graphql.schema import build_schema
        from crm_graph.plugins import make_plugin_manager
        from crm_graph.settings import Settings

        settings = Settings.from_env()
        schema = build_schema(settings, make_plugin_manager(settings))._schema
    gaps = missing(schema)
    described, total = coverage(schema)
    for coordinate in gaps:
        print(coordinate)
    print(f"{described} of {total} described ({described / total:.1%}); {len(gaps)} missing", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
