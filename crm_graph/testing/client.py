"""A GraphQL client for tests: the real ASGI app over HTTP semantics, as a frontend talks to it,
without a server or a port (``httpx.ASGITransport``)."""

from __future__ import annotations

from typing import Any

import httpx

from crm_graph.testing.auth import bearer

BASE_URL = "http://localhost"  # a loopback name: the default CRM_ALLOWED_HOSTS answers to it


def asgi_client(app: Any, token: str | None = None, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that sends its requests to ``app``, signed in with ``token``
    (an API key or a session token) unless it is None. Use it with ``async with``.

    With ``raise_app_exceptions`` (the default) an exception the app does not handle reaches the
    test with its traceback; without, the client sees the 500 a real client would.
    """
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=bearer(token) if token else None)


class GraphQLClient:
    """Talks to the real ASGI app over HTTP semantics, as a frontend would."""

    def __init__(self, http: httpx.AsyncClient, app: Any = None) -> None:
        self.http = http
        self.app = app

    async def warm_up(self) -> None:
        """One request, so the key is verified and remembered, and its last-used time written:
        what a statement count measures next is the query alone."""
        await self.execute("{ __typename }")
        await self.app.state.auth.drain()

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a GraphQL document; return the whole response body (``data`` and ``errors``)."""
        response = await self.http.post("/graphql", json={"query": query, "variables": variables or {}})
        assert response.status_code == 200, response.text
        return response.json()

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a query that must succeed without GraphQL errors; return its data."""
        body = await self.post(query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def mutate(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a one-field mutation that must succeed with an empty ``errors`` list; return its payload."""
        data = await self.execute(query, variables)
        (payload,) = data.values()
        assert payload["errors"] == [], payload["errors"]
        return payload
