"""What the customer-service tests share: a mailbox on the test's dovecot made a channel through
the API, customers, mails as a customer's mail program would write them, and reading."""

from __future__ import annotations

import itertools
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import UTC, datetime
from typing import Any

from crm_service.config import service_settings
from crm_service.reader import PassResult, read_channel

CREATE_CHANNEL = """
mutation($input: CreateMailChannelInput!) {
  createMailChannel(input: $input) { mailChannel { id name address unknownSenders } errors { field code message } }
}
"""
CREATE_CUSTOMER = """
mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } errors { field code message } } }
"""
TICKETS = """
query($f: TicketFilter) { tickets(first: 10, filter: $f) { edges { node { id number subject status channel description
  customer { id displayName source }
  comments(first: 5) { edges { node { body public authorKind author } } }
  messages { direction status messageId inReplyTo references fromAddress to subject text
             attachments { filename contentType size stored dropped inline contentId } } } } } }
"""
REPLY = """
mutation($id: ID!, $input: ReplyToTicketInput!) {
  replyToTicket(id: $id, input: $input) { ticket { id status } errors { field code message } }
}
"""
INBOUND = "query($o: InboundMailOutcome) { inboundMails(outcome: $o) { id fromAddress subject outcome ticketId } }"

_numbers = itertools.count(1)


async def channel(client: Any, dovecot: Any, smtp_port: int, **extra: Any) -> tuple[str, str, str]:
    """A new dovecot user made a mail channel; returns (channel id, IMAP user, support address)."""
    user, password = dovecot.new_user("support")
    address = f"help{next(_numbers)}@support.example.com"
    data = await client.mutate(CREATE_CHANNEL, {"input": {
        "name": f"Support {user}", "address": address, "imapHost": dovecot.host, "imapPort": dovecot.port,
        "imapUsername": user, "imapPassword": password, "smtpHost": "127.0.0.1", "smtpPort": smtp_port, **extra}})
    return data["mailChannel"]["id"], user, address


async def customer(client: Any, email: str, first: str = "Ada", last: str = "Lovelace") -> str:
    data = await client.mutate(CREATE_CUSTOMER, {"input": {
        "kind": "PERSON", "firstName": first, "lastName": last, "emails": [{"address": email, "primary": True}]}})
    return data["customer"]["id"]


def mail(sender: str, to: str, subject: str, body: str, *, name: str = "Ada Lovelace", in_reply_to: str | None = None,
         references: list[str] | None = None, headers: dict[str, str] | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="client.example.com")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg


async def read(crm_db: Any, crm_settings: Any, channel_id: str) -> PassResult:
    from crm_graph.core import ids

    return await read_channel(crm_db, crm_settings, service_settings(), ids.decode_as(channel_id, "MailChannel"))


async def tickets(client: Any, subject: str | None = None) -> list[dict[str, Any]]:
    """The tickets (at most 10), by number; with ``subject``, those of that subject."""
    edges = (await client.execute(TICKETS, {"f": {"subject": {"eq": subject}} if subject else None}))["tickets"]["edges"]
    return sorted((e["node"] for e in edges), key=lambda t: t["number"])


async def count(client: Any) -> int:
    """How many tickets there are (a cheap query, for polling)."""
    return (await client.execute("query { tickets(first: 1) { totalCount } }"))["tickets"]["totalCount"]
