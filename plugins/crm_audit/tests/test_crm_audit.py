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


async def test_every_change_is_kept_newest_first_and_pages(crm_client, crm_events, crm_db, crm_clock):
    created = await crm_client.execute(CREATE, {"input": {"kind": "ORGANIZATION", "organizationName": "Acme"}})
    acme = created["createCustomer"]["customer"]["id"]
    for city in ("Berlin", "Paris", "Rome"):
        crm_clock.advance(minutes=1)
        await crm_client.execute(UPDATE, {"id": acme, "input": {"city": city}})
    await crm_events.deliver()

    # Every committed event is in the trail, once.
    async with crm_db.reader() as session:
        kept = set(await session.scalars(sa.select(AuditEntry.event_id)))
    assert kept == {event.id for event in await crm_events.all()} and len(kept) == 4

    first = (await crm_client.execute(TRAIL, {"id": acme}))["changeHistory"]
    assert first["totalCount"] == 4
    assert [e["node"]["changes"]["before"]["city"] for e in first["edges"]] == ["Paris", "Berlin"]
    assert all(e["node"]["changedFields"] == ["city"] for e in first["edges"])
    assert first["edges"][0]["node"]["occurredAt"] == "2026-11-22T09:03:00+00:00"
    rest = (await crm_client.execute(TRAIL, {"id": acme, "after": first["pageInfo"]["endCursor"]}))["changeHistory"]
    assert [e["node"]["eventType"] for e in rest["edges"]] == ["customer.updated", "customer.created"]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert rest["edges"][-1]["node"]["entity"] == {"id": acme}

    # An entry is a Node like any other.
    entry_id = rest["edges"][-1]["node"]["id"]
    fetched = await crm_client.execute(
        "query($id: ID!) { node(id: $id) { ... on ChangeHistoryEntry { eventType } } }", {"id": entry_id}
    )
    assert fetched["node"] == {"eventType": "customer.created"}


async def test_event_families_filter_the_trail(crm_client, crm_events):
    await crm_client.execute(CREATE, {"input": {"kind": "PERSON", "lastName": "Lovelace"}})
    await crm_events.deliver()
    assert (await crm_client.execute(TRAIL, {"type": "customer.*"}))["changeHistory"]["totalCount"] == 1
    assert (await crm_client.execute(TRAIL, {"type": "ticket.*"}))["changeHistory"]["totalCount"] == 0


async def test_the_trail_is_for_those_who_read_the_audit_log(crm_client, crm_client_for, crm_events):
    await crm_client.execute(CREATE, {"input": {"kind": "PERSON", "lastName": "Lovelace"}})
    await crm_events.deliver()
    sales = await crm_client_for("SALES")
    body = await sales.post(TRAIL, {})
    assert body["data"] is None
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [(["changeHistory"], "FORBIDDEN")]


async def test_redelivered_events_are_kept_once(crm_app, crm_client, crm_events, crm_db, crm_clock):
    await crm_client.execute(CREATE, {"input": {"kind": "PERSON", "lastName": "Hopper"}})
    dispatcher = crm_app.state.dispatcher
    await dispatcher.fan_out()
    (claim,) = [c for c in await dispatcher.claim() if c.subscriber == "plugin:crm_audit"]
    # The plugin gets the event, then the worker dies before recording it: the lease lapses and
    # the event is delivered again.
    from crm_audit.plugin import crm_on_event

    await crm_on_event(claim.event, crm_db)
    crm_clock.advance(seconds=crm_app.state.settings.dispatch_lease + 1)
    await crm_events.deliver()
    async with crm_db.reader() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 1


EXPORT = "mutation($id: ID!) { exportCustomerData(id: $id) { data errors { code message } } }"
ERASE = "mutation($id: ID!) { eraseCustomer(id: $id) { customer { id } errors { code message } } }"


async def test_a_privacy_export_carries_the_customers_history_and_an_erasure_blanks_it(
    crm_client, crm_events, crm_db, crm_clock
):
    created = await crm_client.execute(
        CREATE, {"input": {"kind": "PERSON", "lastName": "Lovelace", "emails": [{"address": "ada@example.org"}]}}
    )
    ada = created["createCustomer"]["customer"]["id"]
    crm_clock.advance(minutes=1)
    await crm_client.execute(UPDATE, {"id": ada, "input": {"city": "London"}})
    await crm_events.deliver()

    exported = (await crm_client.execute(EXPORT, {"id": ada}))["exportCustomerData"]
    assert exported["errors"] == []
    history = exported["data"]["plugins"]["crm_audit"]["changeHistory"]
    assert [e["eventType"] for e in history] == ["customer.created", "customer.updated"]
    assert history[0]["data"]["emails"][0]["address"] == "ada@example.org"

    assert (await crm_client.execute(ERASE, {"id": ada}))["eraseCustomer"]["errors"] == []
    async with crm_db.reader() as session:
        kept = list(await session.scalars(sa.select(AuditEntry).where(AuditEntry.entity_id == ada).order_by(AuditEntry.id)))
    # The history still says what happened and when, no longer what the customer's data was.
    assert [(e.event_type, e.changed_fields, e.data, e.changes) for e in kept] == [
        ("customer.created", None, {"erased": True}, None),
        ("customer.updated", ["city"], {"erased": True}, None),
    ]
    await crm_events.deliver()  # customer.erased arrives too, and leaves nothing personal
    async with crm_db.reader() as session:
        rows = list(await session.scalars(sa.select(AuditEntry).where(AuditEntry.entity_id == ada)))
    assert [e.event_type for e in rows][-1] == "customer.erased"
    assert "ada@example.org" not in repr([(e.data, e.changes) for e in rows]) and "London" not in repr([e.data for e in rows])


async def test_the_suite_runs_on_the_database_the_run_asked_for(request, crm_db, crm_database_server_url):
    # `make test` runs this suite with --db sqlite and --db postgresql: each must really use its own.
    asked = "postgresql" if request.config.getoption("--db") == "postgresql" or crm_database_server_url else "sqlite"
    assert crm_db.dialect == asked
