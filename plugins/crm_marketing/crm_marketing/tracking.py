"""Opens and clicks: the signed links the sender puts into campaign mail, and what following
them records.

A click token names a recipient and a link row, never a URL: the redirect target is read from
``crm_marketing_links`` for the recipient's own campaign, so an edited or forged token cannot
send anyone elsewhere (no open redirect). Every open and click is an engagement (totals); the
customer's timeline and the events get the first open of a campaign and the first click of each
link, with the recipient's row locked so two requests at once do not both count as first.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.activities.models import ActivityType
from crm_graph.activities.service import add_system_entry
from crm_graph.core.actor import SYSTEM
from crm_graph.core.events import global_id, record_event
from crm_marketing import tokens
from crm_marketing.engage import record_engagement
from crm_marketing.models import Campaign, Engagement, EngagementKind, Link, Recipient
from crm_marketing.runtime import Runtime


def open_token(runtime: Runtime, recipient_id: int) -> str:
    return tokens.make(runtime.key, "open", {"r": recipient_id})


def click_token(runtime: Runtime, recipient_id: int, link_id: int) -> str:
    return tokens.make(runtime.key, "click", {"r": recipient_id, "l": link_id})


def open_url(runtime: Runtime, recipient_id: int) -> str:
    return runtime.url(f"/mail/o/{open_token(runtime, recipient_id)}.gif")


def click_url(runtime: Runtime, recipient_id: int, link_id: int) -> str:
    return runtime.url(f"/mail/c/{click_token(runtime, recipient_id, link_id)}")


def _payload(runtime: Runtime, purpose: str, token: str, keys: tuple[str, ...]) -> dict[str, int] | None:
    try:
        payload = tokens.read(runtime.key, purpose, token)
    except tokens.TokenError:
        return None
    if not all(isinstance(payload.get(k), int) and not isinstance(payload.get(k), bool) for k in keys):
        return None
    return {k: payload[k] for k in keys}


async def _recipient(session: AsyncSession, recipient_id: int) -> tuple[Recipient, Campaign] | None:
    """The recipient, locked until commit (PostgreSQL; SQLite serialises writers anyway)."""
    recipient = await session.scalar(sa.select(Recipient).where(Recipient.id == recipient_id).with_for_update())
    campaign = await session.get(Campaign, recipient.campaign_id) if recipient is not None else None
    return (recipient, campaign) if recipient is not None and campaign is not None else None


async def _seen(session: AsyncSession, recipient: Recipient, kind: EngagementKind, link_id: int | None = None) -> bool:
    """Whether the recipient did this before (the index on campaign, kind, recipient answers it)."""
    stmt = sa.select(Engagement.id).where(Engagement.campaign_id == recipient.campaign_id, Engagement.kind == kind,
                                          Engagement.recipient_id == recipient.id)
    if link_id is not None:
        stmt = stmt.where(Engagement.link_id == link_id)
    return await session.scalar(stmt.limit(1)) is not None


def _agent(user_agent: str | None) -> str | None:
    return (user_agent or "").strip()[:300] or None


async def record_open(db: Any, runtime: Runtime, token: str, *, ip: str | None = None,
                      user_agent: str | None = None) -> bool:
    """Count an open of the pixel ``token`` names; False (nothing written) for a bad token."""
    wanted = _payload(runtime, "open", token, ("r",))
    if wanted is None:
        return False
    async with db.writer() as session, session.begin():
        found = await _recipient(session, wanted["r"])
        if found is None:
            return False
        recipient, campaign = found
        first = not await _seen(session, recipient, EngagementKind.OPENED)
        await record_engagement(session, kind=EngagementKind.OPENED, campaign_id=campaign.id, recipient_id=recipient.id,
                                customer_id=recipient.customer_id, detail=_agent(user_agent))
        if first:
            await add_system_entry(session, customer_id=recipient.customer_id, type=ActivityType.EMAIL,
                                   subject=f"Opened the campaign “{campaign.name}”", body=campaign.subject)
            record_event(session, type="marketing.opened", entity_type="Customer", entity_id=recipient.customer_id,
                         actor=SYSTEM, payload={"email": recipient.email, "campaign": global_id("Campaign", campaign.id)})
    return True


async def record_click(db: Any, runtime: Runtime, token: str, *, ip: str | None = None,
                       user_agent: str | None = None) -> str | None:
    """Count a click and return the link's stored URL; None (nothing written) for a bad token or
    a link that is not the recipient's campaign's."""
    wanted = _payload(runtime, "click", token, ("r", "l"))
    if wanted is None:
        return None
    async with db.writer() as session, session.begin():
        found = await _recipient(session, wanted["r"])
        if found is None:
            return None
        recipient, campaign = found
        link = await session.scalar(sa.select(Link).where(Link.id == wanted["l"], Link.campaign_id == campaign.id))
        if link is None or urlsplit(link.url).scheme.lower() not in ("http", "https"):
            return None
        first = not await _seen(session, recipient, EngagementKind.CLICKED, link.id)
        await record_engagement(session, kind=EngagementKind.CLICKED, campaign_id=campaign.id, recipient_id=recipient.id,
                                customer_id=recipient.customer_id, link_id=link.id, detail=link.url[:500])
        if first:
            await add_system_entry(session, customer_id=recipient.customer_id, type=ActivityType.EMAIL,
                                   subject=f"Clicked a link in the campaign “{campaign.name}”", body=link.url)
        record_event(session, type="marketing.clicked", entity_type="Customer", entity_id=recipient.customer_id,
                     actor=SYSTEM, payload={"email": recipient.email, "campaign": global_id("Campaign", campaign.id),
                                            "url": link.url, "link": link.id, "first": first})
        url = link.url
    return url
