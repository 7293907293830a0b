"""Plugin tests run on databases that carry the installed plugins' tables too: the template is
built by ``crm_graph.plugins.upgrade``, which adds every plugin's Alembic version location."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from crm_graph import plugins
from crm_graph.settings import Settings
from crm_graph.testing.postgres import TemporaryPostgres
from tests.conftest import _pg_execute
from tests.plugins.support import clock, receiver, server_factory, settings  # noqa: F401 - fixtures


@pytest.fixture(scope="session")
def template(backend: str, workdir: Path, postgres: TemporaryPostgres | None) -> str:
    if postgres is None:
        path = workdir / "template-plugins.sqlite3"
        plugins.upgrade(Settings(database_url=f"sqlite+aiosqlite:///{path}"))
        return str(path)
    asyncio.run(_pg_execute(postgres.dsn(), "CREATE DATABASE crm_template_plugins"))
    plugins.upgrade(Settings(database_url=postgres.url("crm_template_plugins")))
    return "crm_template_plugins"
