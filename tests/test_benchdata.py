"""The benchmark data generator (crm_graph/benchdata.py, `crm-graph bench generate`): the same
volumes give the same rows, the rows read back through the API like any other, and the API
goes on making records after it (PostgreSQL's sequences moved past the generated ids)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
import sqlalchemy as sa

from crm_graph import benchdata
from crm_graph.customers.models import Customer
from crm_graph.sales.models import Opportunity, Order, OrderLineItem
from crm_graph.support.models import Ticket

SMALL = benchdata.Volumes(customers=60, orders=300, opportunities=40, tickets=25, products=12)


async def _digest(db) -> str:
    digest = hashlib.sha256()
    async with db.reader() as session:
        for model, columns in ((Customer, ("id", "display_name", "country", "kind")), (Order, ("number", "customer_id", "total")),
                               (Opportunity, ("customer_id", "amount", "status")), (Ticket, ("customer_id", "subject"))):
            rows = (await session.execute(sa.select(*(getattr(model, c) for c in columns)).order_by(model.id))).all()
            digest.update(repr(rows).encode())
    return digest.hexdigest()


async def test_generated_data_reads_back_through_the_api(db, client) -> None:
    counts = await benchdata.generate(db, SMALL)
    assert {k: counts[k] for k in ("customers", "orders", "opportunities", "tickets", "products")} == {
        "customers": 60, "orders": 300, "opportunities": 40, "tickets": 25, "products": 12}
    async with db.reader() as session:
        lines = await session.scalar(sa.select(sa.func.count()).select_from(OrderLineItem))
        # Every order's total is the sum of its lines.
        mismatched = await session.scalar(sa.select(sa.func.count()).select_from(Order).where(
            Order.total != sa.select(sa.func.sum(OrderLineItem.total)).where(OrderLineItem.order_id == Order.id).scalar_subquery()))
        chinese = await session.scalar(sa.select(sa.func.count()).select_from(Customer).where(Customer.country == "CN"))
    assert lines == counts["order_lines"] >= 300 and mismatched == 0 and chinese > 0

    page = await client.execute("{ customers(first: 100) { totalCount edges { node { displayName primaryEmail primaryPhone "
                              "opportunities(first: 5) { totalCount } } } } }")
    assert page["customers"]["totalCount"] == 60
    assert all(e["node"]["primaryEmail"].endswith(".example") and e["node"]["primaryPhone"].startswith("+")
               for e in page["customers"]["edges"])
    assert sum(e["node"]["opportunities"]["totalCount"] for e in page["customers"]["edges"]) == 40

    # The API makes new records after the generated ones (no id collides).
    made = await client.mutate("mutation { createCustomer(input: {kind: PERSON, firstName: \"Ada\", lastName: \"Lovelace\"}) "
                               "{ customer { displayName } errors { code } } }")
    assert made == {"customer": {"displayName": "Ada Lovelace"}, "errors": []}


async def test_the_same_volumes_give_the_same_rows_and_a_used_database_is_refused(db, settings, tmp_path) -> None:
    from dataclasses import replace

    from crm_graph.db import migrate
    from crm_graph.db.session import Database

    await benchdata.generate(db, SMALL)
    first = await _digest(db)
    with pytest.raises(benchdata.NotEmpty):
        await benchdata.generate(db, SMALL)

    if settings.database_url.startswith("sqlite"):
        other_settings = replace(settings, database_url=f"sqlite+aiosqlite:///{tmp_path / 'again.sqlite3'}")
        await asyncio.to_thread(migrate.upgrade, other_settings)
        other = Database.from_settings(other_settings)
        try:
            await benchdata.generate(other, SMALL)
            assert await _digest(other) == first
        finally:
            await other.dispose()
