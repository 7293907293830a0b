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

# Members that mean the same wherever they appear: the page arguments of every list, its
# ordering, optimistic concurrency, and the errors of every payload. They are described once,
# here, when the schema is assembled; a field that says more about one of them keeps its text.
STANDARD_ARGUMENTS = {
    "first": "Return at most this many rows from the start of the list (or after `after`): 0 to 100. "
             "Without `first` and `last`, 20.",
    "after": "Start after the row with this cursor (an `endCursor` or `cursor` of an earlier page of the same list and ordering).",
    "last": "Return at most this many rows from the end of the list (or before `before`): 0 to 100. "
            "Not together with `first`.",
    "before": "End before the row with this cursor (a `startCursor` or `cursor` of an earlier page of the same list and ordering).",
    "orderBy": "Sort keys, the most significant first. The ID breaks the last tie, so pages never overlap.",
    "expectedVersion": "The `version` you last read. If the record changed since, the answer is VERSION_CONFLICT "
                       "and nothing changes; leave it out to write regardless.",
}
ROOT_TYPES = {
    "Query": "Everything you can read. Each field says which permission it needs; lists are paged with cursors.",
    "Mutation": "Everything you can change. Each mutation answers with a payload: the record as it is now, and "
                "`errors` for input it refused.",
    "Subscription": "Live updates over WebSocket (graphql-transport-ws), for records you may read.",
}
PAYLOAD_ERRORS = ("What was wrong with the input, one entry per problem with the input field's path and a code; "
                  "empty when the mutation did what it was asked.")


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


def describe_standard_members(schema: GraphQLSchema) -> None:
    """Give the standard members (``STANDARD_ARGUMENTS``, a payload's ``errors``) their text
    wherever the field that has them says nothing of its own, and the root types theirs."""
    for root in (schema.query_type, schema.mutation_type, schema.subscription_type):
        if root is not None and not root.description:
            root.description = ROOT_TYPES.get(root.name)
    for named in schema.type_map.values():
        if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType) or named.name in _BUILT_IN:
            continue
        for field_name, field in named.fields.items():
            if field_name == "errors" and named.name.endswith("Payload") and not field.description:
                field.description = PAYLOAD_ERRORS
            for arg_name, arg in field.args.items():
                if not arg.description and arg_name in STANDARD_ARGUMENTS:
                    arg.description = STANDARD_ARGUMENTS[arg_name]


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
