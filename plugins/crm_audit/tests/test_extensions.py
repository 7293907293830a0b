"""What the plugin adds to the core's types through the registries: ``Customer.lastChange``, the
``changes`` condition of ``CustomerFilter`` (usable in dynamic segments) and the
``ChangeHistoryEntry`` node type; blocking the plugin takes all three away."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crm_graph.app import create_app
from crm_graph.plugins import make_plugin_manager
from crm_graph.testing.client import GraphQLClient, asgi_client

CREATE = """
mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } errors { code } } }
"""
UPDATE = """
mutation($id: ID!, $input: UpdateCustomerInput!) { updateCustomer(id: $id, input: $input) { errors { code } } }
"""
SEGMENT = """
mutation($input: CreateSegmentInput!) {
  createSegment(input: $input) { segment { id isValid size customers { edges { node { id } } } } errors { field code message } }
}
"""
BUSY = {"changes": {"since": "2026-11-22T09:00:30Z", "count": {"gte": 2}}}


async def customers(client, names):  # noqa: ANN001, ANN201
    out = {}
    for name in names:
        created = await client.mutate(CREATE, {"input": {"kind": "PERSON", "lastName": name}})
        out[name] = created["customer"]["id"]
    return out


async def test_customers_carry_their_last_change(crm_client, crm_events, crm_clock):
    ids = await customers(crm_client, ["Quiet", "Moved"])
    crm_clock.advance(minutes=1)
    await crm_client.mutate(UPDATE, {"id": ids["Moved"], "input": {"city": "Lyon"}})
    await crm_events.deliver()

    page = await crm_client.execute(
        "{ customers(orderBy: [{field: DISPLAY_NAME, direction: ASC}]) { edges { node { displayName "
        "lastChange { eventType changedFields occurredAt entity { id } } } } } }"
    )
    got = {e["node"]["displayName"]: e["node"]["lastChange"] for e in page["customers"]["edges"]}
    assert got["Moved"] == {
        "eventType": "customer.updated", "changedFields": ["city"], "occurredAt": "2026-11-22T09:01:00+00:00",
        "entity": {"id": ids["Moved"]},
    }
    assert got["Quiet"]["eventType"] == "customer.created"


async def test_a_sales_rep_sees_no_last_change(crm_client, crm_client_for, crm_events):
    # The change history is for those who read the audit log; the extension field obeys the same rule.
    await customers(crm_client, ["Shared"])
    await crm_events.deliver()
    rep = await crm_client_for("SALES")
    page = await rep.execute("{ customers { edges { node { displayName lastChange { eventType } } } } }")
    assert [e["node"] for e in page["customers"]["edges"]] == [{"displayName": "Shared", "lastChange": None}]


async def test_the_changes_condition_filters_lists_and_defines_a_dynamic_segment(crm_client, crm_events, crm_clock):
    ids = await customers(crm_client, ["Still", "Busy", "Once"])
    crm_clock.advance(minutes=1)
    for city in ("Oslo", "Bergen"):
        await crm_client.mutate(UPDATE, {"id": ids["Busy"], "input": {"city": city}})
    await crm_client.mutate(UPDATE, {"id": ids["Once"], "input": {"city": "Turku"}})
    await crm_events.deliver()

    listed = await crm_client.execute(
        "query($f: CustomerFilter) { customers(filter: $f) { totalCount edges { node { id } } } }",
        {"f": {"changes": {"since": "2026-11-22T09:00:30Z"}}},
    )
    assert {e["node"]["id"] for e in listed["customers"]["edges"]} == {ids["Busy"], ids["Once"]}
    nested = await crm_client.execute(
        "query($f: CustomerFilter) { customers(filter: $f) { totalCount } }",
        {"f": {"not": BUSY, "lastName": {"startsWith": "B"}}},
    )
    assert nested["customers"]["totalCount"] == 0

    made = await crm_client.mutate(SEGMENT, {"input": {"name": "Busy", "kind": "DYNAMIC", "filter": BUSY}})
    segment = made["segment"]
    assert segment["isValid"] is True and segment["size"] == 1
    assert [e["node"]["id"] for e in segment["customers"]["edges"]] == [ids["Busy"]]



async def test_a_bad_condition_value_is_a_user_error_with_its_path(crm_client):
    made = await crm_client.post(
        SEGMENT, {"input": {"name": "Odd", "kind": "DYNAMIC", "filter": {"changes": {"since": "2026-11-22T09:00:00"}}}}
    )
    errors = made["data"]["createSegment"]["errors"]
    assert errors == [{"field": "filter.changes.since", "code": "INVALID_FILTER",
                       "message": "timestamps need a time zone (e.g. 2026-01-31T00:00:00Z)"}]


@pytest.fixture
async def blocked_client(crm_settings, crm_db, crm_make_key):  # noqa: ANN001, ANN201
    settings = replace(crm_settings, plugins_block=("crm_audit",))
    app = create_app(settings, db=crm_db, plugins=make_plugin_manager(settings), dispatcher=False, jobs=False)
    async with asgi_client(app, token=await crm_make_key("ADMIN", email="blocked@example.com")) as http:
        yield GraphQLClient(http, app)


SHAPE = """
{ customer: __type(name: "Customer") { fields { name } }
  filter: __type(name: "CustomerFilter") { inputFields { name } }
  entry: __type(name: "ChangeHistoryEntry") { name } }
"""


async def test_blocking_the_plugin_removes_its_field_condition_and_node_type(crm_client, crm_events, blocked_client):
    ids = await customers(crm_client, ["Kept"])
    await crm_events.deliver()
    entry = (await crm_client.execute("{ changeHistory(first: 1) { edges { node { id } } } }"))["changeHistory"]["edges"][0]["node"]["id"]
    with_plugin = await crm_client.execute(SHAPE)
    assert "lastChange" in {f["name"] for f in with_plugin["customer"]["fields"]}
    assert "changes" in {f["name"] for f in with_plugin["filter"]["inputFields"]}
    assert (await crm_client.execute("query($id: ID!) { node(id: $id) { id } }", {"id": entry}))["node"] == {"id": entry}

    without = await blocked_client.execute(SHAPE)
    assert "lastChange" not in {f["name"] for f in without["customer"]["fields"]}
    assert "changes" not in {f["name"] for f in without["filter"]["inputFields"]}
    assert "tickets" in {f["name"] for f in without["filter"]["inputFields"]}  # the core's conditions stay
    assert without["entry"] is None
    refused = await blocked_client.post("query($id: ID!) { node(id: $id) { id } }", {"id": entry})
    assert refused["errors"][0]["extensions"]["code"] == "INVALID_ID"
    listed = await blocked_client.post("{ customers(filter: {changes: {}}) { totalCount } }")
    assert "changes" in listed["errors"][0]["message"] and listed.get("data") is None
    assert (await blocked_client.execute("query($id: ID!) { customer(id: $id) { id } }", {"id": ids["Kept"]}))["customer"]
