"""What the marketing plugin holds on a customer, for exports and erasure (the privacy hooks).

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
