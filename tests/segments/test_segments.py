"""Segments of the three kinds, through GraphQL."""

from __future__ import annotations

import sqlalchemy as sa

from crm_graph.core.clock import frozen_clock
from crm_graph.core.ids import decode_as
from crm_graph.core.events import OutboxEvent
from tests.customers.test_schema import create
from tests.segments.factories import NOW

CREATE = """
mutation($input: CreateSegmentInput!) {
  createSegment(input: $input) { segment { id kind size isValid invalidReason refreshedAt
    customers(orderBy: [{field: DISPLAY_NAME}]) { totalCount edges { node { displayName } } } }
    errors { field code message } }
}
"""
SEGMENT = """
query($id: ID!) { segment(id: $id) { name kind size isValid invalidReason filter
  customers(orderBy: [{field: DISPLAY_NAME}]) { edges { node { displayName } } } } }
"""
ADD = """
mutation($s: ID!, $c: [ID!]!) { addCustomersToSegment(segmentId: $s, customerIds: $c) {
  segment { size } errors { field code message } } }
"""
REMOVE = """
mutation($s: ID!, $c: [ID!]!) { removeCustomersFromSegment(segmentId: $s, customerIds: $c) {
  segment { size } errors { field code message } } }
"""
REFRESH = "mutation($id: ID!) { refreshSegment(id: $id) { segment { size } errors { field code message } } }"
UPDATE = """
mutation($id: ID!, $input: UpdateCustomerInput!) { updateCustomer(id: $id, input: $input) {
  customer { id } errors { field code message } } }
"""


def decode(gid: str) -> int:
    return decode_as(gid, "Customer")


def names(segment: dict) -> list[str]:
    return [e["node"]["displayName"] for e in segment["customers"]["edges"]]


async def test_static_segment_members_are_added_and_removed_by_hand(client, db):
    a = await create(client, kind="PERSON", lastName="Alpha")
    b = await create(client, kind="PERSON", lastName="Beta")
    segment = (await client.mutate(CREATE, {"input": {"name": "Hand picked", "kind": "STATIC"}}))["segment"]
    assert segment["size"] == 0 and segment["isValid"] is True

    added = await client.mutate(ADD, {"s": segment["id"], "c": [a["id"], b["id"], a["id"]]})
    assert added["segment"]["size"] == 2
    again = await client.mutate(ADD, {"s": segment["id"], "c": [a["id"]]})  # idempotent
    assert again["segment"]["size"] == 2
    removed = await client.mutate(REMOVE, {"s": segment["id"], "c": [a["id"]]})
    assert removed["segment"]["size"] == 1
    assert names((await client.execute(SEGMENT, {"id": segment["id"]}))["segment"]) == ["Beta"]

    # Customer.segments shows the membership; a deleted customer leaves the segment's list.
    data = await client.execute("query($id: ID!) { customer(id: $id) { segments { name } } }", {"id": b["id"]})
    assert data["customer"]["segments"] == [{"name": "Hand picked"}]
    await client.mutate('mutation($id: ID!) { deleteCustomer(id: $id) { customer { id } errors { field code message } } }', {"id": b["id"]})
    assert (await client.execute(SEGMENT, {"id": segment["id"]}))["segment"]["size"] == 0

    async with db.reader() as session:
        rows = (await session.execute(sa.select(OutboxEvent.type, OutboxEvent.payload)
                                      .where(OutboxEvent.type.like("segment.%")).order_by(OutboxEvent.id))).all()
    # One event per change, naming every customer it moved (the repeated and idempotent adds none).
    assert [(t, p["data"].get("customerIds")) for t, p in rows] == [
        ("segment.created", None),
        ("segment.member_added", sorted([decode(a["id"]), decode(b["id"])])),
        ("segment.member_removed", [decode(a["id"])]),
    ]


async def test_dynamic_segment_follows_the_data(client):
    a = await create(client, kind="PERSON", lastName="Vip One", tags=["vip"], country="DE")
    await create(client, kind="PERSON", lastName="Plain", country="DE")
    segment = (await client.mutate(CREATE, {"input": {"name": "German VIPs", "kind": "DYNAMIC",
                                                      "filter": {"country": {"eq": "DE"}, "tags": {"containsAny": ["vip"]}}}}))["segment"]
    assert names(segment) == ["Vip One"]
    await client.mutate(UPDATE, {"id": a["id"], "input": {"tags": []}})
    later = (await client.execute(SEGMENT, {"id": segment["id"]}))["segment"]
    assert later["size"] == 0
    assert later["filter"] == {"country": {"eq": "DE"}, "tags": {"containsAny": ["vip"]}}

    refused = await client.execute(ADD, {"s": segment["id"], "c": [a["id"]]})
    assert refused["addCustomersToSegment"]["errors"][0]["code"] == "INVALID_STATE"


async def test_snapshot_segment_is_frozen_until_refreshed(client):
    with frozen_clock(NOW):
        await create(client, kind="PERSON", lastName="Early", tags=["beta"])
        segment = (await client.mutate(CREATE, {"input": {"name": "Beta testers then", "kind": "SNAPSHOT",
                                                          "filter": {"tags": {"containsAny": ["beta"]}}}}))["segment"]
    assert names(segment) == ["Early"] and segment["refreshedAt"] == "2026-06-30T12:00:00+00:00"
    await create(client, kind="PERSON", lastName="Late", tags=["beta"])
    assert (await client.execute(SEGMENT, {"id": segment["id"]}))["segment"]["size"] == 1
    await client.mutate(REFRESH, {"id": segment["id"]})
    assert names((await client.execute(SEGMENT, {"id": segment["id"]}))["segment"]) == ["Early", "Late"]


async def test_preview_counts_without_saving(client):
    for name in ("P1", "P2", "P3"):
        await create(client, kind="PERSON", lastName=name, country="FR")
    data = await client.execute("""{ previewSegment(filter: {country: {eq: "FR"}}, first: 2) {
        size customers { totalCount pageInfo { hasNextPage } } } segments { totalCount } }""")
    assert data["previewSegment"]["size"] == 3
    assert data["previewSegment"]["customers"]["pageInfo"]["hasNextPage"] is True
    assert data["segments"]["totalCount"] == 0


async def test_segment_of_segments_and_cycles(client):
    vip = await create(client, kind="PERSON", lastName="Vip", tags=["vip"])
    await create(client, kind="PERSON", lastName="Other")
    vips = (await client.mutate(CREATE, {"input": {"name": "VIPs", "kind": "DYNAMIC", "filter": {"tags": {"containsAny": ["vip"]}}}}))["segment"]
    not_vips = (await client.mutate(CREATE, {"input": {"name": "Not VIPs", "kind": "DYNAMIC",
                                                       "filter": {"segment": {"notIn": [vips["id"]]}}}}))["segment"]
    assert names(not_vips) == ["Other"]
    data = await client.execute("query($id: ID!) { customer(id: $id) { segments { name } } }", {"id": vip["id"]})
    assert data["customer"]["segments"] == [{"name": "VIPs"}]

    # VIPs -> Not VIPs -> VIPs would be a circle.
    cycle = await client.execute(
        "mutation($id: ID!, $f: CustomerFilter) { updateSegment(id: $id, input: {filter: $f}) { segment { id } errors { field code message } } }",
        {"id": vips["id"], "f": {"segment": {"in": [not_vips["id"]]}}},
    )
    (error,) = cycle["updateSegment"]["errors"]
    assert error["code"] == "INVALID_FILTER" and error["field"] == "filter.segment.in.0"
    assert error["message"] == "segments refer to each other in a cycle: VIPs -> Not VIPs -> VIPs"

    # Deleting VIPs leaves "Not VIPs" invalid, with the reason, instead of failing queries.
    await client.mutate("mutation($id: ID!) { deleteSegment(id: $id) { segment { id } errors { field code message } } }", {"id": vips["id"]})
    broken = (await client.execute(SEGMENT, {"id": not_vips["id"]}))["segment"]
    assert broken["isValid"] is False and "no such segment" in broken["invalidReason"]
    assert broken["size"] == 0 and broken["customers"]["edges"] == []
    await client.mutate("mutation($id: ID!) { restoreSegment(id: $id) { segment { id } errors { field code message } } }", {"id": vips["id"]})
    assert (await client.execute(SEGMENT, {"id": not_vips["id"]}))["segment"]["isValid"] is True


async def test_bad_segment_input(client):
    async def errors(input):
        return (await client.execute(CREATE, {"input": input}))["createSegment"]["errors"]

    assert await errors({"name": " ", "kind": "STATIC"}) == [{"field": "name", "code": "REQUIRED", "message": "A segment needs a name."}]
    assert (await errors({"name": "x", "kind": "DYNAMIC"}))[0]["code"] == "REQUIRED"
    assert (await errors({"name": "x", "kind": "STATIC", "filter": {"country": {"eq": "DE"}}}))[0]["field"] == "filter"
    bad = await errors({"name": "x", "kind": "DYNAMIC", "filter": {"customFields": [{"key": "nope", "eq": 1}]}})
    assert bad[0]["field"] == "filter.customFields.0.key" and bad[0]["code"] == "INVALID_FILTER"
    mismatch = await errors({"name": "x", "kind": "DYNAMIC", "filter": {"segment": {"in": ["not-an-id"]}}})
    assert mismatch[0]["field"] == "filter.segment.in.0"
    assert (await client.execute("{ segments { totalCount } }"))["segments"]["totalCount"] == 0


async def test_deleting_a_custom_field_invalidates_segments_that_use_it(client):
    field = (await client.mutate(
        'mutation { createCustomFieldDefinition(input: {key: "tier", label: "Tier", type: SELECT, options: ["gold"]}) '
        "{ customFieldDefinition { id } errors { field code message } } }"))["customFieldDefinition"]
    changed = await client.mutate(
        'mutation($id: ID!) { updateCustomFieldDefinition(id: $id, input: {label: "Loyalty tier", addOptions: ["silver", "gold"]}) '
        "{ customFieldDefinition { label options } errors { field code message } } }", {"id": field["id"]})
    assert changed["customFieldDefinition"] == {"label": "Loyalty tier", "options": ["gold", "silver"]}
    await create(client, kind="PERSON", lastName="Goldie", customFields={"tier": "gold"})
    segment = (await client.mutate(CREATE, {"input": {"name": "Gold", "kind": "DYNAMIC",
                                                      "filter": {"customFields": [{"key": "tier", "eq": "gold"}]}}}))["segment"]
    assert names(segment) == ["Goldie"]

    await client.mutate("mutation($id: ID!) { deleteCustomFieldDefinition(id: $id) { customFieldDefinition { key } "
                        "errors { field code message } } }", {"id": field["id"]})
    broken = (await client.execute(SEGMENT, {"id": segment["id"]}))["segment"]
    assert broken["isValid"] is False and broken["size"] == 0
    assert broken["invalidReason"] == "filter.customFields.0.key: no custom field is defined with key 'tier'"
    # The customer's value went with the field.
    data = await client.execute('{ customers(filter: {displayName: {eq: "Goldie"}}) { edges { node { customFields } } } }')
    assert data["customers"]["edges"][0]["node"]["customFields"] == {}
    gone = await client.execute("mutation($id: ID!) { deleteCustomFieldDefinition(id: $id) { errors { field code } } }",
                                {"id": field["id"]})
    assert gone["deleteCustomFieldDefinition"]["errors"] == [{"field": "id", "code": "NOT_FOUND"}]
