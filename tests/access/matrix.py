"""Documents for every root field of the schema, generated from the schema itself.

``document(schema, root, field, ids)`` gives a query or mutation calling one root field with
every required argument filled in (IDs taken from ``ids`` by the type the argument's name
suggests) and a selection of its result a few levels deep, so a test can call every operation the
API has, including ones added after the test was written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    Undefined,
)

SCALARS = {
    "String": "x",
    "Int": 1,
    "Float": 1.0,
    "Boolean": False,
    "Decimal": "1",
    "DateTime": "2026-06-01T00:00:00Z",
    "Date": "2026-06-01",
    "JSON": {},
}
# ID arguments: the entity their name points to; anything else gets a customer's ID.
ID_HINTS = (
    ("opportunit", "Opportunity"),
    ("quote", "Quote"),
    ("order", "Order"),
    ("payment", "Order"),
    ("ticket", "Ticket"),
    ("comment", "Ticket"),
    ("activit", "Activity"),
    ("segment", "Segment"),
    ("product", "Product"),
    ("stage", "PipelineStage"),
    ("pipeline", "Pipeline"),
    ("policy", "SlaPolicy"),
    ("webhook", "WebhookSubscription"),
    ("subscription", "WebhookSubscription"),
    ("delivery", "EventDelivery"),
    ("customfield", "CustomFieldDefinition"),
    ("definition", "CustomFieldDefinition"),
    ("apikey", "ApiKey"),
    ("team", "Team"),
    ("user", "User"),
    ("owner", "User"),
)


def unwrap(t: Any) -> Any:
    while isinstance(t, (GraphQLNonNull, GraphQLList)):
        t = t.of_type
    return t


def id_for(name: str, context: str, ids: Mapping[str, str]) -> str:
    probe = f"{name} {context}".lower().replace("_", "")
    for hint, type_name in ID_HINTS:
        if hint in name.lower().replace("_", "") and type_name in ids:
            return ids[type_name]
    for hint, type_name in ID_HINTS:
        if hint in probe and type_name in ids:
            return ids[type_name]
    return ids["Customer"]


def value_for(t: Any, name: str, context: str, ids: Mapping[str, str], depth: int = 0) -> Any:
    if isinstance(t, GraphQLNonNull):
        return value_for(t.of_type, name, context, ids, depth)
    if isinstance(t, GraphQLList):
        return [value_for(t.of_type, name, context, ids, depth)]
    if isinstance(t, GraphQLEnumType):
        return next(iter(t.values))  # the first value's name; sent as a variable
    if isinstance(t, GraphQLScalarType):
        if t.name == "ID":
            return id_for(name, context, ids)
        return SCALARS.get(t.name, "x")
    if isinstance(t, GraphQLInputObjectType):
        out: dict[str, Any] = {}
        for field_name, field in t.fields.items():
            if isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined and depth < 4:
                out[field_name] = value_for(field.type, field_name, context, ids, depth + 1)
        return out
    return None


def selection(t: Any, depth: int) -> str:
    t = unwrap(t)
    if isinstance(t, (GraphQLScalarType, GraphQLEnumType)):
        return ""
    if isinstance(t, (GraphQLUnionType, GraphQLInterfaceType)):
        parts = ["__typename"]
        if isinstance(t, GraphQLInterfaceType):
            parts += [n for n, f in t.fields.items() if isinstance(unwrap(f.type), (GraphQLScalarType, GraphQLEnumType))]
        return "{ " + " ".join(parts) + " }"
    assert isinstance(t, GraphQLObjectType)
    parts = ["__typename"]
    for field_name, field in t.fields.items():
        if any(isinstance(a.type, GraphQLNonNull) and a.default_value is Undefined for a in field.args.values()):
            continue
        inner = unwrap(field.type)
        if isinstance(inner, (GraphQLScalarType, GraphQLEnumType)):
            parts.append(field_name)
        elif depth > 0:
            parts.append(f"{field_name} {selection(field.type, depth - 1)}")
    return "{ " + " ".join(parts) + " }"


def document(schema: GraphQLSchema, root: str, name: str, ids: Mapping[str, str], depth: int = 3) -> tuple[str, dict[str, Any]]:
    """A document calling ``root``'s field ``name``, and its variables."""
    root_type = schema.query_type if root == "query" else schema.mutation_type
    field: GraphQLField = root_type.fields[name]
    declarations, arguments, variables = [], [], {}
    for arg_name, arg in field.args.items():
        if not isinstance(arg.type, GraphQLNonNull) or arg.default_value is not Undefined:
            continue
        variables[arg_name] = value_for(arg.type, arg_name, name, ids)
        declarations.append(f"${arg_name}: {arg.type}")
        arguments.append(f"{arg_name}: ${arg_name}")
    head = f"{root} M" + (f"({', '.join(declarations)})" if declarations else "")
    call = name + (f"({', '.join(arguments)})" if arguments else "")
    return f"{head} {{ {call} {selection(field.type, depth)} }}", variables


def mentions(data: Any, needles: set[str]) -> set[str]:
    """Which of ``needles`` occur anywhere in ``data`` (its JSON text)."""
    text = json.dumps(data)
    return {n for n in needles if n in text}


def codes(body: Mapping[str, Any]) -> set[str]:
    return {(e.get("extensions") or {}).get("code", "") for e in body.get("errors") or []}

