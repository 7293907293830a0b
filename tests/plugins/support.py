"""Fixtures and utilities for tests of plugins, events and webhooks.

Import the fixtures into a conftest or a test module (``from tests.plugins.support import ...``).
They make the dispatcher fast: short hook and webhook timeouts, a backoff of seconds, and a
frozen clock that tests move forward instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from crm_graph.app import create_app
from crm_graph.auth.models import ApiKey
from crm_graph.core.clock import frozen_clock, utcnow
from crm_graph.core.dispatch import Dispatcher
from crm_graph.core.events import EventDelivery, OutboxEvent
from crm_graph.db.session import Database
from crm_graph.plugins import make_plugin_manager
from crm_graph.settings import Settings
from crm_graph.testing.auth import bearer, make_key
from crm_graph.webhooks.receiver import Receiver
from tests.conftest import TEST_SECRET, GraphQLClient

SECRET = "whsec_test_0123456789abcdef"
START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

CREATE_CUSTOMER = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) { customer { id displayName version } errors { field code message } }
}
"""
UPDATE_CUSTOMER = """
mutation($id: ID!, $input: UpdateCustomerInput!) {
  updateCustomer(id: $id, input: $input) { customer { id version } errors { field code message } }
}
"""
DELIVERIES = """
query($filter: EventDeliveryFilter) {
  eventDeliveries(filter: $filter, first: 100) {
    totalCount
    edges { node { id subscriber plugin status attempts lastError lastStatusCode deliveredAt nextAttemptAt
                   event { eventId type entityId } subscription { id url } } }
  }
}
"""


def fast(settings: Settings) -> Settings:
    return replace(
        settings,
        plugin_hook_timeout=0.5,
        webhook_timeout=1.0,
        webhook_allow_private=True,
        dispatch_poll_interval=0.05,
        dispatch_backoff_base=1.0,
        dispatch_backoff_cap=8.0,
        dispatch_max_attempts=4,
        dispatch_lease=5.0,
    )


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The settings of a test database, with a dispatcher tuned for tests."""
    return fast(Settings(database_url=database_url, secret_key=TEST_SECRET))


@pytest.fixture
def clock() -> Any:
    """A frozen clock: move it with ``clock.advance(seconds=...)``."""
    with frozen_clock(START) as frozen:
        yield frozen


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real HTTP server on 127.0.0.1 that verifies signatures against the (frozen) clock."""
    r = Receiver(secret=SECRET, clock=lambda: utcnow().timestamp())
    await r.start()
    yield r
    await r.stop()


class Server:
    """An app built with chosen plugins, the client that talks to it, and its dispatcher."""

    def __init__(self, app: Any, client: GraphQLClient, actor: str) -> None:
        self.app = app
        self.client = client
        self.actor = actor  # the label of the administrator's key the client signs in with
        self.dispatcher: Dispatcher = app.state.dispatcher
        self.plugins = app.state.plugins

    async def drain(self) -> Any:
        return await self.dispatcher.drain()


@pytest.fixture
async def server_factory(settings: Settings, db: Database) -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    """``await server_factory(PluginA(), entry_points=False)``: an app with just those plugins
    (and the core's). With ``lifespan=True`` the app's lifespan runs: startup hooks and, unless
    ``dispatcher=False``, the dispatcher loop."""
    async with contextlib.AsyncExitStack() as stack:

        async def build(
            *plugins: Any, entry_points: bool = False, lifespan: bool = False, dispatcher: bool = True,
            settings_: Settings | None = None,
        ) -> Server:
            s = settings_ or settings
            pm = make_plugin_manager(s, plugins=plugins, entry_points=entry_points)
            # With the lifespan, the dispatcher runs as it does in `serve`: by default.
            app = create_app(s, db=db, plugins=pm, dispatcher=None if (lifespan and dispatcher) else False)
            stack.push_async_callback(app.state.dispatcher.aclose)
            if lifespan:
                await stack.enter_async_context(app.router.lifespan_context(app))
            token, user_id = await make_key(db, s)  # tests sign in as an administrator
            async with db.reader() as session:
                key_id = await session.scalar(sa.select(sa.func.max(ApiKey.id)).where(ApiKey.user_id == user_id))
            http = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost", headers=bearer(token))
            )
            return Server(app, GraphQLClient(http), actor=f"api_key:{key_id}")

        yield build


async def create_customer(client: GraphQLClient, **input: Any) -> dict[str, Any]:
    payload = await client.mutate(CREATE_CUSTOMER, {"input": {"kind": "PERSON", **input}})
    return payload["customer"]


async def deliveries(client: GraphQLClient, **filter: Any) -> list[dict[str, Any]]:
    data = await client.execute(DELIVERIES, {"filter": filter or None})
    return [edge["node"] for edge in data["eventDeliveries"]["edges"]]


async def outbox(db: Database) -> list[OutboxEvent]:
    async with db.reader() as session:
        return list(await session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.id)))


async def delivery_rows(db: Database) -> list[EventDelivery]:
    async with db.reader() as session:
        return list(await session.scalars(sa.select(EventDelivery).order_by(EventDelivery.id)))


async def eventually(check: Callable[[], Any], *, within: float = 10.0) -> None:
    """Wait until ``check()`` is true (for loops that run on their own); fail after ``within`` s.

    Not a timing assertion: the bound only keeps a broken test from hanging.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.02)
