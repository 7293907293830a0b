"""Customers through GraphQL, as a frontend developer uses them."""

from __future__ import annotations

from typing import Any

import pytest

CREATE = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    customer { id kind displayName primaryEmail primaryPhone tags version country city
               emails { address label primary } phones { number primary }
               emailConsent { status source at } customFields lifecycleStage source }
    errors { field code message }
  }
}
"""


async def create(client: Any, **input: Any) -> dict[str, Any]:
    payload = await client.mutate(CREATE, {"input": input})
    return payload["customer"]


async def test_create_person_normalises_contact_points(client):
    customer = await create(
        client,
        kind="PERSON",
        firstName=" Ada ",
        lastName="Lovelace",
        emails=[{"address": "Ada@Example.COM", "label": "work"}, {"address": "ada@home.example", "primary": True}],
        phones=[{"number": "030 1234567"}],
        country="de",
        tags=["VIP", "vip", " Newsletter "],
        source="WEB",
        emailConsent={"status": "OPTED_IN", "source": "signup form"},
    )
    assert customer["displayName"] == "Ada Lovelace"
    assert customer["primaryEmail"] == "ada@home.example"
    assert [e["address"] for e in customer["emails"]] == ["ada@example.com", "ada@home.example"]
    # A number without +country is read in the customer's country.
    assert customer["primaryPhone"] == "+49301234567"
    assert customer["tags"] == ["newsletter", "vip"]
    assert customer["country"] == "DE"
    assert customer["version"] == 1
    assert customer["lifecycleStage"] == "LEAD"
    assert customer["emailConsent"]["status"] == "OPTED_IN"
    assert customer["emailConsent"]["at"] is not None


async def test_invalid_input_gives_field_errors_and_writes_nothing(client):
    body = await client.execute(
        CREATE,
        {"input": {"kind": "PERSON", "emails": [{"address": "not-an-email"}], "phones": [{"number": "12"}],
                   "country": "XX"}},
    )
    errors = {(e["field"], e["code"]) for e in body["createCustomer"]["errors"]}
    assert errors == {
        ("emails.0.address", "INVALID_EMAIL"),
        ("phones.0.number", "INVALID_PHONE"),
        ("country", "INVALID_VALUE"),
        ("lastName", "REQUIRED"),
    }
    assert body["createCustomer"]["customer"] is None
    listed = await client.execute("{ customers { totalCount } }")
    assert listed["customers"]["totalCount"] == 0


async def test_enum_value_outside_the_schema_is_a_clear_graphql_error(client):
    body = await client.post(CREATE, {"input": {"kind": "ALIEN", "lastName": "X"}})
    assert "Value 'ALIEN' does not exist in 'CustomerKind' enum" in body["errors"][0]["message"]
    assert "Traceback" not in str(body)
