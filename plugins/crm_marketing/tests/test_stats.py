"""Campaign statistics: delivery from the recipient rows, unique and total engagement, clicks per
link, and the outcomes attributed to a campaign (leads, opportunities, orders and revenue within
the window after a customer's first touch), with real orders and opportunities made through the
API; the same number of statements for one campaign as for many."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from crm_graph.core import ids
from crm_graph.core.clock import utcnow
from crm_graph.core.money import Money
from crm_marketing.models import (
    Campaign,
    CampaignStatus,
    ConsentAction,
    ConsentRecord,
    Engagement,
    EngagementKind,
    Link,
    Recipient,
    RecipientStatus,
)
from crm_marketing.stats import CampaignStats, LinkStats, campaign_stats

CUSTOMER = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } errors { code } } }"
ORDER = "mutation($i: CreateOrderInput!) { createOrder(input: $i) { order { id } errors { field code message } } }"
OPPORTUNITY = ("mutation($i: CreateOpportunityInput!) { createOpportunity(input: $i) { opportunity { id } "
               "errors { field code message } } }")


async def customer(client, name: str) -> int:  # noqa: ANN001
    made = await client.mutate(CUSTOMER, {"i": {"kind": "PERSON", "lastName": name}})
    return ids.decode(made["customer"]["id"])[1]


async def order(client, customer_id: int, amount: str, currency: str = "EUR", **more: str) -> str:  # noqa: ANN001
    lines = [{"description": "Boots", "quantity": "1", "unitPrice": {"amount": amount, "currency": currency}}]
    data = {"customerId": ids.encode("Customer", customer_id), "currency": currency, "taxRate": "0", "lineItems": lines, **more}
    return (await client.mutate(ORDER, {"i": data}))["order"]["id"]


async def opportunity(client, customer_id: int) -> None:  # noqa: ANN001
    await client.mutate(OPPORTUNITY, {"i": {"title": "Bulk order", "customerId": ids.encode("Customer", customer_id),
                                            "amount": {"amount": "500.00", "currency": "EUR"}}})


async def campaigns(db, n: int) -> list[int]:  # noqa: ANN001
    now = utcnow()
    async with db.writer() as session, session.begin():
        made = [Campaign(name=f"C{i}", subject="s", from_address="shop@example.com", segment_id=1, html="<p/>", track_opens=True,
                         track_clicks=True, status=CampaignStatus.SENT, created_by="test", created_at=now, updated_at=now)
                for i in range(n)]
        session.add_all(made)
        await session.flush()
        return [c.id for c in made]


async def add(db, *rows) -> list:  # noqa: ANN001, ANN002
    async with db.writer() as session, session.begin():
        session.add_all(rows)
        await session.flush()
        return list(rows)


async def stats_of(db, ids_: list[int], days: int = 7) -> tuple[dict[int, CampaignStats], int]:  # noqa: ANN001
    """The statistics, and the statements their computation ran on its session's connection."""
    async with db.reader() as session:
        connection = (await session.connection()).sync_connection
        seen: list[str] = []

        def count(conn, _cursor, statement, *_args) -> None:  # noqa: ANN001, ANN002
            if conn is connection:
                seen.append(statement)

        sa.event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        try:
            return await campaign_stats(session, ids_, attribution_days=days), len(seen)
        finally:
            sa.event.remove(db.engine.sync_engine, "before_cursor_execute", count)


async def test_delivery_engagement_and_links_are_counted_per_campaign(crm_client, crm_app, crm_clock):
    db = crm_app.state.db
    a, b, empty = await campaigns(db, 3)
    ana, bo = await customer(crm_client, "Ana"), await customer(crm_client, "Bo")
    statuses = [RecipientStatus.SENT, RecipientStatus.SENT, RecipientStatus.FAILED, RecipientStatus.SKIPPED,
                RecipientStatus.PENDING, RecipientStatus.CLAIMED, RecipientStatus.SENDING, RecipientStatus.UNCONFIRMED]
    people = [ana, bo, *range(9001, 9007)]
    recipients = await add(db, *[Recipient(campaign_id=a, customer_id=c, email=f"r{c}@example.com", status=s)
                                 for c, s in zip(people, statuses, strict=True)],
                           Recipient(campaign_id=b, customer_id=ana, email="ana@example.com", status=RecipientStatus.SENT))
    r = {c: x.id for c, x in zip(people, recipients, strict=False)}
    now = utcnow()
    sale, boots, never = await add(db, *[Link(campaign_id=a, url_hash=f"{i:064d}", url=u, created_at=now)
                                         for i, u in enumerate(("https://shop.example/sale", "https://shop.example/boots",
                                                                "https://shop.example/never"))])

    def e(kind: EngagementKind, customer_id: int | None, recipient_id: int | None, link: Link | None = None,
          campaign: int = a) -> Engagement:
        return Engagement(kind=kind, campaign_id=campaign, recipient_id=recipient_id, customer_id=customer_id,
                          link_id=link.id if link else None, at=now)

    await add(db,
              *[e(EngagementKind.OPENED, ana, r[ana]) for _ in range(3)], e(EngagementKind.OPENED, bo, r[bo]),
              e(EngagementKind.CLICKED, ana, r[ana], sale), e(EngagementKind.CLICKED, ana, r[ana], sale),
              e(EngagementKind.CLICKED, ana, r[ana], boots), e(EngagementKind.CLICKED, bo, r[bo], sale),
              e(EngagementKind.BOUNCED, 9001, r[9001]), e(EngagementKind.BOUNCED, 9001, r[9001]),
              e(EngagementKind.SOFT_BOUNCED, 9002, r[9002]), e(EngagementKind.UNSUBSCRIBED, bo, r[bo]),
              e(EngagementKind.COMPLAINED, None, r[9003]),  # a recipient row without a known customer
              e(EngagementKind.COMPLAINED, None, None),  # a provider's result for an unknown address: totals only
              e(EngagementKind.OPENED, ana, None, campaign=b))

    stats, statements = await stats_of(db, [a, b, empty])
    got = stats[a]
    assert (got.recipients, got.sent, got.failed, got.skipped, got.pending, got.unconfirmed) == (8, 2, 1, 1, 3, 1)
    assert (got.opened, got.opens, got.clicked, got.clicks) == (2, 4, 2, 4)
    assert (got.bounced, got.soft_bounced, got.unsubscribed, got.complained) == (1, 1, 1, 1)
    assert got.links == [LinkStats(sale.url, 3, 2), LinkStats(boots.url, 1, 1), LinkStats(never.url, 0, 0)]
    assert (stats[b].recipients, stats[b].sent, stats[b].opened, stats[b].opens, stats[b].links) == (1, 1, 1, 1, [])
    assert stats[empty] == CampaignStats()
    alone, one = await stats_of(db, [a])
    assert alone[a] == got and one == statements == 5  # a constant number of statements
    assert (await stats_of(db, []))[0] == {}


async def test_orders_opportunities_and_leads_within_the_window_after_the_first_touch(crm_client, crm_app, crm_clock):
    db = crm_app.state.db
    a, b = await campaigns(db, 2)
    start = utcnow()
    ana, bo, gus = await customer(crm_client, "Ana"), await customer(crm_client, "Bo"), await customer(crm_client, "Gus")
    await order(crm_client, ana, "40.00", orderedAt=(start - timedelta(days=1)).isoformat())  # before any touch
    # Ana and Bo click A's mail an hour later; Ana clicks again the next day (the first touch counts).
    touch = start + timedelta(hours=1)
    await add(db, Engagement(kind=EngagementKind.CLICKED, campaign_id=a, recipient_id=None, customer_id=ana, at=touch),
              Engagement(kind=EngagementKind.CLICKED, campaign_id=a, recipient_id=None, customer_id=bo, at=touch),
              Engagement(kind=EngagementKind.CLICKED, campaign_id=a, recipient_id=None, customer_id=ana,
                         at=touch + timedelta(days=1)),
              Engagement(kind=EngagementKind.OPENED, campaign_id=b, recipient_id=None, customer_id=ana, at=touch))  # no touch

    crm_clock.advance(days=2)
    await order(crm_client, ana, "100.00")
    await order(crm_client, ana, "25.50")
    await order(crm_client, bo, "80.00", currency="USD")
    cancelled = await order(crm_client, bo, "999.00")
    await crm_client.mutate("mutation($id: ID!) { updateOrderStatus(id: $id, status: CANCELLED) { errors { code } } }",
                            {"id": cancelled})  # not counted
    await opportunity(crm_client, ana)

    crm_clock.advance(days=10)  # past A's window for Ana and Bo
    await order(crm_client, ana, "70.00")
    await opportunity(crm_client, bo)
    # Sign-ups through the form: Eve from A (utm_campaign c<id>), Fay from B (its global ID); Gus,
    # a customer for long, from A (the consent names the campaign): a touch, not a lead.
    eve, fay = await customer(crm_client, "Eve"), await customer(crm_client, "Fay")
    now = crm_clock.advance(seconds=20)  # the form records the consent a moment after it made the customer

    def consent(who: int, action: ConsentAction = ConsentAction.REQUESTED, **more) -> ConsentRecord:  # noqa: ANN003
        return ConsentRecord(customer_id=who, email=f"{who}@example.com", action=action, list_key="", form="newsletter",
                             at=now, **more)

    await add(db, consent(eve, utm={"utm_source": "mail", "utm_campaign": f"c{a}"}),
              consent(fay, utm={"utm_campaign": ids.encode("Campaign", b)}),
              consent(gus, utm={}, campaign_id=a),
              consent(bo, ConsentAction.WITHDRAWN, utm={"utm_campaign": f"c{b}"}))  # an unsubscribe is no touch
    await order(crm_client, fay, "19.99")
    await order(crm_client, gus, "5.00")

    stats, _ = await stats_of(db, [a, b])
    assert (stats[a].leads, stats[a].opportunities, stats[a].orders) == (1, 1, 4)
    # Ana's 100 + 25.50 and Bo's USD 80 (first touches), and Gus's 5.00 (his touch just now).
    assert stats[a].revenue == [Money(Decimal("130.50"), "EUR"), Money(Decimal("80.00"), "USD")]
    assert (stats[b].leads, stats[b].opportunities, stats[b].orders) == (1, 0, 1)
    assert stats[b].revenue == [Money(Decimal("19.99"), "EUR")]
    # A longer window takes Ana's later order and Bo's later opportunity too.
    wide, _ = await stats_of(db, [a], days=30)
    assert (wide[a].opportunities, wide[a].orders, wide[a].revenue[0]) == (2, 5, Money(Decimal("200.50"), "EUR"))
