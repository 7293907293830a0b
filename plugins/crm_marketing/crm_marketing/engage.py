"""The writes every marketing path shares: an engagement recorded, an address suppressed, an
inbound message recorded once. Tracking links, bounces, unsubscribes and imported provider
results all go through these, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.clock import utcnow
from crm_marketing.models import Engagement, EngagementKind, Inbound, Suppression, SuppressionReason


def _insert(session: AsyncSession):  # type: ignore[no-untyped-def]
    return (postgresql if session.bind.dialect.name == "postgresql" else sqlite).insert


def normal(email: str) -> str:
    return email.strip().lower()


async def record_engagement(
    session: AsyncSession,
    *,
    kind: EngagementKind,
    campaign_id: int | None,
    recipient_id: int | None,
    customer_id: int | None,
    link_id: int | None = None,
    detail: str | None = None,
    at: datetime | None = None,
) -> Engagement:
    row = Engagement(kind=kind, campaign_id=campaign_id, recipient_id=recipient_id, customer_id=customer_id,
                     link_id=link_id, detail=(detail or None) and detail[:500], at=at or utcnow())
    session.add(row)
    await session.flush()
    return row


async def suppress(
    session: AsyncSession,
    *,
    email: str,
    reason: SuppressionReason,
    list_key: str = "",
    campaign_id: int | None = None,
    detail: str | None = None,
) -> bool:
    """Put ``email`` on the suppression list (every list when ``list_key`` is empty). True when it
    was not there yet; an address already suppressed keeps its first reason."""
    result = await session.execute(
        _insert(session)(Suppression).values(
            email=normal(email), list_key=list_key, reason=reason, campaign_id=campaign_id,
            detail=(detail or None) and detail[:500], created_at=utcnow(),
        ).on_conflict_do_nothing(index_elements=["email", "list_key"]).returning(Suppression.id)
    )
    return result.scalar() is not None


async def suppressed(session: AsyncSession, emails: list[str] | set[str], list_key: str = "") -> set[str]:
    """Which of ``emails`` may not receive mail of ``list_key`` (suppressed globally or for it)."""
    wanted = {normal(e) for e in emails}
    if not wanted:
        return set()
    keys = [""] if not list_key else ["", list_key]
    out: set[str] = set()
    chunk = sorted(wanted)
    for start in range(0, len(chunk), 500):
        part = chunk[start:start + 500]
        out.update(await session.scalars(
            sa.select(Suppression.email).where(Suppression.email.in_(part), Suppression.list_key.in_(keys))))
    return out


async def first_time(session: AsyncSession, source: str, external_id: str, kind: str) -> bool:
    """Record an inbound message (a DSN, a provider's result row) before it takes effect: True the
    first time (source, external_id) is seen, False for a repeat, which must then change nothing."""
    result = await session.execute(
        _insert(session)(Inbound).values(source=source, external_id=external_id[:300], kind=kind, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["source", "external_id"]).returning(Inbound.id)
    )
    return result.scalar() is not None
