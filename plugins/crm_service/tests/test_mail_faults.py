"""Bad input and faults on the mail side: malformed MIME and a 50 MB attachment still make a
ticket (the attachment listed, not stored), a channel that cannot work is refused field by
field, passwords are never shown, a refused or dropped reply is never sent twice, and the IDLE
watcher takes new mail as it arrives and reconnects after the server went away."""

from __future__ import annotations

import asyncio
import time

from crm_graph.core import ids
from service_support import CREATE_CHANNEL, REPLY, channel, count, customer, mail, read, tickets

MALFORMED = (b"From: Ada <ada@example.com>\r\nTo: help@support.example.com\r\nSubject: =?x-unknown?Q?broken?=\r\n"
             b"Message-ID: <broken.1@client.example.com>\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=\"missing\"\r\n\r\n"
             b"--other\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCaf\xe9 au lait, s'il vous pla\xeet\r\n")


async def test_malformed_mime_and_a_50_mb_attachment_still_make_a_ticket(crm_client, crm_db, crm_settings, dovecot, smtp_sink,
                                                                         monkeypatch):
    monkeypatch.setenv("CRM_SERVICE_MAX_MESSAGE_BYTES", str(100 * 2**20))  # the mail is ~68 MB encoded
    await customer(crm_client, "ada@example.com")
    channel_id, user, address = await channel(crm_client, dovecot, smtp_sink.port)
    dovecot.append(user, MALFORMED)
    big = mail("ada@example.com", address, "Log files", "The logs are attached.")
    big.add_attachment(b"\0" * (50 * 2**20), maintype="application", subtype="octet-stream", filename="../../etc/huge.log")
    big.add_attachment(b"small file", maintype="text", subtype="plain", filename="note.txt")
    dovecot.append(user, big.as_bytes())

    result = await read(crm_db, crm_settings, channel_id)
    assert (result.tickets, result.failed) == (2, 0)
    malformed, logs = await tickets(crm_client)
    assert "Caf" in malformed["description"]  # the broken charset repaired into readable text
    files = {a["filename"]: a for a in logs["messages"][0]["attachments"]}
    assert files["huge.log"]["stored"] is False and files["huge.log"]["size"] == 50 * 2**20 and files["huge.log"]["dropped"]
    assert files["note.txt"]["stored"] is True


async def test_a_mail_over_the_size_limit_makes_a_ticket_from_its_header(crm_client, crm_db, crm_settings, dovecot,
                                                                          smtp_sink, monkeypatch):
    monkeypatch.setenv("CRM_SERVICE_MAX_MESSAGE_BYTES", str(2**20))
    await customer(crm_client, "ada@example.com")
    channel_id, user, address = await channel(crm_client, dovecot, smtp_sink.port)
    big = mail("ada@example.com", address, "Scans", "Two scans attached.")
    big.add_attachment(b"\1" * (2 * 2**20), maintype="image", subtype="tiff", filename="scan.tiff")
    dovecot.append(user, big.as_bytes())
    assert (await read(crm_db, crm_settings, channel_id)).tickets == 1
    (ticket,) = await tickets(crm_client)
    assert ticket["subject"] == "Scans" and "larger than the limit of 1 MB" in ticket["description"]
    assert len(dovecot.list_uids(user, "Processed")) == 1  # kept whole in the mailbox


async def test_a_channel_that_cannot_work_is_refused_field_by_field_and_passwords_never_show(crm_client, crm_client_for):
    answer = await crm_client.post(CREATE_CHANNEL, {"input": {
        "name": " ", "address": "not-an-address", "imapHost": "imap.example.com", "imapPort": 70000, "imapUsername": "u",
        "imapPassword": "", "smtpHost": "smtp.example.com", "smtpPort": 25, "imapTls": "ssl3", "processedFolder": "INBOX"}})
    errors = {(e["field"], e["code"]) for e in answer["data"]["createMailChannel"]["errors"]}
    assert errors == {("name", "REQUIRED"), ("address", "INVALID_EMAIL"), ("imapPort", "INVALID_VALUE"),
                      ("imapPassword", "INVALID_VALUE"), ("imapTls", "INVALID_VALUE"), ("processedFolder", "INVALID_VALUE")}
    good = {"name": "Help", "address": "help@support.example.com", "imapHost": "imap.example.com", "imapPort": 143,
            "imapUsername": "help", "imapPassword": "imap-secret-1", "smtpHost": "smtp.example.com", "smtpPort": 587,
            "smtpUsername": "help", "smtpPassword": "smtp-secret-2"}
    await crm_client.mutate(CREATE_CHANNEL, {"input": good})
    again = await crm_client.post(CREATE_CHANNEL, {"input": good})
    assert [(e["field"], e["code"]) for e in again["data"]["createMailChannel"]["errors"]] == [("name", "DUPLICATE")]
    listed = await crm_client.post("query { mailChannels { id name address imapUsername smtpUsername lastError } }")
    assert "secret" not in str(listed) and listed["data"]["mailChannels"][0]["name"] == "Help"
    support = await crm_client_for("SUPPORT")
    refused = await support.post(CREATE_CHANNEL, {"input": {**good, "name": "Other"}})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_refused_reply_fails_once_and_a_dropped_one_is_never_sent_again(crm_client, crm_db, crm_settings, crm_events,
                                                                               dovecot, smtp_sink):
    await customer(crm_client, "ada@example.com")
    await customer(crm_client, "bob@example.com", first="Bob")
    channel_id, user, address = await channel(crm_client, dovecot, smtp_sink.port)
    dovecot.append(user, mail("ada@example.com", address, "First", "One.").as_bytes())
    dovecot.append(user, mail("bob@example.com", address, "Second", "Two.", name="Bob").as_bytes())
    await read(crm_db, crm_settings, channel_id)
    first, second = await tickets(crm_client)

    smtp_sink.reject("ada@example.com")
    await crm_client.mutate(REPLY, {"id": first["id"], "input": {"body": "Refused answer."}})
    smtp_sink.drop_after_data(1)
    await crm_client.mutate(REPLY, {"id": second["id"], "input": {"body": "Dropped answer."}})
    await crm_events.deliver()
    await crm_events.deliver()  # nothing is retried: both outcomes are final
    assert smtp_sink.messages == [] and len(smtp_sink.dropped) == 1
    statuses = {t["subject"]: [m["status"] for m in t["messages"] if m["direction"] == "OUT"]
                for t in await tickets(crm_client)}
    assert statuses == {"First": ["FAILED"], "Second": ["UNCONFIRMED"]}


async def test_the_watcher_takes_mail_as_it_arrives_and_reconnects(crm_client, crm_db, crm_settings, dovecot, smtp_sink,
                                                                  monkeypatch):
    from crm_service.config import service_settings
    from crm_service.models import MailChannel
    from crm_service.reader import Watchers

    monkeypatch.setenv("CRM_SERVICE_MAX_BACKOFF", "1")
    await customer(crm_client, "ada@example.com")
    channel_id, user, address = await channel(crm_client, dovecot, smtp_sink.port)
    watchers = Watchers(crm_db, crm_settings, service_settings())
    try:
        assert await watchers.sync() == "1 mailboxes watched"
        await asyncio.sleep(0.5)  # connected and in IDLE
        started = time.monotonic()
        dovecot.append(user, mail("ada@example.com", address, "Arrived while idle", "Hello.").as_bytes())
        while not await count(crm_client):
            assert time.monotonic() - started < 10, "the watcher did not take the mail"
            await asyncio.sleep(0.05)

        # The server goes away (a wrong port stands for it), then comes back.
        pk = ids.decode_as(channel_id, "MailChannel")
        async with crm_db.writer() as session, session.begin():
            (await session.get(MailChannel, pk)).imap_port = 1
        old = watchers.tasks[pk]
        old.cancel()
        await asyncio.gather(old, return_exceptions=True)  # stopped, so sync() starts a new watcher
        await watchers.sync()  # restarted: fails to connect, retries every second
        started = time.monotonic()
        while True:
            async with crm_db.reader() as session:
                error = (await session.get(MailChannel, pk)).last_error
            if error is not None:
                break
            assert time.monotonic() - started < 10, "the watcher recorded no error"
            await asyncio.sleep(0.05)
        assert "cannot connect" in error
        async with crm_db.writer() as session, session.begin():
            (await session.get(MailChannel, pk)).imap_port = dovecot.port
        dovecot.append(user, mail("ada@example.com", address, "After the outage", "Still there?").as_bytes())
        started = time.monotonic()
        while await count(crm_client) < 2:
            assert time.monotonic() - started < 10, "the watcher did not reconnect"
            await asyncio.sleep(0.05)
    finally:
        await watchers.aclose()
