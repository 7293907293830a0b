"""340 hostile requests (crm_graph/testing/hostile.py: 17 families of 20) against the app, signed
in as an administrator, with a small query sent beside them all the while: each hostile one is
refused before anything runs (no SQL statement at all), with a JSON error body, no ``data`` and
no 5xx; the small query gets its right answer throughout; the document cache stays within its
bound. How long each family takes and the server's memory are measured in bench/hostile.py."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import replace

import pytest

from crm_graph.app import create_app
from crm_graph.testing.client import asgi_client
from crm_graph.testing.hostile import FAMILIES, hostile_requests

pytestmark = pytest.mark.one_pass  # the GraphQL layer's refusals: the database is never reached

SMALL = {"query": "{ customers(first: 1) { totalCount } }"}
CREATE = 'mutation { createCustomer(input: {kind: PERSON, lastName: "Beside"}) { errors { code } } }'


async def test_hostile_requests_are_refused_unrun_while_a_small_query_is_answered(settings, db, admin_key, sql_counter):
    # Signed-in principals stay cached for the whole run, so any statement is the small query's.
    app = create_app(replace(settings, auth_cache_seconds=3600), db=db)
    requests = list(hostile_requests())
    assert len(requests) == 20 * len(FAMILIES) >= 300
    async with asgi_client(app, admin_key, raise_app_exceptions=False) as http:
        assert (await http.post("/graphql", json={"query": CREATE})).status_code == 200
        small = await http.post("/graphql", json=SMALL)
        assert small.json()["data"] == {"customers": {"totalCount": 1}}  # signed in and warm: no SQL for the key
        problems: list[str] = []
        codes: Counter[str] = Counter()

        async def hostile_one(request, gate: asyncio.Semaphore) -> None:  # type: ignore[no-untyped-def]
            async with gate:
                response = await http.post("/graphql", content=request.body, headers={"content-type": request.content_type})
            where = f"{request.family} ({request.size} bytes): {response.status_code} {response.text[:300]}"
            if response.status_code >= 500:
                problems.append(f"5xx: {where}")
                return
            try:
                body = json.loads(response.text)
            except ValueError:
                problems.append(f"not JSON: {where}")
                return
            if "data" in body or not body.get("errors"):
                problems.append(f"ran or said nothing: {where}")
                return
            code = body["errors"][0].get("extensions", {}).get("code")
            if code in (None, "INTERNAL_SERVER_ERROR"):
                problems.append(f"no code or masked: {where}")
            codes[f"{request.family}: {code}"] += 1

        small_answers: list[dict] = []

        async def small_one(gate: asyncio.Semaphore) -> None:
            async with gate:
                small_answers.append((await http.post("/graphql", json=SMALL)).json())

        sql_counter.count = 0
        await small_one(asyncio.Semaphore(1))
        per_small = sql_counter.count  # what one small query runs (its page and its count)
        assert per_small > 0
        sql_counter.count = 0
        small_answers.clear()
        gate = asyncio.Semaphore(8)
        work = []
        for i, request in enumerate(requests):
            work.append(hostile_one(request, gate))
            if i % 10 == 0:  # a small query between every ten hostile ones, all in flight together
                work.append(small_one(gate))
        await asyncio.gather(*work)
        small_statements, statements = sql_counter.count, sql_counter.last

        assert problems == [], "\n".join(problems[:20])
        # Each family is refused for what it is (a few families answer with more than one code,
        # e.g. a deep document that is also past the token limit).
        for family in FAMILIES:
            assert sum(n for key, n in codes.items() if key.startswith(f"{family}:")) == 20, codes
        # The small query was answered right every time, and it is the only thing that ran SQL:
        # its statements for each of its answers, none for the 340 refusals.
        assert small_answers and all(a == {"data": {"customers": {"totalCount": 1}},
                                            "extensions": {"cost": {"requested": 1, "limit": 5000}}} for a in small_answers)
        assert len(small_answers) == 34 and small_statements == per_small * len(small_answers), statements
    cache = app.state.schema.document_cache
    assert cache.size <= cache.max_total
