"""crm_merge_customers: a plugin moves the rows it keeps without a foreign key when customers
are merged; rows of its tables that have a foreign key to customers move without it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from crm_graph import hookimpl
from crm_graph.core import ids
from crm_graph.hookspecs import PluginMigrations
from tests.plugins.support import create_customer

MERGE = """
mutation($input: MergeCustomersInput!) {
  mergeCustomers(input: $input) {
    customer { id }
    plan { dryRun counts { table moved removed } moved { table row column from to } plugins }
    errors { field code message }
  }
}
"""

badges_metadata = sa.MetaData()
# The core's table as the plugin's MetaData knows it, so its foreign key resolves.
sa.Table("customers", badges_metadata, sa.Column("id", sa.Integer, primary_key=True))
# A plugin table with a foreign key to customers: the core moves its rows itself.
badges = sa.Table(
    "test_badges", badges_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    sa.Column("badge", sa.String(40), nullable=False),
    sa.UniqueConstraint("customer_id", "badge"),
)
# A table keyed by customer id without a foreign key: only the plugin knows to move it.
cards = sa.Table(
    "test_loyalty_cards", badges_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_ref", sa.Integer, nullable=False),
    sa.Column("number", sa.String(20), nullable=False),
)


class Cards:
    """Keeps loyalty cards by customer id, without a foreign key."""

    name = "cards"

    def __init__(self, versions: str) -> None:
        self.versions = versions
        self.calls: list[tuple[int, list[int], bool]] = []

    @hookimpl
    def crm_register_migrations(self) -> PluginMigrations:
        return PluginMigrations(versions=self.versions, metadata=badges_metadata)

    @hookimpl
    async def crm_merge_customers(self, session: Any, survivor_id: int, merged_ids: list[int], dry_run: bool) -> dict[str, Any]:
        self.calls.append((survivor_id, list(merged_ids), dry_run))
        where = cards.c.customer_ref.in_(merged_ids)
        count = (await session.execute(sa.select(sa.func.count()).select_from(cards).where(where))).scalar_one()
        if not dry_run:
            await session.execute(sa.update(cards).where(where).values(customer_ref=survivor_id))
        return {"cards": count}


class Broken:
    name = "broken_merge"

    @hookimpl
    def crm_merge_customers(self) -> None:
        raise RuntimeError("the card service is down")


async def _tables(db) -> None:
    async with db.writer() as session, session.begin():
        await session.run_sync(lambda s: badges_metadata.create_all(s.connection(), tables=[badges, cards]))


async def _rows(db, table, column) -> list[tuple[Any, ...]]:
    async with db.reader() as session:
        return [tuple(r) for r in (await session.execute(sa.select(column, table.c[list(table.c.keys())[-1]]).order_by(table.c.id))).all()]


async def test_hook_crm_merge_customers_moves_plugin_rows_and_reports_them(server_factory, db, tmp_path):
    plugin = Cards(str(tmp_path))
    server = await server_factory(plugin)
    await _tables(db)
    ada = await create_customer(server.client, lastName="Lovelace")
    dup = await create_customer(server.client, lastName="Lovelace")
    a, d = ids.decode(ada["id"])[1], ids.decode(dup["id"])[1]
    async with db.writer() as session, session.begin():
        await session.execute(sa.insert(badges), [
            {"customer_id": a, "badge": "gold"}, {"customer_id": d, "badge": "gold"}, {"customer_id": d, "badge": "early"}])
        await session.execute(sa.insert(cards), [{"customer_ref": d, "number": "C-1"}, {"customer_ref": d, "number": "C-2"}])

    dry = await server.client.mutate(MERGE, {"input": {"survivorId": ada["id"], "mergedIds": [dup["id"]], "dryRun": True}})
    assert dry["plan"]["plugins"] == {"cards": {"cards": 2}}
    assert {"table": "test_badges", "moved": 1, "removed": 1} in dry["plan"]["counts"]
    assert plugin.calls == [(a, [d], True)]
    assert await _rows(db, cards, cards.c.customer_ref) == [(d, "C-1"), (d, "C-2")]  # the dry run wrote nothing

    done = await server.client.mutate(MERGE, {"input": {"survivorId": ada["id"], "mergedIds": [dup["id"]]}})
    assert done["plan"]["plugins"] == {"cards": {"cards": 2}} and plugin.calls[-1] == (a, [d], False)
    assert await _rows(db, cards, cards.c.customer_ref) == [(a, "C-1"), (a, "C-2")]
    assert sorted(await _rows(db, badges, badges.c.customer_id)) == [(a, "early"), (a, "gold")]
    assert {"table": "test_badges", "row": {"id": 3}, "column": "customer_id", "from": d, "to": a} in done["plan"]["moved"]


async def test_a_failing_merge_hook_refuses_the_merge(server_factory, db):
    server = await server_factory(Broken())
    ada = await create_customer(server.client, lastName="Lovelace")
    dup = await create_customer(server.client, lastName="Lovelace", tags=["x"])
    refused = await server.client.execute(MERGE, {"input": {"survivorId": ada["id"], "mergedIds": [dup["id"]]}})
    (error,) = refused["mergeCustomers"]["errors"]
    assert error["code"] == "PLUGIN_FAILED" and "broken_merge" in error["message"] and "down" not in error["message"]
    still = await server.client.execute("query($id: ID!) { customer(id: $id) { id tags } }", {"id": dup["id"]})
    assert still["customer"] == {"id": dup["id"], "tags": ["x"]}
