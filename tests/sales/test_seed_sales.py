"""The sales demo data: something real for statistics, forecasts and RFM to show."""

from __future__ import annotations

import sqlalchemy as sa

from crm_graph.core.clock import utcnow
from crm_graph.customers.models import Customer
from crm_graph.sales.seed_sales import seed_sales
from crm_graph.seed import seed_demo

OVERVIEW = """
{
  pipelines { edges { node { name isDefault } } }
  products(filter: {active: true}) { totalCount }
  opportunities { totalCount }
  open: opportunities(filter: {status: {eq: OPEN}}) { totalCount }
  won: opportunities(filter: {status: {eq: WON}}) { totalCount }
  lost: opportunities(filter: {status: {eq: LOST}}) { totalCount }
  quotes { totalCount }
  orders { totalCount }
  paid: orders(filter: {paymentStatus: {eq: PAID}}) { totalCount }
  customers(first: 100) { edges { node { stats { orderCount totalSpent { amount } } } } }
  pipelineSummary { stages { count } }
}
"""


async def test_demo_sales_data_is_rich_and_loaded_once(client, settings, db):
    await seed_demo(settings, count=24)  # customers first, then the sales data on top of them
    async with db.writer() as session, session.begin():
        ids = list(await session.scalars(sa.select(Customer.id).order_by(Customer.id)))
        again = await seed_sales(session, now=utcnow(), customer_ids=ids)
    assert again.orders == again.opportunities == again.products == 0  # loaded once

    data = await client.execute(OVERVIEW)
    assert [e["node"]["name"] for e in data["pipelines"]["edges"]] == ["Sales", "Renewals"]
    assert data["products"]["totalCount"] == 10
    assert data["opportunities"]["totalCount"] > 0
    assert data["quotes"]["totalCount"] > 0
    assert data["orders"]["totalCount"] > len(ids)
    assert data["paid"]["totalCount"] > data["orders"]["totalCount"] / 2
    buyers = [e["node"]["stats"] for e in data["customers"]["edges"] if e["node"]["stats"]["orderCount"]]
    assert len(buyers) > len(ids) / 2
    assert all(float(b["totalSpent"]["amount"]) > 0 for b in buyers)
    assert min(data["open"]["totalCount"], data["won"]["totalCount"], data["lost"]["totalCount"]) > 0
    assert sum(s["count"] for s in data["pipelineSummary"]["stages"]) > 0
