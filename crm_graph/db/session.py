"""Engines and session factories.

Two session factories share one engine: ``reader`` opens ordinary transactions; ``writer`` opens
write transactions. On SQLite a write transaction starts with ``BEGIN IMMEDIATE`` so it takes the
write lock up front: two writers queue on the busy timeout instead of deadlocking when both try
to upgrade a read lock. Reads use WAL snapshots and never block writers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from crm_graph.core.access import SCOPE_KEY
from crm_graph.core.filters import fold_text
from crm_graph.settings import Settings

_BEGIN_OPTION = "crm_sqlite_begin"
# The scoped database whose session the current task (or the task that started it) holds.
_holding: ContextVar[Any] = ContextVar("crm_graph_holding_session", default=None)


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
        # Unicode case folding for `contains`/`startsWith` (crm_graph.core.filters.folded).
        dbapi_connection.create_function("crm_fold", 1, fold_text, deterministic=True)

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
    # Sessions one scoped view (one request) may hold at once (CRM_MAX_REQUEST_SESSIONS).
    max_request_sessions: int | None = None

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
            max_request_sessions=settings.max_request_sessions,
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

    def scoped(self, scope: Any, max_sessions: int | None = None) -> ScopedDatabase:
        """The same database, with every session carrying ``scope`` (``crm_graph.core.access``):
        what those sessions read and write is limited to what the scope's actor may see. With
        ``max_sessions``, at most that many of its sessions are open at once (the others wait)."""
        return ScopedDatabase(self, scope, max_sessions if max_sessions is not None else self.max_request_sessions)


class ScopedDatabase:
    """A request's view of the ``Database``: ``reader()`` and ``writer()`` open sessions bound to
    one access scope. Everything else (engine, dialect) is the underlying database's.

    ``max_sessions`` bounds the sessions open at once through this view (one request's), so the
    many loaders of one query queue among themselves instead of taking the whole connection
    pool from every other request. A session opened while another of the same task chain is
    open (a loader called inside a session) does not wait: waiting there could deadlock."""

    def __init__(self, base: Database, scope: Any, max_sessions: int | None = None) -> None:
        self.base = base
        self.scope = scope
        self.engine = base.engine
        info = {SCOPE_KEY: scope}
        self.reader: Any = partial(base.reader, info=info)
        self.writer: Any = partial(base.writer, info=info)
        self.max_sessions = max_sessions
        self.open_sessions = self.most_open = 0  # now, and the most at once (tests, benches)
        if max_sessions is not None:
            gate = asyncio.Semaphore(max_sessions)
            self.reader = partial(self._limited, self.reader, gate)
            self.writer = partial(self._limited, self.writer, gate)

    @contextlib.asynccontextmanager
    async def _limited(self, maker: Any, gate: asyncio.Semaphore) -> AsyncIterator[AsyncSession]:
        nested = _holding.get() is self
        if not nested:
            await gate.acquire()
        token = _holding.set(self)
        self.open_sessions += 1
        self.most_open = max(self.most_open, self.open_sessions)
        try:
            async with maker() as session:
                yield session
        finally:
            self.open_sessions -= 1
            _holding.reset(token)
            if not nested:
                gate.release()

    @property
    def dialect(self) -> str:
        return self.base.dialect
