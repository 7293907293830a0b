"""Demo segments of every kind, and a first RFM run over the demo orders."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.actor import SYSTEM
from crm_graph.core.ids import encode
from crm_graph.segments import service
from crm_graph.segments.models import Segment

DEMO_SEGMENTS = [
    {"name": "Trade fair contacts", "kind": "STATIC",
     "description": "People met at the autumn trade fair, picked by hand."},
    {"name": "German-speaking VIPs", "kind": "DYNAMIC",
     "description": "VIP customers in Germany, Austria and Switzerland.",
     "filter": {"country": {"in": ["DE", "AT", "CH"]}, "tags": {"containsAny": ["vip"]}}},
    {"name": "Newsletter audience", "kind": "SNAPSHOT",
     "description": "Opted in to email and tagged for the newsletter when the list was drawn.",
     "filter": {"consentStatus": {"eq": "OPTED_IN"}, "tags": {"containsAny": ["newsletter"]}}},
    {"name": "Big spenders gone quiet", "kind": "DYNAMIC",
     "description": "Spent over 1,000 in the last two years but nothing in the last 120 days.",
     "filter": {"and": [{"orders": {"windowDays": 730, "totalSpent": {"gt": "1000"}}},
                        {"orders": {"windowDays": 120, "count": {"eq": 0}}}]}},
    {"name": "Champions", "kind": "DYNAMIC", "description": "RFM champions of the newest run.",
     "filter": {"rfm": {"group": {"eq": "CHAMPIONS"}}}},
    {"name": "Key accounts with open tickets", "kind": "DYNAMIC",
     "description": "KEY value tier and at least one open support ticket.",
     "filter": {"valueTier": {"eq": "KEY"}, "tickets": {"openCount": {"gte": 1}}}},
]


async def seed_segments(session: AsyncSession, *, customer_ids: list[int]) -> int:
    """Create the demo segments that do not exist yet (by name); returns how many were created."""
    existing = set(await session.scalars(sa.select(Segment.name).where(Segment.deleted_at.is_(None))))
    await service.rfm_analysis(session, recompute=True)
    created = 0
    for data in DEMO_SEGMENTS:
        if data["name"] in existing:
            continue
        segment = await service.create_segment(session, actor=SYSTEM, data=data)
        if data["kind"] == "STATIC":
            await service.add_customers(session, actor=SYSTEM, segment_id=segment.id, customer_ids=customer_ids[5:45:4])
        created += 1
    not_vips = {"name": "Outside the German-speaking VIPs", "kind": "DYNAMIC",
                "description": "Everyone else: a segment defined by another segment.", "filter": None}
    if not_vips["name"] not in existing:
        vips = await session.scalar(sa.select(Segment.id).where(Segment.name == "German-speaking VIPs"))
        not_vips["filter"] = {"segment": {"notIn": [encode("Segment", vips)]}}
        await service.create_segment(session, actor=SYSTEM, data=not_vips)
        created += 1
    return created
