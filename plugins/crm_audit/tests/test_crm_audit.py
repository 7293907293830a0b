"""The audit plugin as an operator sees it: installed, it keeps every change with who made it."""

from __future__ import annotations

import sqlalchemy as sa

from crm_audit.models import AuditEntry

CREATE = """
mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } errors { code } } }
"""
UPDATE = """
mutation($id: ID!, $input: UpdateCustomerInput!) { updateCustomer(id: $id, input: $input) { errors { code } } }
"""
TRAIL = """
query($id: ID, $type: String, $after: String) {
  changeHistory(entityId: $id, eventType: $type, first: 2, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id eventType occurredAt changedFields changes entity { id } } }
  }
}
"""


async def test_every_change_is_kept_newest_first_and_pages(app, graphql, db, clock):
    created = await graphql(CREATE, input={"kind": "ORGANIZATION", "organizationName": "Acme"})
    acme = created["createCustomer"]["customer"]["id"]
    for city in ("Berlin", "Paris", "Rome"):
        clock.advance(minutes=1)
        await graphql(UPDATE, id=acme, input={"city": city})
    await app.state.dispatcher.drain()

    first = (await graphql(TRAIL, id=acme))["changeHistory"]
    assert first["totalCount"] == 4
    assert [e["node"]["changes"]["before"]["city"] for e in first["edges"]] == ["Paris", "Berlin"]
    assert all(e["node"]["changedFields"] == ["city"] for e in first["edges"])
    assert first["edges"][0]["node"]["occurredAt"] == "2026-11-22T09:03:00+00:00"
    rest = (await graphql(TRAIL, id=acme, after=first["pageInfo"]["endCursor"]))["changeHistory"]
    assert [e["node"]["eventType"] for e in rest["edges"]] == ["customer.updated", "customer.created"]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert rest["edges"][-1]["node"]["entity"] == {"id": acme}

    # An entry is a Node like any other.
    entry_id = rest["edges"][-1]["node"]["id"]
    fetched = await graphql("query($id: ID!) { node(id: $id) { ... on ChangeHistoryEntry { eventType } } }", id=entry_id)
    assert fetched["node"] == {"eventType": "customer.created"}


async def test_event_families_filter_the_trail(app, graphql, clock):
    await graphql(CREATE, input={"kind": "PERSON", "lastName": "Lovelace"})
    await app.state.dispatcher.drain()
    assert (await graphql(TRAIL, type="customer.*"))["changeHistory"]["totalCount"] == 1
    assert (await graphql(TRAIL, type="ticket.*"))["changeHistory"]["totalCount"] == 0


async def test_redelivered_events_are_kept_once(app, graphql, db, clock):
    await graphql(CREATE, input={"kind": "PERSON", "lastName": "Hopper"})
    dispatcher = app.state.dispatcher
    await dispatcher.fan_out()
    (claim,) = [c for c in await dispatcher.claim() if c.subscriber == "plugin:crm_audit"]
    # The plugin gets the event, then the worker dies before recording it: the lease lapses and
    # the event is delivered again.
    from crm_audit.plugin import crm_on_event

    await crm_on_event(claim.event, db)
    clock.advance(seconds=app.state.settings.dispatch_lease + 1)
    await dispatcher.drain()
    async with db.reader() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 1


EXPORT = "mutation($id: ID!) { exportCustomerData(id: $id) { data errors { code message } } }"
ERASE = "mutation($id: ID!) { eraseCustomer(id: $id) { customer { id } errors { code message } } }"


async def test_a_privacy_export_carries_the_customers_history_and_an_erasure_blanks_it(app, graphql, db, clock):
    created = await graphql(CREATE, input={"kind": "PERSON", "lastName": "Lovelace", "emails": [{"address": "ada@example.org"}]})
    ada = created["createCustomer"]["customer"]["id"]
    clock.advance(minutes=1)
    await graphql(UPDATE, id=ada, input={"city": "London"})
    await app.state.dispatcher.drain()

    exported = (await graphql(EXPORT, id=ada))["exportCustomerData"]
    assert exported["errors"] == []
    history = exported["data"]["plugins"]["crm_audit"]["changeHistory"]
    assert [e["eventType"] for e in history] == ["customer.created", "customer.updated"]
    assert history[0]["data"]["emails"][0]["address"] == "ada@example.org"

    assert (await graphql(ERASE, id=ada))["eraseCustomer"]["errors"] == []
    async with db.reader() as session:
        kept = list(await session.scalars(sa.select(AuditEntry).where(AuditEntry.entity_id == ada).order_by(AuditEntry.id)))
    # The history still says what happened and when, no longer what the customer's data was.
    assert [(e.event_type, e.changed_fields, e.data, e.changes) for e in kept] == [
        ("customer.created", None, {"erased": True}, None),
        ("customer.updated", ["city"], {"erased": True}, None),
    ]
    await app.state.dispatcher.drain()  # customer.erased arrives too, and leaves nothing personal
    async with db.reader() as session:
        rows = list(await session.scalars(sa.select(AuditEntry).where(AuditEntry.entity_id == ada)))
    assert [e.event_type for e in rows][-1] == "customer.erased"
    assert "ada@example.org" not in repr([(e.data, e.changes) for e in rows]) and "London" not in repr([e.data for e in rows])
