"""Agents' public replies mailed to the customer from the ticket's mailbox (deliveries
``service:mail`` of ``ticket.replied`` events, sent from the outbox after the reply committed).

A reply goes out when the ticket came in by mail (it has an incoming message on a channel) and
the comment is a public one by an agent, written in the CRM: a comment copied in from a helpdesk
is not mailed again (the helpdesk mails its own). It is sent from the channel of the ticket's
latest incoming mail, to that mail's Reply-To or From, with the ticket number in the subject,
our own Message-ID (``<crm.ticket.<ticket>.<comment>.<random>@<domain>>``), In-Reply-To the
latest mail of the thread and References the thread's chain.

At most once per comment: its outgoing message row is marked SENDING in a committed transaction
before the SMTP server is handed the message; a row found SENDING later (the process died
mid-send) becomes UNCONFIRMED and is never sent again. A refusal for good is FAILED; a
temporary failure puts the row back to PENDING and the dispatcher retries with backoff.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

import sqlalchemy as sa

from crm_graph.core.clock import utcnow
from crm_graph.core.mail import MailError, OutgoingMail
from crm_graph.core.subscribers import Claim, Result
from crm_graph.mail.transports import transports_of
from crm_graph.settings import Settings
from crm_graph.support.models import Ticket, TicketComment
from crm_service.channels import smtp_config
from crm_service.config import ServiceSettings
from crm_service.models import HelpdeskMessage, MailChannel, MessageDirection, MessageStatus, TicketMessage

log = logging.getLogger("crm_service.replies")

MAX_REFERENCES = 20


async def has_mail_thread(session: Any, ticket_id: int) -> bool:
    return await session.scalar(sa.select(sa.exists().where(
        TicketMessage.ticket_id == ticket_id, TicketMessage.direction == MessageDirection.IN,
        TicketMessage.channel_id.is_not(None)))) or False


def wants_mail(data: dict[str, Any]) -> bool:
    return data.get("public") is True and data.get("from") == "AGENT" and isinstance(data.get("commentId"), int)


async def send_reply(db: Any, app_settings: Settings, settings: ServiceSettings, plugins: Any, claim: Claim) -> Result:
    comment_id = claim.event.data["commentId"]
    prepared = await _prepare(db, settings, comment_id)
    if isinstance(prepared, str):
        log.info("reply %s: %s", comment_id, prepared)
        return Result(claim, "delivered")
    row_id, channel_id, mail = prepared
    async with db.reader() as session:
        channel = await session.get(MailChannel, channel_id)
        config = smtp_config(app_settings, channel) if channel else None
    try:
        if config is None:
            raise MailError("the ticket's mail channel was deleted", permanent=True)
        transport = transports_of(plugins).get(settings.transport)
        if transport is None:
            raise MailError(f"no mail transport {settings.transport!r} (CRM_SERVICE_TRANSPORT)", permanent=True)
        session = await transport.open(config)
        try:
            answer = await session.send(mail)
        finally:
            await session.aclose()
    except MailError as exc:
        status = MessageStatus.UNCONFIRMED if exc.accepted_maybe else MessageStatus.FAILED if exc.permanent \
            else MessageStatus.PENDING
        await _finish(db, row_id, status, exc.message)
        if status is MessageStatus.PENDING:
            return Result(claim, "failed", retry=True, error=exc.message[:1000])
        return Result(claim, "delivered")
    except BaseException:
        # Nothing is known of the outcome (a cancellation, a transport's bug): the row stays
        # SENDING, and a later attempt makes it UNCONFIRMED rather than risk a second mail.
        raise
    await _finish(db, row_id, MessageStatus.SENT, None, answer=answer)
    return Result(claim, "delivered")


async def _prepare(db: Any, settings: ServiceSettings, comment_id: int) -> tuple[int, int, OutgoingMail] | str:
    """Make (or find) the comment's outgoing row and mark it SENDING; a string says why nothing
    is to be sent."""
    async with db.writer() as session, session.begin():
        comment = await session.get(TicketComment, comment_id)
        if comment is None:
            return "the comment is gone"
        copied = await session.scalar(sa.select(HelpdeskMessage.id).where(
            HelpdeskMessage.comment_id == comment_id, HelpdeskMessage.direction == MessageDirection.IN))
        if copied is not None:
            return "copied from a helpdesk, which mails it itself"
        row = await session.scalar(sa.select(TicketMessage).where(
            TicketMessage.comment_id == comment_id, TicketMessage.direction == MessageDirection.OUT).with_for_update())
        if row is not None and row.status is MessageStatus.SENDING:
            row.status, row.error = MessageStatus.UNCONFIRMED, "the sending process stopped before the server answered"
            return "its outcome is unknown (UNCONFIRMED): not sent again"
        if row is not None and row.status is not MessageStatus.PENDING:
            return f"already {row.status.name}"
        ticket = await session.get(Ticket, comment.ticket_id)
        last_in = await session.scalar(sa.select(TicketMessage).where(
            TicketMessage.ticket_id == comment.ticket_id, TicketMessage.direction == MessageDirection.IN,
            TicketMessage.channel_id.is_not(None)).order_by(TicketMessage.id.desc()).limit(1))
        if ticket is None or last_in is None:
            return "the ticket has no mail thread"
        channel = await session.get(MailChannel, last_in.channel_id)
        if channel is None:
            return "the ticket's mail channel was deleted"
        if row is None:
            row = _compose(settings, ticket, comment, channel, last_in,
                           await _chain(session, comment.ticket_id))
            session.add(row)
        row.status, row.attempts = MessageStatus.SENDING, row.attempts + 1
        await session.flush()
        assert row.raw is not None
        return row.id, channel.id, OutgoingMail(content=row.raw, envelope_from=channel.address,
                                                recipients=list(row.to), message_id=row.message_id)


async def _chain(session: Any, ticket_id: int) -> list[str]:
    ids = list(await session.scalars(sa.select(TicketMessage.message_id).where(TicketMessage.ticket_id == ticket_id)
                                     .order_by(TicketMessage.id)))
    return ids


def _compose(settings: ServiceSettings, ticket: Ticket, comment: TicketComment, channel: MailChannel,
             last_in: TicketMessage, chain: Sequence[str]) -> TicketMessage:
    domain = settings.message_domain or channel.address.rpartition("@")[2]
    message_id = f"<crm.ticket.{ticket.id}.{comment.id}.{secrets.token_hex(6)}@{domain}>"
    reply_to = (last_in.headers or {}).get("Reply-To")
    to = _address(reply_to) or last_in.from_address or ""
    subject = ticket.subject if f"[{ticket.number}]" in ticket.subject else f"{ticket.subject} [{ticket.number}]"
    subject = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    references = [*(last_in.references or []), *chain][-MAX_REFERENCES:]
    references = list(dict.fromkeys(references))
    now = utcnow()
    msg = EmailMessage()
    msg["From"] = formataddr((channel.name, channel.address))
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = last_in.message_id
    if references:
        msg["References"] = " ".join(references)
    msg["X-CRM-Ticket"] = ticket.number
    msg.set_content(comment.body)
    raw = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return TicketMessage(
        ticket_id=ticket.id, comment_id=comment.id, channel_id=channel.id, direction=MessageDirection.OUT,
        status=MessageStatus.PENDING, message_id=message_id, in_reply_to=last_in.message_id, references=references,
        from_address=channel.address, from_name=channel.name, to=[to], cc=[], subject=subject[:300], text=comment.body,
        html=None, headers={"X-CRM-Ticket": ticket.number}, raw=raw, error=None, attempts=0, sent_at=None,
        created_at=now)


def _address(value: str | None) -> str | None:
    from crm_service.content import normalise_address

    return normalise_address(value) if value else None


async def _finish(db: Any, row_id: int, status: MessageStatus, error: str | None, *, answer: str | None = None) -> None:
    async with db.writer() as session, session.begin():
        values: dict[str, Any] = {"status": status, "error": error and error[:2000]}
        if status is MessageStatus.SENT:
            values["sent_at"] = utcnow()
        await session.execute(sa.update(TicketMessage).where(TicketMessage.id == row_id).values(**values))
    if answer:
        log.info("reply row %s sent: %s", row_id, answer)
