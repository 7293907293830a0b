"""Test fixtures. The whole suite runs once per database: ``--db sqlite`` or ``--db postgresql``.

Every test gets a database of its own, copied from a template that the real migrations built:
a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on a throwaway PostgreSQL cluster.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from crm_graph.app import create_app
from crm_graph.db import migrate
from crm_graph.db.session import Database
from crm_graph.settings import Settings
from crm_graph.testing.auth import bearer, make_key
from crm_graph.testing.postgres import TemporaryPostgres

_counter = itertools.count(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    try:
        parser.addoption("--db", choices=["sqlite", "postgresql"], default="sqlite", help="database to run the suite on")
    except ValueError:
        pass  # plugins/crm_audit/tests/conftest.py defined it already (its tests named first in one run)


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {config.getoption('--db')}"


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--db")


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="crm-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(backend: str) -> Iterator[TemporaryPostgres | None]:
    if backend != "postgresql":
        yield None
        return
    server = TemporaryPostgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def template(backend: str, workdir: Path, postgres: TemporaryPostgres | None) -> str:
    """Build the template database once, with the real migrations."""
    if postgres is None:
        path = workdir / "template.sqlite3"
        migrate.upgrade(Settings(database_url=f"sqlite+aiosqlite:///{path}"))
        return str(path)
    asyncio.run(_pg_execute(postgres.dsn(), "CREATE DATABASE crm_template"))
    migrate.upgrade(Settings(database_url=postgres.url("crm_template")))
    return "crm_template"


async def _pg_execute(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
async def database_url(template: str, workdir: Path, postgres: TemporaryPostgres | None) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    n = next(_counter)
    if postgres is None:
        path = workdir / f"test-{n}.sqlite3"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    name = f"test_{n}"
    await _pg_execute(postgres.dsn(), f"CREATE DATABASE {name} TEMPLATE {template}")
    yield postgres.url(name)
    await _pg_execute(postgres.dsn(), f"DROP DATABASE {name} WITH (FORCE)")


TEST_SECRET = "test-secret-key-of-at-least-thirty-two-characters"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, secret_key=TEST_SECRET)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database.from_settings(settings)
    yield database
    await database.dispose()


class StatementCounter:
    """Counts the SQL statements an engine runs (transaction control excluded)."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        sa.event.listen(db.engine.sync_engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
            self.count += 1


@pytest.fixture
def sql_counter(db: Database) -> StatementCounter:
    return StatementCounter(db)


class GraphQLClient:
    """Talks to the real ASGI app over HTTP semantics, as a frontend would."""

    def __init__(self, http: httpx.AsyncClient, app: Any = None) -> None:
        self.http = http
        self.app = app

    async def warm_up(self) -> None:
        """One request, so the key is verified and remembered, and its last-used time written:
        what a statement count measures next is the query alone."""
        await self.execute("{ __typename }")
        await self.app.state.auth.drain()

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables or {}})
        assert response.status_code == 200, response.text
        return response.json()

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a query that must succeed without GraphQL errors; return its data."""
        body = await self.post(query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def mutate(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a one-field mutation that must succeed with an empty ``errors`` list; return its payload."""
        data = await self.execute(query, variables)
        (payload,) = data.values()
        assert payload["errors"] == [], payload["errors"]
        return payload


@pytest.fixture
async def admin_key(settings: Settings, db: Database) -> str:
    """An ADMIN API key: what most tests sign in with (access itself is tested in tests/auth)."""
    token, _ = await make_key(db, settings, role="ADMIN", email="admin@example.com")
    return token


@pytest.fixture
async def client(settings: Settings, db: Database, admin_key: str) -> AsyncIterator[GraphQLClient]:
    app = create_app(settings, db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=bearer(admin_key)) as http:
        yield GraphQLClient(http, app)


@pytest.fixture
async def http(settings: Settings, db: Database, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, db=db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=bearer(admin_key)) as client:
        yield client
