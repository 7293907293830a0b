"""Many writers at once: on SQLite (one writer at a time) and PostgreSQL alike, 50 mutations
sent together are all acknowledged and all present, with no "database is locked" and no
internal error; two creations with one external reference at once answer with the same
customer (the winner), not an error."""

from __future__ import annotations

import asyncio

CREATE = """
mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } errors { field code message } } }
"""
COUNT = 'query { customers(first: 1, filter: {tags: {containsAny: ["burst"]}}) { totalCount } }'


async def test_fifty_concurrent_writers_are_all_acknowledged_and_all_there(client):
    async def one(i: int) -> dict:
        return await client.post(CREATE, {"i": {"kind": "PERSON", "firstName": f"W{i}", "lastName": "Burst",
                                                "tags": ["burst"], "emails": [{"address": f"w{i}@example.com"}]}})

    answers = await asyncio.gather(*(one(i) for i in range(50)))
    problems = [a for a in answers if "errors" in a or a["data"]["createCustomer"]["errors"]]
    assert problems == []
    ids = {a["data"]["createCustomer"]["customer"]["id"] for a in answers}
    assert len(ids) == 50
    assert (await client.execute(COUNT))["customers"]["totalCount"] == 50


async def test_two_creations_with_one_external_reference_at_once_answer_with_the_winner(client):
    data = {"kind": "ORGANIZATION", "organizationName": "Twin Ltd", "externalRef": {"system": "shop", "externalId": "A-1"}}
    answers = await asyncio.gather(*(client.post(CREATE, {"i": data}) for _ in range(5)))
    assert all("errors" not in a and a["data"]["createCustomer"]["errors"] == [] for a in answers), answers
    assert len({a["data"]["createCustomer"]["customer"]["id"] for a in answers}) == 1


UPSERT = """
mutation($i: UpsertOrderInput!) { upsertOrder(input: $i) { created order { id } errors { field code message } } }
"""


async def test_a_finance_system_retrying_one_order_at_once_gets_one_order(client):
    customer = (await client.mutate(CREATE, {"i": {"kind": "PERSON", "firstName": "Ana", "lastName": "Shop"}}))["customer"]["id"]
    order = {"externalRef": {"system": "shop", "externalId": "10045"}, "customerId": customer, "currency": "EUR",
             "lineItems": [{"description": "Kit", "quantity": "2", "unitPrice": {"amount": "10.00", "currency": "EUR"}}]}
    answers = await asyncio.gather(*(client.post(UPSERT, {"i": order}) for _ in range(5)))
    assert all("errors" not in a and a["data"]["upsertOrder"]["errors"] == [] for a in answers), answers
    assert len({a["data"]["upsertOrder"]["order"]["id"] for a in answers}) == 1
    assert sum(a["data"]["upsertOrder"]["created"] for a in answers) == 1
