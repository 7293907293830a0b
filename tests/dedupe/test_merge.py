"""mergeCustomers: every relation moves to the survivor, the dry run writes nothing but says the
same, the merge record explains each moved row, merged IDs resolve to the survivor, and the
refusals (itself, twice, erased, mixed kinds, hidden, permissions) are clear UserErrors."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from crm_graph.activities import service as activities
from crm_graph.core.actor import SYSTEM
from crm_graph.core.clock import utcnow
from crm_graph.core.events import OutboxEvent
from crm_graph.core import ids
from crm_graph.db.metadata import target_metadata
from crm_graph.segments.values import revenue_by_customer
from crm_graph.testing.auth import bearer, make_key, share
from tests.segments.factories import order

CREATE = """
mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } errors { field code message } } }
"""
MERGE = """
mutation($input: MergeCustomersInput!) {
  mergeCustomers(input: $input) {
    customer { id displayName firstName lastName jobTitle city tags emails { address primary } emailConsent { status } }
    merge { id mergedIds undoUntil survivor { id } }
    plan { dryRun counts { table moved removed } moved { table row column from to } removed { table row values }
           survivorBefore survivorAfter plugins }
    errors { field code message }
  }
}
"""
SEGMENT = 'mutation { createSegment(input: {name: "%s", kind: STATIC}) { segment { id } errors { code } } }'
ADD = "mutation($s: ID!, $c: [ID!]!) { addCustomersToSegment(segmentId: $s, customerIds: $c) { errors { code } } }"
TICKET = 'mutation($c: ID!) { createTicket(input: {customerId: $c, subject: "Printer", channel: PHONE}) { ticket { id } errors { code } } }'
CUSTOMER = """
query($id: ID!) {
  customer(id: $id) {
    id displayName tags emails { address primary } phones { number }
    segments { name }
    orders { totalCount }
    tickets { totalCount }
    activities { totalCount }
  }
}
"""


async def _customer(client, **data) -> str:
    data.setdefault("kind", "PERSON")
    return (await client.mutate(CREATE, {"input": data}))["customer"]["id"]


def _pk(global_id: str) -> int:
    return ids.decode(global_id)[1]


async def _references(db, pks):
    """How many rows of every table reference each customer (what a merge must move)."""
    out = {}
    async with db.reader() as session:
        for table in target_metadata().sorted_tables:
            for fk in table.foreign_keys:
                if fk.target_fullname == "customers.id" and not table.name.startswith(("duplicate_", "customer_merges", "merged_")):
                    rows = (await session.execute(
                        sa.select(fk.parent, sa.func.count()).where(fk.parent.in_(pks)).group_by(fk.parent)
                    )).all()
                    for pk, n in rows:
                        out[(table.name, fk.parent.name, pk)] = n
    return out


async def _two_customers(client, db):
    """Ada (the survivor) and her duplicate Augusta, each with orders, tickets, activities,
    segment memberships, tags and emails; a segment and a tag on both."""
    ada = await _customer(client, firstName="Ada", lastName="Lovelace", tags=["vip"], city="London",
                          emails=[{"address": "ada@example.com"}], phones=[{"number": "+442079460000"}])
    augusta = await _customer(client, firstName="Augusta", lastName="King", jobTitle="Analyst", tags=["vip", "maths"],
                              emails=[{"address": "augusta@example.com"}], phones=[{"number": "+442079460000"}],
                              emailConsent={"status": "OPTED_OUT", "source": "unsubscribe link"})
    both = (await client.mutate(SEGMENT % "Both"))["segment"]["id"]
    only = (await client.mutate(SEGMENT % "Only Augusta"))["segment"]["id"]
    await client.mutate(ADD, {"s": both, "c": [ada, augusta]})
    await client.mutate(ADD, {"s": only, "c": [augusta]})
    await client.mutate(TICKET, {"c": augusta})
    now = utcnow()
    async with db.writer() as session, session.begin():
        order(session, _pk(ada), "100.00", now - timedelta(days=40))
        order(session, _pk(augusta), "250.50", now - timedelta(days=3))
        order(session, _pk(augusta), "49.50", now - timedelta(days=90))
        for subject in ("Call", "Visit"):
            await activities.log_activity(session, actor=SYSTEM, data={"customerId": _pk(augusta), "type": "NOTE", "subject": subject})
    return ada, augusta


async def _rfm_inputs(db, pk):
    stmt = revenue_by_customer(utcnow().date(), 365, "EUR").subquery()
    async with db.reader() as session:
        row = (await session.execute(sa.select(stmt).where(stmt.c.customer_id == pk))).one()
    return row.frequency, Decimal(row.monetary), row.last_at


async def test_merge_moves_every_relation_and_the_old_id_resolves_to_the_survivor(client, db):
    ada, augusta = await _two_customers(client, db)
    before = await _references(db, [_pk(ada), _pk(augusta)])
    _, _, latest = await _rfm_inputs(db, _pk(augusta))

    # The dry run: the plan and counts, and nothing written.
    dry = await client.mutate(MERGE, {"input": {"survivorId": ada, "mergedIds": [augusta], "dryRun": True}})
    assert dry["merge"] is None and dry["plan"]["dryRun"] is True
    assert await _references(db, [_pk(ada), _pk(augusta)]) == before
    assert (await client.execute(CUSTOMER, {"id": augusta}))["customer"]["id"] == augusta
    counts = {c["table"]: (c["moved"], c["removed"]) for c in dry["plan"]["counts"]}
    assert counts["orders"] == (2, 0) and counts["tickets"] == (1, 0)
    timeline = before[("activities", "customer_id", _pk(augusta))]  # two notes and the ticket's entry
    assert timeline >= 2 and counts["activities"] == (timeline, 0)
    assert counts["segment_members"] == (1, 1)  # "Only Augusta" moves; "Both" is kept once
    assert counts["customer_tags"] == (1, 1)  # maths moves; vip is there already
    assert counts["customer_emails"] == (1, 0) and counts["customer_phones"] == (0, 1)  # the same number once

    done = await client.mutate(MERGE, {"input": {"survivorId": ada, "mergedIds": [augusta],
                                                 "fieldChoices": [{"field": "JOB_TITLE", "customerId": augusta}]}})
    assert done["plan"]["counts"] == dry["plan"]["counts"] and done["plan"]["moved"] == dry["plan"]["moved"]
    survivor = done["customer"]
    assert survivor["id"] == ada and survivor["displayName"] == "Ada Lovelace"
    assert survivor["jobTitle"] == "Analyst"  # chosen; Ada had none anyway
    assert survivor["city"] == "London"
    assert survivor["tags"] == ["maths", "vip"]
    assert survivor["emails"] == [{"address": "ada@example.com", "primary": True}, {"address": "augusta@example.com", "primary": False}]
    assert survivor["emailConsent"]["status"] == "OPTED_OUT"  # an opt-out wins

    after = await _references(db, [_pk(ada), _pk(augusta)])
    assert not any(pk == _pk(augusta) for (_, _, pk) in after), after
    seen = (await client.execute(CUSTOMER, {"id": ada}))["customer"]
    assert seen["orders"]["totalCount"] == 3 and seen["tickets"]["totalCount"] == 1
    assert seen["activities"]["totalCount"] == timeline + before.get(("activities", "customer_id", _pk(ada)), 0)
    assert sorted(s["name"] for s in seen["segments"]) == ["Both", "Only Augusta"]
    # The same RFM inputs as the two customers' orders together.
    assert await _rfm_inputs(db, _pk(ada)) == (3, Decimal("400.00"), latest)

    # The old ID resolves to the survivor, through customer(id) and node(id); lists show one.
    assert (await client.execute(CUSTOMER, {"id": augusta}))["customer"]["id"] == ada
    node = await client.execute("query($id: ID!) { node(id: $id) { id ... on Customer { displayName } } }", {"id": augusta})
    assert node["node"] == {"id": ada, "displayName": "Ada Lovelace"}
    listed = await client.execute("{ customers { totalCount } }")
    assert listed["customers"]["totalCount"] == 1

    # The explanation: every moved row with table, row, column, from and to.
    merge_id = done["merge"]["id"]
    record = (await client.execute(
        "query($id: ID!) { customerMerge(id: $id) { mergedIds survivor { id } undoneAt "
        "plan { moved { table row column from to } removed { table values } } } }", {"id": merge_id}))["customerMerge"]
    assert record["mergedIds"] == [augusta] and record["survivor"]["id"] == ada and record["undoneAt"] is None
    orders = [m for m in record["plan"]["moved"] if m["table"] == "orders"]
    assert len(orders) == 2 and all(m["column"] == "customer_id" and m["from"] == _pk(augusta) and m["to"] == _pk(ada) for m in orders)
    assert {r["values"]["tag"] for r in record["plan"]["removed"] if r["table"] == "customer_tags"} == {"vip"}
    async with db.reader() as session:
        event = (await session.execute(sa.select(OutboxEvent.payload).where(OutboxEvent.type == "customer.merged"))).scalar_one()
    assert event["data"]["mergedIds"] == [_pk(augusta)] and event["data"]["moved"]["orders"] == 2

    # Undo: exactly those rows go back, and both customers are there again.
    undone = await client.mutate("mutation($id: ID!) { undoMerge(input: {mergeId: $id}) { merge { undoneAt } errors { code } } }",
                                 {"id": merge_id})
    assert undone["merge"]["undoneAt"] is not None
    assert await _references(db, [_pk(ada), _pk(augusta)]) == before
    back = (await client.execute(CUSTOMER, {"id": augusta}))["customer"]
    assert back["id"] == augusta and back["tags"] == ["maths", "vip"] and back["orders"]["totalCount"] == 2
    assert (await client.execute(CUSTOMER, {"id": ada}))["customer"]["tags"] == ["vip"]
    again = await client.execute("mutation($id: ID!) { undoMerge(input: {mergeId: $id}) { errors { field code } } }", {"id": merge_id})
    assert again["undoMerge"]["errors"] == [{"field": "mergeId", "code": "INVALID_STATE"}]


async def test_organizations_merge_with_their_contact_people(client):
    acme = await _customer(client, kind="ORGANIZATION", organizationName="ACME")
    acme2 = await _customer(client, kind="ORGANIZATION", organizationName="ACME Ltd", city="Leeds")
    person = await _customer(client, lastName="Coyote", organizationId=acme2)
    done = await client.mutate(MERGE, {"input": {"survivorId": acme, "mergedIds": [acme2],
                                                 "fieldChoices": [{"field": "DISPLAY_NAME", "customerId": acme2}]}})
    assert done["customer"]["displayName"] == "ACME Ltd" and done["customer"]["city"] == "Leeds"
    org = await client.execute("query($id: ID!) { customer(id: $id) { organization { id } } }", {"id": person})
    assert org["customer"]["organization"]["id"] == acme


async def test_refusals_are_clear_user_errors(client, db, settings):
    await share(db, "PRIVATE", "customers")  # before the first request: the server caches sharing defaults
    ada = await _customer(client, lastName="Lovelace")
    bob = await _customer(client, lastName="Babbage")
    org = await _customer(client, kind="ORGANIZATION", organizationName="Engines")

    async def errors(input):
        return (await client.execute(MERGE, {"input": input}))["mergeCustomers"]["errors"]

    assert await errors({"survivorId": ada, "mergedIds": [ada]}) == [
        {"field": "mergedIds.0", "code": "INVALID_VALUE", "message": "A customer cannot be merged into itself."}]
    mixed = await errors({"survivorId": ada, "mergedIds": [org]})
    assert mixed[0]["field"] == "mergedIds.0" and mixed[0]["code"] == "INVALID_VALUE" and "organization" in mixed[0]["message"]
    assert (await errors({"survivorId": ada, "mergedIds": ["nonsense"]}))[0] == {
        "field": "mergedIds.0", "code": "NOT_FOUND", "message": "Customer was not found."}
    assert (await errors({"survivorId": ada, "mergedIds": []}))[0]["code"] == "REQUIRED"
    assert (await errors({"survivorId": ada, "mergedIds": [bob], "fieldChoices": [{"field": "CITY", "customerId": org}]}))[0][
        "field"] == "fieldChoices.0.customerId"
    await client.mutate(MERGE, {"input": {"survivorId": ada, "mergedIds": [bob]}})
    twice = await errors({"survivorId": ada, "mergedIds": [bob]})
    assert twice[0]["code"] == "INVALID_STATE" and twice[0]["field"] == "mergedIds.0"
    restored = await client.execute("mutation($id: ID!) { restoreCustomer(id: $id) { errors { field code message } } }", {"id": bob})
    assert restored["restoreCustomer"]["errors"][0]["code"] == "INVALID_STATE"
    assert "undoMerge" in restored["restoreCustomer"]["errors"][0]["message"]
    erased = await _customer(client, lastName="Gone")
    await client.mutate("mutation($id: ID!) { eraseCustomer(id: $id) { errors { code } } }", {"id": erased})
    assert (await errors({"survivorId": ada, "mergedIds": [erased]}))[0]["code"] == "INVALID_STATE"

    # A customer the caller cannot read is NOT_FOUND; SALES (no customers:delete) may not merge.
    rep, _ = await make_key(db, settings, role="SALES", email="rep@example.com", team="North")
    manager, _ = await make_key(db, settings, role="MANAGER", email="boss@example.com", team="South")
    client.http.headers.update(bearer(rep))
    mine = await _customer(client, lastName="Mine")
    refused = await client.post(MERGE, {"input": {"survivorId": mine, "mergedIds": [ada]}})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    client.http.headers.update(bearer(manager))
    theirs = await _customer(client, lastName="Theirs")
    hidden = await errors({"survivorId": theirs, "mergedIds": [mine]})
    assert hidden == [{"field": "mergedIds.0", "code": "NOT_FOUND", "message": "Customer was not found."}]


async def test_concurrent_merges_of_the_same_customers_do_not_both_apply(client, db):
    import asyncio

    a = await _customer(client, lastName="A")
    b = await _customer(client, lastName="B")
    c = await _customer(client, lastName="C")
    first, second = await asyncio.gather(
        client.execute(MERGE, {"input": {"survivorId": a, "mergedIds": [b]}}),
        client.execute(MERGE, {"input": {"survivorId": c, "mergedIds": [b]}}),
    )
    outcomes = [first["mergeCustomers"]["errors"], second["mergeCustomers"]["errors"]]
    assert sorted(len(e) for e in outcomes) == [0, 1], outcomes
    (failed,) = [e for e in outcomes if e]
    assert failed[0]["code"] in ("INVALID_STATE", "VERSION_CONFLICT")
    async with db.reader() as session:
        from crm_graph.dedupe.models import MergedCustomer

        assert (await session.scalar(sa.select(sa.func.count()).select_from(MergedCustomer))) == 1


async def test_loyalty_points_and_custom_fields_follow_the_survivor(client, db):
    from crm_graph.loyalty import service as loyalty

    await client.mutate(
        'mutation { createCustomFieldDefinition(input: {key: "industry", label: "Industry", type: TEXT}) { errors { code } } }')
    keep = await _customer(client, lastName="Keep", customFields={"industry": "Retail"})
    gone = await _customer(client, lastName="Gone", customFields={"industry": "Steel"})
    async with db.writer() as session, session.begin():
        await loyalty.earn_points(session, actor=SYSTEM, customer_id=_pk(keep), points=100, idempotency_key="k1")
        await loyalty.earn_points(session, actor=SYSTEM, customer_id=_pk(gone), points=250, idempotency_key="g1")
        await loyalty.earn_points(session, actor=SYSTEM, customer_id=_pk(gone), points=5, idempotency_key="g2")
    done = await client.mutate(MERGE, {"input": {"survivorId": keep, "mergedIds": [gone]}})
    counts = {c["table"]: (c["moved"], c["removed"]) for c in done["plan"]["counts"]}
    assert counts["loyalty_entries"] == (2, 0) and counts["loyalty_accounts"] == (0, 1)
    assert counts["customer_field_values"] == (0, 1)  # the survivor's value stays
    async with db.reader() as session:
        assert (await loyalty.balances(session, [_pk(keep)]))[_pk(keep)].active == 355
    seen = await client.execute("query($id: ID!) { customer(id: $id) { customFields } }", {"id": keep})
    assert seen["customer"]["customFields"] == {"industry": "Retail"}
