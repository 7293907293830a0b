"""Helpers of the membership tests: bulk-made customers and the membership events recorded."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from crm_graph.core.events import OutboxEvent
from crm_graph.customers.models import Customer
from crm_graph.segments.models import SegmentMember
from tests.segments.factories import NOW


async def bulk_customers(db: Any, count: int, *, country: str, prefix: str = "B") -> list[int]:
    """``count`` customers in ``country``, inserted in bulk (the service's rules for creating
    customers have tests of their own); returns their ids, ascending."""
    rows = [dict(kind="PERSON", last_name=f"{prefix}{i}", display_name=f"{prefix}{i}", country=country,
                 lifecycle_stage="STABILITY", consent_status="UNKNOWN", version=1, created_at=NOW, updated_at=NOW)
            for i in range(count)]
    async with db.writer() as session, session.begin():
        for start in range(0, count, 5000):
            await session.execute(sa.insert(Customer), rows[start:start + 5000])
        ids = await session.scalars(sa.select(Customer.id).where(Customer.last_name.like(f"{prefix}%"),
                                                                  Customer.country == country).order_by(Customer.id))
        return list(ids)


async def move(db: Any, ids: list[int], country: str) -> None:
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(Customer).where(Customer.id.in_(ids)).values(country=country))


async def member_events(db: Any, after: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of the membership events recorded after outbox row ``after``, in order."""
    async with db.reader() as session:
        rows = await session.execute(
            sa.select(OutboxEvent.type, OutboxEvent.payload)
            .where(OutboxEvent.type.in_(["segment.member_added", "segment.member_removed"]), OutboxEvent.id > after)
            .order_by(OutboxEvent.id)
        )
        return [(t, p["data"]) for t, p in rows.all()]


async def last_event_id(db: Any) -> int:
    async with db.reader() as session:
        return int(await session.scalar(sa.select(sa.func.coalesce(sa.func.max(OutboxEvent.id), 0))))


def moved(events: list[tuple[str, dict[str, Any]]]) -> dict[str, list[int]]:
    """Every customer id each event type names, in event order."""
    out: dict[str, list[int]] = {"segment.member_added": [], "segment.member_removed": []}
    for kind, data in events:
        out[kind].extend(data["customerIds"])
    return out


async def stored(db: Any, segment_id: int) -> set[int]:
    async with db.reader() as session:
        return set(await session.scalars(sa.select(SegmentMember.customer_id).where(SegmentMember.segment_id == segment_id)))
