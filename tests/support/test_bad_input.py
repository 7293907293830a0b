"""Bad input gives UserErrors with a camelCase field and a code, and writes nothing."""

from __future__ import annotations

import sqlalchemy as sa

from crm_graph.core.events import OutboxEvent
from tests.support.conftest import (
    ASSIGN,
    CHANGE_STATUS,
    CREATE_POLICY,
    CREATE_TICKET,
    RATE,
    REPLY,
    create_customer,
    create_policy,
    create_ticket,
    get_ticket,
    reply,
    set_status,
)


def codes(payload: dict) -> set[tuple[str | None, str]]:
    return {(e["field"], e["code"]) for e in payload["errors"]}


async def outbox_count(db) -> int:
    async with db.reader() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent)))


async def test_opening_a_ticket_for_an_unknown_customer_or_with_bad_fields(client, db):
    customer = await create_customer(client)
    before = await outbox_count(db)
    deleted = await create_customer(client, lastName="Gone")
    await client.mutate("mutation($id: ID!) { deleteCustomer(id: $id) { customer { id } errors { code } } }", {"id": deleted["id"]})
    before = await outbox_count(db)

    cases = [
        ({"customerId": deleted["id"], "subject": "Hello", "channel": "EMAIL"}, {("customerId", "NOT_FOUND")}),
        ({"customerId": "bm90LWFuLWlk", "subject": "Hello", "channel": "EMAIL"}, {("customerId", "NOT_FOUND")}),
        ({"customerId": customer["id"], "subject": "   ", "channel": "EMAIL", "tags": [""]},
         {("subject", "REQUIRED"), ("tags", "INVALID_VALUE")}),
        ({"customerId": customer["id"], "subject": "x" * 301, "channel": "EMAIL", "assignee": "y" * 201},
         {("subject", "INVALID_VALUE"), ("assignee", "INVALID_VALUE")}),
        # A contact person only makes sense for an organization's ticket.
        ({"customerId": customer["id"], "contactId": customer["id"], "subject": "Hi", "channel": "PHONE"},
         {("contactId", "INVALID_VALUE")}),
        ({"customerId": customer["id"], "subject": "Hi", "channel": "PHONE",
          "externalRefs": [{"system": "zendesk", "externalId": "1"}, {"system": "zendesk", "externalId": "2"}]},
         {("externalRefs.1.system", "DUPLICATE")}),
        ({"customerId": customer["id"], "subject": "Hi", "channel": "PHONE", "externalRefs": [{"system": " ", "externalId": "1"}]},
         {("externalRefs.0.system", "REQUIRED")}),
    ]
    for input, expected in cases:
        payload = (await client.execute(CREATE_TICKET, {"input": input}))["createTicket"]
        assert codes(payload) == expected, input
        assert payload["ticket"] is None
    assert (await client.execute("{ tickets { totalCount } }"))["tickets"]["totalCount"] == 0
    assert await outbox_count(db) == before


async def test_an_enum_outside_the_schema_is_a_graphql_error_not_a_500(client):
    customer = await create_customer(client)
    body = await client.post(CREATE_TICKET, {"input": {"customerId": customer["id"], "subject": "Hi", "channel": "FAX"}})
    assert "FAX" in body["errors"][0]["message"]
    assert "Traceback" not in str(body) and "SELECT" not in str(body)


async def test_ratings_must_be_1_to_5_and_only_after_resolution(client, db):
    customer = await create_customer(client)
    ticket = await create_ticket(client, customer["id"])
    unresolved = (await client.execute(RATE, {"id": ticket["id"], "input": {"rating": 5}}))["rateTicket"]
    assert codes(unresolved) == {("id", "TICKET_NOT_RESOLVED")}

    await set_status(client, ticket["id"], "RESOLVED")
    before = await outbox_count(db)
    for input, expected in [
        ({"rating": 0}, {("rating", "OUT_OF_RANGE")}),
        ({"rating": 6, "expectation": 0}, {("rating", "OUT_OF_RANGE"), ("expectation", "OUT_OF_RANGE")}),
        ({"rating": 4, "expectation": 9}, {("expectation", "OUT_OF_RANGE")}),
    ]:
        payload = (await client.execute(RATE, {"id": ticket["id"], "input": input}))["rateTicket"]
        assert codes(payload) == expected
    seen = await client.execute("query($id: ID!) { ticket(id: $id) { satisfaction { rating } satisfactionHistory { rating } } }",
                                {"id": ticket["id"]})
    assert seen["ticket"] == {"satisfaction": None, "satisfactionHistory": []}
    assert await outbox_count(db) == before


async def test_invalid_status_changes_and_replies(client, db):
    customer = await create_customer(client)
    ticket = await create_ticket(client, customer["id"])
    for status in ("CLOSED",):
        payload = (await client.execute(CHANGE_STATUS, {"id": ticket["id"], "status": status}))["changeTicketStatus"]
        assert codes(payload) == {("status", "INVALID_TRANSITION")}
        assert "NEW ticket cannot become CLOSED" in payload["errors"][0]["message"]
    await reply(client, ticket["id"])  # NEW -> OPEN
    payload = (await client.execute(CHANGE_STATUS, {"id": ticket["id"], "status": "NEW"}))["changeTicketStatus"]
    assert codes(payload) == {("status", "INVALID_TRANSITION")}
    # Asking for the status the ticket has already is not an error and changes nothing.
    same = (await client.mutate(CHANGE_STATUS, {"id": ticket["id"], "status": "OPEN"}))["ticket"]
    current = await get_ticket(client, ticket["id"])
    assert same["version"] == current["version"]

    customer_note = (await client.execute(REPLY, {"id": ticket["id"], "input": {"body": "psst", "public": False, "from": "CUSTOMER"}}))
    assert codes(customer_note["replyToTicket"]) == {("public", "INVALID_VALUE")}
    empty = (await client.execute(REPLY, {"id": ticket["id"], "input": {"body": "  "}}))
    assert codes(empty["replyToTicket"]) == {("body", "REQUIRED")}
    comments = await client.execute("query($id: ID!) { ticket(id: $id) { comments { totalCount } } }", {"id": ticket["id"]})
    assert comments["ticket"]["comments"]["totalCount"] == 1


async def test_unknown_and_malformed_ticket_ids(client):
    customer = await create_customer(client)
    # A well-formed ID of a customer, not a ticket; and an ID that decodes to nothing.
    wrong_type = await client.post(REPLY, {"id": customer["id"], "input": {"body": "Hi"}})
    assert wrong_type["errors"][0]["extensions"]["code"] == "INVALID_ID"
    garbage = await client.post(REPLY, {"id": "%%%", "input": {"body": "Hi"}})
    assert garbage["errors"][0]["extensions"]["code"] == "INVALID_ID"
    ticket = await create_ticket(client, customer["id"])
    missing = ticket["id"]
    from crm_graph.core import ids

    _, pk = ids.decode(missing)
    unknown = ids.encode("Ticket", pk + 1000)
    payload = (await client.execute(ASSIGN, {"id": unknown, "assignee": "kim"}))["assignTicket"]
    assert codes(payload) == {("id", "NOT_FOUND")}


async def test_sla_policies_reject_non_positive_targets_and_invalid_business_hours(client, db):
    before = await outbox_count(db)
    cases = [
        ({"name": "A", "firstResponseMinutes": 0, "resolutionMinutes": -5},
         {("firstResponseMinutes", "OUT_OF_RANGE"), ("resolutionMinutes", "OUT_OF_RANGE")}),
        ({"name": " ", "firstResponseMinutes": 10, "resolutionMinutes": 10}, {("name", "REQUIRED")}),
        ({"name": "B", "firstResponseMinutes": 10, "resolutionMinutes": 10,
          "businessHours": {"timeZone": "Mars/Olympus", "weekdays": ["MONDAY"], "startTime": "09:00", "endTime": "17:00"}},
         {("businessHours.timeZone", "INVALID_TIME_ZONE")}),
        ({"name": "C", "firstResponseMinutes": 10, "resolutionMinutes": 10,
          "businessHours": {"timeZone": "Europe/Paris", "weekdays": [], "startTime": "17:00", "endTime": "09:00"}},
         {("businessHours.weekdays", "REQUIRED"), ("businessHours.endTime", "INVALID_BUSINESS_HOURS")}),
        ({"name": "D", "firstResponseMinutes": 10, "resolutionMinutes": 10, "rank": -1}, {("rank", "OUT_OF_RANGE")}),
    ]
    for input, expected in cases:
        payload = (await client.execute(CREATE_POLICY, {"input": input}))["createSlaPolicy"]
        assert codes(payload) == expected, input
        assert payload["slaPolicy"] is None
    assert (await client.execute("{ slaPolicies { totalCount } }"))["slaPolicies"]["totalCount"] == 0
    assert await outbox_count(db) == before

    await create_policy(client, name="Standard")
    clash = (await client.execute(CREATE_POLICY, {"input": {"name": "standard", "firstResponseMinutes": 5, "resolutionMinutes": 5}}))
    assert codes(clash["createSlaPolicy"]) == {("name", "DUPLICATE")}
