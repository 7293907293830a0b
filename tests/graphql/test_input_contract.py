"""Inputs answered with words a client can act on: a timestamp without a UTC offset is refused
saying so (not with the server's internal rendering of the value), wherever a filter takes one;
IDs and cursors only as the API spells them; no control characters and no names that show
nothing; no search longer than anything stored."""

from __future__ import annotations

import base64
import json

import pytest

TICKETS = "query($d: DateTime!) { tickets(first: 1, filter: {createdAt: {gte: $d}}) { totalCount } }"
CUSTOMERS = "query($d: DateTime!) { customers(first: 1, filter: {createdAt: {lt: $d}}) { totalCount } }"


@pytest.mark.parametrize("query", [TICKETS, CUSTOMERS])
async def test_a_timestamp_without_an_offset_is_refused_with_a_clear_message(client, query):
    refused = await client.post(query, {"d": "2026-12-01T10:00:00"})
    (error,) = refused["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "time zone" in error["message"] and "datetime.datetime" not in error["message"]
    accepted = await client.post(query, {"d": "2026-12-01T10:00:00+02:00"})
    assert "errors" not in accepted


CREATE = """mutation($i: CreateCustomerInput!) {
  createCustomer(input: $i) { customer { id displayName } errors { field code message } } }"""
NODE = "query($id: ID!) { node(id: $id) { id } }"


async def test_an_id_is_accepted_only_as_the_api_spells_it(client):
    created = await client.mutate(CREATE, {"i": {"kind": "PERSON", "lastName": "Canon"}})
    gid = created["customer"]["id"]
    assert (await client.execute(NODE, {"id": gid}))["node"] == {"id": gid}
    raw = base64.urlsafe_b64decode(gid + "=" * (-len(gid) % 4)).decode()  # "Customer:1"
    kind, pk = raw.split(":")
    spellings = [
        gid + "=" * (-len(gid) % 4 or 4),                                         # padded
        base64.urlsafe_b64encode(f"{kind}:0{pk}".encode()).decode().rstrip("="),  # a leading zero
        base64.urlsafe_b64encode(f"{kind}:+{pk}".encode()).decode().rstrip("="),  # a sign
        base64.urlsafe_b64encode(f"{kind}: {pk}".encode()).decode().rstrip("="),  # a space
        base64.b64encode(f"{kind}:{pk}0_0".encode()).decode().rstrip("="),       # 1_0 would be int("1_0")
    ]
    for spelling in spellings:
        body = await client.post(NODE, {"id": spelling})
        assert body["errors"][0]["extensions"]["code"] == "INVALID_ID", (spelling, body)


PAGE = "query($after: String) { customers(first: 1, after: $after) { edges { cursor node { id } } } }"
TICKETS = "query($after: String) { tickets(first: 1, after: $after) { edges { node { id } } } }"


async def test_a_cursor_is_accepted_only_as_issued_and_only_by_its_own_list(client):
    for name in ("Ada", "Bea"):
        await client.mutate(CREATE, {"i": {"kind": "PERSON", "lastName": name}})
    cursor = (await client.execute(PAGE))["customers"]["edges"][0]["cursor"]
    assert len((await client.execute(PAGE, {"after": cursor}))["customers"]["edges"]) == 1
    decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    respaced = base64.urlsafe_b64encode(json.dumps(json.loads(decoded)).encode()).decode()  # ", " and padding
    for spelling in (cursor + "=" * (-len(cursor) % 4 or 4), respaced, "A" * 5000):
        body = await client.post(PAGE, {"after": spelling})
        assert "Malformed cursor" in body["errors"][0]["message"], (spelling[:80], body)
    # The customers' cursor on another list that also orders by creation and id
    body = await client.post(TICKETS, {"after": cursor})
    assert "Malformed cursor" in body["errors"][0]["message"], body


@pytest.mark.parametrize("name", ["\u200b", "\u200b\u2060\ufeff", "\u3164", "\u0301\u0302", " \u200c "])
async def test_a_name_that_shows_nothing_is_refused(client, name):
    payload = (await client.execute(CREATE, {"i": {"kind": "PERSON", "firstName": "Ada", "lastName": name}}))["createCustomer"]
    assert payload["customer"] is None
    assert {"field": "lastName", "code": "INVALID_VALUE", "message": "Contains only invisible characters."} in payload["errors"]


async def test_invisible_characters_around_a_name_are_trimmed_and_inside_kept(client):
    payload = await client.mutate(CREATE, {"i": {"kind": "PERSON", "firstName": "\u200bAda\ufeff", "lastName": "Ma\u200cier"}})
    assert payload["customer"]["displayName"] == "Ada Ma\u200cier"  # a joiner inside a name can be meant


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85"])
async def test_control_characters_are_refused_before_anything_runs(client, sql_counter, char):
    await client.warm_up()
    sql_counter.count = 0
    in_variable = await client.post(CREATE, {"i": {"kind": "PERSON", "lastName": f"A{char}B"}})
    in_literal = await client.post(
        '{ customers(first: 1, search: "A\\u%04x") { totalCount } }' % ord(char))
    for body in (in_variable, in_literal):
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "INVALID_TEXT" and f"U+{ord(char):04X}" in error["message"]
        assert "data" not in body
    assert sql_counter.count == 0
    kept = await client.mutate(CREATE, {"i": {"kind": "PERSON", "lastName": "Tab\tand\nline"}})
    assert kept["errors"] == []  # tabs and line breaks are text


@pytest.mark.parametrize(("query", "variables"), [
    ("query($s: String) { customers(first: 1, search: $s) { totalCount } }", {"s": "x" * 201}),
    ("query($s: String) { customers(first: 1, filter: {displayName: {contains: $s}}) { totalCount } }", {"s": "x" * 60_000}),
    ("query($s: String) { tickets(first: 1, filter: {subject: {startsWith: $s}}) { totalCount } }", {"s": "x" * 201}),
    ("query($s: String) { users(first: 1, search: $s) { totalCount } }", {"s": "x" * 201}),
])
async def test_an_overlong_search_is_refused_before_it_reaches_sql(client, query, variables):
    (error,) = (await client.post(query, variables))["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST" and "at most 200 characters" in error["message"]


@pytest.mark.parametrize("value", ["NaN", "-Infinity", "Infinity", "sNaN", "nan"])
async def test_a_decimal_that_is_no_number_is_refused_wherever_one_is_taken(client, value):
    queries = [
        ("query($d: Decimal!) { orders(first: 1, filter: {total: {gt: $d}}) { totalCount } }", {"d": value}),
        ("mutation($d: Decimal!) { createProduct(input: {sku: \"N-1\", name: \"N\", "
         "unitPrice: {amount: $d, currency: \"EUR\"}}) { errors { code } } }", {"d": value}),
    ]
    for query, variables in queries:
        body = await client.post(query, variables)
        (error,) = body["errors"]
        assert "data" not in body and error["extensions"]["code"] == "BAD_REQUEST", body  # refused as it is read
        assert "Value cannot represent a Decimal" in error["message"], body
