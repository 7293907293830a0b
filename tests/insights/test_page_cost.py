"""A page of 100 customers asking for every insights field costs the statements a page of 10 does."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from crm_graph.core.clock import utcnow
from crm_graph.sales.models import OrderLineItem, Product
from tests.segments.factories import customer, order

QUERY = """query($n: Int) { customers(first: $n) { edges { node { id lifecycleStage
  lifecycle { computedStage pinned volume { amount } } lifecycleHistory(first: 3) { toStage source }
  recommendations(first: 3) { product { sku } basedOn { name } kind reason }
  profitability { revenue { amount } costToServe { amount } profit { amount } }
  lifetimeValue { probabilityAlive } } } } }"""


async def test_a_page_of_100_customers_with_every_insight_costs_what_a_page_of_10_does(client, db, sql_counter):
    now = utcnow()
    async with db.writer() as session, session.begin():
        products = [Product(sku=f"p{i}", name=f"P{i}", description=None, unit_price=Decimal(10 + i), currency="EUR",
                            active=True, created_at=now, updated_at=now, version=1) for i in range(4)]
        session.add_all(products)
        await session.flush()
        for i in range(100):
            cid = await customer(session, lastName=f"N{i:03d}")
            for k, days in enumerate((5, 40, 70)[: 1 + i % 3]):
                row = order(session, cid, "10.00", now - timedelta(days=days))
                await session.flush()
                product = products[(i + k) % 4]
                session.add(OrderLineItem(order_id=row.id, product_id=product.id, sku=product.sku, position=1, description="x",
                                          quantity=Decimal(1), unit_price=Decimal(10), discount_percent=Decimal(0),
                                          subtotal=Decimal(10), discount=Decimal(0), total=Decimal(10)))
    for mutation in ("refreshLifecycleStages", "refreshProductAssociations"):
        await client.mutate(f"mutation {{ {mutation} {{ errors {{ code }} }} }}")
    await client.warm_up()
    counts = []
    for n in (10, 100):
        sql_counter.count = 0
        data = await client.execute(QUERY, {"n": n})
        counts.append(sql_counter.count)
        edges = data["customers"]["edges"]
        assert len(edges) == n and all(e["node"]["lifecycleStage"] != "LEAD" for e in edges)
        assert sum(len(e["node"]["recommendations"]) for e in edges) > 0
    # the page; lifecycle states; histories; recommendations; their products; profitability;
    # the newest value run (none here, so its rows are not read)
    assert counts[0] == counts[1] <= 7
