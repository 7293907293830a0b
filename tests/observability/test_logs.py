"""Log lines in production: one JSON object a line, and every line written while a request is
answered carries the id the answer's X-Request-ID header gives back, with its principal and
operation; no secret goes into a line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
import subprocess
import sys
from dataclasses import replace

import httpx
import pytest
import sqlalchemy as sa

from crm_graph.app import create_app
from crm_graph.observability import logs
from crm_graph.settings import PROJECT_ROOT
from crm_graph.testing.client import asgi_client
from crm_graph.testing.auth import TEST_SECRET

CREATE = 'mutation Tagged { createCustomer(input: {kind: PERSON, lastName: "X", tags: ["a"]}) { customer { id } errors { code } } }'


@pytest.fixture
def captured(settings):
    """The root logger writing what production writes, into a buffer."""
    stream = io.StringIO()
    handler = logs.handler(replace(settings, environment="production"), stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


async def test_every_line_of_a_failing_request_is_json_with_its_request_id(captured, settings, db, admin_key):
    app = create_app(settings, db=db)
    async with db.writer() as session, session.begin():  # the next write fails inside SQLAlchemy
        # (CASCADE on PostgreSQL: the analytics views read the table.)
        await session.execute(sa.text("DROP TABLE customer_tags" + (" CASCADE" if db.dialect == "postgresql" else "")))
    async with asgi_client(app, admin_key, raise_app_exceptions=False) as http:
        failed = await http.post("/graphql", json={"query": CREATE})
        sent_id = "trace-4f2a9c1e-from-the-proxy"
        kept = await http.post("/graphql", json={"query": "query Count { customers { totalCount } }"},
                               headers={"X-Request-ID": sent_id})
        forged = await http.get("/healthz", headers={"X-Request-ID": 'x" injected\nline'})

    request_id = failed.headers["x-request-id"]
    assert failed.json()["errors"][0]["extensions"]["requestId"] == request_id
    assert kept.headers["x-request-id"] == sent_id  # a proxy's id is kept when it looks like one
    assert forged.headers["x-request-id"] != 'x" injected\nline' and "\n" not in forged.headers["x-request-id"]
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]  # every line is JSON
    of_failure = [line for line in lines if line.get("request_id") == request_id]
    assert len(of_failure) >= 2  # the error with its traceback, and the request's own line
    error = next(line for line in of_failure if line["level"] == "ERROR")
    assert "customer_tags" in error["exc_info"]  # the operator sees what the client did not
    assert error["operation"] == "Tagged" and error["principal"].startswith("api_key:")
    (summary,) = [line for line in of_failure if line["logger"] == "crm_graph.request"]
    assert summary["status"] == 200 and summary["route"] == "/graphql" and summary["duration_ms"] > 0
    assert summary["operation"] == "Tagged" and summary["time"].endswith("Z")
    (counted,) = [line for line in lines if line.get("request_id") == sent_id and line["logger"] == "crm_graph.request"]
    assert counted["operation"] == "Count" and counted["cost"] >= 1
    assert all(line.get("request_id") for line in lines if line["logger"] == "crm_graph.request")
    assert admin_key not in captured.getvalue() and TEST_SECRET not in captured.getvalue()


async def test_the_production_server_writes_json_lines_with_the_ids_it_answers_with(database_url, admin_key, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CRM_DATABASE_URL": database_url, "CRM_SECRET_KEY": TEST_SECRET, "CRM_DATA_DIR": str(tmp_path),
           "CRM_ENVIRONMENT": "production", "CRM_ALLOWED_HOSTS": "127.0.0.1", "CRM_DISPATCHER_ENABLED": "false",
           "CRM_JOBS_ENABLED": "false"}
    env.pop("CRM_LOG_FORMAT", None)
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "crm_graph.cli", "serve", "--no-migrate", "--port", str(port)],
                                   cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                for _ in range(400):
                    try:
                        await http.get("/healthz")
                        break
                    except httpx.TransportError:
                        assert process.poll() is None, log_path.read_text()
                        await asyncio.sleep(0.05)
                answers = [
                    await http.post("/graphql", json={"query": "query Mine { viewer { email } }"},
                                    headers={"Authorization": f"Bearer {admin_key}"}),
                    await http.post("/graphql", json={"query": "{ customers { totalCount } }"}),  # not signed in
                    await http.post("/graphql", content=b"{not json", headers={"Content-Type": "application/json"}),
                    await http.post("/graphql", json={"query": "query Mine { viewer { email } }"},
                                    headers={"Authorization": "Bearer crm_not_a_key"}),
                ]
        finally:
            process.terminate()
            process.wait(10)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]  # all of them JSON
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # uvicorn's own lines too
    by_request = {}
    for line in lines:
        if "request_id" in line:
            by_request.setdefault(line["request_id"], []).append(line)
    for answer in answers:
        request_id = answer.headers["x-request-id"]
        (summary,) = [line for line in by_request[request_id] if line["logger"] == "crm_graph.request"]
        assert summary["status"] == answer.status_code
    signed_in = by_request[answers[0].headers["x-request-id"]]
    assert signed_in[-1]["principal"].startswith("api_key:") and signed_in[-1]["operation"] == "Mine"
    text = log_path.read_text()
    assert admin_key not in text and "crm_not_a_key" not in text and TEST_SECRET not in text
