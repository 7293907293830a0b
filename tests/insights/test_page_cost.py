"""A page of 100 customers asking for every insights field costs the statements a page of 10 does."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from crm_graph.core.clock import utcnow
from crm_graph.customers.models import Customer
from crm_graph.sales.models import Order, OrderLineItem, Product

QUERY = """query($n: Int) { customers(first: $n) { edges { node { id lifecycleStage
  lifecycle { computedStage pinned volume { amount } } lifecycleHistory(first: 3) { toStage source }
  recommendations(first: 3) { product { sku } basedOn { name } kind reason }
  profitability { revenue { amount } costToServe { amount } profit { amount } }
  lifetimeValue { probabilityAlive } } } } }"""


async def test_a_page_of_100_customers_with_every_insight_costs_what_a_page_of_10_does(client, db, sql_counter):
    now = utcnow()
    async with db.writer() as session, session.begin():
        # Bulk rows: the service's rules for customers and orders have tests of their own.
        start = int(await session.scalar(sa.select(sa.func.coalesce(sa.func.max(Customer.id), 0)))) + 1
        people = list(range(start, start + 100))
        await session.execute(sa.insert(Customer), [
            dict(id=cid, kind="PERSON", last_name=f"N{cid}", display_name=f"N{cid}", lifecycle_stage="LEAD",
                 consent_status="UNKNOWN", version=1, created_at=now, updated_at=now) for cid in people])
        await session.execute(sa.insert(Product), [
            dict(id=p, sku=f"p{p}", name=f"P{p}", unit_price=Decimal(10 + p), currency="EUR", active=True, version=1,
                 created_at=now, updated_at=now) for p in range(1, 5)])
        orders = [(cid, k, days) for i, cid in enumerate(people) for k, days in enumerate((5, 40, 70)[: 1 + i % 3])]
        await session.execute(sa.insert(Order), [
            dict(id=n, number=f"PC-{n:06d}", customer_id=cid, status="FULFILLED", payment_status="PAID", currency="EUR",
                 subtotal=Decimal(10), discount=Decimal(0), tax_rate=Decimal(0), tax=Decimal(0), total=Decimal(10),
                 paid_amount=Decimal(10), ordered_at=now - timedelta(days=days), origin="EXTERNAL", version=1,
                 created_at=now, updated_at=now) for n, (cid, k, days) in enumerate(orders, start=1)])
        await session.execute(sa.insert(OrderLineItem), [
            dict(order_id=n, product_id=1 + (cid + k) % 4, sku="x", position=1, description="x", quantity=Decimal(1),
                 unit_price=Decimal(10), discount_percent=Decimal(0), subtotal=Decimal(10), discount=Decimal(0),
                 total=Decimal(10)) for n, (cid, k, days) in enumerate(orders, start=1)])
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
