"""Reassigning a record's owner: its own permission, its own event, and the record moves to the
new owner's view."""

from __future__ import annotations

import sqlalchemy as sa

from crm_graph.core.events import OutboxEvent
from crm_graph.testing.auth import bearer, make_key, share

CREATE = 'mutation { createCustomer(input: {kind: PERSON, lastName: "Moved"}) { customer { id ownedBy { email } team { name } } errors { code } } }'
REASSIGN = """mutation($ids: [ID!]!, $owner: ID!) { reassignOwner(input: {ids: $ids, ownerId: $owner}) {
  records { id ownerId record { ... on Customer { ownedBy { email } team { name } } } } errors { field code } } }"""
ME = "{ me { user { id } } }"


async def test_reassign_needs_assign_and_moves_the_record(client, db, settings):
    await share(db, "PRIVATE", "customers")
    rep_a, _ = await make_key(db, settings, role="SALES", email="a@example.com", team="North")
    rep_b, _ = await make_key(db, settings, role="SALES", email="b@example.com", team="South")
    boss, _ = await make_key(db, settings, role="MANAGER", email="boss@example.com", team="North")
    client.http.headers.update(bearer(rep_b))
    b_id = (await client.execute(ME))["me"]["user"]["id"]
    client.http.headers.update(bearer(rep_a))
    created = (await client.mutate(CREATE))["customer"]
    assert created["ownedBy"] == {"email": "a@example.com"} and created["team"] == {"name": "North"}

    # SALES may not reassign, even its own records: nothing changes, no event.
    refused = await client.execute(REASSIGN, {"ids": [created["id"]], "owner": b_id})
    assert refused["reassignOwner"]["errors"][0]["code"] == "FORBIDDEN"

    client.http.headers.update(bearer(boss))
    moved = await client.mutate(REASSIGN, {"ids": [created["id"]], "owner": b_id})
    assert moved["records"][0]["ownerId"] == b_id
    # The manager of North no longer sees a PRIVATE record of South's.
    assert moved["records"][0]["record"] is None
    async with db.reader() as session:
        events = (await session.execute(sa.select(OutboxEvent.type, OutboxEvent.payload).where(OutboxEvent.type.like("%owner_changed")))).all()
    assert [e.type for e in events] == ["customer.owner_changed"]
    assert events[0].payload["changes"]["ownerId"]["to"] is not None

    client.http.headers.update(bearer(rep_b))
    seen = await client.execute("query($id: ID!) { customer(id: $id) { ownedBy { email } team { name } } }", {"id": created["id"]})
    assert seen["customer"] == {"ownedBy": {"email": "b@example.com"}, "team": {"name": "South"}}
    client.http.headers.update(bearer(rep_a))
    assert (await client.execute("query($id: ID!) { customer(id: $id) { id } }", {"id": created["id"]}))["customer"] is None
