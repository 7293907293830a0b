"""What the benchmarks share: an empty database to load, on SQLite or a throwaway PostgreSQL."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import asyncpg

from crm_graph.settings import Settings


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
