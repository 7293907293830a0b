"""The HTTP surface: health checks, GraphiQL, and bad requests that must never become 500s."""

from __future__ import annotations

import re

import pytest

from crm_graph.app import create_app
from crm_graph.db.session import Database
from crm_graph.settings import Settings
from crm_graph.testing.auth import bearer, make_key
from tests.conftest import TEST_SECRET


async def test_health_and_readiness(http, backend):
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": backend}


async def test_readiness_fails_cleanly_when_the_database_is_unreachable(tmp_path):
    import httpx

    settings = Settings(database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none")
    db = Database.from_settings(settings)
    app = create_app(settings, db=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as http:
        response = await http.get("/readyz")
    await db.dispose()
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}


async def test_graphiql_is_served_in_development(http):
    response = await http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_production_has_no_ide_and_no_introspection(database_url):
    import httpx

    settings = Settings(database_url=database_url, environment="production", secret_key=TEST_SECRET)
    db = Database.from_settings(settings)
    token, _ = await make_key(db, settings)
    app = create_app(settings, db=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://localhost", headers=bearer(token)
    ) as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        introspection = await http.post("/graphql", json={"query": "{ __schema { types { name } } }"})
        query = await http.post("/graphql", json={"query": "{ customers { totalCount } }"})
    await db.dispose()
    assert page.status_code != 200 or "graphiql" not in page.text.lower()
    assert "introspection" in introspection.json()["errors"][0]["message"].lower()
    assert query.json()["data"] == {"customers": {"totalCount": 0}}


async def test_queries_over_get_are_refused(http):
    response = await http.get("/graphql", params={"query": "{ customers { totalCount } }"})
    assert response.status_code in (400, 405)
    assert "Traceback" not in response.text


async def test_malformed_requests_get_4xx_not_500(http):
    bad_json = await http.post("/graphql", content=b"{not json", headers={"Content-Type": "application/json"})
    assert 400 <= bad_json.status_code < 500
    no_query = await http.post("/graphql", json={"variables": {}})
    assert 400 <= no_query.status_code < 500
    syntax = await http.post("/graphql", json={"query": "{ customers { "})
    assert syntax.status_code == 200 and "Syntax Error" in syntax.json()["errors"][0]["message"]
    unknown = await http.post("/graphql", json={"query": "{ nope }"})
    assert "Cannot query field 'nope'" in unknown.json()["errors"][0]["message"]


async def test_query_limits_refuse_abusive_documents(http):
    deep = "{ customers { edges { node { organization { organization { organization { organization { organization { organization { organization { organization { organization { organization { id } } } } } } } } } } } } } }"
    response = await http.post("/graphql", json={"query": deep})
    assert "exceeds maximum operation depth" in response.json()["errors"][0]["message"]
    aliases = "{ " + " ".join(f"a{i}: customers {{ totalCount }}" for i in range(40)) + " }"
    response = await http.post("/graphql", json={"query": aliases})
    assert "aliases" in response.json()["errors"][0]["message"].lower()


async def test_unexpected_errors_are_masked(http, db):
    # Break the database under the server, so the next write fails inside SQLAlchemy.
    import sqlalchemy as sa

    async with db.writer() as session, session.begin():
        # (CASCADE on PostgreSQL: the analytics views read the table.)
        await session.execute(sa.text("DROP TABLE customer_tags" + (" CASCADE" if db.dialect == "postgresql" else "")))
    created = await http.post(
        "/graphql",
        json={"query": 'mutation { createCustomer(input: {kind: PERSON, lastName: "X", tags: ["a"]}) { customer { id } errors { code } } }'},
    )
    assert created.status_code == 200
    error = created.json()["errors"][0]
    assert error["message"] == "Internal server error."
    # The request's id is what to quote to an operator: the log lines of the failure carry it.
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": created.headers["x-request-id"]}
    assert "customer_tags" not in created.text and "Traceback" not in created.text
    # Nothing of the failed unit of work was kept.
    count = await http.post("/graphql", json={"query": "{ customers { totalCount } }"})
    assert count.json()["data"] == {"customers": {"totalCount": 0}}


async def test_graphiql_uses_local_files_once_fetched(settings, db, tmp_path, monkeypatch):
    import httpx

    from crm_graph.graphql import ide

    page = ide.strawberry_page()
    assets = ide.required_assets(page)
    assert {package for package, _, _ in assets} >= {"react", "react-dom", "graphiql"}
    monkeypatch.setattr(ide, "assets_dir", lambda _settings: tmp_path)

    async def fetch_page() -> tuple[str, httpx.AsyncClient]:
        app = create_app(settings, db=db)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost")
        return (await client.get("/graphql", headers={"Accept": "text/html"})).text, client

    html, client = await fetch_page()
    await client.aclose()
    assert "https://unpkg.com/graphiql@" in html  # nothing fetched yet: the CDN

    for package, version, path in assets:  # what `python -m crm_graph.graphql.ide fetch` leaves behind
        target = tmp_path / f"{package}@{version}" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"/* {package} {path} */")
    html, client = await fetch_page()
    assert "unpkg.com" not in html
    package, version, path = assets[0]
    local = f"/graphql/ide/{package}@{version}/{path}"
    assert local in html
    served = await client.get(local)
    await client.aclose()
    assert served.status_code == 200 and served.text == f"/* {package} {path} */"


# --- production settings: suggestions, hosts, origins, slow clients ------------------------------


async def _production_client(database_url: str, **options: object):
    import httpx

    settings = Settings(database_url=database_url, environment="production", secret_key=TEST_SECRET, **options)  # type: ignore[arg-type]
    db = Database.from_settings(settings)
    token, _ = await make_key(db, settings, role="ADMIN")
    app = create_app(settings, db=db)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost", headers=bearer(token))
    return client, db


MISSPELLED = [
    {"query": "{ customerz { totalCount } }"},  # a field
    {"query": "{ customers(firts: 2) { totalCount } }"},  # an argument
    {"query": "{ customers(orderBy: [{field: CREATED_ATT, direction: DESC}]) { totalCount } }"},  # an enum value
    {"query": "query($f: CustomerFilterr) { customers(filter: $f) { totalCount } }"},  # a type
    {"query": "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { errors { code } } }",
     "variables": {"input": {"kind": "PERSON", "lastNam": "Doe"}}},  # an input field, in variables
]


async def test_production_answers_unknown_names_without_suggestions(database_url, http):
    client, db = await _production_client(database_url)
    async with client:
        for payload in MISSPELLED:
            dev = (await http.post("/graphql", json=payload)).json()["errors"][0]["message"]
            assert "Did you mean" in dev, dev  # the development server helps
            prod = (await client.post("/graphql", json=payload)).json()["errors"][0]["message"]
            assert "Did you mean" not in prod and prod == re.sub(r" Did you mean [^?]*\?", "", dev), prod
    await db.dispose()


@pytest.mark.parametrize(("host", "allowed"), [
    ("localhost", True), ("localhost:8000", True), ("127.0.0.1:8000", True), ("[::1]:8000", True),
    ("app.localhost", True), ("evil.example:8000", False), ("192.168.1.10", False), ("", False),
])
async def test_only_loopback_host_names_reach_a_default_server(http, host, allowed):
    """A page on evil.example whose name was rebound to 127.0.0.1 sends its own Host: refused."""
    response = await http.post("/graphql", json={"query": "{ __typename }"}, headers={"host": host})
    if allowed:
        assert response.json()["data"] == {"__typename": "Query"}
    else:
        assert response.status_code == 400 and "Invalid host header" in response.text


async def test_allowed_hosts_come_from_the_settings(database_url):
    client, db = await _production_client(database_url, allowed_hosts=("api.example.com", "*.internal.example"))
    async with client:
        ok = await client.post("/graphql", json={"query": "{ __typename }"}, headers={"host": "api.example.com"})
        sub = await client.post("/graphql", json={"query": "{ __typename }"}, headers={"host": "crm.internal.example"})
        loopback = await client.post("/graphql", json={"query": "{ __typename }"}, headers={"host": "localhost"})
    await db.dispose()
    assert ok.status_code == 200 and sub.status_code == 200
    assert loopback.status_code == 400


def test_bad_host_and_origin_settings_are_usage_errors():
    with pytest.raises(ValueError, match="CRM_ALLOWED_HOSTS"):
        Settings.from_env({"CRM_ALLOWED_HOSTS": "api.*.example.com"})
    with pytest.raises(ValueError, match="CRM_CORS_ORIGINS"):
        Settings.from_env({"CRM_CORS_ORIGINS": "app.example.com"})
    assert Settings.from_env({"CRM_CORS_ORIGINS": "https://a.example, https://b.example"}).cors_origins == (
        "https://a.example", "https://b.example")


def _preflight(origin: str) -> dict[str, str]:
    return {"origin": origin, "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type"}


async def test_cors_in_development_lets_loopback_pages_call(http):
    page = await http.options("/graphql", headers=_preflight("http://localhost:5173"))
    assert page.status_code == 200
    assert page.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "authorization" in page.headers["access-control-allow-headers"].lower()
    other = await http.options("/graphql", headers=_preflight("https://evil.example"))
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
    call = await http.post("/graphql", json={"query": "{ __typename }"}, headers={"origin": "http://127.0.0.1:3000"})
    assert call.headers["access-control-allow-origin"] == "http://127.0.0.1:3000"
    assert "RateLimit-Remaining" in call.headers["access-control-expose-headers"]


async def test_cors_origins_come_from_the_settings_and_production_allows_none_by_default(database_url):
    client, db = await _production_client(database_url, cors_origins=("https://app.example.com",))
    async with client:
        allowed = await client.options("/graphql", headers=_preflight("https://app.example.com"))
        loopback = await client.options("/graphql", headers=_preflight("http://localhost:5173"))
    await db.dispose()
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in loopback.headers
    client, db = await _production_client(database_url)
    async with client:
        none = await client.options("/graphql", headers=_preflight("http://localhost:5173"))
    await db.dispose()
    assert "access-control-allow-origin" not in none.headers


async def test_websocket_handshakes_follow_the_same_origins(database_url, tmp_path):
    import websockets

    from tests.graphql.test_subscriptions import servers

    async with servers(database_url, tmp_path) as (url,):
        ws_url = url.replace("http://", "ws://") + "/graphql"
        async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"], origin="http://localhost:5173") as ws:
            assert ws.subprotocol == "graphql-transport-ws"
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"], origin="https://evil.example"):
                pass
        assert refused.value.response.status_code == 403


async def test_serve_closes_connections_whose_headers_do_not_arrive_in_time(database_url, tmp_path):
    """A client that sends part of its headers and waits (slowloris) is cut off after
    CRM_HTTP_HEADER_TIMEOUT; one that sends them in time is answered."""
    import asyncio
    import os
    import socket
    import subprocess
    import sys

    from crm_graph.settings import PROJECT_ROOT

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CRM_DATABASE_URL": database_url, "CRM_SECRET_KEY": TEST_SECRET, "CRM_DATA_DIR": str(tmp_path),
           "CRM_DISPATCHER_ENABLED": "false", "CRM_JOBS_ENABLED": "false", "CRM_HTTP_HEADER_TIMEOUT": "1"}
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([sys.executable, "-m", "crm_graph.cli", "serve", "--no-migrate", "--port", str(port)],
                               cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(400):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()
                await asyncio.sleep(0.05)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")  # ... and the rest never comes
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 15) == b""  # closed, nothing answered
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert (await asyncio.wait_for(reader.readline(), 15)).startswith(b"HTTP/1.1 200")
        writer.close()
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.mark.one_pass
@pytest.mark.parametrize("first", ["crm_graph.insights.customer_fields", "crm_graph.insights.schema", "crm_graph.seed"])
def test_the_schema_builds_whichever_module_is_imported_first(first, tmp_path):
    """A module that uses a customer enum in its GraphQL types, imported before the customers'
    schema declares it, must not make a second GraphQL enum of it (`make serve` seeds the demo
    data, which reaches the insights fields, before it builds the app)."""
    import subprocess
    import sys

    program = (f"import {first}\n"
               "from crm_graph.app import create_app\n"
               "from crm_graph.settings import Settings\n"
               f"create_app(Settings(database_url='sqlite+aiosqlite:///{tmp_path}/x.sqlite3', data_dir='{tmp_path}'))\n"
               "print('built')\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "built", done.stderr[-2000:]
