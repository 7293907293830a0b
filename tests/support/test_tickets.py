"""Opening, editing and assigning tickets: contacts, external references, versions, events."""

from __future__ import annotations

from tests.support.conftest import (
    ASSIGN,
    CREATE_TICKET,
    create_customer,
    create_policy,
    create_ticket,
    event_types,
    get_ticket,
    reply,
)

UPDATE = """
mutation($id: ID!, $input: UpdateTicketInput!, $v: Int) {
  updateTicket(id: $id, input: $input, expectedVersion: $v) {
    ticket { id subject description priority channel tags version contact { displayName } }
    errors { field code message }
  }
}
"""


async def test_an_organization_ticket_names_its_contact_person(client):
    org = await create_customer(client, kind="ORGANIZATION", organizationName="Northwind Foods")
    buyer = await create_customer(client, firstName="Ada", lastName="Buyer", organizationId=org["id"])
    stranger = await create_customer(client, firstName="Sam", lastName="Stranger")

    ticket = await create_ticket(client, org["id"], contactId=buyer["id"])
    assert ticket["customer"]["displayName"] == "Northwind Foods"
    assert ticket["contact"]["displayName"] == "Ada Buyer"

    wrong = (await client.execute(UPDATE, {"id": ticket["id"], "input": {"contactId": stranger["id"]}}))["updateTicket"]
    assert [(e["field"], e["code"]) for e in wrong["errors"]] == [("contactId", "INVALID_VALUE")]
    cleared = (await client.mutate(UPDATE, {"id": ticket["id"], "input": {"contactId": None}}))["ticket"]
    assert cleared["contact"] is None

    # A customer reply on an organization's ticket is signed by its contact person.
    await client.mutate(UPDATE, {"id": ticket["id"], "input": {"contactId": buyer["id"]}})
    answer = await reply(client, ticket["id"], "Any news?", **{"from": "CUSTOMER"})
    assert answer["comment"]["author"] == "Ada Buyer"


async def test_the_same_external_reference_never_makes_two_tickets(client, db):
    customer = await create_customer(client)
    input = {"customerId": customer["id"], "subject": "Printer on fire", "channel": "EMAIL",
             "externalRefs": [{"system": "zendesk", "externalId": "4711"}]}
    first = (await client.mutate(CREATE_TICKET, {"input": input}))["ticket"]
    again = (await client.mutate(CREATE_TICKET, {"input": {**input, "subject": "Printer on fire (resent)"}}))["ticket"]
    assert again["id"] == first["id"] and again["subject"] == "Printer on fire"
    assert first["externalRefs"] == [{"system": "zendesk", "externalId": "4711"}]

    # The same external id in another system is another ticket.
    other = (await client.mutate(CREATE_TICKET, {"input": {**input, "externalRefs": [{"system": "freshdesk", "externalId": "4711"}]}}))
    assert other["ticket"]["id"] != first["id"]
    # References that point at two different tickets cannot describe one new ticket.
    mixed = (await client.execute(CREATE_TICKET, {"input": {**input, "externalRefs": [
        {"system": "zendesk", "externalId": "4711"}, {"system": "freshdesk", "externalId": "4711"}]}}))["createTicket"]
    assert [(e["field"], e["code"]) for e in mixed["errors"]] == [("externalRefs", "DUPLICATE")]
    assert (await client.execute("{ tickets { totalCount } }"))["tickets"]["totalCount"] == 2
    assert (await event_types(db)).count("ticket.created") == 2


async def test_edits_check_the_version_and_keep_the_sla_targets(client, db, clock):
    await create_policy(client, name="Urgent", priorities=["URGENT"], firstResponseMinutes=15, resolutionMinutes=60, rank=1)
    await create_policy(client, name="Default", firstResponseMinutes=480, resolutionMinutes=2400)
    customer = await create_customer(client)
    ticket = await create_ticket(client, customer["id"], priority="LOW", tags=["billing"])
    assert ticket["sla"]["policy"]["name"] == "Default"

    edited = (await client.mutate(UPDATE, {"id": ticket["id"], "v": ticket["version"],
                                           "input": {"subject": "Invoice 42 is wrong", "priority": "URGENT",
                                                     "tags": ["Billing", "vip"], "description": "Charged twice"}}))["ticket"]
    assert edited["version"] == ticket["version"] + 1
    assert (edited["subject"], edited["priority"], edited["tags"]) == ("Invoice 42 is wrong", "URGENT", ["billing", "vip"])

    stale = (await client.execute(UPDATE, {"id": ticket["id"], "v": ticket["version"], "input": {"subject": "Lost update"}}))
    assert [(e["field"], e["code"]) for e in stale["updateTicket"]["errors"]] == [("expectedVersion", "VERSION_CONFLICT")]
    stale_assign = (await client.execute(ASSIGN, {"id": ticket["id"], "assignee": "kim", "v": ticket["version"]}))
    assert [e["code"] for e in stale_assign["assignTicket"]["errors"]] == ["VERSION_CONFLICT"]
    current = await get_ticket(client, ticket["id"])
    assert current["subject"] == "Invoice 42 is wrong" and current["assignee"] is None
    # The targets are the promise made at opening: a later priority change does not move them.
    assert current["sla"] == ticket["sla"]

    assigned = (await client.mutate(ASSIGN, {"id": ticket["id"], "assignee": " kim@example.com ", "v": current["version"]}))["ticket"]
    assert assigned["assignee"] == "kim@example.com"
    again = (await client.mutate(ASSIGN, {"id": ticket["id"], "assignee": "kim@example.com"}))["ticket"]
    assert again["version"] == assigned["version"]  # nothing changed, nothing written
    unassigned = (await client.mutate(ASSIGN, {"id": ticket["id"], "assignee": None}))["ticket"]
    assert unassigned["assignee"] is None
    assert await event_types(db) == ["ticket.created", "ticket.updated", "ticket.assigned", "ticket.assigned"]
