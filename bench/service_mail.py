"""Support mail: mails taken per second by one pass over a mailbox (``crm-graph mail poll``)
against fetching the same mails with the IMAP client alone (the floor), and the time from a
mail's arrival in the mailbox to its ticket with the IDLE watcher running; all in one run, on a
real dovecot on loopback.

    .venv/bin/python bench/service_mail.py [--mails 500] [--arrivals 20] [--postgresql]

Appends --mails customer mails (half from known customers, half from new addresses; one in four
a reply to an earlier one by its headers) and times the pass: per mail the fetch, MIME parsing,
quote stripping and HTML sanitising, the thread lookup, the ticket or comment with its events
and the committed checkpoint, and the move to the processed folder. Then --arrivals single mails
are appended one at a time while the watcher idles, each timed until its ticket is committed.
Prints the figures and the ratio; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from bench.common import api_client  # noqa: E402
from crm_graph.mail.imap import Mailbox, MailboxAccount  # noqa: E402
from crm_graph.testing.mailservers import DovecotServer  # noqa: E402


def sender_of(i: int) -> str:
    return f"known{i % 50}@example.com" if i % 2 == 0 else f"new{i}@example.org"


def message(i: int, to: str, reply_to: str | None) -> tuple[bytes, str]:
    """Mail ``i``; with ``reply_to``, an answer by the same sender to mail ``i - 1``."""
    msg = EmailMessage()
    sender = sender_of(i - 1 if reply_to else i)
    msg["From"] = f"Customer {i} <{sender}>"
    msg["To"] = to
    msg["Subject"] = f"Question {i}" if reply_to is None else f"Re: Question {i - 1}"
    msg["Message-ID"] = msgid = make_msgid(domain="client.example.com")
    if reply_to:
        msg["In-Reply-To"] = reply_to
        msg["References"] = reply_to
    body = f"Hello,\n\nmy order {i} has not arrived yet. Can you check?\n\nThanks,\nCustomer {i}\n"
    if reply_to:
        body = "Any news?\n\nOn Monday, Support wrote:\n> We are looking into it.\n> Kind regards\n"
    msg.set_content(body)
    msg.add_alternative(f"<html><body><p>{body.replace(chr(10), '<br>')}</p><script>x()</script></body></html>",
                        subtype="html")
    return msg.as_bytes(), msgid


async def push_alone(dovecot: DovecotServer, user: str, password: str, count: int) -> list[float]:
    """The IMAP server's side of the latency: from APPEND to the IDLE push, nothing processed."""
    out = []
    async with Mailbox(MailboxAccount(dovecot.host, dovecot.port, user, password)) as box:
        for i in range(count):
            waiter = asyncio.create_task(box.wait_for_mail(30))
            await asyncio.sleep(0.2)
            start = time.perf_counter()
            await asyncio.to_thread(dovecot.append, user, message(20_000 + i, "x@example.com", None)[0])
            await waiter
            out.append((time.perf_counter() - start) * 1000)
    return out


async def sql_floor(db: object, count: int) -> float:
    """Plain SQL: per mail, one transaction inserting its inbound row and its message row (no
    parsing, no ticket, no customer, no events): the least a mail costs the database."""
    rows = [(f"<floor{i}@bench>", f"Question {i}") for i in range(count)]
    start = time.perf_counter()
    for msgid, subject in rows:
        async with db.writer() as session, session.begin():  # type: ignore[attr-defined]
            await session.execute(sa.text(
                "INSERT INTO crm_service_inbound_mails (channel_id, dedupe_key, subject, outcome, received_at) "
                "VALUES (1, :k, :s, 'TICKET', CURRENT_TIMESTAMP)"), {"k": msgid, "s": subject})
            await session.execute(sa.text(
                "INSERT INTO crm_service_ticket_messages (ticket_id, direction, status, message_id, \"references\", "
                "\"to\", cc, subject, text, headers, attempts, created_at) VALUES (1, 'IN', 'RECEIVED', :k, '[]', "
                "'[]', '[]', :s, 'text', '{}', 0, CURRENT_TIMESTAMP)"), {"k": msgid, "s": subject})
    return time.perf_counter() - start


async def floor(account: MailboxAccount) -> tuple[int, float]:
    """The IMAP client alone: list, then fetch every mail of the folder one at a time."""
    start = time.perf_counter()
    async with Mailbox(account) as box:
        uids = await box.uids()
        for uid in uids:
            await box.fetch(uid)
    return len(uids), time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=500)
    parser.add_argument("--arrivals", type=int, default=20)
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args()

    dovecot = DovecotServer().start()
    try:
        user, password = dovecot.new_user("bench")
        floor_user, _ = dovecot.new_user("floor")
        async with api_client("service", args.postgresql) as (app, client):
            from crm_service.config import service_settings
            from crm_service.reader import Watchers, read_channel
            from crm_graph.support.models import Ticket

            for first in range(0, 50, 25):
                await client.mutate("mutation($i: [CreateCustomerInput!]!) { createCustomers(inputs: $i) { createdCount errors { code } } }",
                                    {"i": [{"kind": "PERSON", "firstName": "Known", "lastName": str(k),
                                            "emails": [{"address": f"known{k}@example.com"}]} for k in range(first, first + 25)]})
            made = await client.mutate(
                "mutation($i: CreateMailChannelInput!) { createMailChannel(input: $i) { mailChannel { id } errors { code } } }",
                {"i": {"name": "Bench", "address": "help@support.example.com", "imapHost": dovecot.host, "imapPort": dovecot.port,
                       "imapUsername": user, "imapPassword": password, "smtpHost": "127.0.0.1", "smtpPort": 25}})
            from crm_graph.core import ids

            channel_pk = ids.decode_as(made["mailChannel"]["id"], "MailChannel")
            earlier: list[str] = []
            for i in range(args.mails):
                raw, msgid = message(i, "help@support.example.com", earlier[i - 1] if i % 4 == 3 else None)
                earlier.append(msgid)
                dovecot.append(user, raw)
                dovecot.append(floor_user, raw)

            db, settings = app.state.db, service_settings()
            start = time.perf_counter()
            result = await read_channel(db, app.state.settings, settings, channel_pk)
            elapsed = time.perf_counter() - start
            fetched, raw_elapsed = await floor(MailboxAccount(dovecot.host, dovecot.port, floor_user,
                                                              dovecot.users[floor_user]))

            async def count() -> int:
                async with db.reader() as session:
                    return await session.scalar(sa.select(sa.func.count()).select_from(Ticket)) or 0

            raw_sql = await sql_floor(db, args.mails)
            pushes = await push_alone(dovecot, floor_user, dovecot.users[floor_user], args.arrivals)

            watchers = Watchers(db, app.state.settings, settings)
            await watchers.sync()
            await asyncio.sleep(0.5)
            latencies = []
            for i in range(args.arrivals):
                before = await count()
                raw, _ = message(10_000 + 2 * i + 1, "help@support.example.com", None)
                arrived = time.perf_counter()
                dovecot.append(user, raw)
                while await count() == before:
                    await asyncio.sleep(0.005)
                latencies.append((time.perf_counter() - arrived) * 1000)
            await watchers.aclose()
    finally:
        dovecot.stop()

    name = "PostgreSQL" if args.postgresql else "SQLite"
    print(f"support mail, {args.mails} mails on {name} ({result.tickets} tickets, {result.comments} comments):")
    print(f"  one pass          {result.read / elapsed:8.1f} mails/s ({elapsed:.2f} s)")
    print(f"  IMAP fetch alone  {fetched / raw_elapsed:8.1f} mails/s ({raw_elapsed:.2f} s; the same mails, no processing)")
    print(f"  ratio             pass / fetch alone {(result.read / elapsed) / (fetched / raw_elapsed):.2f}")
    print(f"  plain SQL floor   {args.mails / raw_sql:8.1f} mails/s ({raw_sql:.2f} s; two INSERTs per mail, one "
          "transaction each)")
    print(f"  ratio             pass / plain SQL {(result.read / elapsed) / (args.mails / raw_sql):.2f}")
    lat, push = sorted(latencies), sorted(pushes)
    print(f"  arrival to ticket (IDLE watcher, {len(lat)} mails): median {statistics.median(lat):.0f} ms, "
          f"p90 {lat[int(len(lat) * 0.9) - 1]:.0f} ms, max {lat[-1]:.0f} ms (from the APPEND of the mail)")
    print(f"  IDLE push alone   median {statistics.median(push):.0f} ms (the IMAP server's notification, nothing "
          f"processed); ours: {statistics.median(lat) - statistics.median(push):.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
