"""The example plugin, installed from plugins/crm_audit and found through its entry point:
its own table (own migrations), a schema field, and events after commit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from crm_graph import hookimpl
from crm_graph.app import create_app
from crm_graph.plugins import PluginError, make_plugin_manager, migrations
from tests.plugins.support import UPDATE_CUSTOMER, create_customer
from tests.plugins.test_manager import run_cli

CHANGE_HISTORY = """
query($entityId: ID, $eventType: String) {
  changeHistory(entityId: $entityId, eventType: $eventType, first: 10) {
    totalCount
    edges { node { eventType actor changedFields changes entityId entity { id ... on Customer { displayName } } } }
  }
}
"""


async def test_the_audit_plugin_keeps_every_event_and_answers_change_history(server_factory, db):
    server = await server_factory(entry_points=True)  # the installed plugins, as in production
    assert server.plugins.has_plugin("crm_audit")
    ada = await create_customer(server.client, firstName="Ada", lastName="Lovelace")
    await server.client.mutate(UPDATE_CUSTOMER, {"id": ada["id"], "input": {"jobTitle": "Analyst"}})
    await create_customer(server.client, lastName="Hopper")

    before = await server.client.execute(CHANGE_HISTORY, {"entityId": ada["id"]})
    assert before["changeHistory"]["totalCount"] == 0  # events reach plugins after commit, via the dispatcher
    await server.drain()

    trail = await server.client.execute(CHANGE_HISTORY, {"entityId": ada["id"]})
    assert trail["changeHistory"]["totalCount"] == 2
    newest, oldest = (edge["node"] for edge in trail["changeHistory"]["edges"])
    assert newest["eventType"] == "customer.updated"
    assert newest["changedFields"] == ["jobTitle"]
    assert newest["changes"]["before"] == {"jobTitle": None}
    assert newest["entity"] == {"id": ada["id"], "displayName": "Ada Lovelace"}
    assert oldest["eventType"] == "customer.created" and oldest["actor"] == server.actor

    everything = await server.client.execute(CHANGE_HISTORY, {"eventType": "customer.*"})
    assert everything["changeHistory"]["totalCount"] == 3


async def test_a_redelivered_event_is_kept_once(server_factory, db):
    server = await server_factory(entry_points=True)
    await create_customer(server.client, lastName="Hopper")
    await server.drain()
    from crm_audit import service

    (event,) = [e.envelope() for e in await _outbox(db)]
    assert await service.record(db, event) is False  # at least once: the second copy changes nothing
    trail = await server.client.execute(CHANGE_HISTORY, {})
    assert trail["changeHistory"]["totalCount"] == 1


async def _outbox(db):  # noqa: ANN001, ANN202
    from tests.plugins.support import outbox

    return await outbox(db)


async def test_blocking_the_audit_plugin_removes_its_field(settings, db):
    from dataclasses import replace

    blocked = replace(settings, plugins_block=("crm_audit",))
    app = create_app(blocked, db=db, plugins=make_plugin_manager(blocked))
    assert "changeHistory" not in app.state.schema.as_str()
    assert "changeHistory" in create_app(settings, db=db).state.schema.as_str()
    assert "auditLog" in app.state.schema.as_str()  # the security audit log is the core's


async def test_hook_crm_register_migrations_gives_the_plugin_its_own_tables(settings, db):
    pm = make_plugin_manager(settings)
    (name, found), = [(n, m) for n, m in migrations(pm) if n == "crm_audit"]
    assert Path(found.versions).is_dir()

    # The test database was upgraded with the plugins' version locations: the plugin's branch
    # is applied, and its tables match its models.
    async with db.reader() as session:
        heads = set(await session.scalars(sa.text("SELECT version_num FROM alembic_version")))
        assert "crm_audit_0002" in heads
        connection = await session.connection()
        diffs = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}),
                found.metadata,
            )
        )
    assert [d for d in diffs if "crm_audit" in repr(d)] == []


def test_a_migration_location_that_is_not_a_directory_stops_start_up(settings):
    class Lost:
        name = "lost"

        @hookimpl
        def crm_register_migrations(self) -> str:
            return "/nowhere/versions"

    pm = make_plugin_manager(settings, plugins=[Lost()], entry_points=False)
    with pytest.raises(PluginError, match="'lost': crm_register_migrations: '/nowhere/versions' is not a directory"):
        migrations(pm)


async def test_audit_export_command_prints_the_trail(server_factory, settings):
    server = await server_factory(entry_points=True)
    ada = await create_customer(server.client, lastName="Lovelace")
    await server.drain()
    exported = run_cli("audit", "export", "--entity", ada["id"], CRM_DATABASE_URL=settings.database_url)
    assert exported.returncode == 0, exported.stderr
    (line,) = exported.stdout.splitlines()
    entry = json.loads(line)
    assert entry["eventType"] == "customer.created" and entry["entityId"] == ada["id"]
