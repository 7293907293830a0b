"""A campaign's statistics, computed in SQL for many campaigns at once (a DataLoader's batch):
five statements whatever the number of campaigns.

Delivery comes from the recipient rows (the audience snapshot and send queue): ``pending`` is
PENDING, CLAIMED and SENDING together. Engagement comes from ``crm_marketing_engagements``:
``opens`` and ``clicks`` count every row, ``opened``, ``clicked``, ``bounced``, ``soft_bounced``,
``unsubscribed`` and ``complained`` count distinct customers (or recipients, for a row without a
customer); a provider's result for an address no customer has counts in the totals only.

Attribution (``leads``, ``opportunities``, ``orders``, ``revenue``):

- A customer is *touched* by a campaign when they clicked one of its links, or signed up through
  the subscription form from it: a consent record that names the campaign (``campaign_id``) or
  whose ``utm_campaign`` is the campaign's ``c<id>`` or its global ID.
- The **first touch** counts: each customer's earliest touch by the campaign opens a window of
  ``attribution_days`` days (both ends included). Several touches never count an outcome twice,
  and each campaign attributes on its own (one order may count for two campaigns that both
  touched its customer).
- A **lead** is a touched customer created in the window (the form creates the customer a moment
  before it records the consent, so a minute before the touch counts too); an **opportunity**
  is one of theirs created in the window (not deleted); an **order** one of theirs placed
  (``ordered_at``) in the window, not cancelled or refunded; **revenue** sums those orders'
  totals per currency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import ids
from crm_graph.core.money import Money, round_amount
from crm_graph.customers.models import Customer
from crm_graph.sales.models import Opportunity, Order, OrderStatus
from crm_marketing.models import (
    ConsentAction,
    ConsentRecord,
    Engagement,
    EngagementKind,
    Link,
    Recipient,
    RecipientStatus,
)

LEAD_SLACK_DAYS = 1 / 1440  # a minute


@dataclass(frozen=True)
class LinkStats:
    url: str
    clicks: int
    unique_clicks: int


@dataclass
class CampaignStats:
    recipients: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    pending: int = 0
    unconfirmed: int = 0
    bounced: int = 0
    soft_bounced: int = 0
    opened: int = 0
    opens: int = 0
    clicked: int = 0
    clicks: int = 0
    unsubscribed: int = 0
    complained: int = 0
    links: list[LinkStats] = field(default_factory=list)  # most clicked first
    leads: int = 0
    opportunities: int = 0
    orders: int = 0
    revenue: list[Money] = field(default_factory=list)  # per currency, by currency code


_STATUS = {RecipientStatus.SENT: "sent", RecipientStatus.FAILED: "failed", RecipientStatus.SKIPPED: "skipped",
           RecipientStatus.PENDING: "pending", RecipientStatus.CLAIMED: "pending", RecipientStatus.SENDING: "pending",
           RecipientStatus.UNCONFIRMED: "unconfirmed"}
_UNIQUE = {EngagementKind.OPENED: "opened", EngagementKind.CLICKED: "clicked", EngagementKind.BOUNCED: "bounced",
           EngagementKind.SOFT_BOUNCED: "soft_bounced", EngagementKind.UNSUBSCRIBED: "unsubscribed",
           EngagementKind.COMPLAINED: "complained"}
_TOTAL = {EngagementKind.OPENED: "opens", EngagementKind.CLICKED: "clicks"}


def _distinct_people() -> sa.ColumnElement[int]:
    """Distinct customers, plus distinct recipients among rows without a customer."""
    return sa.func.count(sa.distinct(Engagement.customer_id)) + sa.func.count(
        sa.distinct(sa.case((Engagement.customer_id.is_(None), Engagement.recipient_id))))


def _days(session: AsyncSession, start: Any, end: Any) -> sa.ColumnElement[Any]:
    """``end - start`` in (fractional) days."""
    if session.bind.dialect.name == "postgresql":
        return sa.extract("epoch", end - start) / 86400
    return sa.func.julianday(end) - sa.func.julianday(start)  # SQLite keeps UTC timestamps as text


async def campaign_stats(session: AsyncSession, campaign_ids: list[int], *, attribution_days: int) -> dict[int, CampaignStats]:
    """The statistics of each of ``campaign_ids`` (zeros for one without rows)."""
    wanted = sorted(set(campaign_ids))
    out = {cid: CampaignStats() for cid in wanted}
    if not wanted:
        return out
    rows = await session.execute(
        sa.select(Recipient.campaign_id, Recipient.status, sa.func.count())
        .where(Recipient.campaign_id.in_(wanted)).group_by(Recipient.campaign_id, Recipient.status))
    for cid, status, count in rows.all():
        stats = out[cid]
        stats.recipients += count
        setattr(stats, _STATUS[status], getattr(stats, _STATUS[status]) + count)

    rows = await session.execute(
        sa.select(Engagement.campaign_id, Engagement.kind, sa.func.count(), _distinct_people())
        .where(Engagement.campaign_id.in_(wanted)).group_by(Engagement.campaign_id, Engagement.kind))
    for cid, kind, total, unique in rows.all():
        setattr(out[cid], _UNIQUE[kind], unique)
        if kind in _TOTAL:
            setattr(out[cid], _TOTAL[kind], total)

    clicks = sa.func.count(Engagement.id)
    rows = await session.execute(
        sa.select(Link.campaign_id, Link.url, clicks, _distinct_people())
        .outerjoin(Engagement, sa.and_(Engagement.link_id == Link.id, Engagement.kind == EngagementKind.CLICKED))
        .where(Link.campaign_id.in_(wanted)).group_by(Link.campaign_id, Link.id, Link.url)
        .order_by(Link.campaign_id, clicks.desc(), Link.id))
    for cid, url, total, unique in rows.all():
        out[cid].links.append(LinkStats(url=url, clicks=total, unique_clicks=unique))

    await _attribution(session, wanted, attribution_days, out)
    return out


def _first_touches(campaign_ids: Sequence[int]) -> Any:
    """(campaign_id, customer_id, touch): each customer's first touch by each campaign."""
    tags = {f"c{cid}": cid for cid in campaign_ids} | {ids.encode("Campaign", cid): cid for cid in campaign_ids}
    utm = ConsentRecord.utm["utm_campaign"].as_string()
    signed_up = ConsentRecord.action != ConsentAction.WITHDRAWN
    touches = sa.union_all(
        sa.select(Engagement.campaign_id.label("campaign_id"), Engagement.customer_id.label("customer_id"),
                  Engagement.at.label("at"))
        .where(Engagement.campaign_id.in_(campaign_ids), Engagement.kind == EngagementKind.CLICKED,
               Engagement.customer_id.is_not(None)),
        sa.select(ConsentRecord.campaign_id, ConsentRecord.customer_id, ConsentRecord.at)
        .where(ConsentRecord.campaign_id.in_(campaign_ids), signed_up),
        sa.select(sa.case(tags, value=utm), ConsentRecord.customer_id, ConsentRecord.at)
        .where(utm.in_(list(tags)), signed_up),
    ).subquery("touches")
    return (
        sa.select(touches.c.campaign_id, touches.c.customer_id, sa.func.min(touches.c.at).label("touch"))
        .group_by(touches.c.campaign_id, touches.c.customer_id)
        .cte("first_touch")
    )


async def _attribution(session: AsyncSession, campaign_ids: Sequence[int], days: int, out: dict[int, CampaignStats]) -> None:
    first = _first_touches(campaign_ids)

    def within(column: Any, slack: float = 0.0) -> sa.ColumnElement[bool]:
        span = _days(session, first.c.touch, column)
        return sa.and_(span >= -slack, span <= days) if slack else sa.and_(column >= first.c.touch, span <= days)

    leads = (
        sa.select(first.c.campaign_id, sa.literal("leads").label("what"), sa.func.count(sa.distinct(Customer.id)))
        .join(Customer, Customer.id == first.c.customer_id)
        .where(within(Customer.created_at, LEAD_SLACK_DAYS))
        .group_by(first.c.campaign_id)
    )
    opportunities = (
        sa.select(first.c.campaign_id, sa.literal("opportunities").label("what"), sa.func.count(Opportunity.id))
        .join(Opportunity, Opportunity.customer_id == first.c.customer_id)
        .where(Opportunity.deleted_at.is_(None), within(Opportunity.created_at))
        .group_by(first.c.campaign_id)
    )
    for cid, what, count in (await session.execute(sa.union_all(leads, opportunities))).all():
        setattr(out[cid], what, count)

    rows = await session.execute(
        sa.select(first.c.campaign_id, Order.currency, sa.func.count(Order.id), sa.func.sum(Order.total))
        .join(Order, Order.customer_id == first.c.customer_id)
        .where(Order.status.not_in([OrderStatus.CANCELLED, OrderStatus.REFUNDED]), within(Order.ordered_at))
        .group_by(first.c.campaign_id, Order.currency)
        .order_by(first.c.campaign_id, Order.currency))
    for cid, currency, count, total in rows.all():
        out[cid].orders += count
        out[cid].revenue.append(Money(round_amount(Decimal(total or 0), currency), currency))
