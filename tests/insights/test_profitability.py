"""Customer and segment profitability from hand-built orders, tickets and campaign sends: revenue
minus discounts, support time at the hourly rate and marketing messages at their cost, worked
out again here from the rates; statement counts and who sees it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm_graph.core import ids
from crm_graph.core.clock import utcnow
from crm_graph.insights.config import InsightsSettings
from crm_graph.sales.models import OrderStatus, PaymentStatus
from crm_graph.support.models import Ticket, TicketAuthorKind, TicketChannel, TicketComment, TicketPriority, TicketStatus
from crm_graph.testing.auth import make_key
from crm_graph.testing.client import GraphQLClient, asgi_client
from crm_marketing.models import Recipient, RecipientStatus
from tests.segments.factories import customer, order

FIELDS = """currency windowDays orders revenue { amount currency } discounts { amount } tickets agentReplies supportMinutes
  supportCost { amount } messagesSent marketingCost { amount } costToServe { amount } profit { amount }"""
PAGE = f"""query($first: Int, $days: Int) {{ customers(first: $first) {{ edges {{ node {{ id
  profitability(windowDays: $days) {{ {FIELDS} }} }} }} }} }}"""


def sold(session: Any, cid: int, subtotal: str, discount: str, days_ago: int, **kind: Any) -> None:
    row = order(session, cid, subtotal, utcnow() - timedelta(days=days_ago), **kind)
    row.discount, row.tax = Decimal(discount), Decimal("5.00")
    row.total = row.subtotal - row.discount + row.tax


async def _world(db) -> dict[str, int]:
    now = utcnow()
    async with db.writer() as session, session.begin():
        people = {name: await customer(session, lastName=name) for name in ("Ann", "Bob")}
        ann = people["Ann"]
        sold(session, ann, "200.00", "20.00", 10)
        sold(session, ann, "100.00", "0.00", 100)
        sold(session, ann, "999.00", "0.00", 5, currency="USD")  # another currency: left out
        sold(session, ann, "999.00", "0.00", 5, status=OrderStatus.CANCELLED, payment=PaymentStatus.UNPAID)
        for days in (5, 200):
            ticket = Ticket(customer_id=ann, subject="Help", channel=TicketChannel.EMAIL, priority=TicketPriority.NORMAL,
                            status=TicketStatus.OPEN, created_at=now - timedelta(days=days), updated_at=now, version=1)
            session.add(ticket)
            await session.flush()
            kinds = [TicketAuthorKind.AGENT, TicketAuthorKind.CUSTOMER] + ([TicketAuthorKind.AGENT] * 2 if days == 5 else [])
            session.add_all([TicketComment(ticket_id=ticket.id, body="...", public=True, author_kind=k, author="x",
                                           created_at=now - timedelta(days=days)) for k in kinds])
        # One mail per campaign: five sent, one refused.
        session.add_all([Recipient(campaign_id=c, customer_id=ann, email="ann@example.com", status=RecipientStatus.SENT,
                                   sent_at=now - timedelta(days=d), attempts=1) for c, d in enumerate((1, 2, 3, 40, 300))])
        session.add(Recipient(campaign_id=9, customer_id=ann, email="ann@example.com", status=RecipientStatus.FAILED, attempts=3))
    return people


def expected(revenue: str, discounts: str, tickets: int, replies: int, messages: int) -> dict[str, Any]:
    """The figures worked out from the default rates (docs/insights.md)."""
    rates = InsightsSettings()
    minutes = tickets * rates.support_minutes_per_ticket + replies * rates.support_minutes_per_reply
    support = (Decimal(repr(minutes)) * Decimal(repr(rates.support_hourly_rate)) / 60).quantize(Decimal("0.01"))
    marketing = (messages * Decimal(repr(rates.marketing_cost_per_message))).quantize(Decimal("0.01"))
    cost = Decimal(discounts) + support + marketing
    return {"revenue": Decimal(revenue), "discounts": Decimal(discounts), "tickets": tickets, "agentReplies": replies,
            "supportMinutes": minutes, "supportCost": support, "messagesSent": messages, "marketingCost": marketing,
            "costToServe": cost, "profit": Decimal(revenue) - cost}


def plain(p: dict[str, Any]) -> dict[str, Any]:
    out = {k: (Decimal(v["amount"]) if isinstance(v, dict) else v) for k, v in p.items()}
    return {k: out[k] for k in ("revenue", "discounts", "tickets", "agentReplies", "supportMinutes", "supportCost",
                                "messagesSent", "marketingCost", "costToServe", "profit")}


async def _page(client: GraphQLClient, people: dict[str, int], days: int | None = None) -> dict[str, Any]:
    names = {cid: name for name, cid in people.items()}
    data = await client.execute(PAGE, {"first": 20, "days": days})
    nodes = {ids.decode_as(e["node"]["id"], "Customer"): e["node"]["profitability"] for e in data["customers"]["edges"]}
    return {names.get(cid, cid): p for cid, p in nodes.items()}


async def test_revenue_minus_discounts_support_time_and_marketing_messages(client, db):
    people = await _world(db)
    seen = await _page(client, people)
    ann = seen["Ann"]
    assert (ann["currency"], ann["windowDays"], ann["orders"], ann["revenue"]["currency"]) == ("EUR", None, 2, "EUR")
    # Two EUR orders (300 before 20 of discounts), two tickets with 4 agent replies, 5 mails sent.
    assert plain(ann) == expected("300.00", "20.00", tickets=2, replies=4, messages=5)
    assert plain(ann)["profit"] == Decimal("233.28")  # 300 - 20 - (2 x 15 + 4 x 10 min at 40/h: 46.67) - 5 x 0.01
    assert plain(seen["Bob"]) == expected("0", "0", tickets=0, replies=0, messages=0)
    # The last 30 days: one order, one ticket with its three agent replies, three mails.
    recent = (await _page(client, people, days=30))["Ann"]
    assert recent["windowDays"] == 30 and plain(recent) == expected("200.00", "20.00", tickets=1, replies=3, messages=3)

    segment = await client.mutate(
        "mutation { createSegment(input: {name: \"Ann and Bob\", kind: STATIC}) { segment { id } errors { field code message } } }")
    await client.mutate(
        "mutation($s: ID!, $ids: [ID!]!) { addCustomersToSegment(segmentId: $s, customerIds: $ids) { errors { field code message } } }",
        {"s": segment["segment"]["id"], "ids": [ids.encode("Customer", c) for c in people.values()]})
    data = await client.execute(
        f"query($id: ID!) {{ node(id: $id) {{ ... on Segment {{ profitability {{ customers profitPerCustomer {{ amount }} {FIELDS} }} }} }} }}",
        {"id": segment["segment"]["id"]})
    total = data["node"]["profitability"]
    assert total["customers"] == 2 and plain(total) == plain(ann)
    assert Decimal(total["profitPerCustomer"]["amount"]) == (plain(ann)["profit"] / 2).quantize(Decimal("0.01"))


async def test_a_page_costs_the_same_statements_and_the_figures_need_insights_read(client, settings, db, sql_counter):
    people = await _world(db)
    async with db.writer() as session, session.begin():
        for i in range(6):
            await customer(session, lastName=f"X{i}")
    await client.warm_up()
    counts = []
    for n in (2, 8):
        sql_counter.count = 0
        data = await client.execute(PAGE, {"first": n})
        assert len(data["customers"]["edges"]) == n
        counts.append(sql_counter.count)
    assert counts[0] == counts[1] == 2  # the page, every customer's figures
    body = await client.post(PAGE, {"first": 1, "days": 0})
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    narrow_key, _ = await make_key(db, settings, role="SALES", email="rep@example.com", scopes=["customers:read"])
    async with asgi_client(client.app, narrow_key) as http:
        assert set((await _page(GraphQLClient(http, client.app), people)).values()) == {None}
    # A rep sees the orders their scope shows: those of other teams are not counted.
    rep_key, rep_id = await make_key(db, settings, role="SALES", email="other@example.com")
    async with db.writer() as session, session.begin():
        from crm_graph.sales.models import Order

        first = await session.scalar(sa.select(sa.func.min(Order.id)))
        await session.execute(sa.update(Order).where(Order.id == first).values(owner_id=rep_id))
    async with asgi_client(client.app, rep_key) as http:
        ann = (await _page(GraphQLClient(http, client.app), people))["Ann"]
        assert (ann["orders"], ann["revenue"]["amount"], ann["discounts"]["amount"]) == (1, "200.00", "20.00")
