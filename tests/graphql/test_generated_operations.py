"""2,000 operations that schemathesis generates from schema.graphql (tests/graphql/
generated_operations.py: queries and mutations of every root field, arguments of every type,
from a fixed hypothesis seed) sent to the app over a small seeded database. None may answer with
a 5xx, a body that is not JSON, or a masked internal error (an error whose ``extensions.code`` is
INTERNAL_SERVER_ERROR). Eight in ten are signed in with an ADMIN key, so resolvers and services
really run; one in ten has no credentials and one in ten a READ_ONLY key.

A generated ``ID`` is a real global ID of any node type (primary keys 1 to 3: seeded rows, and
the first rows mutations create), a real one spelled otherwise, or random text; the last two are
refused as INVALID_ID. Every failure is collected and all are reported at the end, each with its
operation and the answer, so one run shows every bug rather than the first; then the run must
have reached what it is for (answers without errors, INVALID_ID, UNAUTHENTICATED, FORBIDDEN).

The operations go to the ASGI app in this process through the project's test client rather than
to a uvicorn server: the app's own work per request is the same, without a server to start,
HTTP to parse, sockets, or a second process competing for the two cores; a request the app fails
on still comes back as the 500 a client would see (``raise_app_exceptions=False``). Four are in
flight at once, so one request's wait for the database overlaps another's work, and writes race
as they do under real clients (two creations of one name at once, say). Generating the
operations costs more than sending them: they are generated once and kept (see
generated_operations.py); sending the 2,000 takes about 30 s on an idle 2-core machine.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from crm_graph.app import create_app
from crm_graph.seed import seed_demo
from crm_graph.testing.auth import bearer, make_key
from crm_graph.testing.client import asgi_client
from tests.graphql import generated_operations

IN_FLIGHT = 4  # requests sent at once


def problem_of(status: int, text: str) -> tuple[str | None, list[str]]:
    """What is wrong with an answer (or None), and the codes of its errors ("OK" without any)."""
    if status >= 500:
        return f"status {status}", []
    try:
        answer = json.loads(text)
    except ValueError:
        return "a body that is not JSON", []
    if not isinstance(answer, dict):
        return "a JSON body that is not an object", []
    codes = [str((error.get("extensions") or {}).get("code")) for error in answer.get("errors") or []]
    if "INTERNAL_SERVER_ERROR" in codes:
        return "a masked internal error", codes
    return None, codes or ["OK"]


async def test_generated_operations_get_no_5xx_and_no_internal_error(settings, db):
    app = create_app(settings, db=db)
    operations, _ = await asyncio.gather(asyncio.to_thread(generated_operations.operations), seed_demo(settings, count=6))
    assert len(operations) == generated_operations.COUNT
    kinds = Counter(label.split(".")[0] for label, _ in operations)
    assert kinds["Query"] >= 500 and kinds["Mutation"] >= 500, kinds
    admin, _ = await make_key(db, settings, role="ADMIN", email="generated-admin@example.com")
    reader, _ = await make_key(db, settings, role="READ_ONLY", email="generated-reader@example.com")
    credentials = {0: ("no credentials", {}), 1: ("READ_ONLY", bearer(reader))}
    as_admin = ("ADMIN", bearer(admin))

    failures: list[tuple[int, str]] = []
    answered: Counter[str] = Counter()
    codes: Counter[tuple[str, str]] = Counter()  # (who, error code or "OK")
    gate = asyncio.Semaphore(IN_FLIGHT)
    async with asgi_client(app, raise_app_exceptions=False) as http:

        async def send(index: int, label: str, document: str) -> None:
            who, headers = credentials.get(index % 10, as_admin)
            async with gate:
                response = await http.post("/graphql", json={"query": document}, headers=headers)
            answered[who] += 1
            problem, found = problem_of(response.status_code, response.text)
            codes.update((who, code) for code in set(found))
            if problem is not None:
                failures.append((index, f"#{index} {label} as {who}: {problem}\n{document}\n=> {response.status_code} {response.text[:1500]}"))

        await asyncio.gather(*(send(i, label, document) for i, (label, document) in enumerate(operations)))

    assert answered == {"ADMIN": 1600, "READ_ONLY": 200, "no credentials": 200}
    if failures:
        pytest.fail(f"{len(failures)} of {len(operations)} operations failed:\n\n" + "\n\n".join(text for _, text in sorted(failures)), pytrace=False)
    # The run reached what it is for: resolvers that answered, random IDs refused as such, and
    # the access checks of the other two.
    assert codes["ADMIN", "OK"] >= 400 and codes["ADMIN", "INVALID_ID"] >= 100, codes
    assert codes["no credentials", "UNAUTHENTICATED"] >= 50 and codes["READ_ONLY", "FORBIDDEN"] >= 20, codes
