"""What the benchmarks share: an empty database to load, on SQLite or a throwaway PostgreSQL, and
the app with a signed-in client over it."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
from starlette.applications import Starlette

from crm_graph.settings import Settings
from crm_graph.testing.client import GraphQLClient


async def bench_settings(name: str, postgresql: bool, **options: object) -> tuple[Settings, Callable[[], None]]:
    """Settings of a new, empty database called ``name`` (a SQLite file in a temporary directory,
    or a database on a throwaway PostgreSQL server) and the function that removes it when done."""
    if not postgresql:
        path = Path(tempfile.mkdtemp(prefix="crm-bench-")) / f"{name}.sqlite3"
        return Settings(database_url=f"sqlite+aiosqlite:///{path}", **options), lambda: None  # type: ignore[arg-type]
    from crm_graph.testing.postgres import TemporaryPostgres

    server = TemporaryPostgres().start()
    conn = await asyncpg.connect(server.dsn())
    await conn.execute("CREATE DATABASE bench")
    await conn.close()
    return Settings(database_url=server.url("bench"), **options), server.stop  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def api_client(name: str, postgresql: bool) -> AsyncIterator[tuple[Starlette, GraphQLClient]]:
    """A migrated, empty database called ``name``, the app on it (inside its lifespan, with the
    installed plugins, no dispatcher loop or jobs) and a GraphQL client signed in as an
    administrator. Everything is removed when the block ends."""
    from crm_graph import plugins
    from crm_graph.app import create_app
    from crm_graph.testing.auth import make_key
    from crm_graph.testing.client import asgi_client

    settings, cleanup = await bench_settings(name, postgresql, rate_limit_capacity=0)
    try:
        await asyncio.to_thread(plugins.upgrade, settings)
        app = create_app(settings, dispatcher=False, jobs=False)
        async with app.router.lifespan_context(app):
            token, _ = await make_key(app.state.db, settings)
            async with asgi_client(app, token) as http:
                yield app, GraphQLClient(http, app)
            await app.state.dispatcher.aclose()
    finally:
        cleanup()
