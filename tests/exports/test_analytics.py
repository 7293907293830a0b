"""The analytics views on PostgreSQL, read by the read-only role docs/analytics.md creates,
with the SQL taken from that page as written."""

from __future__ import annotations

import re
from decimal import Decimal
import uuid
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from crm_graph.customers.models import Customer
from tests.sales.conftest import CREATE_ORDER, money

DOC = Path(__file__).parents[2] / "docs" / "analytics.md"
CREATE = "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } errors { code } } }"
VIEWS = ("customers", "orders", "order_lines", "opportunities", "tickets")


def documented_sql(role: str, owner: str, database: str) -> list[str]:
    """The statements of the page's SQL block, with its names replaced by the test's."""
    block = re.search(r"```sql\n(.*?)```", DOC.read_text(), re.S).group(1)
    block = re.sub(r"\bcrm_analytics\b", role, block)
    block = re.sub(r"DATABASE crm\b", f'DATABASE "{database}"', block)
    block = re.sub(r"FOR ROLE crm\b", f"FOR ROLE {owner}", block)
    return [s.strip() for s in block.split(";") if s.strip()]


async def test_read_only_role_reads_the_views_and_not_the_tables(client, db, settings, backend):
    if backend != "postgresql":
        pytest.skip("the analytics views exist on PostgreSQL only; on SQLite the export is the way")
    zhang = (await client.mutate(CREATE, {"input": {"kind": "PERSON", "firstName": "伟", "lastName": "张", "tags": ["vip", "b2b"],
                                                    "emails": [{"address": "zw@example.cn"}], "country": "CN"}}))["customer"]["id"]
    gone = (await client.mutate(CREATE, {"input": {"kind": "PERSON", "firstName": "Old", "lastName": "Gone"}}))["customer"]["id"]
    await client.mutate("mutation($id: ID!) { deleteCustomer(id: $id) { customer { id } errors { code } } }", {"id": gone})
    await client.mutate(CREATE_ORDER, {"input": {"customerId": zhang, "taxRate": "13",
                                                 "lineItems": [{"description": "茶叶", "quantity": "2", "unitPrice": money("99.50", "CNY")}]}})

    url = make_url(settings.database_url)
    role = f"crm_bi_{uuid.uuid4().hex[:8]}"
    connect = {"host": url.host, "port": url.port, "database": url.database}
    owner = await asyncpg.connect(user=url.username, **connect)
    try:
        for statement in documented_sql(role, url.username, url.database):
            await owner.execute(statement)
        bi = await asyncpg.connect(user=role, password="change-me", **connect)
        try:
            customers = await bi.fetch("SELECT display_name, email, tags, country FROM analytics.customers ORDER BY id")
            assert [tuple(r) for r in customers] == [("张伟", "zw@example.cn", "b2b, vip", "CN")]
            (order,) = await bi.fetch("SELECT customer_name, currency, total, tax FROM analytics.orders")
            assert tuple(order) == ("张伟", "CNY", Decimal("224.87"), Decimal("25.87"))
            (line,) = await bi.fetch("SELECT description, quantity, unit_price, currency FROM analytics.order_lines")
            assert (line["description"], line["unit_price"], line["currency"]) == ("茶叶", Decimal("99.50"), "CNY")
            for view in VIEWS:
                await bi.fetch(f"SELECT * FROM analytics.{view} LIMIT 1")
            for table in ("customers", "orders", "users", "api_keys", "stored_files"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await bi.fetch(f"SELECT * FROM public.{table} LIMIT 1")
            # A view created later by the owner is readable at once (ALTER DEFAULT PRIVILEGES).
            await owner.execute("CREATE VIEW analytics.customer_count AS SELECT count(*) AS n FROM analytics.customers")
            assert await bi.fetchval("SELECT n FROM analytics.customer_count") == 1
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await bi.execute("DELETE FROM analytics.customers")
        finally:
            await bi.close()
    finally:
        await owner.execute("DROP VIEW IF EXISTS analytics.customer_count")
        await owner.execute(f"DROP OWNED BY {role}")
        await owner.execute(f"DROP ROLE {role}")
        await owner.close()
    # The deleted customer is not in the view, though its row is in the table.
    async with db.reader() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 2
