"""What the marketing plugin holds on a customer, for exports and erasure (the privacy hooks),
and for merging duplicate customers (``merge``).

Erasure deletes the consent records (with their addresses, IP addresses and user agents), the
engagement rows, and replaces the address on the customer's campaign recipient rows. Suppression
entries stay: an erased person must not be mailed again by a later import of their address, and
keeping the address only to honour an objection is what the suppression list is for.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import ids
from crm_marketing.models import ConsentRecord, Engagement, Recipient, Suppression


async def export(customer_id: int, session: AsyncSession) -> dict[str, Any]:
    consents = list(await session.scalars(sa.select(ConsentRecord).where(ConsentRecord.customer_id == customer_id)
                                          .order_by(ConsentRecord.id)))
    recipients = list(await session.scalars(sa.select(Recipient).where(Recipient.customer_id == customer_id)
                                            .order_by(Recipient.id)))
    engagements = list(await session.scalars(sa.select(Engagement).where(Engagement.customer_id == customer_id)
                                             .order_by(Engagement.id)))
    emails = {c.email for c in consents} | {r.email for r in recipients}
    suppressions = list(await session.scalars(sa.select(Suppression).where(Suppression.email.in_(sorted(emails))))) if emails else []
    return {
        "consents": [{"action": c.action.value, "email": c.email, "list": c.list_key or None, "form": c.form,
                      "policyText": c.policy_text, "ip": c.ip, "userAgent": c.user_agent, "utm": c.utm,
                      "at": c.at.isoformat()} for c in consents],
        "campaignsReceived": [{"campaign": ids.encode("Campaign", r.campaign_id), "email": r.email, "status": r.status.value,
                               "sentAt": r.sent_at.isoformat() if r.sent_at else None} for r in recipients],
        "engagements": [{"kind": e.kind.value, "campaign": ids.encode("Campaign", e.campaign_id) if e.campaign_id else None,
                         "at": e.at.isoformat()} for e in engagements],
        "suppressions": [{"email": s.email, "list": s.list_key or None, "reason": s.reason.value,
                          "at": s.created_at.isoformat()} for s in suppressions],
    }


async def erase(customer_id: int, session: AsyncSession) -> None:
    await session.execute(sa.delete(ConsentRecord).where(ConsentRecord.customer_id == customer_id))
    await session.execute(sa.delete(Engagement).where(Engagement.customer_id == customer_id))
    await session.execute(sa.update(Recipient).where(Recipient.customer_id == customer_id).values(
        email=sa.literal("erased-") + sa.cast(Recipient.id, sa.String) + sa.literal("@invalid")))


async def merge(session: AsyncSession, survivor_id: int, merged_ids: list[int], dry_run: bool) -> dict[str, int]:
    """Consent records and engagements follow the survivor (the consent's evidence stays with the
    person it is about). A campaign's recipient row moves unless the survivor received that campaign
    too: then the merged customer's row stays as it is, the record of a mail sent to them."""
    counts: dict[str, int] = {}
    for name, model in (("consents", ConsentRecord), ("engagements", Engagement)):
        where = model.customer_id.in_(merged_ids)
        counts[name] = int(await session.scalar(sa.select(sa.func.count()).select_from(model).where(where)) or 0)
        if counts[name] and not dry_run:
            await session.execute(sa.update(model).where(where).values(customer_id=survivor_id))
    received = sa.select(Recipient.campaign_id).where(Recipient.customer_id == survivor_id)
    movable = sa.and_(Recipient.customer_id.in_(merged_ids), Recipient.campaign_id.not_in(received))
    counts["recipients"] = int(await session.scalar(
        sa.select(sa.func.count(sa.distinct(Recipient.campaign_id))).where(movable)) or 0)
    if counts["recipients"] and not dry_run:
        # One campaign's rows of several merged customers: the oldest moves, the others stay.
        first = sa.select(sa.func.min(Recipient.id)).where(Recipient.customer_id.in_(merged_ids)).group_by(Recipient.campaign_id)
        await session.execute(sa.update(Recipient).where(movable, Recipient.id.in_(first)).values(customer_id=survivor_id))
    return {name: n for name, n in counts.items() if n}
