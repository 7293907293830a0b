"""Campaigns: drafts, the audience snapshot, pause / resume / cancel, test sends and previews.

Starting a campaign takes its audience once, in the same transaction as the status change: the
segment's members who are OPTED_IN, have a primary email and are not suppressed (globally or for
the campaign's list), one row per address. That snapshot is the campaign's audience for good and
the queue the sender works through (sender.py). A segment with no such member is refused
(``NO_RECIPIENTS``) and the campaign stays a draft.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import ids
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import INVALID_STATE, INVALID_VALUE, REQUIRED, ErrorCollector, FieldError, NotFound, ValidationFailed
from crm_graph.core.events import record_event
from crm_graph.core.filters import FilterError
from crm_graph.customers import validation
from crm_graph.customers.models import ConsentStatus, Customer, CustomerEmail
from crm_graph.segments.models import Segment
from crm_graph.segments.service.reads import condition as segment_condition
from crm_marketing import render
from crm_marketing.models import Campaign, CampaignStatus, MarketingList, Recipient, RecipientStatus, Suppression
from crm_marketing.runtime import Runtime

NO_RECIPIENTS = "NO_RECIPIENTS"
TEMPLATE_CODES = ("TEMPLATE_SYNTAX", "UNKNOWN_VARIABLE", "UNSAFE_TEMPLATE", "TOO_LARGE", "RENDER_FAILED")
EDITABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)
MAX_TEST_ADDRESSES = 10


def campaign_payload(c: Campaign) -> dict[str, Any]:
    return {"name": c.name, "status": c.status.value, "segment": ids.encode("Segment", c.segment_id),
            "audience": c.audience, "scheduledAt": c.scheduled_at}


def _address(value: Any, field: str, errors: ErrorCollector, *, display: bool) -> str | None:
    """An address (``display``: ``Name <a@b>`` allowed), checked with email-validator."""
    from email.utils import formataddr, parseaddr

    text = str(value or "").strip()
    if not text:
        return None
    name, address = parseaddr(text)
    try:
        clean = validation.email(address)
    except Exception:  # noqa: BLE001 - validation raises its own InvalidValue
        errors.add(field, "INVALID_EMAIL", f"{field} is not a valid email address.")
        return None
    if name and not display:
        return clean
    return formataddr((name, clean)) if name else clean


async def _check(session: AsyncSession, runtime: Runtime, data: Mapping[str, Any], errors: ErrorCollector,
                 current: Campaign | None = None) -> dict[str, Any]:
    def pick(key: str) -> Any:
        return data[key] if key in data else (getattr(current, _COLUMNS[key]) if current is not None else None)

    out: dict[str, Any] = {}
    name = str(pick("name") or "").strip()
    if not 1 <= len(name) <= 200:
        errors.add("name", INVALID_VALUE if name else REQUIRED, "name is 1 to 200 characters.")
    subject = str(pick("subject") or "").strip()
    if not 1 <= len(subject) <= 500:
        errors.add("subject", INVALID_VALUE if subject else REQUIRED, "subject is 1 to 500 characters.")
    html = pick("html")
    if not isinstance(html, str) or not html.strip():
        errors.add("html", REQUIRED, "The campaign needs an HTML template.")
        html = None
    text = pick("text")
    text = text if isinstance(text, str) and text.strip() else None
    if subject and html:
        try:
            render.check(subject, html, text)
        except render.TemplateProblem as problem:
            errors.add(problem.part, problem.code, problem.message)
    segment_id = pick("segment_id")
    if segment_id is None:
        errors.add("segmentId", REQUIRED, "Name the segment to send to.")
    elif await session.scalar(sa.select(Segment.id).where(Segment.id == segment_id, Segment.deleted_at.is_(None))) is None:
        errors.add("segmentId", "NOT_FOUND", "The segment was not found.")
    from_address = _address(pick("from_address") or runtime.config.mail.mail_from, "fromAddress", errors, display=True)
    reply_to = _address(pick("reply_to"), "replyTo", errors, display=False)
    list_key = str(pick("list_key") or "")
    if list_key and await session.scalar(sa.select(MarketingList.id).where(MarketingList.key == list_key)) is None:
        errors.add("list", "NOT_FOUND", f"There is no mailing list {list_key!r}.")
    scheduled_at = pick("scheduled_at")
    if "scheduled_at" in data and scheduled_at is not None and scheduled_at <= utcnow():
        errors.add("scheduledAt", INVALID_VALUE, "scheduledAt is in the future.")
    out.update(name=name, subject=subject, html=html, text=text, segment_id=segment_id, from_address=from_address,
               reply_to=reply_to, list_key=list_key, scheduled_at=scheduled_at,
               track_opens=bool(pick("track_opens")), track_clicks=bool(pick("track_clicks")))
    return out


_COLUMNS = {k: k for k in ("name", "subject", "html", "text", "segment_id", "from_address", "reply_to", "list_key",
                           "scheduled_at", "track_opens", "track_clicks")}


async def create_campaign(session: AsyncSession, runtime: Runtime, *, actor: Actor, data: Mapping[str, Any]) -> Campaign:
    errors = ErrorCollector()
    values = await _check(session, runtime, data, errors)
    errors.raise_if_any()
    now = utcnow()
    campaign = Campaign(**values, status=CampaignStatus.DRAFT, created_by=actor.label, created_at=now, updated_at=now)
    session.add(campaign)
    await session.flush()
    record_event(session, type="campaign.created", entity_type="Campaign", entity_id=campaign.id, actor=actor,
                 payload=campaign_payload(campaign))
    return campaign


async def update_campaign(session: AsyncSession, runtime: Runtime, *, actor: Actor, campaign_id: int,
                          data: Mapping[str, Any]) -> Campaign:
    campaign = await _locked(session, campaign_id)
    if campaign.status not in EDITABLE:
        raise ValidationFailed([FieldError("id", INVALID_STATE, f"A {campaign.status.value} campaign cannot be changed.")])
    errors = ErrorCollector()
    values = await _check(session, runtime, data, errors, current=campaign)
    errors.raise_if_any()
    for key, value in values.items():
        setattr(campaign, key, value)
    campaign.updated_at = utcnow()
    return campaign


async def _locked(session: AsyncSession, campaign_id: int) -> Campaign:
    campaign = await session.scalar(sa.select(Campaign).where(Campaign.id == campaign_id).with_for_update())
    if campaign is None:
        raise NotFound("The campaign", "id")
    return campaign


async def get_campaign(session: AsyncSession, campaign_id: int) -> Campaign | None:
    return await session.get(Campaign, campaign_id)


async def campaigns_by_ids(session: AsyncSession, pks: Sequence[int]) -> dict[int, Campaign]:
    return {c.id: c for c in await session.scalars(sa.select(Campaign).where(Campaign.id.in_(list(pks))))}


def _event(session: AsyncSession, campaign: Campaign, actor: Actor, what: str, **data: Any) -> None:
    record_event(session, type=f"campaign.{what}", entity_type="Campaign", entity_id=campaign.id, actor=actor,
                 payload={**campaign_payload(campaign), **data})


async def start_campaign(session: AsyncSession, runtime: Runtime, *, actor: Actor, campaign_id: int,
                         now: datetime | None = None) -> Campaign:
    """DRAFT -> SCHEDULED (a future ``scheduledAt``) or SENDING with its audience taken now."""
    now = now or utcnow()
    campaign = await _locked(session, campaign_id)
    if campaign.status not in EDITABLE:
        raise ValidationFailed([FieldError("id", INVALID_STATE, f"A {campaign.status.value} campaign cannot be started.")])
    if campaign.status is CampaignStatus.DRAFT and campaign.scheduled_at is not None and campaign.scheduled_at > now:
        campaign.status, campaign.updated_at = CampaignStatus.SCHEDULED, now
        _event(session, campaign, actor, "scheduled")
        return campaign
    count = await take_audience(session, campaign)
    if count == 0:
        raise ValidationFailed([FieldError("segmentId", NO_RECIPIENTS, "No member of the segment may receive this mail: none "
                                           "is OPTED_IN with an email address that is not suppressed.")])
    campaign.status, campaign.audience, campaign.started_at, campaign.updated_at = CampaignStatus.SENDING, count, now, now
    _event(session, campaign, actor, "started", audience=count)
    return campaign


async def take_audience(session: AsyncSession, campaign: Campaign) -> int:
    """Insert the campaign's recipients (the snapshot); returns how many."""
    segment = await session.get(Segment, campaign.segment_id)
    if segment is None or segment.deleted_at is not None:
        raise ValidationFailed([FieldError("segmentId", "NOT_FOUND", "The campaign's segment no longer exists.")])
    keys = [""] if not campaign.list_key else ["", campaign.list_key]
    try:
        members = await segment_condition(session, segment)
    except FilterError as exc:
        raise ValidationFailed([FieldError("segmentId", "INVALID_SEGMENT", f"The segment's filter no longer works: {exc}")]) from None
    now = utcnow()
    rows = (
        sa.select(sa.literal(campaign.id), Customer.id, CustomerEmail.address,
                  sa.literal(RecipientStatus.PENDING.value), sa.literal(0), sa.literal(now, Recipient.__table__.c.next_attempt_at.type))
        .join(CustomerEmail, sa.and_(CustomerEmail.customer_id == Customer.id, CustomerEmail.is_primary.is_(True)))
        .where(Customer.deleted_at.is_(None), Customer.erased_at.is_(None),
               Customer.consent_status == ConsentStatus.OPTED_IN, members,
               ~sa.exists().where(Suppression.email == sa.func.lower(CustomerEmail.address), Suppression.list_key.in_(keys)))
        .order_by(Customer.id)
    )
    insert = (postgresql if session.bind.dialect.name == "postgresql" else sqlite).insert
    stmt = insert(Recipient).from_select(["campaign_id", "customer_id", "email", "status", "attempts", "next_attempt_at"], rows)
    await session.execute(stmt.on_conflict_do_nothing())
    return int(await session.scalar(sa.select(sa.func.count()).select_from(Recipient).where(Recipient.campaign_id == campaign.id)) or 0)


async def pause_campaign(session: AsyncSession, *, actor: Actor, campaign_id: int) -> Campaign:
    return await _move(session, actor, campaign_id, (CampaignStatus.SENDING,), CampaignStatus.PAUSED, "paused")


async def resume_campaign(session: AsyncSession, *, actor: Actor, campaign_id: int) -> Campaign:
    return await _move(session, actor, campaign_id, (CampaignStatus.PAUSED,), CampaignStatus.SENDING, "resumed")


async def cancel_campaign(session: AsyncSession, *, actor: Actor, campaign_id: int) -> Campaign:
    campaign = await _move(session, actor, campaign_id,
                           (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED),
                           CampaignStatus.CANCELLED, "cancelled")
    # What no sender has taken yet is not sent; a message being sent right now finishes.
    await session.execute(sa.update(Recipient).where(Recipient.campaign_id == campaign.id,
                                                     Recipient.status == RecipientStatus.PENDING)
                          .values(status=RecipientStatus.SKIPPED, error="the campaign was cancelled"))
    campaign.finished_at = utcnow()
    return campaign


async def _move(session: AsyncSession, actor: Actor, campaign_id: int, sources: tuple[CampaignStatus, ...],
                target: CampaignStatus, what: str) -> Campaign:
    campaign = await _locked(session, campaign_id)
    if campaign.status not in sources:
        raise ValidationFailed([FieldError("id", INVALID_STATE, f"A {campaign.status.value} campaign cannot be {what}.")])
    campaign.status, campaign.updated_at = target, utcnow()
    _event(session, campaign, actor, what)
    return campaign


async def start_due(session: AsyncSession, runtime: Runtime, *, actor: Actor, now: datetime | None = None) -> list[int]:
    """Start SCHEDULED campaigns whose time has come (the sender's job calls it)."""
    now = now or utcnow()
    due = list(await session.scalars(sa.select(Campaign.id).where(Campaign.status == CampaignStatus.SCHEDULED,
                                                                  Campaign.scheduled_at <= now)))
    started = []
    for campaign_id in due:
        try:
            async with session.begin_nested():
                await start_campaign(session, runtime, actor=actor, campaign_id=campaign_id, now=now)
            started.append(campaign_id)
        except ValidationFailed:
            campaign = await session.get(Campaign, campaign_id)
            if campaign is not None:  # nobody to send to: it ends, empty, rather than waiting forever
                campaign.status, campaign.audience, campaign.finished_at = CampaignStatus.SENT, 0, now
    return started


# --- rendering ---------------------------------------------------------------------------------


def customer_context(customer: Customer, email: str) -> dict[str, Any]:
    return {
        "id": ids.encode("Customer", customer.id), "display_name": customer.display_name, "first_name": customer.first_name,
        "last_name": customer.last_name, "organization_name": customer.organization_name, "email": email,
        "city": customer.city, "country": customer.country, "locale": customer.locale, "job_title": customer.job_title,
    }


def campaign_context(campaign: Campaign) -> dict[str, Any]:
    return {"name": campaign.name, "id": ids.encode("Campaign", campaign.id)}


@dataclass(frozen=True)
class Preview:
    subject: str
    html: str
    text: str
    recipient: str


async def preview(session: AsyncSession, runtime: Runtime, *, campaign_id: int, customer_id: int | None) -> Preview:
    """The campaign as a customer would get it (their fields; links not rewritten)."""
    campaign = await get_campaign(session, campaign_id)
    if campaign is None:
        raise NotFound("The campaign", "id")
    if customer_id is None:
        context = {**render.SAMPLE, "campaign": campaign_context(campaign)}
    else:
        customer = await session.get(Customer, customer_id)
        if customer is None or customer.deleted_at is not None:
            raise NotFound("The customer", "customerId")
        email = await session.scalar(sa.select(CustomerEmail.address).where(
            CustomerEmail.customer_id == customer_id, CustomerEmail.is_primary.is_(True))) or ""
        context = {"customer": customer_context(customer, email), "campaign": campaign_context(campaign),
                   "unsubscribe_url": runtime.url("/mail/u/preview")}
    try:
        out = render.render(subject=campaign.subject, html=campaign.html, text=campaign.text, context=context)
    except render.TemplateProblem as problem:
        raise ValidationFailed([FieldError(problem.part, problem.code, problem.message)]) from None
    return Preview(out.subject, out.html, out.text, context["customer"]["email"])


def checked_test_addresses(addresses: Sequence[str]) -> list[str]:
    errors = ErrorCollector()
    out: list[str] = []
    if not addresses:
        errors.add("addresses", REQUIRED, "Give at least one address.")
    if len(addresses) > MAX_TEST_ADDRESSES:
        errors.add("addresses", "TOO_MANY", f"At most {MAX_TEST_ADDRESSES} addresses per test send.")
    for i, value in enumerate(addresses[:MAX_TEST_ADDRESSES]):
        address = _address(value, f"addresses.{i}", errors, display=False)
        if address:
            out.append(address)
    errors.raise_if_any()
    return list(dict.fromkeys(out))
