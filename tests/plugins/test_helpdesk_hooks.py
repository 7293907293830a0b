"""``crm_helpdesk_connectors``, as a partner uses it beside the customer-service plugin
(plugins/crm_service): a partner's connector (its helpdesk kept in the test process: the
partner's program) gets the CRM's tickets once each, with their replies and the customer card;
its own tickets, replies and resolutions come back; a bad config is refused field by field; two
connectors of one name stop start-up. The built-in Request Tracker connector is tested against a
real RT in plugins/crm_service/tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest

from crm_graph import hookimpl
from crm_graph.core.helpdesk import CustomerCard, HelpdeskError, RemoteMessage, RemoteTicket, TicketDraft
from crm_graph.plugins import PluginError, make_plugin_manager

CUSTOMER = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } errors { code } } }"
TICKET = "mutation($i: CreateTicketInput!) { createTicket(input: $i) { ticket { id number } errors { code } } }"
REPLY = "mutation($id: ID!, $i: ReplyToTicketInput!) { replyToTicket(id: $id, input: $i) { ticket { id } errors { code } } }"
CONNECT = """mutation($i: CreateHelpdeskConnectionInput!) { createHelpdeskConnection(input: $i) {
  helpdeskConnection { id connector config } errors { field code message } } }"""
SYNC = "mutation($id: ID!) { syncHelpdeskConnection(id: $id) { ticketsCreated messages statusChanges errors { message } } }"
SHOW = """query($id: ID!) { node(id: $id) { ... on Ticket { status externalRefs { system externalId }
  comments(first: 10) { edges { node { body authorKind } } } } } }"""


@dataclass
class Desk:
    """The partner's helpdesk: its tickets and their messages, by id."""

    tickets: dict[str, RemoteTicket] = field(default_factory=dict)
    messages: dict[str, list[RemoteMessage]] = field(default_factory=dict)
    cards: dict[str, CustomerCard] = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(100))

    def open(self, subject: str, email: str) -> str:
        remote_id = str(next(self.ids))
        self.tickets[remote_id] = RemoteTicket(remote_id, subject, "NEW", "NORMAL", email, updated_at=datetime.now(UTC))
        self.messages[remote_id] = []
        return remote_id

    def write(self, remote_id: str, body: str, *, from_customer: bool, reference: str | None = None) -> str:
        message = RemoteMessage(f"m{next(self.ids)}", remote_id, True, body, "desk", from_customer, datetime.now(UTC),
                                reference=reference)
        self.messages[remote_id].append(message)
        return message.remote_id


class DeskClient:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def find_ticket(self, reference):  # noqa: ANN001, ANN201
        return next((t for t in self.desk.tickets.values() if t.reference == reference), None)

    async def create_ticket(self, draft: TicketDraft) -> RemoteTicket:
        found = await self.find_ticket(draft.reference)
        if found is not None:
            return found
        remote_id = self.desk.open(draft.subject, draft.requester_email or "")
        self.desk.tickets[remote_id] = replace(self.desk.tickets[remote_id], reference=draft.reference,
                                               status=draft.status, priority=draft.priority)
        return self.desk.tickets[remote_id]

    async def get_ticket(self, remote_id):  # noqa: ANN001, ANN201
        return self.desk.tickets[remote_id]

    async def update_ticket(self, remote_id, *, status=None, priority=None):  # noqa: ANN001, ANN201
        ticket = self.desk.tickets[remote_id]
        self.desk.tickets[remote_id] = replace(ticket, status=status or ticket.status, priority=priority or ticket.priority)
        return self.desk.tickets[remote_id]

    async def add_message(self, remote_id, *, public, body, reference, author=None):  # noqa: ANN001, ANN201
        known = next((m for m in self.desk.messages[remote_id] if m.reference == reference), None)
        return known.remote_id if known else self.desk.write(remote_id, body, from_customer=False, reference=reference)

    async def messages(self, remote_id):  # noqa: ANN001, ANN201
        return list(self.desk.messages[remote_id])

    async def changed_since(self, since):  # noqa: ANN001, ANN201
        return list(self.desk.tickets.values())

    async def push_customer(self, remote_id, card):  # noqa: ANN001, ANN201
        self.desk.cards[remote_id] = card

    async def aclose(self) -> None:
        return None


class DeskConnector:
    name, description, secret_keys = "desk", "The partner's helpdesk", frozenset({"token"})

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def check_config(self, config):  # noqa: ANN001, ANN201
        return [] if str(config.get("url", "")).startswith("https://") else [("url", "an https:// URL")]

    def connect(self, config, secrets):  # noqa: ANN001, ANN201
        if secrets.get("token") != "desk-token":
            raise HelpdeskError("the desk refused the token", retry=False)
        return DeskClient(self.desk)


class Partner:
    def __init__(self) -> None:
        self.desk = Desk()

    @hookimpl
    def crm_helpdesk_connectors(self):  # noqa: ANN201
        return DeskConnector(self.desk)


async def test_hook_crm_helpdesk_connectors_a_partners_connector_syncs_tickets_both_ways(server_factory):
    partner = Partner()
    server = await server_factory(partner, entry_points=True)
    client = server.client
    refused = await client.post(CONNECT, {"i": {"name": "Desk", "connector": "desk", "config": {"url": "ftp://x"}}})
    assert [(e["field"], e["code"]) for e in refused["data"]["createHelpdeskConnection"]["errors"]] == [("config.url", "INVALID_VALUE")]
    unknown = await client.post(CONNECT, {"i": {"name": "Desk", "connector": "nope", "config": {}}})
    assert "desk" in unknown["data"]["createHelpdeskConnection"]["errors"][0]["message"]  # the loaded ones are named
    made = await client.mutate(CONNECT, {"i": {"name": "Desk", "connector": "desk",
                                               "config": {"url": "https://desk.example.com", "token": "desk-token"}}})
    assert made["helpdeskConnection"]["config"] == {"url": "https://desk.example.com"}  # the token is kept, not shown
    conn = made["helpdeskConnection"]["id"]

    customer = (await client.mutate(CUSTOMER, {"i": {"kind": "PERSON", "firstName": "Ada", "lastName": "Lovelace",
                                                     "emails": [{"address": "ada@example.com"}]}}))["customer"]["id"]
    ticket = (await client.mutate(TICKET, {"i": {"customerId": customer, "subject": "Broken", "channel": "WEB"}}))["ticket"]
    await client.mutate(REPLY, {"id": ticket["id"], "i": {"body": "We are on it."}})
    await server.drain()
    await server.drain()
    (remote,) = [t for t in partner.desk.tickets.values() if t.reference == ticket["number"]]
    assert [m.body for m in partner.desk.messages[remote.remote_id]] == ["We are on it."]  # once
    assert partner.desk.cards[remote.remote_id].name == "Ada Lovelace"

    partner.desk.write(remote.remote_id, "Thanks, that fixed it.", from_customer=True)
    partner.desk.tickets[remote.remote_id] = replace(partner.desk.tickets[remote.remote_id], status="RESOLVED")
    own = partner.desk.open("Asked at the desk", "ada@example.com")
    partner.desk.write(own, "A question asked at the desk.", from_customer=True)
    result = await client.mutate(SYNC, {"id": conn})
    assert (result["ticketsCreated"], result["messages"], result["errors"]) == (1, 1, [])
    shown = (await client.execute(SHOW, {"id": ticket["id"]}))["node"]
    assert shown["status"] == "RESOLVED"
    assert [(c["node"]["body"], c["node"]["authorKind"]) for c in shown["comments"]["edges"]] == [
        ("We are on it.", "AGENT"), ("Thanks, that fixed it.", "CUSTOMER")]
    assert (await client.mutate(SYNC, {"id": conn}))["messages"] == 0  # read again: nothing twice


def test_hook_crm_helpdesk_connectors_two_of_one_name_stop_start_up(settings):
    from crm_service.helpdesk.sync import connectors_of

    class Twin:
        @hookimpl
        def crm_helpdesk_connectors(self):  # noqa: ANN201
            return DeskConnector(Desk())

    pm = make_plugin_manager(settings, plugins=[Partner(), Twin()], entry_points=False)
    with pytest.raises(PluginError, match="helpdesk connector 'desk'"):
        connectors_of(pm)
