"""The API reference is the schema itself (GraphiQL's docs pane): every type, field, argument,
input field and enum value of the core schema has a description, and the ones that mean the same
everywhere (page arguments, a payload's errors) say the same everywhere."""

from __future__ import annotations

import enum
from typing import Annotated

import pytest
import strawberry
from graphql import GraphQLInputObjectType, GraphQLObjectType

from crm_graph.graphql import descriptions
from crm_graph.graphql import standard_descriptions as standard
from crm_graph.graphql.enums import graphql_enum

pytestmark = pytest.mark.one_pass


@pytest.fixture(scope="module")
def core():
    return descriptions.core_schema()


def test_every_member_of_the_core_schema_is_described(core):
    missing = descriptions.missing(core)
    described, total = descriptions.coverage(core)
    assert total > 2000  # the whole schema was walked, not a part of it
    assert not missing, f"{len(missing)} of {total} have no description, e.g. " + ", ".join(missing[:40])


def test_the_installed_plugins_describe_their_parts_too():
    from crm_graph.graphql.schema import build_schema
    from crm_graph.plugins import make_plugin_manager
    from crm_graph.settings import Settings

    settings = Settings.from_env()
    whole = build_schema(settings, make_plugin_manager(settings))._schema
    assert len(whole.type_map) > len(descriptions.core_schema().type_map)  # the plugins joined
    assert descriptions.missing(whole) == []


def test_deprecations_give_a_reason(core):
    without = [
        f"{t.name}.{name}"
        for t in core.type_map.values() if isinstance(t, GraphQLObjectType | GraphQLInputObjectType)
        for name, f in t.fields.items() if getattr(f, "deprecation_reason", None) is not None and not f.deprecation_reason.strip()
    ]
    assert not without


def test_standard_members_read_the_same_everywhere(core):
    objects = [t for t in core.type_map.values() if isinstance(t, GraphQLObjectType) and not t.name.startswith("__")]
    page_args = [f.args["first"].description for t in objects for f in t.fields.values() if "first" in f.args]
    assert len(page_args) > 20
    assert all(text and "100" in text for text in page_args)  # each says the page size's limit
    assert page_args.count(standard.STANDARD_ARGUMENTS["first"]) > len(page_args) / 2
    payload = core.type_map["CustomerPayload"]
    assert payload.fields["errors"].description == standard.PAYLOAD_ERRORS
    assert core.query_type.description and core.mutation_type.description


def test_a_field_keeps_its_own_text_for_a_standard_argument():
    @strawberry.type
    class Query:
        @strawberry.field
        def rows(self, first: int | None = None) -> int:
            return 0

        @strawberry.field
        def top(self, first: Annotated[int | None, strawberry.argument(description="At most 5.")] = None) -> int:
            return 0

    schema = strawberry.Schema(query=Query)._schema
    standard.describe_standard_members(schema)
    fields = schema.query_type.fields
    assert fields["rows"].args["first"].description == standard.STANDARD_ARGUMENTS["first"]
    assert fields["top"].args["first"].description == "At most 5."
    assert descriptions.missing(schema) == ["Query.rows", "Query.top"]  # the fields themselves say nothing


def test_an_enum_value_without_a_text_is_refused_at_import():
    class Colour(enum.Enum):
        RED = "red"
        GREEN = "green"

    with pytest.raises(TypeError, match=r"missing \['GREEN'\]"):
        graphql_enum(Colour, "A colour.", {"RED": "Like a tomato."})
    with pytest.raises(TypeError, match=r"unknown \['BLUE'\]"):
        graphql_enum(Colour, "A colour.", {"RED": "r", "GREEN": "g", "BLUE": "b"})
