"""The double opt-in mail, sent from the outbox (subscriber kind ``marketing``): one delivery per
``marketing.subscribed`` event, never inside the form's request.

At most once per sign-up: the consent record's ``confirmation_sent_at`` is set in a committed
transaction *before* the message goes out, and only a row whose mark was still empty is sent, so
a redelivered event (or two dispatchers racing for it) finds it taken and sends nothing. When the
server certainly did not take the message (refused before or at DATA, unreachable) the mark is
cleared again and the delivery retried by the dispatcher. A process that dies between the mark
and the server's answer leaves that one sign-up without its mail rather than risk a second one;
signing up again sends a new link.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from crm_graph.core.clock import utcnow
from crm_graph.core.mail import MailError, MailSession, OutgoingMail
from crm_graph.core.subscribers import Claim, EventRow, Result, Target, deliver_each
from crm_graph.customers.models import Customer
from crm_graph.settings import Settings
from crm_marketing import message
from crm_marketing.consent import _lasting, _list_name, confirm_url
from crm_marketing.models import ConsentAction, ConsentRecord
from crm_marketing.runtime import Runtime, runtime_of

log = logging.getLogger("crm_marketing.confirm")


class ConfirmationMail:
    """Mails the confirmation link of each sign-up (``marketing:confirm`` deliveries)."""

    kind = "marketing"

    def __init__(self, settings: Settings, plugins: Any) -> None:
        self.settings = settings
        self.plugins = plugins

    @property
    def runtime(self) -> Runtime:  # made on first use: the settings are read then, not at start-up
        return runtime_of(self.settings, self.plugins)

    async def fan_out(self, db: Any, session: Any, events: Sequence[EventRow]) -> list[Target]:
        return [Target(e.pk, "confirm") for e in events if e.type == "marketing.subscribed" and e.entity_type == "Customer"]

    def servable(self) -> sa.ColumnElement[bool] | None:
        return None

    async def deliver(self, db: Any, claims: Sequence[Claim], deadline: float) -> list[Result]:
        runtime = self.runtime
        opened: list[MailSession] = []

        async def mail_session() -> MailSession:
            if not opened:
                opened.append(await runtime.transport().open(runtime.transport_config()))
            return opened[0]

        async def one(claim: Claim) -> Result:
            consent_id = claim.event.data.get("consent")
            if not isinstance(consent_id, int):
                return Result(claim, "failed", retry=False, error="the event names no consent record")
            return await send_confirmation(db, runtime, consent_id, mail_session, claim)

        try:
            return await deliver_each(claims, deadline, one)
        finally:
            for session in opened:
                await session.aclose()

    async def aclose(self) -> None:
        return None


async def send_confirmation(db: Any, runtime: Runtime, consent_id: int, mail_session: Any, claim: Claim) -> Result:
    """Mark, then send, the confirmation mail of one REQUESTED record (see the module's note)."""
    async with db.writer() as session, session.begin():
        taken = await session.execute(
            sa.update(ConsentRecord)
            .where(ConsentRecord.id == consent_id, ConsentRecord.action == ConsentAction.REQUESTED,
                   ConsentRecord.confirmation_sent_at.is_(None), ConsentRecord.confirmed_at.is_(None))
            .values(confirmation_sent_at=utcnow()))
        if taken.rowcount == 0:
            return Result(claim, "delivered")  # sent before, confirmed already, or gone
        record = await session.get(ConsentRecord, consent_id)
        assert record is not None
        if await _lasting(session, record.email, record.list_key):
            return Result(claim, "delivered")  # complained since signing up: nothing goes to it
        customer = await session.get(Customer, record.customer_id)
        list_name = await _list_name(session, record.list_key)
        email, nonce = record.email, record.nonce or ""
    name = customer.display_name if customer is not None else None
    content = compose(runtime, consent_id=consent_id, nonce=nonce, email=email, name=name, list_name=list_name)
    mail = OutgoingMail(content=content, envelope_from=f"{runtime.config.tuning.return_local}@{runtime.config.return_domain}",
                        recipients=[email], message_id=_message_id(runtime, consent_id))
    try:
        session = await mail_session()
        await session.send(mail)
    except MailError as exc:
        if exc.accepted_maybe:
            log.warning("confirmation %s: the server may have taken it (%s); not sent again", consent_id, exc.message)
            return Result(claim, "delivered")
        await _unmark(db, consent_id)
        return Result(claim, "failed", retry=not exc.permanent, error=exc.message[:1000])
    except Exception:  # no transport, a transport's bug: nothing went out; a cancellation keeps the mark
        await _unmark(db, consent_id)
        raise
    return Result(claim, "delivered")


async def _unmark(db: Any, consent_id: int) -> None:
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(ConsentRecord).where(ConsentRecord.id == consent_id)
                              .values(confirmation_sent_at=None))


def _message_id(runtime: Runtime, consent_id: int) -> str:
    return f"<crm.confirm.{consent_id}@{runtime.config.return_domain}>"


def compose(runtime: Runtime, *, consent_id: int, nonce: str, email: str, name: str | None,
            list_name: str | None) -> bytes:
    """The message: From CRM_MAIL_FROM, the link valid ``confirm_days``, Auto-Submitted."""
    link = confirm_url(runtime, consent_id, nonce)
    tuning = runtime.config.tuning
    what = f"the list “{list_name}”" if list_name else "our newsletter"
    subject = f"Please confirm your subscription to {list_name}" if list_name else "Please confirm your subscription"
    greeting = f"Hello {name}," if name else "Hello,"
    ignore = ("If you did not sign up, ignore this message: without your confirmation you will "
              "receive nothing from us.")
    text = (f"{greeting}\n\nplease confirm that you want to receive {what} by opening this link:\n\n{link}\n\n"
            f"The link is valid for {tuning.confirm_days} days.\n\n{tuning.policy_text}\n\n{ignore}\n")
    e = html.escape
    body = (f"<!doctype html><html><body><p>{e(greeting)}</p>"
            f"<p>please confirm that you want to receive {e(what)}:</p>"
            f'<p><a href="{e(link)}" style="display:inline-block;padding:10px 18px;background:#1a5fb4;color:#fff;'
            f'text-decoration:none;border-radius:4px">Confirm my subscription</a></p>'
            f'<p>Or open this address: <a href="{e(link)}">{e(link)}</a></p>'
            f"<p>The link is valid for {tuning.confirm_days} days.</p><p>{e(tuning.policy_text)}</p>"
            f"<p>{e(ignore)}</p></body></html>")
    return message.build(runtime.config, from_address=runtime.config.mail.mail_from, to_address=email, to_name=name,
                         subject=subject, html=body, text=text, msgid=_message_id(runtime, consent_id),
                         auto_submitted=True)
