"""Limits on one request's resources: its body, its running time, its database sessions."""

from __future__ import annotations

import asyncio
import dataclasses

import sqlalchemy as sa
import strawberry
from strawberry.types import Info

from crm_graph import hookimpl
from crm_graph.app import create_app
from crm_graph.domains import SchemaPart
from crm_graph.plugins import make_plugin_manager
from crm_graph.testing.client import GraphQLClient, asgi_client


@strawberry.type
class SlowQuery:
    @strawberry.field(description="Sleep, then answer (a stand-in for a slow resolver).")
    async def nap(self, seconds: float) -> bool:
        await asyncio.sleep(seconds)
        return True

    @strawberry.field(description="Hold a database session (and its connection) for a moment.")
    async def hold_session(self, info: Info) -> int:
        async with info.context.db.reader() as session:
            await session.execute(sa.text("SELECT 1"))
            await asyncio.sleep(0.2)
        return 1


class SlowPlugin:
    name = "slow_test_plugin"

    @hookimpl
    def crm_register_schema(self) -> SchemaPart:
        return SchemaPart(query=SlowQuery)


def app_with(settings, db, **changes):  # type: ignore[no-untyped-def]
    settings = dataclasses.replace(settings, **changes)
    db.max_request_sessions = settings.max_request_sessions
    return create_app(settings, db=db, plugins=make_plugin_manager(settings, plugins=[SlowPlugin()], entry_points=False))


async def test_a_slow_query_is_cancelled_with_a_clear_error(settings, db, admin_key):
    app = app_with(settings, db, request_timeout=1.0)
    async with asgi_client(app, admin_key) as http:
        client = GraphQLClient(http, app)
        assert (await client.execute("{ nap(seconds: 0.01) }")) == {"nap": True}
        response = await http.post("/graphql", json={"query": "{ nap(seconds: 30) customers { totalCount } }"})
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "REQUEST_TIMEOUT"
        assert "longer than 1 s" in error["message"]
        strict = await http.post(
            "/graphql", json={"query": "{ nap(seconds: 30) }"}, headers={"accept": "application/graphql-response+json"}
        )
        assert strict.status_code == 504 and "data" not in strict.json()
        assert (await client.execute("{ customers { totalCount } }")) == {"customers": {"totalCount": 0}}


async def test_one_request_holds_at_most_its_share_of_database_sessions(settings, db, admin_key):
    checked_out = most = 0

    def checkout(*_):  # type: ignore[no-untyped-def]
        nonlocal checked_out, most
        checked_out += 1
        most = max(most, checked_out)

    def checkin(*_):  # type: ignore[no-untyped-def]
        nonlocal checked_out
        checked_out -= 1

    sa.event.listen(db.engine.sync_engine.pool, "checkout", checkout)
    sa.event.listen(db.engine.sync_engine.pool, "checkin", checkin)
    document = "{ " + " ".join(f"h{i}: holdSession" for i in range(10)) + " }"
    for limit in (3, 100):
        most = 0
        app = app_with(settings, db, max_request_sessions=limit)
        async with asgi_client(app, admin_key) as http:
            client = GraphQLClient(http, app)
            await client.warm_up()
            most = 0
            data = await client.execute(document)
        assert sum(data.values()) == 10
        if limit == 3:
            assert most == 3
        else:  # without the limit, the ten fields hold more at once (all ten, on an idle machine)
            assert most > 3


async def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(settings, db, admin_key):
    app = app_with(settings, db, max_request_bytes=10_000)
    async with asgi_client(app, admin_key) as http:
        small = await http.post("/graphql", json={"query": "{ customers { totalCount } }"})
        assert small.status_code == 200
        padded = "{ customers { totalCount } }" + " " * 20_000
        big = await http.post("/graphql", json={"query": padded})
        assert big.status_code == 413
        assert big.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
        assert big.headers["connection"] == "close"

        async def chunks():  # no Content-Length: counted as it arrives
            for _ in range(30):
                yield b" " * 1_000

        streamed = await http.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        assert streamed.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"


async def test_an_overlong_document_is_refused_without_being_parsed(settings, db, admin_key, monkeypatch):
    from crm_graph.graphql import http as graphql_http
    from crm_graph.graphql import subscriptions

    parsed: list[int] = []
    for module in (subscriptions, graphql_http):
        original = module.parse
        monkeypatch.setattr(module, "parse", lambda text, *a, _o=original, **k: parsed.append(len(text)) or _o(text, *a, **k))
    app = app_with(settings, db, max_query_length=2_000)
    async with asgi_client(app, admin_key) as http:
        # Comment padding that names every operation keyword, which the endpoint's own checks look for.
        padded = "# subscription query mutation " + "x" * 5_000 + "\nquery A { __typename } query B { __typename }"
        response = await http.post("/graphql", json={"query": padded, "operationName": "A"})
        assert "more than 2000 code points" in response.json()["errors"][0]["message"]
        assert parsed == []
        short = "subscription S { __typename } query A { __typename }"
        await http.post("/graphql", json={"query": short})
        assert parsed  # the checks do parse documents within the limit
