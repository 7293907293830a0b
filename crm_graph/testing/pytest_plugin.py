"""pytest fixtures for testing crm-graph plugins the way they run: installed, found through their
entry points, on a real database migrated with their own revisions, driven through GraphQL.

Installing crm-graph registers this module with pytest (entry point group ``pytest11``), so a
plugin's test suite needs no conftest code to use the fixtures. Every fixture is named
``crm_*``: none can shadow a fixture of the project under test, and a project overrides one by
defining a fixture of the same name (``crm_settings`` and ``crm_plugins`` are the usual ones).

- ``crm_database_url``: a database of the test's own, copied from a template that the core's
  migrations and every installed plugin's (``crm_graph.plugins.upgrade``) built once per run.
  SQLite files by default; databases on a PostgreSQL server with ``--crm-database-url URL`` or
  ``CRM_TEST_DATABASE_URL`` (a server where the user may ``CREATE DATABASE``).
- ``crm_settings``, ``crm_db``, ``crm_plugins``: the settings, the ``Database`` and the plugin
  manager (core and installed plugins) of that database.
- ``crm_app``: the Starlette app, its lifespan run (``crm_startup`` ... ``crm_shutdown``),
  without the dispatcher loop and the periodic jobs, so nothing happens behind a test's back.
- ``crm_client``: a ``GraphQLClient`` signed in with an ADMIN API key; ``crm_client_for(role)``
  makes clients of other roles, ``crm_make_key(role=...)`` API keys.
- ``crm_events``: the events committed during the test (read from the outbox) and
  ``deliver()``, which runs the dispatcher until every plugin received what is due.
- ``crm_clock``: a frozen clock for retries and timestamps.

The async fixtures need pytest-asyncio (``asyncio_mode = "auto"``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

# Before they are imported: so that their assertions explain themselves in a failing test.
pytest.register_assert_rewrite("crm_graph.testing.client", "crm_graph.testing.events")

try:
    import pytest_asyncio

    async_fixture: Any = pytest_asyncio.fixture
except ImportError:  # pytest then says that async fixtures need a plugin such as pytest-asyncio
    async_fixture = pytest.fixture

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from crm_graph.core.clock import FrozenClock
    from crm_graph.db.session import Database
    from crm_graph.plugins import PluginManager
    from crm_graph.settings import Settings
    from crm_graph.testing.client import GraphQLClient
    from crm_graph.testing.databases import DatabaseTemplate
    from crm_graph.testing.events import EventLog

ENV_DATABASE_URL = "CRM_TEST_DATABASE_URL"
ADMIN_EMAIL = "admin@example.com"
CLOCK_START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("crm-graph", "crm-graph test databases (fixtures crm_*)")
    group.addoption(
        "--crm-database-url",
        metavar="URL",
        default=None,
        help=(
            "PostgreSQL server for the crm_* fixtures' test databases, e.g. "
            "postgresql://user:password@127.0.0.1:5432/postgres (the user must be allowed to "
            f"CREATE DATABASE). Default: ${ENV_DATABASE_URL}, else SQLite files in a temporary directory."
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    url = _server_option(config)
    if url:
        from crm_graph.testing.databases import server_url

        try:
            server_url(url)
        except ValueError as exc:
            raise pytest.UsageError(f"--crm-database-url / {ENV_DATABASE_URL}: {exc}") from None


def _server_option(config: pytest.Config) -> str | None:
    return config.getoption("crm_database_url") or os.environ.get(ENV_DATABASE_URL) or None


# --- databases ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def crm_database_server_url(request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL server URL the test databases are made on, or None for SQLite.

    Override it (session scope) to provide a server some other way, e.g. a throwaway one from
    ``crm_graph.testing.postgres.TemporaryPostgres``."""
    return _server_option(request.config)


@pytest.fixture(scope="session")
def crm_database_template(crm_database_server_url: str | None) -> Iterator[DatabaseTemplate]:
    """The template database, migrated once per run: the core's revisions and every installed
    plugin's. Dropped (or deleted) at the end of the run."""
    from crm_graph import plugins
    from crm_graph.testing.databases import DatabaseTemplate

    try:
        template = DatabaseTemplate(crm_database_server_url)
    except ValueError as exc:
        pytest.fail(f"crm_database_server_url: {exc}", pytrace=False)
    try:
        template.build(plugins.upgrade)
        yield template
    finally:
        template.close()


@async_fixture
async def crm_database_url(crm_database_template: DatabaseTemplate) -> AsyncIterator[str]:
    """The URL of a fresh, migrated database for this test alone."""
    url = await crm_database_template.create()
    try:
        yield url
    finally:
        await crm_database_template.drop(url)


@pytest.fixture
def crm_settings(crm_database_url: str) -> Settings:
    """Settings for the test's database. Override to change some (``dataclasses.replace``), e.g.
    ``plugin_hook_timeout`` or ``plugins_block``."""
    from crm_graph.settings import Settings
    from crm_graph.testing.auth import TEST_SECRET

    return Settings(database_url=crm_database_url, secret_key=TEST_SECRET)


@async_fixture
async def crm_db(crm_settings: Settings) -> AsyncIterator[Database]:
    """The test database's ``Database`` (``reader()``, ``writer()``): unscoped, for checking
    what the plugin stored."""
    from crm_graph.db.session import Database

    database = Database.from_settings(crm_settings)
    try:
        yield database
    finally:
        await database.dispose()


# --- the app --------------------------------------------------------------------------------------


@pytest.fixture
def crm_plugins(crm_settings: Settings) -> PluginManager:
    """The plugin manager: the core plugins and every installed one, as the server loads them.
    Override to add objects of the test's own:
    ``make_plugin_manager(crm_settings, plugins=[Recorder()])``."""
    from crm_graph.plugins import make_plugin_manager

    return make_plugin_manager(crm_settings)


@async_fixture
async def crm_app(crm_settings: Settings, crm_db: Database, crm_plugins: PluginManager) -> AsyncIterator[Starlette]:
    """The Starlette app with ``crm_plugins``, inside its lifespan (plugins' ``crm_startup`` has
    run; ``crm_shutdown`` runs after the test). The dispatcher loop and the periodic jobs are off:
    events reach plugins when the test calls ``crm_events.deliver()``."""
    from crm_graph.app import create_app

    app = create_app(crm_settings, db=crm_db, plugins=crm_plugins, dispatcher=False, jobs=False)
    try:
        async with app.router.lifespan_context(app):
            yield app
    finally:
        await app.state.dispatcher.aclose()


# --- signing in -----------------------------------------------------------------------------------


@pytest.fixture
def crm_make_key(crm_db: Database, crm_settings: Settings) -> Callable[..., Awaitable[str]]:
    """``await crm_make_key(role="SALES", email=None, team=None, scopes=None)``: a new API key
    (the secret to send as ``Authorization: Bearer``) of a user with that role, created with the
    user (``<role>@example.com`` unless ``email`` is given) and the team if they are new."""
    from crm_graph.testing.auth import make_key

    async def make(role: str = "ADMIN", **options: Any) -> str:
        token, _ = await make_key(crm_db, crm_settings, role=role, **options)
        return token

    return make


@async_fixture
async def crm_client_for(
    crm_app: Starlette, crm_make_key: Callable[..., Awaitable[str]]
) -> AsyncIterator[Callable[..., Awaitable[GraphQLClient]]]:
    """``await crm_client_for("SUPPORT")``: a ``GraphQLClient`` signed in with a new key of that
    role (``crm_make_key``'s options apply: ``email``, ``team``, ``scopes``);
    ``crm_client_for(token=...)`` signs in with a given key or session token, and
    ``crm_client_for(None)`` is a client without credentials."""
    from crm_graph.testing.client import GraphQLClient, asgi_client

    async with contextlib.AsyncExitStack() as stack:

        async def client_for(role: str | None = "ADMIN", *, token: str | None = None, **options: Any) -> GraphQLClient:
            if token is None and role is not None:
                token = await crm_make_key(role, **options)
            http = await stack.enter_async_context(asgi_client(crm_app, token))
            return GraphQLClient(http, crm_app)

        yield client_for


@async_fixture
async def crm_client(crm_client_for: Callable[..., Awaitable[GraphQLClient]]) -> GraphQLClient:
    """A ``GraphQLClient`` of ``crm_app`` signed in with an ADMIN API key (admin@example.com):
    ``await crm_client.execute(query, variables)`` returns ``data`` and fails on GraphQL errors,
    ``mutate`` also on ``UserError``s, ``post`` returns the whole response."""
    return await crm_client_for("ADMIN", email=ADMIN_EMAIL)


# --- events and time ------------------------------------------------------------------------------


@pytest.fixture
def crm_events(crm_app: Starlette) -> EventLog:
    """The events committed during the test, read from the outbox: ``await crm_events.all()``
    (``Event``s, as ``crm_on_event`` receives them), ``await crm_events.types("customer.*")``.
    ``await crm_events.deliver()`` runs the dispatcher until nothing is due and fails when a
    plugin's delivery failed."""
    from crm_graph.testing.events import EventLog

    return EventLog(crm_app)


@pytest.fixture
def crm_clock() -> Iterator[FrozenClock]:
    """The time crm-graph reads (``crm_graph.core.clock``) stands at 2026-11-22 09:00 UTC until
    the test moves it: ``crm_clock.advance(minutes=5)``."""
    from crm_graph.core.clock import frozen_clock

    with frozen_clock(CLOCK_START) as clock:
        yield clock
