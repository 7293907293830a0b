"""Consent: sign-ups with double opt-in, confirmations, unsubscribes, and bounces that suppress.

Every change is one transaction with its consent record, its suppression, its engagement, its
timeline entry and its event, so a change and its evidence exist together or not at all.

Rules worth knowing:

- A sign-up never reveals what the CRM knows: the form answers the same whether the address is
  new, already opted in or suppressed (``SubscribeResult.status`` tells the caller, not the page).
- An address suppressed for a complaint (or by hand) stays suppressed: nobody gets a confirmation
  mail for it, since anyone can type any address into a public form and a complaint is the
  strongest "no" an address owner can give. Nothing is written for such a sign-up.
- A confirmed opt-in is fresh consent: it lifts earlier unsubscribes (globally and from its list)
  and bounce suppressions (the owner just read mail at that address), never a complaint's.
- Replays change nothing: a confirm link confirms once, an unsubscribe is done once, a DSN is
  recorded once (``engage.first_time``) before it takes effect.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.activities.models import ActivityType
from crm_graph.activities.service import add_system_entry
from crm_graph.core.actor import SYSTEM
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import DomainError
from crm_graph.core.events import global_id, record_event
from crm_graph.customers import validation
from crm_graph.customers.models import ConsentStatus, Customer, CustomerEmail
from crm_graph.customers.service import ServiceConfig, create_customer, emails_for, update_customer
from crm_graph.customers.service.assign import EMAIL_LOCK_SPACE
from crm_marketing import tokens
from crm_marketing.engage import first_time, normal, record_engagement, suppress
from crm_marketing.models import (Campaign, ConsentAction, ConsentRecord, Engagement, EngagementKind, MarketingList,
                                  Recipient, Suppression, SuppressionReason)
from crm_marketing.runtime import Runtime

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
# Suppressions a new sign-up cannot lift (and that stop its confirmation mail).
LASTING = (SuppressionReason.COMPLAINT, SuppressionReason.MANUAL)
# Suppressions a confirmed opt-in lifts.
LIFTED = (SuppressionReason.UNSUBSCRIBED, SuppressionReason.HARD_BOUNCE, SuppressionReason.SOFT_BOUNCES)
SOFT_WINDOW = timedelta(days=30)


class ConsentError(ValueError):
    """A request that cannot be carried out. ``field`` names the input (``email``, ``name``,
    ``list``, ``token``); ``code``: INVALID_EMAIL, INVALID_VALUE, UNKNOWN_LIST, INVALID_TOKEN,
    EXPIRED_TOKEN, or a customer rule's code."""

    def __init__(self, field: str | None, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SubscribeResult:
    """``status``: PENDING (a confirmation mail is queued), ALREADY_OPTED_IN (nothing to confirm,
    nothing sent) or SUPPRESSED (a complaint's address: nothing written, nothing sent)."""

    status: str
    customer_id: int | None
    consent_id: int | None = None
    created: bool = False  # a new customer was made


@dataclass(frozen=True)
class ConfirmResult:
    customer_id: int
    email: str
    list_key: str
    already: bool  # the link was used before: nothing written this time
    suppressed: bool = False  # still suppressed (a complaint): confirmed, but receives nothing


@dataclass(frozen=True)
class UnsubscribeTarget:
    """What an unsubscribe token names, read without writing (the page shown on GET)."""

    customer_id: int
    emails: tuple[str, ...]
    list_key: str  # the campaign's list ("" = none)
    list_name: str | None
    campaign_id: int | None
    recipient_id: int | None
    campaign_name: str | None
    unsubscribed: bool  # from every list already
    left_list: bool = False  # from the campaign's list already


@dataclass(frozen=True)
class UnsubscribeResult:
    customer_id: int
    emails: tuple[str, ...]
    list_key: str  # what was left: "" = every list
    already: bool  # done before: nothing written this time
    campaign_id: int | None = None


@dataclass(frozen=True)
class BounceResult:
    kind: str  # HARD, SOFT, COMPLAINT, AUTO_REPLY, OTHER
    repeat: bool  # seen before: nothing changed
    emails: tuple[str, ...] = ()
    suppressed: tuple[str, ...] = ()
    recipient_id: int | None = None
    campaign_id: int | None = None
    customer_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# --- helpers ---------------------------------------------------------------------------------


def _clip(value: str | None, limit: int) -> str | None:
    value = (value or "").strip()
    return value[:limit] or None


async def customer_by_email(session: AsyncSession, email: str) -> Customer | None:
    """The live customer with this address (primary or not); the oldest when several have it."""
    return await session.scalar(
        sa.select(Customer).join(CustomerEmail, CustomerEmail.customer_id == Customer.id)
        .where(CustomerEmail.address == normal(email), Customer.deleted_at.is_(None))
        .order_by(CustomerEmail.is_primary.desc(), Customer.id).limit(1))


async def _lasting(session: AsyncSession, email: str, list_key: str) -> bool:
    keys = ["", list_key] if list_key else [""]
    found = await session.scalar(sa.select(Suppression.id).where(
        Suppression.email == normal(email), Suppression.list_key.in_(keys), Suppression.reason.in_(LASTING)).limit(1))
    return found is not None


async def _set_consent(session: AsyncSession, customer: Customer, status: ConsentStatus, source: str) -> None:
    """Through the customer rules, so the change bumps the version and raises customer.updated."""
    if customer.consent_status is status and customer.consent_source == source:
        return
    try:
        await update_customer(session, actor=SYSTEM, customer_id=customer.id, expected_version=None,
                              data={"emailConsent": {"status": status.name, "source": source[:200]}},
                              config=ServiceConfig())
    except DomainError as exc:
        first = exc.errors[0]
        raise ConsentError(first.field, first.code, first.message) from None


def _read(runtime: Runtime, purpose: str, token: str, max_age: float = tokens.LINK_MAX_AGE) -> dict[str, Any]:
    try:
        return tokens.read(runtime.key, purpose, token, max_age=max_age)
    except tokens.TokenError as exc:
        raise ConsentError("token", f"{exc.code}_TOKEN", exc.message) from None


def _invalid(message: str = "This link is not valid.") -> ConsentError:
    return ConsentError("token", "INVALID_TOKEN", message)


async def _list_name(session: AsyncSession, list_key: str) -> str | None:
    if not list_key:
        return None
    return await session.scalar(sa.select(MarketingList.name).where(MarketingList.key == list_key))


# --- sign-up and confirmation ----------------------------------------------------------------


def confirm_token(runtime: Runtime, consent_id: int, nonce: str) -> str:
    return tokens.make(runtime.key, "confirm", {"c": consent_id, "n": nonce})


def confirm_url(runtime: Runtime, consent_id: int, nonce: str) -> str:
    return runtime.url(f"/mail/confirm/{confirm_token(runtime, consent_id, nonce)}")


async def subscribe(
    db: Any, runtime: Runtime, *, email: Any, name: Any = None, list_key: str = "", ip: str | None = None,
    user_agent: str | None = None, form: str = "subscribe form", utm: dict[str, Any] | None = None,
) -> SubscribeResult:
    """Start double opt-in for ``email``: match or create the customer, write the REQUESTED
    record and the ``marketing.subscribed`` event (the outbox then mails the link)."""
    try:
        address = validation.email(email)
    except validation.InvalidValue as exc:
        raise ConsentError("email", "INVALID_EMAIL", str(exc)) from None
    if name is not None and not isinstance(name, str):
        raise ConsentError("name", "INVALID_VALUE", "The name must be text.")
    display = " ".join((name or "").split())
    if len(display) > 200:
        raise ConsentError("name", "INVALID_VALUE", "The name is longer than 200 characters.")
    list_key = (list_key or "").strip()
    clean_utm = {k: str(v).strip()[:200] for k, v in (utm or {}).items()
                 if k in UTM_KEYS and v is not None and str(v).strip()}
    async with db.writer() as session, session.begin():
        if list_key and await session.scalar(sa.select(MarketingList.id).where(MarketingList.key == list_key)) is None:
            raise ConsentError("list", "UNKNOWN_LIST", f"There is no mailing list {list_key!r}.")
        if session.bind.dialect.name == "postgresql":  # the same lock the customer rules take
            await session.execute(sa.select(sa.func.pg_advisory_xact_lock(EMAIL_LOCK_SPACE, sa.func.hashtext(address))))
        customer = await customer_by_email(session, address)
        if await _lasting(session, address, list_key):
            return SubscribeResult("SUPPRESSED", customer.id if customer else None)
        if customer is not None and customer.consent_status is ConsentStatus.OPTED_IN:
            keys = ["", list_key] if list_key else [""]
            unsubscribed = await session.scalar(sa.select(Suppression.id).where(
                Suppression.email == address, Suppression.list_key.in_(keys)).limit(1))
            if unsubscribed is None:
                return SubscribeResult("ALREADY_OPTED_IN", customer.id)
        created = customer is None
        if customer is None:
            customer = await _new_customer(session, address, display)
        record = ConsentRecord(
            customer_id=customer.id, email=address, action=ConsentAction.REQUESTED, list_key=list_key,
            form=_clip(form, 200), policy_text=runtime.config.tuning.policy_text, ip=_clip(ip, 64),
            user_agent=_clip(user_agent, 500), utm=clean_utm, nonce=secrets.token_urlsafe(24), at=utcnow())
        session.add(record)
        await session.flush()
        record_event(session, type="marketing.subscribed", entity_type="Customer", entity_id=customer.id, actor=SYSTEM,
                     payload={"email": address, "list": list_key, "utm": clean_utm, "form": record.form,
                              "consent": record.id, "newCustomer": created})
    return SubscribeResult("PENDING", customer.id, record.id, created)


async def _new_customer(session: AsyncSession, address: str, display: str) -> Customer:
    first, _, last = display.rpartition(" ")
    names = {"firstName": first, "lastName": last} if first else {"firstName": last} if last else \
        {"lastName": address.partition("@")[0]}
    try:
        return await create_customer(session, actor=SYSTEM, config=ServiceConfig(), data={
            "kind": "PERSON", "source": "WEB", **names, "emails": [{"address": address, "primary": True}]})
    except DomainError as exc:
        first_error = exc.errors[0]
        where = "name" if first_error.field in ("firstName", "lastName") else "email"
        raise ConsentError(where, first_error.code, first_error.message) from None


async def confirm(db: Any, runtime: Runtime, token: str, *, ip: str | None = None,
                  user_agent: str | None = None) -> ConfirmResult:
    """Follow a double opt-in link: the customer is OPTED_IN, with a CONFIRMED record."""
    payload = _read(runtime, "confirm", token, max_age=runtime.config.tuning.confirm_days * 86400)
    consent_id, nonce = payload.get("c"), payload.get("n")
    if not isinstance(consent_id, int) or not isinstance(nonce, str):
        raise _invalid()
    async with db.writer() as session, session.begin():
        request = await session.scalar(sa.select(ConsentRecord).where(
            ConsentRecord.id == consent_id, ConsentRecord.nonce == nonce,
            ConsentRecord.action == ConsentAction.REQUESTED).with_for_update())
        if request is None:
            raise _invalid()
        customer = await session.get(Customer, request.customer_id)
        if customer is None or customer.deleted_at is not None:
            raise _invalid("This subscription no longer exists.")
        if request.confirmed_at is not None:
            return ConfirmResult(customer.id, request.email, request.list_key, already=True)
        now = utcnow()
        request.confirmed_at = now
        session.add(ConsentRecord(
            customer_id=customer.id, email=request.email, action=ConsentAction.CONFIRMED, list_key=request.list_key,
            form=request.form, policy_text=request.policy_text, ip=_clip(ip, 64), user_agent=_clip(user_agent, 500),
            utm=dict(request.utm or {}), campaign_id=request.campaign_id, at=now))
        await session.execute(sa.delete(Suppression).where(
            Suppression.email == request.email, Suppression.reason.in_(LIFTED),
            Suppression.list_key.in_(["", request.list_key] if request.list_key else [""])))
        await _set_consent(session, customer, ConsentStatus.OPTED_IN, request.form or "subscribe form")
        still = await _lasting(session, request.email, request.list_key)
        name = await _list_name(session, request.list_key)
        await add_system_entry(session, customer_id=customer.id, type=ActivityType.EMAIL,
                               subject=f"Confirmed the subscription to {name or 'marketing mail'}",
                               body=f"{request.email}, through {request.form or 'the subscription form'}")
        record_event(session, type="marketing.confirmed", entity_type="Customer", entity_id=customer.id, actor=SYSTEM,
                     payload={"email": request.email, "list": request.list_key, "form": request.form,
                              "consent": request.id})
    return ConfirmResult(customer.id, request.email, request.list_key, already=False, suppressed=still)


# --- unsubscribing ---------------------------------------------------------------------------


def unsubscribe_token(runtime: Runtime, *, recipient_id: int | None = None, customer_id: int | None = None,
                      list_key: str = "") -> str:
    """For a campaign's recipient (List-Unsubscribe), or a customer and list (other mail)."""
    if recipient_id is not None:
        return tokens.make(runtime.key, "unsubscribe", {"r": recipient_id})
    if customer_id is None:
        raise ValueError("an unsubscribe token names a recipient or a customer")
    return tokens.make(runtime.key, "unsubscribe", {"c": customer_id, "l": list_key})


async def describe_unsubscribe(db: Any, runtime: Runtime, token: str) -> UnsubscribeTarget:
    async with db.reader() as session:
        return await _target(session, _read(runtime, "unsubscribe", token))


async def _target(session: AsyncSession, payload: dict[str, Any]) -> UnsubscribeTarget:
    recipient = campaign = None
    if isinstance(payload.get("r"), int):
        recipient = await session.get(Recipient, payload["r"])
        campaign = await session.get(Campaign, recipient.campaign_id) if recipient else None
        if recipient is None or campaign is None:
            raise _invalid()
        customer_id, list_key = recipient.customer_id, campaign.list_key or ""
    elif isinstance(payload.get("c"), int) and isinstance(payload.get("l", ""), str):
        customer_id, list_key = payload["c"], payload.get("l", "")
    else:
        raise _invalid()
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise _invalid("This address is no longer on file.")
    emails = [e.address for e in (await emails_for(session, [customer_id])).get(customer_id, [])]
    if recipient is not None and normal(recipient.email) not in emails:
        emails.insert(0, normal(recipient.email))
    blocked = (await session.execute(sa.select(Suppression.email, Suppression.list_key).where(
        Suppression.email.in_(emails or [""]), Suppression.list_key.in_(["", list_key])))).all()
    suppressed_everywhere = {e for e, key in blocked if not key}
    return UnsubscribeTarget(
        customer_id=customer_id, emails=tuple(emails), list_key=list_key, list_name=await _list_name(session, list_key),
        campaign_id=campaign.id if campaign else None, recipient_id=recipient.id if recipient else None,
        campaign_name=campaign.name if campaign else None,
        unsubscribed=customer.consent_status is ConsentStatus.OPTED_OUT and set(emails) <= suppressed_everywhere,
        left_list=bool(list_key) and set(emails) <= {e for e, _ in blocked})


async def unsubscribe(db: Any, runtime: Runtime, token: str, *, everything: bool | None = None, ip: str | None = None,
                      user_agent: str | None = None, form: str = "unsubscribe link") -> UnsubscribeResult:
    """Leave the campaign's list (or, with ``everything`` or without a list, all marketing mail)."""
    payload = _read(runtime, "unsubscribe", token)
    async with db.writer() as session, session.begin():
        target = await _target(session, payload)
        if target.recipient_id is not None:  # one request at a time per recipient
            await session.execute(sa.select(Recipient.id).where(Recipient.id == target.recipient_id).with_for_update())
        scope = "" if everything or not target.list_key else target.list_key
        added = [e for e in target.emails if await suppress(session, email=e, reason=SuppressionReason.UNSUBSCRIBED,
                                                            list_key=scope, campaign_id=target.campaign_id)]
        customer = await session.get(Customer, target.customer_id)
        assert customer is not None  # _target found it
        live = customer.deleted_at is None  # a deleted customer's addresses are still suppressed
        if not added and (scope or not live or customer.consent_status is ConsentStatus.OPTED_OUT):
            return UnsubscribeResult(customer.id, target.emails, scope, already=True, campaign_id=target.campaign_id)
        now = utcnow()
        for email in target.emails:
            session.add(ConsentRecord(customer_id=customer.id, email=email, action=ConsentAction.WITHDRAWN,
                                      list_key=scope, form=_clip(form, 200), ip=_clip(ip, 64),
                                      user_agent=_clip(user_agent, 500), utm={}, campaign_id=target.campaign_id, at=now))
        if not scope and live:
            await _set_consent(session, customer, ConsentStatus.OPTED_OUT, form)
        await record_engagement(session, kind=EngagementKind.UNSUBSCRIBED, campaign_id=target.campaign_id,
                                recipient_id=target.recipient_id, customer_id=customer.id, detail=scope or None, at=now)
        name = await _list_name(session, scope) if scope else None
        if live:
            await add_system_entry(
                session, customer_id=customer.id, type=ActivityType.EMAIL,
                subject=f"Unsubscribed from the list {name or scope}" if scope else "Unsubscribed from all marketing mail",
                body=f"Through {form}" + (f" in the campaign “{target.campaign_name}”" if target.campaign_name else ""))
        record_event(session, type="marketing.unsubscribed", entity_type="Customer", entity_id=customer.id, actor=SYSTEM,
                     payload={"email": target.emails[0] if target.emails else None, "list": scope,
                              "campaign": global_id("Campaign", target.campaign_id) if target.campaign_id else None})
    return UnsubscribeResult(customer.id, target.emails, scope, already=False, campaign_id=target.campaign_id)


# --- bounces ---------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    return (value.name if isinstance(value, enum.Enum) else str(value)).upper()


def _external_id(inbound: Any) -> str:
    if getattr(inbound, "message_id", None):
        return str(inbound.message_id)
    # A DSN without a Message-ID: what it says stands in for one (a resend of it is a repeat).
    seen = "|".join(str(getattr(inbound, k, "")) for k in ("kind", "addresses", "token", "status", "detail"))
    return "sha256:" + hashlib.sha256(seen.encode()).hexdigest()


async def apply_bounce(db: Any, runtime: Runtime, inbound: Any, *, source: str = "dsn") -> BounceResult:
    """Record a classified inbound message (``bounces.Inbound``) once, and let it take effect:
    HARD and COMPLAINT suppress at once, SOFT after ``soft_bounce_limit`` in 30 days."""
    kind = _kind(inbound.kind)
    async with db.writer() as session, session.begin():
        if not await first_time(session, source, _external_id(inbound), kind):
            return BounceResult(kind, repeat=True)
        if kind not in ("HARD", "SOFT", "COMPLAINT"):
            return BounceResult(kind, repeat=False)
        recipient = await _bounced_recipient(session, runtime, inbound)
        emails = [normal(recipient.email)] if recipient else sorted({normal(a) for a in inbound.addresses or () if a})
        detail = " ".join(str(p) for p in (getattr(inbound, "status", None), getattr(inbound, "detail", None)) if p)[:500]
        campaign_id = recipient.campaign_id if recipient else None
        suppressed: list[str] = []
        known = recipient.customer_id if recipient else None
        customer_id = known
        for email in emails:
            customer = await session.get(Customer, known) if known else await customer_by_email(session, email)
            cid = customer.id if customer else None
            customer_id = customer_id or cid
            engagement = {"HARD": EngagementKind.BOUNCED, "SOFT": EngagementKind.SOFT_BOUNCED,
                          "COMPLAINT": EngagementKind.COMPLAINED}[kind]
            if cid is not None or recipient is not None:
                await record_engagement(session, kind=engagement, campaign_id=campaign_id,
                                        recipient_id=recipient.id if recipient else None, customer_id=cid,
                                        detail=detail or None)
            reason = {"HARD": SuppressionReason.HARD_BOUNCE, "COMPLAINT": SuppressionReason.COMPLAINT}.get(kind)
            if reason is None and await _soft_bounces(session, email, cid) >= runtime.config.tuning.soft_bounce_limit:
                reason = SuppressionReason.SOFT_BOUNCES
            if reason is not None and await suppress(session, email=email, reason=reason, campaign_id=campaign_id,
                                                     detail=detail or None):
                suppressed.append(email)
            elif reason is SuppressionReason.COMPLAINT:  # outranks a reason a new opt-in would lift
                await session.execute(sa.update(Suppression).where(
                    Suppression.email == email, Suppression.list_key == "", Suppression.reason.in_(LIFTED))
                    .values(reason=reason, detail=detail or None, campaign_id=campaign_id))
            if cid is None:
                continue
            if kind != "SOFT":
                what = "bounced" if kind == "HARD" else "was reported as spam"
                await add_system_entry(session, customer_id=cid, type=ActivityType.EMAIL,
                                       subject=f"Marketing mail to {email} {what}: the address is suppressed",
                                       body=detail or None)
            record_event(session, type="marketing.bounced", entity_type="Customer", entity_id=cid, actor=SYSTEM,
                         payload={"email": email, "kind": kind, "suppressed": email in suppressed, "detail": detail,
                                  "campaign": global_id("Campaign", campaign_id) if campaign_id else None})
    return BounceResult(kind, repeat=False, emails=tuple(emails), suppressed=tuple(suppressed),
                        recipient_id=recipient.id if recipient else None, campaign_id=campaign_id,
                        customer_id=customer_id)


async def _bounced_recipient(session: AsyncSession, runtime: Runtime, inbound: Any) -> Recipient | None:
    token = getattr(inbound, "token", None)
    recipient_id = tokens.verp_recipient(runtime.key, token) if token else None
    if recipient_id is not None:
        found = await session.get(Recipient, recipient_id)
        if found is not None:
            return found
    addresses = sorted({normal(a) for a in getattr(inbound, "addresses", None) or () if a})
    if not addresses:
        return None
    return await session.scalar(
        sa.select(Recipient).where(Recipient.email.in_(addresses), Recipient.sent_at >= utcnow() - SOFT_WINDOW)
        .order_by(Recipient.sent_at.desc(), Recipient.id.desc()).limit(1))


async def _soft_bounces(session: AsyncSession, email: str, customer_id: int | None) -> int:
    """Soft bounces of ``email`` within 30 days (this one included)."""
    mine = Recipient.email == email
    if customer_id is not None:
        mine = sa.or_(mine, sa.and_(Engagement.recipient_id.is_(None), Engagement.customer_id == customer_id))
    return int(await session.scalar(
        sa.select(sa.func.count(Engagement.id)).select_from(Engagement)
        .outerjoin(Recipient, Recipient.id == Engagement.recipient_id)
        .where(Engagement.kind == EngagementKind.SOFT_BOUNCED, Engagement.at >= utcnow() - SOFT_WINDOW, mine)) or 0)


async def retry_after(db: Any, runtime: Runtime, ip: str | None) -> int | None:
    """Seconds until ``ip`` may sign up again, or None while it is below ``form_rate`` an hour."""
    limit = runtime.config.tuning.form_rate
    if not ip or limit <= 0:
        return None
    since = utcnow() - timedelta(hours=1)
    async with db.reader() as session:
        times = list(await session.scalars(
            sa.select(ConsentRecord.at).where(ConsentRecord.ip == ip[:64], ConsentRecord.action == ConsentAction.REQUESTED,
                                              ConsentRecord.at >= since).order_by(ConsentRecord.at.desc()).limit(limit)))
    if len(times) < limit:
        return None
    return max(1, int((times[-1] + timedelta(hours=1) - utcnow()).total_seconds()) + 1)
