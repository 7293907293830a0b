"""docs/api.md, made from two parts so it cannot drift from the API: the hand-written guide
(docs/api-guide.md: conventions, limits, errors, examples) and a reference generated from
schema.graphql (every root field, type, input, enum and scalar, with its description).

    .venv/bin/python -m crm_graph.graphql.reference > docs/api.md      # make schema does it

tests/test_schema_contract.py fails when the committed docs/api.md is not what this makes.
"""

from __future__ import annotations

import sys

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
)
from graphql.pyutils import Undefined
from graphql.type.introspection import introspection_types
from graphql.utilities.ast_from_value import ast_from_value
from graphql.language.printer import print_ast

from crm_graph.settings import PROJECT_ROOT

GUIDE = PROJECT_ROOT / "docs" / "api-guide.md"
SCHEMA = PROJECT_ROOT / "schema.graphql"
NOTICE = ("<!-- Made by `python -m crm_graph.graphql.reference` from docs/api-guide.md and schema.graphql; "
          "edit those, then run `make schema`. -->")


def _text(description: str | None) -> str:
    return " ".join((description or "").split())


def _default(arg: GraphQLArgument | GraphQLInputField) -> str:
    if arg.default_value is Undefined:
        return ""
    node = ast_from_value(arg.default_value, arg.type)
    return f" = {print_ast(node)}" if node is not None else ""


def _field(name: str, field: GraphQLField) -> list[str]:
    args = ", ".join(f"{a}: {arg.type}{_default(arg)}" for a, arg in field.args.items())
    signature = f"{name}({args})" if args else name
    lines = [f"- `{signature}`: `{field.type}`. {_text(field.description)}".rstrip()]
    if field.deprecation_reason:
        lines.append(f"  - Deprecated: {_text(field.deprecation_reason)}")
    lines += [f"  - `{a}`: {_text(arg.description)}" for a, arg in field.args.items() if arg.description]
    return lines


def _section(title: str, types: list[object]) -> list[str]:
    if not types:
        return []
    out = [f"### {title}", ""]
    for named in types:
        out += [f"#### {named.name}", "", f"{_text(named.description)}", ""]  # type: ignore[attr-defined]
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            if isinstance(named, GraphQLObjectType) and named.interfaces:
                out += ["Implements " + ", ".join(f"`{i.name}`" for i in named.interfaces) + ".", ""]
            for name, field in named.fields.items():
                out += _field(name, field)
        elif isinstance(named, GraphQLInputObjectType):
            for name, input_field in named.fields.items():
                out.append(f"- `{name}: {input_field.type}{_default(input_field)}`. {_text(input_field.description)}".rstrip())
        elif isinstance(named, GraphQLEnumType):
            for name, value in named.values.items():
                out.append(f"- `{name}`: {_text(value.description)}".rstrip())
        elif isinstance(named, GraphQLUnionType):
            out.append("One of " + ", ".join(f"`{t.name}`" for t in named.types) + ".")
        out.append("")
    return out


def render(schema: GraphQLSchema, guide: str) -> str:
    roots = [t for t in (schema.query_type, schema.mutation_type, schema.subscription_type) if t is not None]
    named = [t for name, t in sorted(schema.type_map.items())
             if name not in introspection_types and t not in roots and not name.startswith("__")]
    out = [NOTICE, "", guide.rstrip(), "", "## Reference", "",
           "Generated from schema.graphql: every root field, then every type by kind, A to Z.", ""]
    for root in roots:
        out += [f"### {root.name}", "", _text(root.description), ""]
        for name, field in sorted(root.fields.items()):
            out += _field(name, field)
        out.append("")
    out += _section("Object types", [t for t in named if isinstance(t, GraphQLObjectType)])
    out += _section("Interfaces", [t for t in named if isinstance(t, GraphQLInterfaceType)])
    out += _section("Unions", [t for t in named if isinstance(t, GraphQLUnionType)])
    out += _section("Input types", [t for t in named if isinstance(t, GraphQLInputObjectType)])
    out += _section("Enums", [t for t in named if isinstance(t, GraphQLEnumType)])
    scalars = [t for t in named if isinstance(t, GraphQLScalarType) and t.name not in ("String", "Int", "Float", "Boolean", "ID")]
    out += _section("Scalars", scalars)
    return "\n".join(out).rstrip() + "\n"


def current() -> str:
    return render(build_schema(SCHEMA.read_text()), GUIDE.read_text())


if __name__ == "__main__":
    sys.stdout.write(current())

