"""Listing customers: the filter language, search, ordering and keyset pagination."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from crm_graph.core.clock import frozen_clock
from tests.customers.test_schema import create

LIST = """
query($f: CustomerFilter, $o: [CustomerOrder!], $s: String, $first: Int, $after: String, $last: Int, $before: String) {
  customers(filter: $f, orderBy: $o, search: $s, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { displayName } }
  }
}
"""


async def names(client, **variables):
    data = await client.execute(LIST, variables)
    return [e["node"]["displayName"] for e in data["customers"]["edges"]]


@pytest.fixture
async def people(client):
    await create(client, kind="PERSON", firstName="Ann", lastName="Lee", country="GB", tags=["vip", "newsletter"],
                 emails=[{"address": "ann@acme.example"}], phones=[{"number": "+44 20 7946 0018"}], source="WEB",
                 birthday="1980-05-01", lifecycleStage="STABILITY", gender="FEMALE")
    await create(client, kind="PERSON", firstName="Bob", lastName="Stone", country="US", city="Austin", tags=["vip"],
                 emails=[{"address": "bob@mail.example"}], source="PHONE", lifecycleStage="DECLINE",
                 emailConsent={"status": "OPTED_OUT"})
    await create(client, kind="ORGANIZATION", organizationName="Acme 100% Ltd", country="DE", tags=["b2b"], source="REFERRAL",
                 emailConsent={"status": "OPTED_IN", "source": "trade fair"})
    await create(client, kind="PERSON", firstName="Cy", lastName="Under_Score", country="US")


async def test_string_operators(client, people):
    by_name = [{"field": "DISPLAY_NAME"}]
    assert await names(client, f={"displayName": {"contains": "LEE"}}) == ["Ann Lee"]
    assert await names(client, f={"displayName": {"startsWith": "b"}}, o=by_name) == ["Bob Stone"]
    assert await names(client, f={"displayName": {"eq": "Bob Stone"}}) == ["Bob Stone"]
    assert await names(client, f={"displayName": {"in": ["Bob Stone", "Ann Lee"]}}, o=by_name) == ["Ann Lee", "Bob Stone"]
    assert await names(client, f={"city": {"isNull": False}}) == ["Bob Stone"]
    assert await names(client, f={"country": {"neq": "US"}}, o=by_name) == ["Acme 100% Ltd", "Ann Lee"]
    # LIKE wildcards in the value are literal characters.
    assert await names(client, f={"displayName": {"contains": "100%"}}) == ["Acme 100% Ltd"]
    assert await names(client, f={"displayName": {"contains": "r_s"}}) == ["Cy Under_Score"]


async def test_related_and_enum_and_tag_operators(client, people):
    by_name = [{"field": "DISPLAY_NAME"}]
    assert await names(client, f={"email": {"contains": "@ACME"}}) == ["Ann Lee"]
    assert await names(client, f={"email": {"isNull": True}}, o=by_name) == ["Acme 100% Ltd", "Cy Under_Score"]
    assert await names(client, f={"phone": {"startsWith": "+44"}}) == ["Ann Lee"]
    assert await names(client, f={"tags": {"containsAny": ["VIP", "b2b"]}}, o=by_name) == ["Acme 100% Ltd", "Ann Lee", "Bob Stone"]
    assert await names(client, f={"tags": {"containsAll": ["vip", "newsletter"]}}) == ["Ann Lee"]
    assert await names(client, f={"tags": {"isEmpty": True}}) == ["Cy Under_Score"]
    assert await names(client, f={"kind": {"eq": "ORGANIZATION"}}) == ["Acme 100% Ltd"]
    assert await names(client, f={"source": {"in": ["WEB", "PHONE"]}}, o=by_name) == ["Ann Lee", "Bob Stone"]
    assert await names(client, f={"lifecycleStage": {"eq": "DECLINE"}}) == ["Bob Stone"]
    assert await names(client, f={"consentStatus": {"eq": "OPTED_IN"}}) == ["Acme 100% Ltd"]
    assert await names(client, f={"gender": {"eq": "FEMALE"}}) == ["Ann Lee"]
    assert await names(client, f={"birthday": {"lt": "1990-01-01"}}) == ["Ann Lee"]


async def test_boolean_combinations(client, people):
    by_name = [{"field": "DISPLAY_NAME"}]
    f = {"or": [{"country": {"eq": "DE"}}, {"and": [{"tags": {"containsAny": ["vip"]}}, {"not": {"country": {"eq": "GB"}}}]}]}
    assert await names(client, f=f, o=by_name) == ["Acme 100% Ltd", "Bob Stone"]
    assert await names(client, f={"or": []}) == []
    # `not` is the complement, also for customers without a value (SQL alone would drop them).
    assert await names(client, f={"not": {"city": {"eq": "Austin"}}}, o=by_name) == ["Acme 100% Ltd", "Ann Lee", "Cy Under_Score"]
    assert await names(client, f={"and": []}, o=by_name) == ["Acme 100% Ltd", "Ann Lee", "Bob Stone", "Cy Under_Score"]


async def test_created_at_filter_and_order(client):
    for day, name in ((3, "Third"), (1, "First"), (2, "Second")):
        with frozen_clock(datetime(2026, 1, day, 12, tzinfo=UTC)):
            await create(client, kind="PERSON", lastName=name)
    assert await names(client) == ["Third", "Second", "First"]  # newest first by default
    assert await names(client, o=[{"field": "CREATED_AT", "direction": "ASC"}]) == ["First", "Second", "Third"]
    assert await names(client, f={"createdAt": {"gte": "2026-01-02T00:00:00Z", "lt": "2026-01-03T00:00:00Z"}}) == ["Second"]
    bad = await client.post(LIST, {"f": {"createdAt": {"gte": "2026-01-02"}}})
    assert bad["errors"]


async def test_search_matches_name_email_and_phone_digits(client, people):
    assert await names(client, s="stone") == ["Bob Stone"]
    assert await names(client, s="mail.example") == ["Bob Stone"]
    assert await names(client, s="7946 0018") == ["Ann Lee"]
    assert await names(client, s="nobody") == []


async def test_keyset_pages_walk_forward_and_back_and_survive_inserts(client):
    for i in range(7):
        await create(client, kind="PERSON", lastName=f"P{i}")
    order = [{"field": "DISPLAY_NAME", "direction": "ASC"}]
    page1 = (await client.execute(LIST, {"o": order, "first": 3}))["customers"]
    assert [e["node"]["displayName"] for e in page1["edges"]] == ["P0", "P1", "P2"]
    assert page1["pageInfo"]["hasNextPage"] is True and page1["totalCount"] == 7

    # A row inserted before the boundary does not shift the next page (unlike offsets).
    await create(client, kind="PERSON", lastName="P00")
    page2 = (await client.execute(LIST, {"o": order, "first": 3, "after": page1["pageInfo"]["endCursor"]}))["customers"]
    assert [e["node"]["displayName"] for e in page2["edges"]] == ["P3", "P4", "P5"]
    assert page2["pageInfo"]["hasPreviousPage"] is True

    back = (await client.execute(LIST, {"o": order, "last": 2, "before": page2["edges"][0]["cursor"]}))["customers"]
    assert [e["node"]["displayName"] for e in back["edges"]] == ["P1", "P2"]
    assert back["pageInfo"]["hasPreviousPage"] is True

    tail = (await client.execute(LIST, {"o": order, "last": 2}))["customers"]
    assert [e["node"]["displayName"] for e in tail["edges"]] == ["P5", "P6"]
    assert tail["pageInfo"]["hasNextPage"] is False

    end = (await client.execute(LIST, {"o": order, "first": 5, "after": page2["pageInfo"]["endCursor"]}))["customers"]
    assert [e["node"]["displayName"] for e in end["edges"]] == ["P6"]
    assert end["pageInfo"]["hasNextPage"] is False


async def test_default_page_size_is_20(client):
    await client.execute(
        "mutation($i: [CreateCustomerInput!]!) { createCustomers(inputs: $i) { createdCount } }",
        {"i": [{"kind": "PERSON", "lastName": f"N{i:02d}"} for i in range(25)]},
    )
    data = (await client.execute(LIST, {}))["customers"]
    assert len(data["edges"]) == 20 and data["totalCount"] == 25 and data["pageInfo"]["hasNextPage"]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"first": 101}, "`first` must be at most 100"),
        ({"first": -1}, "`first` must not be negative"),
        ({"first": 1, "last": 1}, "either `first` or `last`"),
        ({"after": "garbage!"}, "Malformed cursor"),
        ({"after": base64.urlsafe_b64encode(b'["x"]').decode()}, "Malformed cursor"),
        ({"f": {"displayName": {"contains": 5}}}, "String cannot represent a non string value"),
    ],
)
async def test_bad_page_arguments_are_clear_errors(client, variables, message):
    body = await client.post(LIST, variables)
    assert message in body["errors"][0]["message"]
    assert "Traceback" not in str(body) and "SELECT" not in str(body)


async def test_cursor_from_another_ordering_is_refused(client, people):
    by_date = await client.execute(LIST, {"first": 1})
    cursor = by_date["customers"]["edges"][0]["cursor"]
    body = await client.post(LIST, {"first": 1, "after": cursor, "o": [{"field": "DISPLAY_NAME"}]})
    assert "Malformed cursor" in body["errors"][0]["message"]
