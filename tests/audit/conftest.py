"""Apps for the audit and privacy tests: exactly the plugins a test names (not the installed ones,
so a test sees only what it is about), a client per API key, from a fixed address."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from crm_graph.app import create_app
from crm_graph.audit.models import AuditEntity, AuditEntry
from crm_graph.db.session import Database
from crm_graph.plugins import make_plugin_manager
from crm_graph.settings import Settings
from crm_graph.testing.auth import bearer, make_key
from tests.conftest import GraphQLClient

ADDRESS = "203.0.113.7"
USER_AGENT = "audit-test/1.0"


@pytest.fixture
async def api(settings: Settings, db: Database) -> AsyncIterator[Callable[..., Awaitable[GraphQLClient]]]:
    """``await api(token, *plugins)``: a client sending ``token`` (None: anonymous) to an app with
    those plugins."""
    async with contextlib.AsyncExitStack() as stack:

        async def build(token: str | None, *plugins: Any) -> GraphQLClient:
            pm = make_plugin_manager(settings, plugins=plugins, entry_points=False)
            app = create_app(settings, db=db, plugins=pm, dispatcher=False)
            headers = {"user-agent": USER_AGENT, **(bearer(token) if token else {})}
            transport = httpx.ASGITransport(app=app, client=(ADDRESS, 4711))
            http = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://localhost", headers=headers)
            )
            return GraphQLClient(http)

        yield build


@pytest.fixture
def key(settings: Settings, db: Database) -> Callable[..., Awaitable[str]]:
    """``await key("SALES")``: an API key of that role (its user is ``sales@example.com``)."""

    async def make(role: str, **kwargs: Any) -> str:
        token, _ = await make_key(db, settings, role=role, **kwargs)
        return token

    return make


async def audit_rows(db: Database) -> list[AuditEntry]:
    """Every audit row, oldest first, read straight from the table."""
    async with db.reader() as session:
        return list(await session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)))


async def stored_text(db: Database) -> str:
    """Everything the audit tables hold, every column of every row, as one string."""
    async with db.reader() as session:
        parts = []
        for model in (AuditEntry, AuditEntity):
            for row in (await session.execute(sa.select(model.__table__))).all():
                parts.append(repr(tuple(row)))
    return "\n".join(parts)
