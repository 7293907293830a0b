"""An application with the exports subscriber loaded, and helpers that run an export through
the API as a client would: start it, let the dispatcher run it, download the file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from crm_graph.app import create_app
from crm_graph.exports import plugin as exports_plugin
from crm_graph.plugins import CORE_PLUGINS, make_plugin_manager
from crm_graph.testing.client import GraphQLClient, asgi_client
from crm_graph.testing.events import EventLog

START = """
mutation($input: StartExportInput!) {
  startExport(input: $input) { exportJob { id entity format status rowsDone } errors { field code message } }
}
"""
JOB = "query($id: ID!) { exportJob(id: $id) { id entity format status rowsTotal rowsDone downloadUrl createdAt finishedAt error } }"


def plugin_manager(settings: Any) -> Any:
    extra = [] if "crm_graph.exports.plugin" in CORE_PLUGINS else [exports_plugin]
    return make_plugin_manager(settings, plugins=extra)


@pytest.fixture
async def app(settings, db) -> Any:
    return create_app(settings, db=db, plugins=plugin_manager(settings))


@pytest.fixture
async def client(app, admin_key) -> AsyncIterator[GraphQLClient]:
    async with asgi_client(app, admin_key) as http:
        yield GraphQLClient(http, app)


async def export(client: GraphQLClient, entity: str, fmt: str, **extra: Any) -> dict[str, Any]:
    """Start an export, run it, and return the finished job (as ``exportJob`` shows it)."""
    started = await client.mutate(START, {"input": {"entity": entity, "format": fmt, **extra}})
    assert started["exportJob"]["status"] == "PENDING"
    await EventLog(client.app).deliver()
    job = (await client.execute(JOB, {"id": started["exportJob"]["id"]}))["exportJob"]
    assert job["status"] == "DONE", job
    return job


async def download(client: GraphQLClient, url: str) -> bytes:
    """GET a signed link without an Authorization header, as a browser would."""
    async with asgi_client(client.app) as anonymous:
        response = await anonymous.get(url)
    assert response.status_code == 200, response.text
    return response.content
