"""Engines and session factories.

Two session factories share one engine: ``reader`` opens ordinary transactions; ``writer`` opens
write transactions. On SQLite a write transaction starts with ``BEGIN IMMEDIATE`` so it takes the
write lock up front: two writers queue on the busy timeout instead of deadlocking when both try
to upgrade a read lock. Reads use WAL snapshots and never block writers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from crm_graph.core.access import SCOPE_KEY
from crm_graph.settings import Settings

_BEGIN_OPTION = "crm_sqlite_begin"


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        _ensure_sqlite_dir(settings.database_url)
        engine = create_async_engine(
            settings.database_url,
            connect_args={"timeout": settings.sqlite_busy_timeout},
        )
        _configure_sqlite(engine, settings)
        return engine
    return create_async_engine(
        settings.database_url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        # PostgreSQL's JIT compiler pays off for long analytical scans; for an API's queries its
        # compile time (hundreds of ms, seen on the RFM run and the segment filters) dominates.
        connect_args={"server_settings": {"jit": "off"}},
    )


def _ensure_sqlite_dir(url: str) -> None:
    from pathlib import Path

    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine, settings: Settings) -> None:
    busy_ms = int(settings.sqlite_busy_timeout * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


@dataclass
class Database:
    """The engine and the two session factories of one running server (or test)."""

    engine: AsyncEngine
    reader: async_sessionmaker[AsyncSession]
    writer: async_sessionmaker[AsyncSession]

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        from crm_graph.domains import import_models

        import_models()  # every table, so foreign keys between domains (owners: users.id) resolve
        engine = create_engine(settings)
        write_bind = engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"}) if settings.is_sqlite else engine
        return cls(
            engine=engine,
            reader=async_sessionmaker(engine, expire_on_commit=False, autoflush=False),
            writer=async_sessionmaker(write_bind, expire_on_commit=False, autoflush=False),
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def dispose(self) -> None:
        await self.engine.dispose()

    def use_extensions(self, registry: Any) -> None:
        """Make every session of this database carry the application's extension registry
        (``crm_graph.core.extensions``), so filters compiled by services know every condition."""
        from crm_graph.core.extensions import REGISTRY_KEY

        for maker in (self.reader, self.writer):
            maker.kw.setdefault("info", {})[REGISTRY_KEY] = registry

    def scoped(self, scope: Any) -> ScopedDatabase:
        """The same database, with every session carrying ``scope`` (``crm_graph.core.access``):
        what those sessions read and write is limited to what the scope's actor may see."""
        return ScopedDatabase(self, scope)


class ScopedDatabase:
    """A request's view of the ``Database``: ``reader()`` and ``writer()`` open sessions bound to
    one access scope. Everything else (engine, dialect) is the underlying database's."""

    def __init__(self, base: Database, scope: Any) -> None:
        self.base = base
        self.scope = scope
        self.engine = base.engine
        info = {SCOPE_KEY: scope}
        self.reader = partial(base.reader, info=info)
        self.writer = partial(base.writer, info=info)

    @property
    def dialect(self) -> str:
        return self.base.dialect
