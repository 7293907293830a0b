"""`crm-graph export`, run as an operator would, against the test database."""

from __future__ import annotations

import asyncio
import io

import pyarrow.parquet as pq
import sqlalchemy as sa
from click.testing import CliRunner, Result

from crm_graph.auth.models import ApiKey
from crm_graph.cli import cli
from crm_graph.customers.models import Customer
from crm_graph.testing.auth import make_key, share

CREATE = "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } errors { code } } }"


async def crm_graph(settings, *args: str) -> Result:
    """Run the command in a thread of its own (it runs its own event loop, as from a shell)."""
    env = {"CRM_DATABASE_URL": settings.database_url, "CRM_SECRET_KEY": settings.secret_key}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env, catch_exceptions=False)


async def test_export_writes_a_parquet_file_as_the_system_or_as_a_key(client, db, settings, tmp_path):
    for first, last, country in (("伟", "张", "CN"), ("Ada", "Lovelace", "GB"), ("芳", "王", "CN")):
        await client.mutate(CREATE, {"input": {"kind": "PERSON", "firstName": first, "lastName": last, "country": country}})
    out = tmp_path / "customers.parquet"
    result = await crm_graph(settings, "export", "--entity", "customers", "--format", "parquet", "--output", str(out),
                             "--filter", '{"country": {"eq": "CN"}}')
    assert result.exit_code == 0, result.output
    assert "2 rows written" in result.stderr
    assert pq.read_table(io.BytesIO(out.read_bytes())).column("display_name").to_pylist() == ["张伟", "王芳"]

    # With --as, the rows are those the key may read.
    _, user = await make_key(db, settings, role="SALES", email="rep@example.com")
    async with db.reader() as session:
        key_id = await session.scalar(sa.select(ApiKey.id).where(ApiKey.user_id == user))
    await share(db, "PRIVATE", "customers")
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(Customer).where(Customer.display_name == "王芳").values(owner_id=user))
    mine = tmp_path / "mine.csv"
    result = await crm_graph(settings, "export", "--entity", "customers", "--format", "csv", "--output", str(mine),
                             "--as", f"api_key:{key_id}")
    assert result.exit_code == 0, result.output
    assert "王芳" in mine.read_bytes().decode("utf-8-sig") and "张伟" not in mine.read_bytes().decode("utf-8-sig")


async def test_export_refuses_a_bad_filter_or_principal(client, settings, tmp_path):
    out = tmp_path / "x.csv"
    result = await crm_graph(settings, "export", "--entity", "orders", "--format", "csv", "--output", str(out),
                             "--filter", '{"colour": {"eq": "red"}}')
    assert result.exit_code == 2 and "filter.colour: unknown filter field" in result.output and not out.exists()
    result = await crm_graph(settings, "export", "--entity", "orders", "--format", "csv", "--output", str(out),
                             "--filter", "{not json")
    assert result.exit_code == 2 and "not JSON" in result.output
    result = await crm_graph(settings, "export", "--entity", "invoices", "--format", "csv", "--output", str(out))
    assert result.exit_code == 2 and "invoices" in result.output
    result = await crm_graph(settings, "export", "--entity", "orders", "--format", "csv", "--output", str(out),
                             "--as", "api_key:999")
    assert result.exit_code == 2 and "api_key:999" in result.output
