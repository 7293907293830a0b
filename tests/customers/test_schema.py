"""Customers through GraphQL, as a frontend developer uses them."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import sqlalchemy as sa

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


UPDATE = """
mutation($id: ID!, $input: UpdateCustomerInput!, $v: Int) {
  updateCustomer(id: $id, input: $input, expectedVersion: $v) {
    customer { id displayName version jobTitle tags primaryEmail emails { address } customFields }
    errors { field code message }
  }
}
"""

GET = "query($id: ID!) { customer(id: $id) { id displayName version jobTitle deletedAt } }"


async def test_update_checks_expected_version_and_changes_nothing_when_stale(client):
    customer = await create(client, kind="PERSON", firstName="Grace", lastName="Hopper")
    updated = await client.mutate(UPDATE, {"id": customer["id"], "input": {"jobTitle": "Rear Admiral"}, "v": 1})
    assert updated["customer"]["version"] == 2
    assert updated["customer"]["jobTitle"] == "Rear Admiral"

    stale = await client.execute(UPDATE, {"id": customer["id"], "input": {"jobTitle": "Ensign"}, "v": 1})
    assert stale["updateCustomer"]["customer"] is None
    assert [(e["field"], e["code"]) for e in stale["updateCustomer"]["errors"]] == [("expectedVersion", "VERSION_CONFLICT")]
    current = (await client.execute(GET, {"id": customer["id"]}))["customer"]
    assert current["jobTitle"] == "Rear Admiral"
    assert current["version"] == 2


async def test_update_omitted_fields_stay_null_clears_lists_replace(client):
    customer = await create(client, kind="PERSON", firstName="Alan", lastName="Turing", jobTitle="Mathematician",
                            tags=["a", "b"], emails=[{"address": "alan@example.com"}])
    updated = (await client.mutate(UPDATE, {"id": customer["id"], "input": {"tags": ["c"], "jobTitle": None}}))["customer"]
    assert updated["tags"] == ["c"]
    assert updated["jobTitle"] is None
    assert updated["displayName"] == "Alan Turing"
    assert updated["primaryEmail"] == "alan@example.com"  # emails not sent: unchanged
    # A child-only change still moves the version, so concurrent editors notice it.
    again = (await client.mutate(UPDATE, {"id": customer["id"], "input": {"emails": [{"address": "a.t@example.com"}]}}))["customer"]
    assert again["version"] == updated["version"] + 1
    assert [e["address"] for e in again["emails"]] == ["a.t@example.com"]


async def test_duplicate_email_is_refused_across_customers_but_freed_by_delete(client):
    first = await create(client, kind="PERSON", lastName="One", emails=[{"address": "shared@example.com"}])
    body = await client.execute(CREATE, {"input": {"kind": "PERSON", "lastName": "Two",
                                                   "emails": [{"address": "SHARED@example.com"}]}})
    assert [(e["field"], e["code"]) for e in body["createCustomer"]["errors"]] == [("emails.0.address", "DUPLICATE")]

    await client.mutate('mutation($id: ID!) { deleteCustomer(id: $id) { customer { id } errors { field code message } } }',
                        {"id": first["id"]})
    second = await create(client, kind="PERSON", lastName="Two", emails=[{"address": "shared@example.com"}])
    # The deleted customer cannot come back while its address belongs to someone else.
    restore = await client.execute('mutation($id: ID!) { restoreCustomer(id: $id) { customer { id } errors { field code } } }',
                                   {"id": first["id"]})
    assert restore["restoreCustomer"]["errors"] == [{"field": "id", "code": "DUPLICATE"}]
    assert second["primaryEmail"] == "shared@example.com"


async def test_soft_delete_hides_everywhere_and_restore_brings_back(client):
    org = await create(client, kind="ORGANIZATION", organizationName="Initech")
    person = await create(client, kind="PERSON", lastName="Lumbergh", organizationId=org["id"])
    deleted = await client.mutate('mutation($id: ID!) { deleteCustomer(id: $id) { customer { id deletedAt } errors { field code message } } }',
                                  {"id": person["id"]})
    assert deleted["customer"]["deletedAt"] is not None

    assert (await client.execute(GET, {"id": person["id"]}))["customer"] is None
    data = await client.execute("query($id: ID!) { customers { totalCount } node(id: $id) { id } "
                                "org: customer(id: \"" + org["id"] + "\") { contacts { totalCount } } }", {"id": person["id"]})
    assert data["customers"]["totalCount"] == 1
    assert data["node"] is None
    assert data["org"]["contacts"]["totalCount"] == 0

    again = await client.execute('mutation($id: ID!) { deleteCustomer(id: $id) { errors { field code } } }', {"id": person["id"]})
    assert again["deleteCustomer"]["errors"] == [{"field": "id", "code": "NOT_FOUND"}]

    await client.mutate('mutation($id: ID!) { restoreCustomer(id: $id) { customer { id } errors { field code message } } }',
                        {"id": person["id"]})
    restored = (await client.execute(GET, {"id": person["id"]}))["customer"]
    assert restored["deletedAt"] is None


async def test_organization_lists_its_contact_people(client):
    org = await create(client, kind="ORGANIZATION", organizationName="Globex",
                       addresses=[{"line1": "1 Main St", "city": "Springfield", "country": "US"}])
    assert org["country"] == "US" and org["city"] == "Springfield"  # geography from the primary address
    for name in ("Zed", "Abe"):
        await create(client, kind="PERSON", lastName=name, organizationId=org["id"])
    data = await client.execute(
        "query($id: ID!) { customer(id: $id) { contacts { totalCount edges { node { displayName organization { displayName } } } } } }",
        {"id": org["id"]},
    )
    contacts = data["customer"]["contacts"]
    assert contacts["totalCount"] == 2
    assert [e["node"]["displayName"] for e in contacts["edges"]] == ["Abe", "Zed"]
    assert {e["node"]["organization"]["displayName"] for e in contacts["edges"]} == {"Globex"}


async def test_person_cannot_be_an_organization_of_another_person(client):
    person = await create(client, kind="PERSON", lastName="Solo")
    body = await client.execute(CREATE, {"input": {"kind": "PERSON", "lastName": "X", "organizationId": person["id"]}})
    assert [(e["field"], e["code"]) for e in body["createCustomer"]["errors"]] == [("organizationId", "INVALID_VALUE")]


async def test_external_ref_makes_create_idempotent(client):
    ref = {"system": "shop", "externalId": "c-42"}
    first = await create(client, kind="PERSON", lastName="Retry", externalRef=ref)
    second = await create(client, kind="PERSON", lastName="Retry", externalRef=ref)
    assert first["id"] == second["id"]
    assert (await client.execute("{ customers { totalCount } }"))["customers"]["totalCount"] == 1


BATCH = """
mutation($inputs: [CreateCustomerInput!]!) {
  createCustomers(inputs: $inputs) {
    createdCount errors { field code }
    results { index customer { displayName } errors { field code } }
  }
}
"""


async def test_batch_import_reports_per_item_errors_and_keeps_the_good_ones(client):
    body = await client.execute(BATCH, {"inputs": [
        {"kind": "PERSON", "lastName": "Good", "emails": [{"address": "good@example.com"}]},
        {"kind": "PERSON", "lastName": "Bad", "emails": [{"address": "nope"}]},
        {"kind": "PERSON", "lastName": "Dup", "emails": [{"address": "good@example.com"}]},
        {"kind": "ORGANIZATION", "organizationName": "Fine Ltd"},
    ]})
    result = body["createCustomers"]
    assert result["createdCount"] == 2
    assert [r["errors"] for r in result["results"]] == [
        [], [{"field": "inputs.1.emails.0.address", "code": "INVALID_EMAIL"}],
        [{"field": "inputs.2.emails.0.address", "code": "DUPLICATE"}], [],
    ]
    names = await client.execute("{ customers(orderBy: [{field: DISPLAY_NAME}]) { edges { node { displayName } } } }")
    assert [e["node"]["displayName"] for e in names["customers"]["edges"]] == ["Fine Ltd", "Good"]


REF_BATCH = """
mutation($inputs: [CreateCustomerInput!]!) {
  createCustomers(inputs: $inputs) {
    createdCount results { customer { id displayName emails { address } tags } errors { field code } }
  }
}
"""


async def test_batch_answers_known_and_repeated_external_refs_as_retries(client, db):
    """An item whose reference is stored already, or repeats an earlier item's, is answered with
    that customer (as a retry would be); one repeating a failed item's reference is tried itself.
    Each created customer has its own event carrying what was written."""
    from crm_graph.core.events import OutboxEvent

    stored = await create(client, kind="PERSON", lastName="Stored", externalRef={"system": "shop", "externalId": "1"})
    ref = lambda n: {"system": "shop", "externalId": n}  # noqa: E731
    body = await client.execute(REF_BATCH, {"inputs": [
        {"kind": "PERSON", "lastName": "Other name", "externalRef": ref("1")},
        {"kind": "PERSON", "lastName": "Twice", "externalRef": ref("2"), "emails": [{"address": "twice@example.com"}],
         "tags": ["b", "a"]},
        {"kind": "PERSON", "lastName": "Twice again", "externalRef": ref("2")},
        {"kind": "PERSON", "externalRef": ref("3")},
        {"kind": "PERSON", "lastName": "Third", "externalRef": ref("3")},
        {"kind": "ORGANIZATION", "organizationName": "No ref Ltd"},
    ]})
    result = body["createCustomers"]
    customers = [r["customer"] for r in result["results"]]
    assert customers[0]["id"] == stored["id"] and customers[0]["displayName"] == "Stored"
    assert customers[1] == customers[2] == {"id": customers[1]["id"], "displayName": "Twice",
                                            "emails": [{"address": "twice@example.com"}], "tags": ["a", "b"]}
    assert customers[3] is None and [e["code"] for e in result["results"][3]["errors"]] == ["REQUIRED"]
    assert customers[4]["displayName"] == "Third" and customers[5]["displayName"] == "No ref Ltd"
    assert result["createdCount"] == 5  # answered items count as created, as a retried createCustomer does
    assert (await client.execute("{ customers { totalCount } }"))["customers"]["totalCount"] == 4
    async with db.reader() as session:
        events = list(await session.scalars(
            sa.select(OutboxEvent).where(OutboxEvent.type == "customer.created").order_by(OutboxEvent.id)))
    assert [e.payload["data"]["displayName"] for e in events] == ["Stored", "Twice", "Third", "No ref Ltd"]
    twice = events[1].payload["data"]
    assert twice["emails"] == [{"address": "twice@example.com", "label": None, "primary": True}]
    assert twice["tags"] == ["a", "b"] and twice["id"] == int(events[1].entity_id)


async def test_concurrent_batches_with_the_same_refs_make_each_customer_once(client, db):
    """Two batches racing with the same new references: on PostgreSQL the second one's insert
    meets the first one's rows, and its items are then answered one by one with the winners."""
    import asyncio

    # no addresses: those would be locked, and the second batch would wait for the first's commit
    inputs = [{"kind": "PERSON", "lastName": f"Raced {i}", "externalRef": {"system": "race", "externalId": str(i)}}
              for i in range(20)]
    answers = await asyncio.gather(*(client.execute(REF_BATCH, {"inputs": inputs}) for _ in range(2)))
    ids = [[r["customer"]["id"] for r in a["createCustomers"]["results"]] for a in answers]
    assert ids[0] == ids[1] and len(set(ids[0])) == 20
    assert (await client.execute("{ customers { totalCount } }"))["customers"]["totalCount"] == 20


async def test_batch_over_100_is_refused_whole(client):
    body = await client.execute(BATCH, {"inputs": [{"kind": "PERSON", "lastName": f"P{i}"} for i in range(101)]})
    assert body["createCustomers"]["errors"] == [{"field": "inputs", "code": "TOO_MANY"}]
    assert (await client.execute("{ customers { totalCount } }"))["customers"]["totalCount"] == 0


CUSTOM = """
mutation($input: CreateCustomFieldDefinitionInput!) {
  createCustomFieldDefinition(input: $input) { customFieldDefinition { id key type options required } errors { field code } }
}
"""


async def test_custom_fields_are_typed_validated_and_filterable(client):
    await client.mutate(CUSTOM, {"input": {"key": "industry", "label": "Industry", "type": "SELECT", "options": ["Retail", "Software"]}})
    await client.mutate(CUSTOM, {"input": {"key": "employees", "label": "Employees", "type": "NUMBER"}})
    await client.mutate(CUSTOM, {"input": {"key": "since", "label": "Member since", "type": "DATE"}})
    await client.mutate(CUSTOM, {"input": {"key": "partner", "label": "Partner", "type": "BOOLEAN"}})

    bad = await client.execute(CREATE, {"input": {"kind": "ORGANIZATION", "organizationName": "X",
                                                  "customFields": {"industry": "Mining", "employees": "many", "nope": 1}}})
    assert {(e["field"], e["code"]) for e in bad["createCustomer"]["errors"]} == {
        ("customFields.industry", "INVALID_VALUE"), ("customFields.employees", "INVALID_VALUE"), ("customFields.nope", "INVALID_VALUE"),
    }
    a = await create(client, kind="ORGANIZATION", organizationName="Small Shop",
                     customFields={"industry": "Retail", "employees": 8, "since": "2020-02-29", "partner": True})
    await create(client, kind="ORGANIZATION", organizationName="Big Soft", customFields={"industry": "Software", "employees": 1200.5})
    assert a["customFields"] == {"employees": 8, "industry": "Retail", "partner": True, "since": "2020-02-29"}

    async def names(filter):
        data = await client.execute("query($f: CustomerFilter) { customers(filter: $f, orderBy: [{field: DISPLAY_NAME}]) { edges { node { displayName } } } }", {"f": filter})
        return [e["node"]["displayName"] for e in data["customers"]["edges"]]

    assert await names({"customFields": [{"key": "employees", "gte": 100}]}) == ["Big Soft"]
    assert await names({"customFields": [{"key": "industry", "in": ["Retail", "Software"]}]}) == ["Big Soft", "Small Shop"]
    assert await names({"customFields": [{"key": "since", "lt": "2021-01-01"}]}) == ["Small Shop"]
    assert await names({"customFields": [{"key": "partner", "isNull": True}]}) == ["Big Soft"]
    assert await names({"customFields": [{"key": "industry", "neq": "Retail"}]}) == ["Big Soft"]

    wrong = await client.post("{ customers(filter: {customFields: [{key: \"employees\", gt: \"lots\"}]}) { totalCount } }")
    assert wrong["data"] is None
    assert "filter.customFields.0.gt" in wrong["errors"][0]["message"]

    dup = await client.execute(CUSTOM, {"input": {"key": "industry", "label": "Again", "type": "TEXT"}})
    assert dup["createCustomFieldDefinition"]["errors"] == [{"field": "key", "code": "DUPLICATE"}]
    no_options = await client.execute(CUSTOM, {"input": {"key": "tier", "label": "Tier", "type": "SELECT"}})
    assert no_options["createCustomFieldDefinition"]["errors"] == [{"field": "options", "code": "REQUIRED"}]


async def test_required_custom_field_must_be_given_on_create(client):
    await client.mutate(CUSTOM, {"input": {"key": "vatId", "label": "VAT ID", "type": "TEXT", "required": True}})
    body = await client.execute(CREATE, {"input": {"kind": "ORGANIZATION", "organizationName": "NoVat"}})
    assert body["createCustomer"]["errors"][0]["field"] == "customFields.vatId"
    assert body["createCustomer"]["errors"][0]["code"] == "REQUIRED"


async def test_node_and_nodes_resolve_any_type_in_order(client):
    a = await create(client, kind="PERSON", lastName="A")
    b = await create(client, kind="PERSON", lastName="B")
    data = await client.execute(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Customer { displayName } } }",
        {"ids": [b["id"], a["id"], b["id"]]},
    )
    assert [n["displayName"] for n in data["nodes"]] == ["B", "A", "B"]


@pytest.mark.parametrize(
    "bad_id",
    ["not-base64!!", "Q3VzdG9tZXI6YWJj", "", base64.urlsafe_b64encode(b"Customer:9223372036854775808").decode()],
)
async def test_malformed_global_id_is_a_clear_error(client, bad_id):
    body = await client.post("query($id: ID!) { customer(id: $id) { id } }", {"id": bad_id})
    assert body["data"] == {"customer": None} or body["data"] is None
    assert "Malformed ID" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ID"


async def test_id_of_a_type_no_schema_has_is_refused(client):
    # "Foo:1": well formed, but of a type this server does not serve, as a customer or as any node
    body = await client.post("query($id: ID!) { customer(id: $id) { id } node(id: $id) { id } }", {"id": "Rm9vOjE"})
    messages = sorted(e["message"] for e in body["errors"])
    assert messages == ["ID 'Rm9vOjE' is a Foo, not a Customer.", "Malformed ID 'Rm9vOjE': pass an `id` exactly as the API returned it."]
    assert {e["extensions"]["code"] for e in body["errors"]} == {"INVALID_ID"}


async def test_id_of_another_type_is_refused(client):
    customer = await create(client, kind="PERSON", lastName="Typed")
    body = await client.post("query($id: ID!) { activity(id: $id) { id } }", {"id": customer["id"]})
    assert "is a Customer, not a Activity" in body["errors"][0]["message"]


async def test_unknown_id_is_null_in_queries_and_not_found_in_mutations(client):
    customer = await create(client, kind="PERSON", lastName="Gone")
    await client.mutate('mutation($id: ID!) { deleteCustomer(id: $id) { customer { id } errors { field code message } } }', {"id": customer["id"]})
    # Same type, a number that was never issued.
    ghost = base64.urlsafe_b64encode(b"Customer:999999").decode().rstrip("=")
    assert (await client.execute(GET, {"id": ghost}))["customer"] is None
    body = await client.execute(UPDATE, {"id": ghost, "input": {"jobTitle": "x"}})
    assert body["updateCustomer"]["errors"] == [{"field": "id", "code": "NOT_FOUND", "message": "Customer was not found."}]


async def test_concurrent_creates_with_one_email_make_one_customer(client):
    import asyncio

    async def attempt(name: str) -> dict:
        return (await client.execute(CREATE, {"input": {"kind": "PERSON", "lastName": name,
                                                        "emails": [{"address": "race@example.com"}]}}))["createCustomer"]

    results = await asyncio.gather(*(attempt(f"Racer {i}") for i in range(4)))
    created = [r for r in results if r["customer"]]
    refused = [r for r in results if r["errors"]]
    assert len(created) == 1 and len(refused) == 3
    assert all(r["errors"][0]["code"] == "DUPLICATE" for r in refused)
    listed = await client.execute('{ customers(filter: {email: {eq: "race@example.com"}}) { totalCount } }')
    assert listed["customers"]["totalCount"] == 1


async def test_concurrent_batches_sharing_addresses_make_one_customer_per_address(client):
    """Batches look their addresses up (and on PostgreSQL lock them) all at once, in one order, so
    batches and single creates racing for the same addresses neither deadlock nor both win."""
    import asyncio

    addresses = [f"shared{i}@example.com" for i in range(6)]

    async def batch(name: str, picked: list[str]) -> dict:
        inputs = [{"kind": "PERSON", "lastName": f"{name} {a}", "emails": [{"address": a}]} for a in picked]
        return (await client.execute(BATCH, {"inputs": inputs}))["createCustomers"]

    async def single(address: str) -> dict:
        return (await client.execute(CREATE, {"input": {"kind": "PERSON", "lastName": "Single",
                                                        "emails": [{"address": address}]}}))["createCustomer"]

    answers = await asyncio.gather(batch("A", addresses), batch("B", list(reversed(addresses))), single(addresses[2]))
    created = answers[0]["createdCount"] + answers[1]["createdCount"] + (1 if answers[2]["customer"] else 0)
    assert created == len(addresses)
    refused = [e for a in answers[:2] for r in a["results"] for e in r["errors"]] + answers[2]["errors"]
    assert len(refused) == len(addresses) + 1 and all(e["code"] == "DUPLICATE" for e in refused)
    for address in addresses:
        listed = await client.execute('query($a: String!) { customers(filter: {email: {eq: $a}}) { totalCount } }', {"a": address})
        assert listed["customers"]["totalCount"] == 1, address
