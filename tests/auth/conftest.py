"""Access through the API: one app per test, so revocations reach the cache the requests use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from crm_graph.app import create_app
from crm_graph.auth import service
from crm_graph.core.actor import SYSTEM
from crm_graph.db.session import Database
from crm_graph.settings import Settings
from crm_graph.testing.auth import bearer
from tests.conftest import GraphQLClient

PASSWORD = "correct horse battery staple"

ME = "{ me { kind role permissions scopes viewAll user { id email role team { name } } apiKey { id name prefix } } }"
LOGIN = """
mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { token expiresAt user { id email role lastLoginAt } errors { field code message } }
}
"""
CREATE_USER = """
mutation($input: CreateUserInput!) {
  createUser(input: $input) { user { id email name role active version team { id name } } errors { field code message } }
}
"""
UPDATE_USER = """
mutation($id: ID!, $input: UpdateUserInput!) {
  updateUser(id: $id, input: $input) { user { id role active version } errors { field code message } }
}
"""
CREATE_KEY = """
mutation($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { key apiKey { id name prefix role scopes expiresAt lastUsedAt } errors { field code message } }
}
"""

Connect = Callable[..., Awaitable[GraphQLClient]]


@pytest.fixture
def app(settings: Settings, db: Database) -> Starlette:
    return create_app(settings, db=db)


@pytest.fixture
async def connect(app: Starlette) -> AsyncIterator[Connect]:
    """``await connect(token)``: a client of the test's app, anonymous without a token.
    ``connect(token, app=other)`` talks to another app (another server process)."""
    opened: list[httpx.AsyncClient] = []

    async def make(token: str | None = None, *, app: Starlette = app) -> GraphQLClient:
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost", headers=bearer(token) if token else {}
        )
        opened.append(http)
        return GraphQLClient(http)

    yield make
    for http in opened:
        await http.aclose()


@pytest.fixture
async def admin(connect: Connect, admin_key: str) -> GraphQLClient:
    """The ADMIN key's client on the test's app."""
    return await connect(admin_key)


async def userless_key(db: Database, settings: Settings, role: str = "ADMIN", **options: Any) -> str:
    """A key of its own, acting as no user (what `crm-graph apikey create` makes without --user)."""
    async with db.writer() as session, session.begin():
        token, _ = await service.create_api_key(
            session, actor=SYSTEM, name=f"integration {role}", role=role, hash_key=settings.hash_key(), **options
        )
    return token


async def create_user(admin: GraphQLClient, email: str, role: str = "SALES", **extra: Any) -> dict[str, Any]:
    payload = await admin.mutate(CREATE_USER, {"input": {"email": email, "role": role, "password": PASSWORD, **extra}})
    return payload["user"]


async def login(client: GraphQLClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    return (await client.execute(LOGIN, {"email": email, "password": password}))["login"]


def error_code(body: dict[str, Any]) -> str:
    """The ``extensions.code`` of a response's only GraphQL error."""
    (error,) = body["errors"]
    return error["extensions"]["code"]


def codes(payload: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(e["field"], e["code"]) for e in payload["errors"]]
