"""Two-way sync with a real Request Tracker 5 on loopback (``rt``, once per run): a ticket made
in RT through its mail gateway appears in the CRM with its customer, a CRM reply appears in RT,
resolving in RT resolves in the CRM, a CRM ticket reaches RT once with the customer card, and a
helpdesk that answers 500 or drops the answer after doing the work leaves no duplicate."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from email.message import EmailMessage
from typing import Any

import httpx

from crm_graph.core import ids
from crm_graph.core.helpdesk import HelpdeskError
from crm_service.config import service_settings
from crm_service.helpdesk import sync
from service_support import REPLY, customer, tickets

CREATE = """
mutation($input: CreateHelpdeskConnectionInput!) {
  createHelpdeskConnection(input: $input) { helpdeskConnection { id name connector config } errors { field code message } }
}
"""
SYNC = """
mutation($id: ID!) { syncHelpdeskConnection(id: $id) { ticketsSeen ticketsCreated messages statusChanges
  errors { field code message } } }
"""
CREATE_TICKET = """
mutation($input: CreateTicketInput!) { createTicket(input: $input) { ticket { id number } errors { field code message } } }
"""
STATUS = """
mutation($id: ID!, $s: TicketStatus!) { changeTicketStatus(id: $id, status: $s) { ticket { status } errors { field code message } } }
"""
REFS = "query($id: ID!) { node(id: $id) { ... on Ticket { status externalRefs { system externalId } } } }"

_names = itertools.count(1)


async def connection(client: Any, rt: Any, **config: Any) -> tuple[str, str]:
    data = await client.mutate(CREATE, {"input": {"name": f"RT {next(_names)} {uuid.uuid4().hex[:6]}", "connector": "rt",
                                                  "config": {**rt.config(), **rt.secrets, **config,
                                                             # each test's database numbers tickets from 1 again
                                                             "referencePrefix": f"test{uuid.uuid4().hex[:8]}/"}}})
    made = data["helpdeskConnection"]
    assert "password" not in made["config"]
    return made["id"], made["config"]["referencePrefix"]


def rt_mail(sender: str, subject: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Ada Lovelace <{sender}>"
    msg["To"] = "support@crm.test"
    msg["Subject"] = subject
    msg.set_content(body)
    return msg.as_bytes()


def rt_count(rt: Any, number: str) -> int:
    """How many RT tickets carry the CRM ticket number ``number`` (a TicketSQL search)."""
    found = rt.rest("GET", "tickets", params={"query": f"'CF.{{CRM Reference}}' = '{number}'", "per_page": 20})
    return int(found["count"])


async def contents(rt: Any, remote_id: str) -> list[str]:
    """The text of every reply and comment of an RT ticket, read as an RT agent would."""
    from crm_service.helpdesk.rt import RequestTracker

    client = RequestTracker().connect(rt.config(), rt.secrets)
    try:
        return [m.body for m in await client.messages(remote_id)]
    finally:
        await client.aclose()


async def test_a_ticket_made_in_rt_by_mail_appears_in_the_crm_and_a_crm_reply_appears_in_rt(crm_client, crm_events, rt):
    ada = await customer(crm_client, f"ada.{uuid.uuid4().hex[:6]}@example.com")
    email = (await crm_client.execute("query($id: ID!) { node(id: $id) { ... on Customer { emails { address } } } }",
                                      {"id": ada}))["node"]["emails"][0]["address"]
    conn, _ = await connection(crm_client, rt)
    remote = rt.mail_in(rt_mail(email, "Cannot log in", "My password is refused since this morning."))

    first = await crm_client.mutate(SYNC, {"id": conn})
    # RT's other tickets (of other tests) come along too: a new connection reads RT's history.
    assert first["ticketsCreated"] >= 1 and first["errors"] == [], first
    (ticket,) = await tickets(crm_client, "Cannot log in")
    assert ticket["customer"]["id"] == ada and "password is refused" in ticket["description"]
    refs = (await crm_client.execute(REFS, {"id": ticket["id"]}))["node"]["externalRefs"]
    assert [r["externalId"] for r in refs] == [str(remote)]
    assert (await crm_client.mutate(SYNC, {"id": conn}))["ticketsCreated"] == 0  # seen again: nothing new

    await crm_events.deliver()  # the new ticket's event pushes the customer card
    await crm_client.mutate(REPLY, {"id": ticket["id"], "input": {"body": "Your password was reset; try again."}})
    await crm_events.deliver()
    await crm_events.deliver()
    assert sum("Your password was reset" in c for c in await contents(rt, str(remote))) == 1

    # The customer answers by mail to RT; an RT agent resolves it.
    rt.mail_in(rt_mail(email, f"[crm-test #{remote}] Re: Cannot log in", "It works now, thank you!"))
    rt.rest("PUT", f"ticket/{remote}", json={"Status": "resolved"})
    result = await crm_client.mutate(SYNC, {"id": conn})
    assert result["errors"] == [] and result["messages"] == 1
    assert (await crm_client.execute(REFS, {"id": ticket["id"]}))["node"]["status"] == "RESOLVED"
    (ticket,) = await tickets(crm_client, "Cannot log in")
    comments = [e["node"] for e in ticket["comments"]["edges"]]
    assert [(c["body"], c["authorKind"]) for c in comments] == [
        ("Your password was reset; try again.", "AGENT"), ("It works now, thank you!", "CUSTOMER")]
    await crm_events.deliver()  # the CRM's own echo of the change sends nothing back twice
    assert sum("Your password was reset" in c for c in await contents(rt, str(remote))) == 1


async def test_a_crm_ticket_reaches_rt_once_with_its_status_and_the_customer_card(crm_client, crm_events, rt):
    ada = await customer(crm_client, f"card.{uuid.uuid4().hex[:6]}@example.com", first="Card")
    conn, prefix = await connection(crm_client, rt)
    made = await crm_client.mutate(CREATE_TICKET, {"input": {"customerId": ada, "subject": "Delivery late",
                                                             "channel": "PHONE", "priority": "HIGH"}})
    ticket_id = made["ticket"]["id"]
    await crm_events.deliver()
    await crm_events.deliver()
    refs = (await crm_client.execute(REFS, {"id": ticket_id}))["node"]["externalRefs"]
    (remote,) = [r["externalId"] for r in refs]
    assert rt_count(rt, prefix + made["ticket"]["number"]) == 1
    shown = rt.rest("GET", f"ticket/{remote}")
    assert shown["Subject"] == "Delivery late" and int(shown["Priority"]) == 80
    card = next((cf for cf in shown.get("CustomFields", []) if cf.get("name") == "CRM Customer"), None)
    assert card is not None and "Card" in " ".join(card.get("values", []))

    await crm_client.mutate(STATUS, {"id": ticket_id, "s": "PENDING"})
    await crm_events.deliver()
    assert rt.rest("GET", f"ticket/{remote}")["Status"] == "stalled"
    await crm_client.mutate(SYNC, {"id": conn})  # reading its own change back changes nothing
    assert (await crm_client.execute(REFS, {"id": ticket_id}))["node"]["status"] == "PENDING"


class FaultyProxy:
    """An HTTP proxy to RT that answers 500 to the first ``fail`` requests matching ``what``, or
    forwards them and then drops the connection without the answer (``drop``): the remote did
    the work, the client cannot know."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.fail: int = 0
        self.drop: int = 0
        self.what = ("POST", "/REST/2.0/ticket")
        self.server: asyncio.AbstractServer | None = None
        self.url = ""

    async def __aenter__(self) -> FaultyProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        self.http = httpx.AsyncClient(timeout=60)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.http.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
            body = await reader.readexactly(length) if length else b""
            matches = (method, target.split("?")[0]) == self.what
            if matches and self.fail:
                self.fail -= 1
                writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            keep = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type", "accept")}
            answer = await self.http.request(method, self.upstream + target, content=body, headers=keep)
            if matches and self.drop:
                self.drop -= 1
                return  # the work is done in RT; the answer never comes
            writer.write(f"HTTP/1.1 {answer.status_code} X\r\nContent-Type: {answer.headers.get('content-type', 'text/plain')}"
                         f"\r\nContent-Length: {len(answer.content)}\r\nConnection: close\r\n\r\n".encode() + answer.content)
        finally:
            await writer.drain()
            writer.close()


async def test_a_helpdesk_answering_500_or_dropping_its_answer_leaves_no_duplicate(crm_client, crm_db, crm_settings,
                                                                                  crm_plugins, rt):
    ada = await customer(crm_client, f"fault.{uuid.uuid4().hex[:6]}@example.com")
    async with FaultyProxy(rt.url) as proxy:
        conn, prefix = await connection(crm_client, rt, url=proxy.url)
        made = await crm_client.mutate(CREATE_TICKET, {"input": {"customerId": ada, "subject": "Flaky helpdesk",
                                                                 "channel": "WEB"}})
        ticket_pk = ids.decode_as(made["ticket"]["id"], "Ticket")
        conn_pk = ids.decode_as(conn, "HelpdeskConnection")
        push = lambda: sync.push_ticket(crm_db, crm_settings, service_settings(), crm_plugins, conn_pk, ticket_pk)  # noqa: E731

        proxy.fail = 1
        try:
            await push()
            raise AssertionError("a 500 must fail the push")
        except HelpdeskError as exc:
            assert exc.retry and "secret" not in exc.message
        proxy.drop = 1
        try:
            await push()
            raise AssertionError("a lost answer must fail the push")
        except HelpdeskError as exc:
            assert exc.retry
        await push()  # the retry finds the ticket the lost answer made
        await push()
    assert rt_count(rt, prefix + made["ticket"]["number"]) == 1
