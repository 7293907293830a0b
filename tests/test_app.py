"""The HTTP surface: health checks, GraphiQL, and bad requests that must never become 500s."""

from __future__ import annotations

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
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
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
        transport=httpx.ASGITransport(app=app), base_url="http://t", headers=bearer(token)
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
        await session.execute(sa.text("DROP TABLE customer_tags"))
    created = await http.post(
        "/graphql",
        json={"query": 'mutation { createCustomer(input: {kind: PERSON, lastName: "X", tags: ["a"]}) { customer { id } errors { code } } }'},
    )
    assert created.status_code == 200
    error = created.json()["errors"][0]
    assert error["message"] == "Internal server error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
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
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
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
