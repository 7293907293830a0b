"""Alembic owns the schema: it migrates up, down and up again, and matches the models."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from crm_graph.db import migrate
from crm_graph.db.session import create_engine
from crm_graph.settings import PROJECT_ROOT, Settings


async def _tables(settings: Settings) -> set[str]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade_and_check(settings):
    # The test database arrives migrated to head from the template.
    assert {"customers", "customer_emails", "activities", "outbox"} <= await _tables(settings)
    await asyncio.to_thread(migrate.check, settings)  # raises if models and migrations differ

    await asyncio.to_thread(migrate.downgrade, settings, "base")
    assert await _tables(settings) <= {"alembic_version"}

    await asyncio.to_thread(migrate.upgrade, settings)
    assert {"customers", "activities", "outbox"} <= await _tables(settings)
    await asyncio.to_thread(migrate.check, settings)


async def test_upgrade_gives_existing_records_an_owner(settings, monkeypatch):
    """Records that existed before access get the owner chosen at upgrade, created if missing."""
    await asyncio.to_thread(migrate.downgrade, settings, "0005")
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO customers (kind, display_name, lifecycle_stage, consent_status, version, created_at, updated_at) "
                "VALUES ('PERSON', 'Before access', 'LEAD', 'UNKNOWN', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ))
        monkeypatch.setenv("CRM_UPGRADE_OWNER_EMAIL", "Owner@Example.com")
        await asyncio.to_thread(migrate.upgrade, settings)
        async with engine.connect() as conn:
            row = (await conn.execute(sa.text(
                "SELECT u.email, u.role, u.password_hash FROM customers c JOIN users u ON u.id = c.owner_id"
            ))).one()
    finally:
        await engine.dispose()
    assert tuple(row) == ("owner@example.com", "ADMIN", None)  # no password until set-password


def test_alembic_by_hand_and_crm_graph_db_use_the_same_migrations():
    """The checkout's alembic.ini (``alembic revision`` by hand) and the configuration that
    ``crm-graph db`` builds in code name the same directory and write the same file names."""
    by_hand = Config(str(PROJECT_ROOT / "alembic.ini"))
    built = migrate.alembic_config(Settings(database_url="sqlite+aiosqlite://"))
    assert Path(by_hand.get_main_option("script_location")).resolve() == migrate.MIGRATIONS_DIR
    assert built.get_main_option("script_location") == str(migrate.MIGRATIONS_DIR)
    for name in migrate.ALEMBIC_OPTIONS:
        assert by_hand.get_main_option(name) == built.get_main_option(name), name
    heads = ScriptDirectory.from_config(built).get_heads()
    assert heads and ScriptDirectory.from_config(by_hand).get_heads() == heads


def test_no_revision_is_left_where_nothing_reads_it():
    """Revisions live in crm_graph/migrations/versions (they ship in the wheel); one written to
    the checkout's former migrations/ directory would never run."""
    assert not (PROJECT_ROOT / "migrations").exists()
