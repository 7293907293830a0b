"""Alembic environment (async). The URL comes from settings (or the caller), never from a config file."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from crm_graph.db.metadata import target_metadata
from crm_graph.db.session import create_engine
from crm_graph.settings import Settings

config = context.config


def _settings() -> Settings:
    url = config.attributes.get("database_url")
    return Settings.from_env(database_url=url) if url else Settings.from_env()


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=[target_metadata(), *config.attributes.get("plugin_metadata", [])],
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
        compare_server_default=True,
    )


def run_migrations_offline() -> None:
    _configure(url=_settings().database_url)
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_settings())
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run_sync)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    # Alembic's API is synchronous; callers inside an event loop run it in a worker thread.
    asyncio.run(_run_async())
