"""Support demo data: tickets across channels and priorities, some breached, many rated; idempotent."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from crm_graph.core.clock import utcnow
from crm_graph.customers.models import Customer
from crm_graph.seed import seed_demo
from crm_graph.support.seed_support import seed_support

OVERVIEW = """
query($from: DateTime!, $to: DateTime!) {
  all: tickets { totalCount }
  breached: tickets(filter: {slaBreached: true}) { totalCount }
  open: tickets(filter: {status: {in: [NEW, OPEN, PENDING]}}) { totalCount }
  closed: tickets(filter: {status: {eq: CLOSED}}) { totalCount }
  urgent: tickets(filter: {priority: {eq: URGENT}}) { totalCount }
  chat: tickets(filter: {channel: {eq: CHAT}}) { totalCount }
  policies: slaPolicies { totalCount }
  supportStats(from: $from, to: $to) { opened resolved ratings csat satisfactionIndex firstResponseCompliance }
}
"""


async def test_demo_tickets_are_varied_and_created_once(settings, db, client, clock):
    await seed_demo(settings, count=60)  # customers first, then one ticket per customer on top
    now = utcnow()
    async with db.reader() as session:
        ids = list(await session.scalars(sa.select(Customer.id).order_by(Customer.id)))
    async with db.writer() as session, session.begin():
        assert await seed_support(session, now=now, customer_ids=ids, count=50) == 0  # loaded once

    data = await client.execute(OVERVIEW, {"from": (now - timedelta(days=200)).isoformat(), "to": now.isoformat()})
    total = data["all"]["totalCount"]
    assert total == 60
    assert data["policies"]["totalCount"] == 4
    assert 0 < data["breached"]["totalCount"] < total
    assert 0 < data["open"]["totalCount"] < total and data["closed"]["totalCount"] > 0
    assert data["urgent"]["totalCount"] > 0 and data["chat"]["totalCount"] > 0
    stats = data["supportStats"]
    assert stats["opened"] == total and stats["resolved"] > total / 2
    assert stats["ratings"] > stats["resolved"] / 2
    assert 0 < stats["csat"] < 100 and 0 < stats["firstResponseCompliance"] < 100
