"""Plugins extend core types and filters through the registries, per application: fields on
``Customer`` batched through the request's loaders, conditions in ``CustomerFilter`` that dynamic
segments store, clashes named at start-up; and hooks run through pluggy's own call loop."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
import sqlalchemy as sa
import strawberry
from strawberry.types import Info

from crm_graph import hookimpl
from crm_graph.core import filters as f
from crm_graph.core.extensions import FilterCondition, TypeExtension
from crm_graph.customers.models import Customer, CustomerTag
from crm_graph.graphql.inputs import IntFilter
from crm_graph.plugins import PluginError, make_plugin_manager
from tests.conftest import StatementCounter

BATCHES: list[list[int]] = []


async def tag_counts(session, customer_ids):  # noqa: ANN001, ANN201
    BATCHES.append(sorted(customer_ids))
    rows = await session.execute(
        sa.select(CustomerTag.customer_id, sa.func.count()).where(CustomerTag.customer_id.in_(customer_ids))
        .group_by(CustomerTag.customer_id)
    )
    return dict(rows.all())


@strawberry.type
class CustomerTagFields:
    @strawberry.field(description="How many tags the customer has.")
    async def tag_count(self, info: Info) -> int:
        return await info.context.loader("test.tag_count", tag_counts, int).load(self.pk)  # type: ignore[attr-defined]


@strawberry.input
class TagCountFilter:
    count: IntFilter | None = None


def tag_count_condition(ctx, value, path):  # noqa: ANN001, ANN201
    counted = sa.select(sa.func.count()).where(CustomerTag.customer_id == Customer.id).scalar_subquery()
    return f.comparable_condition(counted, value.get("count") or {"gte": 1}, f"{path}.count", f.whole_number)


class Tagging:
    name = "tagging"

    @hookimpl
    def crm_register_type_extensions(self):  # noqa: ANN201
        return TypeExtension("Customer", CustomerTagFields)

    @hookimpl
    def crm_register_filters(self):  # noqa: ANN201
        return [FilterCondition("Customer", "tagCount", tag_count_condition, TagCountFilter, description="By number of tags.")]


CREATE = "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } errors { code } } }"


async def seed(client, n):  # noqa: ANN001, ANN201
    for i in range(n):
        await client.mutate(CREATE, {"input": {"kind": "PERSON", "lastName": f"T{i}", "tags": ["a", "b"][: i % 3]}})


async def test_hook_crm_register_type_extensions_adds_a_field_batched_for_the_whole_page(server_factory, db):
    server = await server_factory(Tagging())
    await seed(server.client, 9)
    query = "{ customers(first: 100) { edges { node { lastName tagCount } } } }"
    await server.client.execute("{ __typename }")  # the key is verified and remembered first
    await server.app.state.auth.drain()
    counter = StatementCounter(db)
    BATCHES.clear()
    page = await server.client.execute(query)
    counts = {e["node"]["lastName"]: e["node"]["tagCount"] for e in page["customers"]["edges"]}
    assert counts == {f"T{i}": [0, 1, 2][i % 3] for i in range(9)}
    assert len(BATCHES) == 1 and len(BATCHES[0]) == 9  # one batch for the page
    small, counter.count = counter.count, 0
    await seed(server.client, 30)
    counter.count = 0
    await server.client.execute(query)
    assert counter.count == small  # the statements do not grow with the page


async def test_hook_crm_register_filters_adds_a_condition_to_lists_and_dynamic_segments(server_factory):
    server = await server_factory(Tagging())
    await seed(server.client, 6)
    two = {"tagCount": {"count": {"eq": 2}}}
    listed = await server.client.execute("query($f: CustomerFilter) { customers(filter: $f) { totalCount } }", {"f": two})
    assert listed["customers"]["totalCount"] == 2
    either = {"or": [two, {"lastName": {"eq": "T0"}}]}
    assert (await server.client.execute(
        "query($f: CustomerFilter) { customers(filter: $f) { totalCount } }", {"f": either}))["customers"]["totalCount"] == 3
    made = await server.client.mutate(
        "mutation($input: CreateSegmentInput!) { createSegment(input: $input) { segment { size filter } errors { code } } }",
        {"input": {"name": "Two tags", "kind": "DYNAMIC", "filter": two}},
    )
    assert made["segment"] == {"size": 2, "filter": two}  # stored as the plain filter language
    bad = await server.client.post(
        "{ customers(filter: {tagCount: {count: {eq: 1, between: 2}}}) { totalCount } }"
    )
    assert "between" in bad["errors"][0]["message"]


async def test_without_the_plugin_its_stored_condition_makes_the_segment_invalid(server_factory, settings):
    server = await server_factory(Tagging())
    await seed(server.client, 3)
    await server.client.mutate(
        "mutation($input: CreateSegmentInput!) { createSegment(input: $input) { segment { id } errors { code } } }",
        {"input": {"name": "Tagged", "kind": "DYNAMIC", "filter": {"tagCount": {}}}},
    )
    plain = await server_factory(settings_=replace(settings, plugins_block=("tagging",)))
    got = await plain.client.execute("{ segments { edges { node { name isValid invalidReason size } } } }")
    (node,) = [e["node"] for e in got["segments"]["edges"]]
    assert node["isValid"] is False and node["size"] == 0
    assert "tagCount" in node["invalidReason"]


def test_a_field_the_type_has_already_stops_start_up_naming_the_plugin(server_factory, settings):
    @strawberry.type
    class Clash:
        @strawberry.field
        def orders(self) -> int:
            return 0

    class Clashing:
        name = "clashing"

        @hookimpl
        def crm_register_type_extensions(self):  # noqa: ANN201
            return TypeExtension("Customer", Clash)

    from crm_graph.graphql.schema import build_schema

    with pytest.raises(PluginError, match=r"plugin 'clashing': field Customer.orders clashes with plugin 'crm_graph.sales.plugin'"):
        build_schema(settings, make_plugin_manager(settings, plugins=[Clashing()], entry_points=False))


def test_a_condition_name_taken_or_an_unknown_type_stops_start_up_naming_the_plugin(settings):
    from crm_graph.graphql.schema import build_schema

    class Copy(Tagging):
        name = "copy"

    with pytest.raises(PluginError, match=r"plugin '(copy|tagging)': filter condition Customer.tagCount clashes"):
        build_schema(settings, make_plugin_manager(settings, plugins=[Tagging(), Copy()], entry_points=False))

    class Nowhere:
        name = "nowhere"

        @hookimpl
        def crm_register_type_extensions(self):  # noqa: ANN201
            return TypeExtension("Invoice", CustomerTagFields)

    with pytest.raises(PluginError, match=r"plugin 'nowhere': extends type 'Invoice', which the schema does not have"):
        build_schema(settings, make_plugin_manager(settings, plugins=[Nowhere()], entry_points=False))


class Wrapping:
    """A new-style wrapper around every crm_validate implementation: it sees each call."""

    name = "wrapping"

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl(wrapper=True)
    def crm_validate(self, entity):  # noqa: ANN001, ANN201
        self.seen.append(entity)
        return (yield)


class Refusing:
    name = "refusing"

    @hookimpl
    def crm_validate(self, entity, data):  # noqa: ANN001, ANN201
        from crm_graph.core.errors import FieldError

        if data.get("lastName") == "Nobody":
            return FieldError("lastName", "NOT_ALLOWED", "No nobodies.")
        return None


async def test_hook_wrappers_run_around_each_implementation_and_tracing_logs_calls(server_factory, settings, caplog):
    wrapper = Wrapping()
    traced = replace(settings, trace_plugins=True)
    server = await server_factory(wrapper, Refusing(), settings_=traced)
    with caplog.at_level(logging.DEBUG, logger="crm_graph.plugins.trace"):
        refused = await server.client.execute(CREATE, {"input": {"kind": "PERSON", "lastName": "Nobody"}})
    assert refused["createCustomer"]["errors"] == [{"code": "NOT_ALLOWED"}]  # the wrapped implementation's answer
    # The host calls each implementation on its own (the refusing one, and the core's duplicates
    # plugin, which refuses restoring a merged customer); the wrapper is around each call.
    implementations = [i for i in server.plugins.hook.crm_validate.get_hookimpls() if not (i.wrapper or i.hookwrapper)]
    assert len(implementations) >= 2 and wrapper.seen == ["customer"] * len(implementations)
    assert any("crm_validate" in r.getMessage() for r in caplog.records)
