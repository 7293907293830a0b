"""Test fixtures. The whole suite runs once per database: ``--db sqlite`` or ``--db postgresql``.

Every test gets a database of its own, copied from a template that the real migrations built:
a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on a throwaway PostgreSQL cluster.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from crm_graph.app import create_app
from crm_graph.db import migrate
from crm_graph.db.session import Database
from crm_graph.settings import Settings
from crm_graph.testing.auth import TEST_SECRET, make_key
from crm_graph.testing.client import GraphQLClient, asgi_client
from crm_graph.testing.databases import (
    build_postgres_template,
    build_sqlite_template,
    copy_postgres,
    copy_sqlite,
    drop_postgres,
    remove_sqlite,
)
from crm_graph.testing.databases import pg_execute as _pg_execute
from crm_graph.testing import backends
from crm_graph.testing.postgres import TemporaryPostgres

__all__ = ["TEST_SECRET", "GraphQLClient", "_pg_execute"]  # imported by other conftests and tests

_counter = itertools.count(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    # --db and --one-pass-postgresql, as the plugins' suites have them (whichever conftest comes first).
    backends.pytest_addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    backends.pytest_configure(config)  # the one_pass marker, also when tests/ runs alone


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    backends.pytest_collection_modifyitems(config, items)


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
        return build_sqlite_template(workdir / "template.sqlite3", migrate.upgrade)
    return build_postgres_template(postgres.url(), "crm_template", migrate.upgrade)


@pytest.fixture
async def database_url(template: str, workdir: Path, postgres: TemporaryPostgres | None) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    n = next(_counter)
    if postgres is None:
        path = workdir / f"test-{n}.sqlite3"
        yield copy_sqlite(template, path)
        remove_sqlite(path)
        return
    name = f"test_{n}"
    yield await copy_postgres(postgres.url(), template, name)
    await drop_postgres(postgres.url(), name)


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Rate limits off: a test's outcome must not depend on how many requests it sends before
    # (tests/graphql/test_rate_limits.py turns them on).
    return Settings(database_url=database_url, secret_key=TEST_SECRET, rate_limit_capacity=0)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database.from_settings(settings)
    yield database
    await database.dispose()


class StatementCounter:
    """Counts the SQL statements an engine runs (transaction control excluded)."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        self.last: list[str] = []  # the latest statements, for a failing test to show
        sa.event.listen(db.engine.sync_engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
            self.count += 1
            self.last = [*self.last[-9:], statement]


@pytest.fixture
def sql_counter(db: Database) -> StatementCounter:
    return StatementCounter(db)


@pytest.fixture
async def admin_key(settings: Settings, db: Database) -> str:
    """An ADMIN API key: what most tests sign in with (access itself is tested in tests/auth)."""
    token, _ = await make_key(db, settings, role="ADMIN", email="admin@example.com")
    return token


@pytest.fixture
async def client(settings: Settings, db: Database, admin_key: str) -> AsyncIterator[GraphQLClient]:
    app = create_app(settings, db=db)
    async with asgi_client(app, admin_key) as http:
        yield GraphQLClient(http, app)


@pytest.fixture
async def http(settings: Settings, db: Database, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, db=db)
    async with asgi_client(app, admin_key, raise_app_exceptions=False) as client:
        yield client
