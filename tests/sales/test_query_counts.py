"""The number of SQL statements of a query does not grow with the page size."""

from __future__ import annotations

from decimal import Decimal

from crm_graph.core.actor import SYSTEM
from crm_graph.customers import service as customers
from crm_graph.sales.service import opportunities, orders, products

OPPORTUNITIES = """
query($n: Int!) {
  opportunities(first: $n) {
    edges { node { title customer { displayName } stage { name } lineItems { quantity product { sku } } } }
  }
}
"""
CUSTOMERS = """
query($n: Int!) {
  customers(first: $n) {
    edges { node {
      displayName
      opportunities(first: 2) { totalCount edges { node { title stage { name } probability weightedAmount { amount } } } }
      orders(first: 2) { totalCount edges { node { number lineItems { sku } payments { amount { amount } } } } }
      quotes(first: 2) { totalCount }
      stats { orderCount totalSpent { amount currency } averageOrderValue { amount } }
    } }
  }
}
"""


async def _populate(db, customers_count: int, per_customer: int) -> None:
    """Through the service layer in one transaction: quicker than 60 HTTP round trips, same rules."""
    config = customers.ServiceConfig()
    async with db.writer() as session, session.begin():
        items = []
        for i in range(3):
            product = await products.create_product(
                session, actor=SYSTEM, data={"sku": f"SKU-{i}", "name": f"Item {i}", "unitPrice": {"amount": Decimal("9.50"), "currency": "EUR"}}
            )
            items.append(product.id)
        for c in range(customers_count):
            customer = await customers.create_customer(
                session, actor=SYSTEM, data={"kind": "ORGANIZATION", "organizationName": f"Customer {c}"}, config=config
            )
            for n in range(per_customer):
                lines = [{"productId": items[(c + n) % 3], "quantity": Decimal(n + 1)}, {"productId": items[(c + n + 1) % 3]}]
                await opportunities.create_opportunity(
                    session, actor=SYSTEM, data={"title": f"Deal {c}-{n}", "customerId": customer.id, "lineItems": lines}
                )
            order = await orders.create_order(
                session, actor=SYSTEM,
                data={"customerId": customer.id, "lineItems": [{"productId": items[c % 3], "quantity": Decimal(2)}]},
            )
            await orders.record_payment(session, actor=SYSTEM, data={"orderId": order.id, "amount": {"amount": order.total, "currency": "EUR"}})


async def _count(client, sql_counter, query: str, n: int) -> tuple[int, int]:
    sql_counter.count = 0
    data = await client.execute(query, {"n": n})
    rows = len(next(iter(data.values()))["edges"])
    return sql_counter.count, rows


async def test_opportunity_page_statements_do_not_grow_with_page_size(client, db, sql_counter):
    await _populate(db, customers_count=10, per_customer=6)
    await client.warm_up()
    small, rows_small = await _count(client, sql_counter, OPPORTUNITIES, 10)
    large, rows_large = await _count(client, sql_counter, OPPORTUNITIES, 50)
    assert (rows_small, rows_large) == (10, 50)
    # page + customers + stages + line items + products, each one batched statement.
    assert small == large == 5


async def test_customer_sales_fields_are_batched_across_customers(client, db, sql_counter):
    await _populate(db, customers_count=12, per_customer=2)
    await client.warm_up()
    small, rows_small = await _count(client, sql_counter, CUSTOMERS, 3)
    large, rows_large = await _count(client, sql_counter, CUSTOMERS, 12)
    assert (rows_small, rows_large) == (3, 12)
    assert small == large
