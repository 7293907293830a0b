"""Rate limits by cost: a bucket per principal, and per address for requests without credentials."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import httpx

from crm_graph.app import create_app
from crm_graph.core.clock import frozen_clock
from crm_graph.graphql.ratelimit import TokenBuckets
from crm_graph.testing.auth import bearer, make_key
from crm_graph.testing.client import BASE_URL

PAGE = "{ customers(first: 20) { edges { node { id } } } }"  # costs 41
START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def limited_app(settings, db, **changes):  # type: ignore[no-untyped-def]
    values = {"rate_limit_capacity": 100, "rate_limit_refill": 10.0, "max_query_cost": 100,
              "anonymous_rate_limit_capacity": 100, "anonymous_rate_limit_refill": 1.0, **changes}
    return create_app(dataclasses.replace(settings, **values), db=db)


def client_for(app, token=None, address="127.0.0.1"):  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=bearer(token) if token else None)


async def test_a_key_over_its_budget_gets_429_and_another_key_is_unaffected(settings, db, admin_key, sql_counter):
    other_key, _ = await make_key(db, settings, role="ADMIN", email="other@example.com")
    app = limited_app(settings, db)
    with frozen_clock(START) as clock:
        async with client_for(app, admin_key) as first, client_for(app, other_key) as second:
            answers = [await first.post("/graphql", json={"query": PAGE}) for _ in range(2)]
            assert [a.status_code for a in answers] == [200, 200]
            assert [a.headers["RateLimit-Remaining"] for a in answers] == ["59", "18"]
            assert answers[1].headers["RateLimit-Limit"] == "100"
            assert answers[1].headers["RateLimit-Reset"] == "9"  # 82 points at 10 a second

            await app.state.auth.drain()
            sql_counter.count = 0
            refused = await first.post("/graphql", json={"query": PAGE})
            assert refused.status_code == 429
            assert refused.headers["Retry-After"] == "3"  # 23 points short, 10 a second
            (error,) = refused.json()["errors"]
            assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 3}
            assert "data" not in refused.json()
            assert refused.headers["RateLimit-Remaining"] == "18"  # a refusal is not charged
            assert sql_counter.count == 0  # nothing ran (the key was remembered)

            elsewhere = await second.post("/graphql", json={"query": PAGE})
            assert elsewhere.status_code == 200 and elsewhere.headers["RateLimit-Remaining"] == "59"

            clock.advance(seconds=2)
            assert (await first.post("/graphql", json={"query": PAGE})).status_code == 429
            clock.advance(seconds=1)  # 48 points now
            again = await first.post("/graphql", json={"query": PAGE})
            assert again.status_code == 200 and again.headers["RateLimit-Remaining"] == "7"


async def test_requests_without_credentials_are_limited_per_address(settings, db):
    app = limited_app(settings, db, anonymous_rate_limit_capacity=100, anonymous_rate_limit_refill=1.0)
    with frozen_clock(START):
        async with client_for(app, address="203.0.113.7") as one, client_for(app, address="203.0.113.8") as two:
            statuses = [(await one.post("/graphql", json={"query": "{ __typename }"})).status_code for _ in range(101)]
            assert statuses == [200] * 100 + [429]  # 1 point each, 100 in the bucket
            refused = await one.post("/graphql", json={"query": "{ __typename }"})
            assert refused.json()["errors"][0]["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 1}
            assert refused.headers["Retry-After"] == "1"
            fresh = await two.post("/graphql", json={"query": "{ __typename }"})
            assert fresh.status_code == 200 and fresh.headers["RateLimit-Remaining"] == "99"


async def test_every_answer_tells_the_budget_even_an_error(settings, db, admin_key):
    app = limited_app(settings, db)
    with frozen_clock(START):
        async with client_for(app, admin_key) as client:
            bad = await client.post("/graphql", json={"query": "{ nope }"})
            assert bad.headers["RateLimit-Remaining"] == "99"  # a refused document costs 1
            costly = await client.post("/graphql", json={"query": "{ customers(first: 100) { edges { node { id } } } }"})
            assert costly.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
            assert costly.headers["RateLimit-Remaining"] == "98"


async def test_a_long_document_costs_its_length_whether_it_parses_or_not(settings, db, admin_key):
    app = limited_app(settings, db, rate_limit_capacity=1000)
    with frozen_clock(START):
        async with client_for(app, admin_key) as client:
            flood = "{ customers(first: 1) { " + " ".join(["id"] * 4000) + " } "  # a brace short, found at the end
            refused = await client.post("/graphql", json={"query": flood})
            assert refused.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
            assert refused.headers["RateLimit-Remaining"] == str(1000 - len(flood) // 500)  # 24 points
            padded = "#" + "x" * 9_998 + "\n{ __typename }"  # 10,014 characters that cost nothing to run
            answered = await client.post("/graphql", json={"query": padded})
            assert answered.json()["data"] == {"__typename": "Query"}
            assert answered.headers["RateLimit-Remaining"] == str(1000 - len(flood) // 500 - 20)


async def test_rate_limits_can_be_turned_off(settings, db, admin_key):
    app = limited_app(settings, db, rate_limit_capacity=0)
    async with client_for(app, admin_key) as client:
        for _ in range(5):
            answer = await client.post("/graphql", json={"query": PAGE})
            assert answer.status_code == 200 and "RateLimit-Remaining" not in answer.headers


def test_buckets_are_bounded_and_the_least_recently_used_go_first():
    buckets = TokenBuckets(capacity=10, refill=1, max_buckets=3)
    with frozen_clock(START) as clock:
        for key in ("a", "b", "c"):
            buckets.take(key, 5)
        buckets.take("a", 1)  # a is used again: b is now the oldest
        buckets.take("d", 5)
        assert len(buckets) == 3
        assert buckets.peek("b").remaining == 10  # dropped: a full bucket again
        assert buckets.peek("a").remaining == 4
        clock.advance(seconds=3)
        assert buckets.peek("a").remaining == 7  # refilled by the clock
