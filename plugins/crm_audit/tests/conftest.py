"""Fixtures for testing a crm-graph plugin the way it runs in production: installed, found
through its entry point, on a real database migrated with its own revisions.

    pytest plugins/crm_audit/tests --db sqlite        # or --db postgresql

Each test gets its own database, copied from a template that crm_graph.plugins.upgrade built
once (a file copy on SQLite, CREATE DATABASE ... TEMPLATE on a throwaway PostgreSQL).
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from crm_graph import plugins
from crm_graph.app import create_app
from crm_graph.core.clock import frozen_clock
from crm_graph.db.session import Database
from crm_graph.settings import Settings
from crm_graph.testing.auth import bearer, make_key
from crm_graph.testing.postgres import TemporaryPostgres

_numbers = itertools.count(1)
SECRET_KEY = "crm-audit-test-secret-of-at-least-thirty-two-characters"


def pytest_addoption(parser: pytest.Parser) -> None:
    try:
        parser.addoption("--db", choices=["sqlite", "postgresql"], default="sqlite", help="database to test on")
    except ValueError:
        pass  # crm-graph's own conftest defined it already (both suites in one run)


@pytest.fixture(scope="session")
def audit_postgres(request: pytest.FixtureRequest) -> Iterator[TemporaryPostgres | None]:
    if request.config.getoption("--db") != "postgresql":
        yield None
        return
    server = TemporaryPostgres().start()
    try:
        yield server
    finally:
        server.stop()


async def _execute(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def audit_template(audit_postgres: TemporaryPostgres | None) -> Iterator[str]:
    """The core's revisions and every installed plugin's, applied once."""
    if audit_postgres is None:
        folder = Path(tempfile.mkdtemp(prefix="crm-audit-test-"))
        path = folder / "template.sqlite3"
        plugins.upgrade(Settings(database_url=f"sqlite+aiosqlite:///{path}"))
        yield str(path)
        shutil.rmtree(folder, ignore_errors=True)
        return
    asyncio.run(_execute(audit_postgres.dsn(), "CREATE DATABASE audit_template"))
    plugins.upgrade(Settings(database_url=audit_postgres.url("audit_template")))
    yield "audit_template"


@pytest.fixture
async def settings(audit_template: str, audit_postgres: TemporaryPostgres | None) -> AsyncIterator[Settings]:
    n = next(_numbers)
    if audit_postgres is None:
        path = Path(audit_template).with_name(f"test-{n}.sqlite3")
        shutil.copyfile(audit_template, path)
        yield Settings(database_url=f"sqlite+aiosqlite:///{path}", secret_key=SECRET_KEY)
        return
    name = f"audit_test_{n}"
    await _execute(audit_postgres.dsn(), f"CREATE DATABASE {name} TEMPLATE {audit_template}")
    yield Settings(database_url=audit_postgres.url(name), secret_key=SECRET_KEY)
    await _execute(audit_postgres.dsn(), f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database.from_settings(settings)
    yield database
    await database.dispose()


@pytest.fixture
def app(settings: Settings, db: Database) -> Any:
    """The app with the installed plugins, found through their entry points."""
    return create_app(settings, db=db, plugins=plugins.make_plugin_manager(settings), dispatcher=False)


@pytest.fixture
async def graphql(app: Any, settings: Settings, db: Database) -> AsyncIterator[Any]:
    """``await graphql(query, **variables)`` -> the response's ``data``; fails on GraphQL errors.
    Signs in with an administrator's API key."""
    token, _ = await make_key(db, settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=bearer(token)
    ) as http:

        async def run(query: str, **variables: Any) -> dict[str, Any]:
            response = await http.post("/graphql", json={"query": query, "variables": variables})
            body = response.json()
            assert "errors" not in body, body["errors"]
            return body["data"]

        yield run
    await app.state.dispatcher.aclose()


@pytest.fixture
def clock() -> Iterator[Any]:
    """Time stands still until the test moves it: ``clock.advance(minutes=1)``."""
    with frozen_clock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC)) as c:
        yield c
