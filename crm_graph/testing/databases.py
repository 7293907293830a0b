"""Migrated databases for tests: a template built once by the real migrations, and a fresh copy
of it for every test.

Copying is what makes a database per test affordable: a file copy on SQLite, ``CREATE DATABASE
... TEMPLATE`` on PostgreSQL (a copy of the template's files), both far quicker than running the
migrations again. crm-graph's own suite and the pytest plugin for plugin authors
(``crm_graph.testing.pytest_plugin``) share these functions.

A PostgreSQL *server URL* names a server and a database to connect to for ``CREATE DATABASE``
(``postgresql://user:password@host:5432/postgres``); its user needs the ``CREATEDB`` privilege.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

from crm_graph.settings import Settings

Migrate = Callable[[Settings], None]

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def server_url(url: str) -> URL:
    """Parse a PostgreSQL server URL (``postgresql://``, ``postgresql+asyncpg://`` or
    ``postgres://``); anything else is a ``ValueError`` that says what is expected."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - SQLAlchemy's parse errors vary; the message below says it all
        parsed = None
    if parsed is None or parsed.get_backend_name() not in ("postgresql", "postgres"):
        shown = parsed.render_as_string(hide_password=True) if parsed is not None else repr(url)
        raise ValueError(
            f"a test database server must be a PostgreSQL URL such as "
            f"postgresql://user:password@127.0.0.1:5432/postgres, not {shown}"
        )
    return parsed.set(drivername="postgresql+asyncpg")


def database_url(server: URL | str, name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on ``server`` (what ``Settings.database_url`` takes)."""
    server = server if isinstance(server, URL) else server_url(server)
    return server.set(database=name).render_as_string(hide_password=False)


def _dsn(server: URL | str) -> str:
    server = server if isinstance(server, URL) else server_url(server)
    return server.set(drivername="postgresql").render_as_string(hide_password=False)


def _quoted(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a test database name (lower-case letters, digits and _)")
    return f'"{name}"'


async def pg_execute(server: URL | str, *statements: str) -> None:
    """Run ``statements`` on the server's maintenance database (outside a transaction, as
    ``CREATE DATABASE`` needs). ``server`` is a server URL or an asyncpg DSN."""
    dsn = server if isinstance(server, str) and server.startswith("postgresql://") else _dsn(server)
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def sqlite_url(path: Path | str) -> str:
    return f"sqlite+aiosqlite:///{path}"


def build_sqlite_template(path: Path, migrate: Migrate) -> str:
    """Migrate a new SQLite file at ``path``; returns the path, which ``copy_sqlite`` takes."""
    migrate(Settings(database_url=sqlite_url(path)))
    return str(path)


def build_postgres_template(server: URL | str, name: str, migrate: Migrate) -> str:
    """Create database ``name`` on ``server`` and migrate it; returns the name. Synchronous (it
    runs once per test session, outside any event loop), like the migrations themselves."""
    asyncio.run(pg_execute(server, f"CREATE DATABASE {_quoted(name)}"))
    migrate(Settings(database_url=database_url(server, name)))
    return name


def copy_sqlite(template: Path | str, path: Path) -> str:
    """Copy the SQLite template to ``path``; returns the copy's URL."""
    shutil.copyfile(template, path)
    return sqlite_url(path)


def remove_sqlite(path: Path | str) -> None:
    """Delete an SQLite database with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def copy_postgres(server: URL | str, template: str, name: str) -> str:
    """Create database ``name`` as a copy of ``template``; returns its URL."""
    await pg_execute(server, f"CREATE DATABASE {_quoted(name)} TEMPLATE {_quoted(template)}")
    return database_url(server, name)


async def drop_postgres(server: URL | str, name: str) -> None:
    """Drop database ``name``, ending connections a test left open."""
    await pg_execute(server, f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")


class DatabaseTemplate:
    """A template migrated once, on SQLite files (``server=None``) or on a PostgreSQL server, and
    numbered copies of it.

    Every name this object creates on a server starts with ``crm_test_<random>_``, so runs that
    share a server (two CI jobs, a developer's database next to them) never meet; ``close()``
    drops the template and deletes the temporary directory.
    """

    def __init__(self, server: str | None = None) -> None:
        self.server = server_url(server) if server else None
        self.prefix = f"crm_test_{secrets.token_hex(4)}"
        self.directory = Path(tempfile.mkdtemp(prefix="crm-test-"))
        self.template: str | None = None
        self._numbers = itertools.count(1)

    @property
    def dialect(self) -> str:
        return "sqlite" if self.server is None else "postgresql"

    def build(self, migrate: Migrate) -> None:
        if self.server is None:
            self.template = build_sqlite_template(self.directory / "template.sqlite3", migrate)
        else:
            self.template = build_postgres_template(self.server, f"{self.prefix}_template", migrate)

    async def create(self) -> str:
        """A fresh copy of the template; returns its URL."""
        if self.template is None:
            raise RuntimeError("build() the template first")
        n = next(self._numbers)
        if self.server is None:
            return copy_sqlite(self.template, self.directory / f"test-{n}.sqlite3")
        return await copy_postgres(self.server, self.template, f"{self.prefix}_{n}")

    async def drop(self, url: str) -> None:
        """Remove a copy that ``create()`` made."""
        name = make_url(url).database or ""
        if self.server is None:
            remove_sqlite(name)
        else:
            await drop_postgres(self.server, name)

    def close(self) -> None:
        try:
            if self.server is not None and self.template is not None:
                asyncio.run(drop_postgres(self.server, self.template))
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
