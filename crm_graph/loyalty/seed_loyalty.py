"""The demo's loyalty program: a point per euro paid, double on the demo's premium products,
three tiers and two rewards. Points for the demo's payments come as the dispatcher delivers
their events once the server runs (pending through the return window, like any payment)."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.actor import SYSTEM
from crm_graph.loyalty import service
from crm_graph.loyalty.models import LoyaltyRule

TIERS = [
    {"key": "silver", "name": "Silver", "threshold": 500, "multiplier": Decimal("1.25")},
    {"key": "gold", "name": "Gold", "threshold": 2000, "multiplier": Decimal("1.5")},
    {"key": "platinum", "name": "Platinum", "threshold": 10000, "multiplier": Decimal(2)},
]
RULES = [
    {"kind": "SPEND", "name": "A point per euro", "points": Decimal(1), "currency": "EUR"},
    {"kind": "EVENT", "name": "Rating a resolved ticket", "points": Decimal(20), "eventType": "ticket.rated",
     "capPoints": 60, "capDays": 365},
]
REWARDS = [
    {"key": "ten-off", "name": "10% off an order", "cost": 500, "percentOff": Decimal(10), "validDays": 60},
    {"key": "fifty-eur", "name": "50 EUR off an order", "cost": 2500, "amountOff": Decimal(50), "currency": "EUR", "validDays": 90},
]


async def seed_loyalty(session: AsyncSession) -> int:
    """Create the demo program unless a program exists; returns how many things were created."""
    if await session.scalar(sa.select(LoyaltyRule.id).limit(1)) is not None:
        return 0
    for tier in TIERS:
        await service.save_tier(session, actor=SYSTEM, data=tier)
    for rule in RULES:
        await service.save_rule(session, actor=SYSTEM, data=rule)
    for reward in REWARDS:
        await service.save_reward(session, actor=SYSTEM, data=reward)
    return len(TIERS) + len(RULES) + len(REWARDS)
