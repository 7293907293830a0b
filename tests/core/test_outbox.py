"""Domain events are written to the outbox in the same transaction as the change."""

from __future__ import annotations

import sqlalchemy as sa

from crm_graph.core.events import OutboxEvent
from tests.customers.test_schema import CREATE, UPDATE, create


async def _events(db) -> list[OutboxEvent]:
    async with db.reader() as session:
        return list(await session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.id)))


async def test_writes_record_events_with_payload_and_changes(client, db):
    customer = await create(client, kind="PERSON", firstName="Eve", lastName="Ent", emails=[{"address": "eve@example.com"}])
    await client.mutate(UPDATE, {"id": customer["id"], "input": {"jobTitle": "CTO", "tags": ["vip"]}})
    events = await _events(db)
    assert [e.type for e in events] == ["customer.created", "customer.updated"]
    created, updated = events
    assert created.entity_type == "Customer" and created.payload["data"]["displayName"] == "Eve Ent"
    assert created.payload["data"]["emails"] == [{"address": "eve@example.com", "label": None, "primary": True}]
    assert updated.payload["changes"]["fields"] == ["jobTitle", "tags"]
    assert updated.payload["changes"]["before"] == {"jobTitle": None, "tags": []}
    assert updated.payload["data"]["version"] == 2
    assert len({e.event_id for e in events}) == 2


async def test_failed_writes_record_no_event(client, db):
    body = await client.execute(CREATE, {"input": {"kind": "PERSON", "lastName": "X", "emails": [{"address": "bad"}]}})
    assert body["createCustomer"]["errors"]
    batch = await client.execute(
        "mutation($i: [CreateCustomerInput!]!) { createCustomers(inputs: $i) { createdCount } }",
        {"i": [{"kind": "PERSON", "lastName": "Ok"}, {"kind": "PERSON"}]},
    )
    assert batch["createCustomers"]["createdCount"] == 1
    # Only the item that was created has an event: a failed item writes nothing.
    assert [e.type for e in await _events(db)] == ["customer.created"]
