"""Support mail against a real dovecot (IMAP) and an SMTP sink on loopback: a new mail opens a
ticket for the right customer, answers thread onto it by their headers alone and by the subject
alone, auto-replies and bounces make nothing, an agent's reply goes out threaded, and a
connection cut in the middle of a batch loses nothing and doubles nothing."""

from __future__ import annotations

import asyncio

import pytest

from crm_graph.mail.imap import MailboxError
from service_support import INBOUND, REPLY, channel, customer, mail, read, tickets

DSN = b"""From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: help@support.example.com
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
Message-ID: <dsn.1@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

This is the mail system. Your message could not be delivered.
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; gone@example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 no such user

--B--
"""


async def test_a_new_mail_opens_a_ticket_for_the_customer_who_wrote(crm_client, crm_db, crm_settings, dovecot, smtp_sink):
    ada = await customer(crm_client, "ada@example.com")
    channel_id, user, address = await channel(crm_client, dovecot, smtp_sink.port)
    dovecot.append(user, mail("ADA@Example.com", address, "Printer on fire", "Hello,\nthe printer is on fire.\n").as_bytes())

    result = await read(crm_db, crm_settings, channel_id)
    assert (result.read, result.tickets) == (1, 1)
    (ticket,) = await tickets(crm_client)
    assert ticket["customer"]["id"] == ada  # matched by the normalised address
    assert (ticket["subject"], ticket["channel"], ticket["status"]) == ("Printer on fire", "EMAIL", "NEW")
    assert "the printer is on fire" in ticket["description"]
    (message,) = ticket["messages"]
    assert (message["direction"], message["fromAddress"], message["subject"]) == ("IN", "ada@example.com", "Printer on fire")
    assert dovecot.list_uids(user, "INBOX") == [] and len(dovecot.list_uids(user, "Processed")) == 1

    again = await read(crm_db, crm_settings, channel_id)  # nothing new: nothing happens
    assert again.read == 0 and len(await tickets(crm_client)) == 1


async def test_answers_thread_by_headers_alone_and_by_subject_alone(crm_client, crm_db, crm_settings, crm_events,
                                                                    dovecot, smtp_sink):
    await customer(crm_client, "ada@example.com")
    channel_id, user, address = await channel(crm_client, dovecot, smtp_sink.port)
    first = mail("ada@example.com", address, "Invoice 42 is wrong", "The total is off by 10.")
    dovecot.append(user, first.as_bytes())
    await read(crm_db, crm_settings, channel_id)
    (ticket,) = await tickets(crm_client)

    replied = await crm_client.mutate(REPLY, {"id": ticket["id"], "input": {"body": "Thanks, we are looking into it."}})
    assert replied["ticket"]["status"] == "OPEN"
    sla = (await crm_client.execute("query($id: ID!) { node(id: $id) { ... on Ticket { sla { firstRespondedAt } } } }",
                                    {"id": ticket["id"]}))["node"]["sla"]
    assert sla["firstRespondedAt"] is not None  # the first public reply stops the first-response clock
    await crm_events.deliver()
    (sent,) = await smtp_sink.wait_for(1)
    ours = sent.message
    assert sent.rcpt_tos == ("ada@example.com",) and address in ours["From"]
    assert ours["In-Reply-To"] == first["Message-ID"] and first["Message-ID"] in ours["References"]
    assert f"[{ticket['number']}]" in ours["Subject"] and ours["Message-ID"].startswith("<crm.ticket.")

    # By headers only: a new subject, no ticket number, but In-Reply-To our answer.
    dovecot.append(user, mail("ada@example.com", address, "something else entirely", "Any news?",
                              in_reply_to=ours["Message-ID"], references=[ours["Message-ID"]]).as_bytes())
    # By subject only: the ticket number, no threading headers.
    dovecot.append(user, mail("ada@example.com", address, f"More about [{ticket['number']}]", "Here is a photo.").as_bytes())
    # A new subject from the same sender is a new ticket; another sender naming the number is too.
    dovecot.append(user, mail("ada@example.com", address, "A different problem", "The scanner is broken.").as_bytes())
    dovecot.append(user, mail("eve@example.com", address, f"Re: [{ticket['number']}]", "Let me in.", name="Eve").as_bytes())
    result = await read(crm_db, crm_settings, channel_id)
    assert (result.comments, result.tickets) == (2, 2)

    found = await tickets(crm_client)
    assert [t["subject"] for t in found] == ["Invoice 42 is wrong", "A different problem", f"Re: [{ticket['number']}]"]
    thread = found[0]
    bodies = [c["body"] for c in (e["node"] for e in thread["comments"]["edges"])]
    assert bodies == ["Thanks, we are looking into it.", "Any news?", "Here is a photo."]
    assert [m["direction"] for m in thread["messages"]] == ["IN", "OUT", "IN", "IN"]
    assert found[2]["customer"]["source"] == "EMAIL"  # the unknown sender became a customer


async def test_auto_replies_bounces_and_our_own_mail_make_nothing_and_answer_nothing(crm_client, crm_db, crm_settings,
                                                                                   crm_events, dovecot, smtp_sink):
    await customer(crm_client, "ada@example.com")
    channel_id, user, address = await channel(crm_client, dovecot, smtp_sink.port)
    dovecot.append(user, mail("ada@example.com", address, "Out of office", "I am away until Monday.",
                              headers={"Auto-Submitted": "auto-replied"}).as_bytes())
    dovecot.append(user, mail("ada@example.com", address, "Re: your mail", "Away.", headers={"Precedence": "auto_reply"}).as_bytes())
    dovecot.append(user, DSN.replace(b"\n", b"\r\n"))
    own = mail(address, "ada@example.com", "Re: x [T-000001]", "Our answer, looped back.")
    dovecot.append(user, own.as_bytes())

    result = await read(crm_db, crm_settings, channel_id)
    assert (result.read, result.tickets, result.comments, result.ignored) == (4, 0, 0, 4)
    assert await tickets(crm_client) == []
    outcomes = sorted(m["outcome"] for m in (await crm_client.execute(INBOUND, {}))["inboundMails"])
    assert outcomes == ["AUTO_REPLY", "AUTO_REPLY", "BOUNCE", "OWN"]
    await crm_events.deliver()
    assert smtp_sink.messages == []  # no answer to an auto-responder: no loop


async def test_a_flood_from_one_sender_stops_at_the_limit(crm_client, crm_db, crm_settings, dovecot, smtp_sink, monkeypatch):
    monkeypatch.setenv("CRM_SERVICE_FLOOD_LIMIT", "3")
    channel_id, user, address = await channel(crm_client, dovecot, smtp_sink.port)
    for i in range(5):
        dovecot.append(user, mail("robot@example.com", address, f"Alert {i}", "disk full", name="Robot").as_bytes())
    result = await read(crm_db, crm_settings, channel_id)
    assert (result.tickets, result.ignored) == (3, 2)
    assert sorted(m["outcome"] for m in (await crm_client.execute(INBOUND, {}))["inboundMails"]) == \
        ["FLOOD", "FLOOD", "TICKET", "TICKET", "TICKET"]


class CuttingProxy:
    """A TCP proxy to dovecot that drops both connections once ``limit`` bytes came back from the
    server: an IMAP server that goes away in the middle of a batch."""

    def __init__(self, target_port: int, limit: int) -> None:
        self.target_port, self.limit = target_port, limit
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def __aenter__(self) -> CuttingProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        sent = 0

        async def upstream() -> None:
            while data := await reader.read(65536):
                up_writer.write(data)
                await up_writer.drain()

        async def downstream() -> None:
            nonlocal sent
            while data := await up_reader.read(65536):
                room = self.limit - sent
                writer.write(data[:max(room, 0)])
                await writer.drain()
                sent += len(data)
                if sent >= self.limit:
                    return

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        writer.close()
        up_writer.close()


@pytest.mark.parametrize("cut_after", [2500, 6000, 9000])
async def test_a_connection_cut_mid_batch_then_reconnecting_takes_every_mail_once(crm_client, crm_db, crm_settings,
                                                                                   dovecot, smtp_sink, cut_after):
    from crm_graph.core import ids
    from crm_service.config import service_settings
    from crm_service.models import MailChannel
    from crm_service.reader import read_channel

    await customer(crm_client, "ada@example.com")
    channel_id, user, address = await channel(crm_client, dovecot, smtp_sink.port)
    for i in range(8):
        dovecot.append(user, mail("ada@example.com", address, f"Question {i}", f"Question number {i}. " + "x" * 900).as_bytes())
    pk = ids.decode_as(channel_id, "MailChannel")

    async with CuttingProxy(dovecot.port, cut_after) as proxy:
        async with crm_db.writer() as session, session.begin():
            (await session.get(MailChannel, pk)).imap_port = proxy.port
        with pytest.raises(MailboxError):
            await read_channel(crm_db, crm_settings, service_settings(), pk)
    partial = len(await tickets(crm_client))
    assert partial < 8  # the cut came before the end

    async with crm_db.writer() as session, session.begin():
        (await session.get(MailChannel, pk)).imap_port = dovecot.port
    await read_channel(crm_db, crm_settings, service_settings(), pk)
    found = await tickets(crm_client)
    assert sorted(t["subject"] for t in found) == [f"Question {i}" for i in range(8)]  # each once
    assert dovecot.list_uids(user, "INBOX") == [] and len(dovecot.list_uids(user, "Processed")) == 8


async def test_an_unknown_sender_waits_in_the_queue_when_the_channel_says_so(crm_client, crm_db, crm_settings, dovecot,
                                                                           smtp_sink):
    ada = await customer(crm_client, "ada@example.com")
    channel_id, user, address = await channel(crm_client, dovecot, smtp_sink.port, unknownSenders="QUEUE")
    dovecot.append(user, mail("stranger@example.org", address, "Who are you?", "Please call me.", name="Stranger").as_bytes())
    result = await read(crm_db, crm_settings, channel_id)
    assert (result.queued, result.tickets) == (1, 0)
    (queued,) = (await crm_client.execute(INBOUND, {"o": "QUEUED"}))["inboundMails"]
    assert queued["fromAddress"] == "stranger@example.org" and queued["ticketId"] is None
    assigned = await crm_client.mutate(
        "mutation($id: ID!, $c: ID!) { assignInboundMail(id: $id, customerId: $c) { ticketId errors { field code message } } }",
        {"id": queued["id"], "c": ada})
    (ticket,) = await tickets(crm_client)
    assert ticket["id"] == assigned["ticketId"] and ticket["customer"]["id"] == ada
    assert (await crm_client.execute(INBOUND, {"o": "QUEUED"}))["inboundMails"] == []
