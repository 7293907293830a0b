"""One incoming mail of a support mailbox becomes a ticket, a comment on one, or nothing.

Everything a mail does happens in one transaction with its ``crm_service_inbound_mails`` row,
unique on (channel, Message-ID or the mail's hash): read twice (a reconnect, a move that did not
happen, another process reading the same mailbox), it is recognised and does nothing more.

The thread, in this order:

1. our own Message-ID in In-Reply-To or References (``<crm.ticket.<id>.…@…>``, on every mail
   the CRM sends), then any Message-ID of a ticket's thread there (the customer's earlier mails,
   a colleague's copy); a ticket found this way takes the mail when the sender is its customer
   or contact or already took part in its thread;
2. the ticket number in the subject (``[T-000123]``), only when the sender is the ticket's
   customer or contact;
3. otherwise a new ticket, as for a new subject from the same sender. A CLOSED ticket takes no
   more mail: the answer opens a new ticket that names the old one.

Noise (auto-replies, bounces, our own mail come back) and floods (one sender past
``CRM_SERVICE_FLOOD_LIMIT`` mails within an hour) are recorded with their reason and make
nothing, so two auto-responders answering each other cannot grow a ticket or trigger a reply.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.actor import SYSTEM
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import DomainError
from crm_graph.core.events import record_event
from crm_graph.customers.models import Customer, CustomerEmail
from crm_graph.customers.service import ServiceConfig, create_customer
from crm_graph.support.models import Ticket, TicketStatus
from crm_graph.support.service import create_ticket, reply_to_ticket
from crm_service.config import ServiceSettings
from crm_service.content import ParsedMail, noise_of, parse_mail, subject_ticket_number
from crm_service.models import (
    Attachment,
    InboundMail,
    InboundOutcome,
    MailChannel,
    MessageDirection,
    MessageStatus,
    TicketMessage,
    UnknownSenders,
)

log = logging.getLogger("crm_service.intake")

OUR_MESSAGE_ID = re.compile(r"^<crm\.ticket\.(\d+)\.", re.IGNORECASE)
MAX_BODY = 100_000
NOISE = {"AUTO_REPLY": InboundOutcome.AUTO_REPLY, "BOUNCE": InboundOutcome.BOUNCE, "OWN": InboundOutcome.OWN}
MADE = (InboundOutcome.TICKET, InboundOutcome.COMMENT, InboundOutcome.QUEUED)


@dataclass(frozen=True)
class Intake:
    outcome: InboundOutcome
    ticket_id: int | None = None
    duplicate: bool = False  # read before: nothing was done this time


def dedupe_key(mail: ParsedMail, raw: bytes) -> str:
    if mail.message_id and len(mail.message_id) <= 450:
        return mail.message_id
    return "sha256:" + hashlib.sha256(raw).hexdigest()


async def own_identity(session: AsyncSession, settings: ServiceSettings) -> tuple[set[str], set[str]]:
    """The support addresses of every channel and the domains of our Message-IDs."""
    addresses = set(await session.scalars(sa.select(MailChannel.address)))
    domains = {settings.message_domain} if settings.message_domain else {a.rpartition("@")[2] for a in addresses}
    return addresses, domains


async def ingest(session: AsyncSession, settings: ServiceSettings, channel: MailChannel, raw: bytes, *,
                 uid: int | None = None, oversize: int | None = None) -> Intake:
    """Record one mail and do what it asks, in the caller's transaction (committed by the
    caller). ``oversize``: the mail's size when only its header was fetched."""
    mail = parse_mail(raw, max_attachment_bytes=settings.max_attachment_bytes,
                      max_total_attachment_bytes=settings.max_total_attachment_bytes)
    key = dedupe_key(mail, raw)
    seen = await session.scalar(sa.select(InboundMail).where(InboundMail.channel_id == channel.id,
                                                             InboundMail.dedupe_key == key))
    if seen is not None:
        return Intake(seen.outcome, seen.ticket_id, duplicate=True)
    now = utcnow()
    row = InboundMail(channel_id=channel.id, dedupe_key=key, uidvalidity=channel.uidvalidity, uid=uid,
                      from_address=mail.from_address, subject=mail.subject[:300], received_at=now,
                      outcome=InboundOutcome.TICKET)
    addresses, domains = await own_identity(session, settings)
    noise = noise_of(mail, raw, own_addresses=addresses, own_domains=domains)
    if noise is not None:
        row.outcome = NOISE[noise]
    elif mail.from_address is None:
        row.outcome = InboundOutcome.BOUNCE  # nobody to answer: treated like a failure report
    elif await _flooding(session, settings, mail.from_address, now):
        row.outcome = InboundOutcome.FLOOD
    if row.outcome not in MADE:
        log.info("mail %s on channel %s: %s, nothing made", key, channel.name, row.outcome.name)
        return await _store(session, row, channel, mail)

    customer = await customer_by_email(session, mail.from_address)
    if customer is None and channel.unknown_senders is UnknownSenders.QUEUE:
        row.outcome, row.raw = InboundOutcome.QUEUED, raw
        return await _store(session, row, channel, mail)
    if customer is None:
        customer = await _new_customer(session, mail)
    await _take(session, row, channel, mail, raw, customer, oversize=oversize, limit=settings.max_message_bytes)
    return await _store(session, row, channel, mail)


async def _store(session: AsyncSession, row: InboundMail, channel: MailChannel, mail: ParsedMail) -> Intake:
    session.add(row)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        # Another reader of this mailbox recorded the same mail a moment ago.
        raise DuplicateMail(row.dedupe_key) from None
    ticket = await session.get(Ticket, row.ticket_id) if row.ticket_id else None
    record_event(session, type="mail.received", entity_type="Ticket" if ticket else "MailChannel",
                 entity_id=ticket.id if ticket else channel.id, actor=SYSTEM,
                 payload={"channel": channel.name, "from": mail.from_address, "subject": mail.subject,
                          "messageId": mail.message_id, "outcome": row.outcome.name,
                          "ticketId": row.ticket_id, "number": ticket.number if ticket else None})
    return Intake(row.outcome, row.ticket_id)


class DuplicateMail(Exception):
    """The mail was recorded by another transaction meanwhile; roll back and treat it as read."""


async def _flooding(session: AsyncSession, settings: ServiceSettings, sender: str, now: Any) -> bool:
    count = await session.scalar(sa.select(sa.func.count()).select_from(InboundMail).where(
        InboundMail.from_address == sender, InboundMail.received_at > now - timedelta(hours=1),
        InboundMail.outcome.in_((InboundOutcome.TICKET, InboundOutcome.COMMENT, InboundOutcome.QUEUED))))
    return (count or 0) >= settings.flood_limit


async def customer_by_email(session: AsyncSession, address: str) -> Customer | None:
    return await session.scalar(
        sa.select(Customer).join(CustomerEmail, CustomerEmail.customer_id == Customer.id)
        .where(CustomerEmail.address == address.lower(), Customer.deleted_at.is_(None))
        .order_by(CustomerEmail.is_primary.desc(), Customer.id).limit(1))


async def _new_customer(session: AsyncSession, mail: ParsedMail) -> Customer:
    address = mail.from_address or ""
    display = (mail.from_name or "").strip()
    first, _, last = display.rpartition(" ")
    names = {"firstName": first, "lastName": last} if first else {"firstName": last} if last else \
        {"lastName": address.partition("@")[0][:100] or "Unknown"}
    try:
        return await create_customer(session, actor=SYSTEM, config=ServiceConfig(), data={
            "kind": "PERSON", "source": "EMAIL", **names, "emails": [{"address": address, "primary": True}]})
    except DomainError:
        # A name the customer rules refuse (too long, odd characters): the address alone will do.
        return await create_customer(session, actor=SYSTEM, config=ServiceConfig(), data={
            "kind": "PERSON", "source": "EMAIL", "lastName": address.partition("@")[0][:100] or "Unknown",
            "emails": [{"address": address, "primary": True}]})


async def _take(session: AsyncSession, row: InboundMail, channel: MailChannel, mail: ParsedMail, raw: bytes,
                customer: Customer, *, oversize: int | None, limit: int) -> None:
    """Open a ticket or comment on the thread's ticket; store the message and its attachments."""
    ticket = await find_thread(session, mail, customer)
    body = mail.text
    if oversize is not None:
        body = (f"(This mail of {oversize / 2**20:.1f} MB is larger than the limit of "
                f"{limit / 2**20:.0f} MB and was not imported whole; it is kept in the mailbox folder "
                f"{channel.processed_folder!r}.)\n\n{body}")
    if ticket is not None and ticket.status is TicketStatus.CLOSED:
        previous, ticket = ticket, None
        body = f"(Follow-up of the closed ticket {previous.number}.)\n\n{body}"
    comment_id = None
    if ticket is None:
        ticket = await create_ticket(session, actor=SYSTEM, data={
            "customerId": customer.id, "subject": (mail.subject or "(no subject)")[:300],
            "description": _clip(body) or "(empty mail)", "channel": "EMAIL"})
        row.outcome = InboundOutcome.TICKET
    else:
        reply = mail.reply_text if oversize is None else body
        _, comment = await reply_to_ticket(session, actor=SYSTEM, ticket_id=ticket.id, data={
            "body": _clip(reply) or "(empty mail)", "public": True, "from": "CUSTOMER",
            "author": (mail.from_name or mail.from_address or "customer")[:200]})
        comment_id = comment.id
        row.outcome = InboundOutcome.COMMENT
    row.ticket_id = ticket.id
    message = TicketMessage(
        ticket_id=ticket.id, comment_id=comment_id, channel_id=channel.id, direction=MessageDirection.IN,
        status=MessageStatus.RECEIVED, message_id=(mail.message_id or row.dedupe_key)[:500],
        in_reply_to=(mail.in_reply_to[0] if mail.in_reply_to else None), references=mail.references[-50:],
        from_address=mail.from_address, from_name=(mail.from_name or None) and mail.from_name[:300],
        to=mail.to[:50], cc=mail.cc[:50], subject=mail.subject[:300], text=_clip(mail.text), html=mail.html,
        headers={**mail.headers, **({'Reply-To': mail.reply_to} if mail.reply_to else {})}, raw=raw, error=None, attempts=0, sent_at=mail.date or utcnow(), created_at=utcnow())
    session.add(message)
    await session.flush()
    row.message_row_id = message.id
    session.add_all(Attachment(message_id=message.id, filename=a.filename[:255], content_type=a.content_type[:255],
                               size=a.size, content_id=a.content_id and a.content_id[:500], inline=a.inline,
                               data=a.data, dropped=a.dropped and a.dropped[:200]) for a in mail.attachments)


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_BODY else text[: MAX_BODY - 1] + "…"


async def find_thread(session: AsyncSession, mail: ParsedMail, customer: Customer) -> Ticket | None:
    """The ticket a mail answers (see the module's note), or None for a new conversation."""
    ids = [*mail.in_reply_to, *reversed(mail.references)]
    ours = [int(m.group(1)) for m in (OUR_MESSAGE_ID.match(i) for i in ids) if m]
    for ticket_id in ours:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is not None and await _may_write(session, ticket, customer, mail.from_address):
            return ticket
    if ids:
        found = await session.scalars(sa.select(TicketMessage.ticket_id).where(TicketMessage.message_id.in_(ids[:100]))
                                      .order_by(TicketMessage.id.desc()))
        for ticket_id in dict.fromkeys(found):
            ticket = await session.get(Ticket, ticket_id)
            if ticket is not None and await _may_write(session, ticket, customer, mail.from_address):
                return ticket
    number = subject_ticket_number(mail.subject)
    if number is not None:
        ticket = await session.get(Ticket, number)
        if ticket is not None and customer.id in (ticket.customer_id, ticket.contact_id):
            return ticket
    return None


async def _may_write(session: AsyncSession, ticket: Ticket, customer: Customer, address: str | None) -> bool:
    if customer.id in (ticket.customer_id, ticket.contact_id):
        return True
    if address is None:
        return False
    rows = await session.execute(sa.select(TicketMessage.from_address, TicketMessage.to, TicketMessage.cc)
                                 .where(TicketMessage.ticket_id == ticket.id))
    return any(address == sender or address in (to or []) or address in (cc or []) for sender, to, cc in rows)


async def assign_queued(session: AsyncSession, settings: ServiceSettings, inbound_id: int, customer_id: int) -> int:
    """Make a QUEUED mail a ticket (or a comment on its thread) of ``customer_id``."""
    from crm_graph.core import errors as codes
    from crm_graph.core.errors import FieldError, NotFound, ValidationFailed

    row = await session.get(InboundMail, inbound_id, with_for_update=True)
    if row is None:
        raise NotFound("The inbound mail")
    if row.outcome is not InboundOutcome.QUEUED or row.raw is None:
        raise ValidationFailed([FieldError("id", codes.INVALID_STATE, f"The mail is {row.outcome.name}, not QUEUED.")])
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.deleted_at is not None:
        raise NotFound("The customer", "customerId")
    channel = await session.get(MailChannel, row.channel_id)
    assert channel is not None
    mail = parse_mail(row.raw, max_attachment_bytes=settings.max_attachment_bytes,
                      max_total_attachment_bytes=settings.max_total_attachment_bytes)
    await _take(session, row, channel, mail, row.raw, customer, oversize=None, limit=settings.max_message_bytes)
    row.outcome, row.raw = InboundOutcome.ASSIGNED, None
    assert row.ticket_id is not None
    return row.ticket_id
