"""Live updates as a client sees them: real uvicorn servers on loopback, a real
graphql-transport-ws client (gql over websockets), mutations over HTTP.

A subscription has no "subscribed" acknowledgement in the protocol, so each test first makes
probe changes until every subscription has seen one (``until_live``); from then on every
change must arrive. "Nothing arrived" is shown with a sentinel: a later change the client does
receive, after which an event that was not delivered can no longer be on its way (the hub
reads events in commit order).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from crm_graph.auth.models import ApiKey
from crm_graph.core import ids
from crm_graph.settings import PROJECT_ROOT
from crm_graph.testing.auth import bearer, make_key, share
from tests.conftest import TEST_SECRET

WAIT = 15.0  # seconds a test waits for something that must come (a failure, not a figure)

EVENTS = "subscription($types: [String!]!) { events(types: $types) { id type entityId occurredAt data } }"
CREATE_CUSTOMER = "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } errors { code } } }"
CREATE_TICKET = (
    "mutation($input: CreateTicketInput!) { createTicket(input: $input) { ticket { id subject version } errors { code } } }"
)
UPDATE_TICKET = """mutation($id: ID!, $input: UpdateTicketInput!, $v: Int) {
  updateTicket(id: $id, input: $input, expectedVersion: $v) { ticket { id version } errors { code } } }"""
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) { errors { code } } }"
REASSIGN = "mutation($input: ReassignOwnerInput!) { reassignOwner(input: $input) { errors { code } } }"


# --- servers and clients -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def servers(database_url: str, workdir: Path, count: int = 1, **env: str) -> AsyncIterator[list[str]]:
    """``count`` processes of ``create_app`` under uvicorn over one database; yields their URLs."""
    environ = {
        **os.environ,
        "CRM_DATABASE_URL": database_url,
        "CRM_SECRET_KEY": TEST_SECRET,
        "CRM_DATA_DIR": str(workdir),
        "CRM_DISPATCHER_ENABLED": "false",  # live updates do not depend on the dispatcher
        "CRM_JOBS_ENABLED": "false",
        "CRM_LIVE_POLL_INTERVAL": "0.05",
        **env,
    }
    started: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    try:
        for _ in range(count):
            port = _free_port()
            log_path = workdir / f"server-{port}.log"
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", "--factory", "crm_graph.app:create_app",
                     "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                    cwd=PROJECT_ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT,
                )
            started.append((f"http://127.0.0.1:{port}", process, log_path))
        await asyncio.gather(*(_ready(url, process, log_path) for url, process, log_path in started))
        yield [url for url, _, _ in started]
    finally:
        for _, process, _ in started:
            process.terminate()
        for _, process, _ in started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    for _, _, log_path in started:
        assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]


async def _ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            if process.poll() is not None:
                raise AssertionError(f"the server exited: {log_path.read_text()[-3000:]}")
            try:
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"the server did not start: {log_path.read_text()[-3000:]}")


class Api:
    """GraphQL over HTTP with one key, as a frontend calls it."""

    def __init__(self, url: str, key: str) -> None:
        self.http = httpx.AsyncClient(base_url=url, headers=bearer(key), timeout=WAIT)

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        body = response.json()
        assert "errors" not in body, body
        (payload,) = body["data"].values()
        return payload

    async def ok(self, query: str, **variables: Any) -> dict[str, Any]:
        payload = await self(query, **variables)
        assert payload["errors"] == [], payload
        return payload


def transport(url: str, payload: dict[str, Any] | None) -> WebsocketsTransport:
    return WebsocketsTransport(
        url=url.replace("http://", "ws://") + "/graphql",
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],  # graphql-transport-ws
        init_payload=payload,
    )


class Feed:
    """What one subscription received: results, or the error it ended with."""

    def __init__(self) -> None:
        self.items: asyncio.Queue[Any] = asyncio.Queue()
        self.error: TransportQueryError | None = None
        self.task: asyncio.Task[None] | None = None

    async def next(self) -> Any:
        return await asyncio.wait_for(self.items.get(), WAIT)

    async def until(self, found: Callable[[Any], bool]) -> list[Any]:
        """Everything received up to and including the first item ``found`` accepts."""
        seen = []
        while True:
            item = await self.next()
            seen.append(item)
            if found(item):
                return seen

    def drain(self) -> list[Any]:
        out = []
        while not self.items.empty():
            out.append(self.items.get_nowait())
        return out

    async def failure(self) -> TransportQueryError:
        assert self.task is not None
        await asyncio.wait_for(asyncio.shield(self.task), WAIT)
        assert self.error is not None, "the subscription ended without an error"
        return self.error


@asynccontextmanager
async def connection(url: str, key: str) -> AsyncIterator[Callable[..., Feed]]:
    """One WebSocket signed in with ``key``; yields ``subscribe(query, **variables) -> Feed``."""
    feeds: list[Feed] = []
    async with Client(transport=transport(url, {"authorization": f"Bearer {key}"})) as session:

        async def run(feed: Feed, request: GraphQLRequest) -> None:
            try:
                async for result in session.subscribe(request):
                    feed.items.put_nowait(next(iter(result.values())))
            except TransportQueryError as exc:
                feed.error = exc

        def subscribe(query: str, **variables: Any) -> Feed:
            feed = Feed()
            feed.task = asyncio.create_task(run(feed, GraphQLRequest(query, variable_values=variables)))
            feeds.append(feed)
            return feed

        try:
            yield subscribe
        finally:
            for feed in feeds:
                assert feed.task is not None
                feed.task.cancel()
            await asyncio.gather(*(f.task for f in feeds if f.task), return_exceptions=True)


async def until_live(feeds: list[Feed], probe: Callable[[], Any], key: Callable[[Any], str]) -> None:
    """Make probe changes until every feed has received the same one, then forget what came."""
    for _ in range(100):
        marker = await probe()
        try:
            for feed in feeds:
                while key(await asyncio.wait_for(feed.items.get(), 0.5)) != marker:
                    pass
        except TimeoutError:
            continue
        for feed in feeds:
            feed.drain()
        return
    raise AssertionError("the subscriptions never received a probe")


# --- the world -----------------------------------------------------------------------------------


async def people(db: Any, settings: Any) -> dict[str, Any]:
    """An administrator, and two support agents in different teams; tickets are PRIVATE, and
    customers open to everyone's changes (opening a ticket writes to the customer's timeline)."""
    admin, _ = await make_key(db, settings, role="ADMIN", email="admin@example.com")
    rep, rep_id = await make_key(db, settings, role="SUPPORT", email="rep@example.com", team="North", name="rep's key")
    other, other_id = await make_key(db, settings, role="SUPPORT", email="other@example.com", team="South")
    await share(db, "PRIVATE", "tickets")
    await share(db, "PUBLIC_READ_WRITE", "customers")
    return {"admin": admin, "rep": rep, "other": other, "rep_id": rep_id, "other_id": other_id}


async def new_customer(api: Api) -> str:
    payload = await api.ok(CREATE_CUSTOMER, input={"kind": "PERSON", "firstName": "Ada", "lastName": "Byron"})
    return payload["customer"]["id"]


async def new_ticket(api: Api, customer: str, subject: str) -> dict[str, Any]:
    payload = await api.ok(CREATE_TICKET, input={"customerId": customer, "subject": subject, "channel": "EMAIL"})
    return payload["ticket"]


# --- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "two-processes"])
async def test_events_arrive_after_commit_for_matching_types_and_readable_records(
    processes, database_url, workdir, settings, db
):
    who = await people(db, settings)
    async with servers(database_url, workdir, processes) as urls:
        a, b = urls[0], urls[-1]
        # Subscribers on A; every change goes through B (the same server when there is one).
        admin, rep, other = Api(b, who["admin"]), Api(b, who["rep"]), Api(b, who["other"])
        customer = await new_customer(admin)
        async with connection(a, who["admin"]) as admin_live, connection(a, who["rep"]) as rep_live:
            admin_feed = admin_live(EVENTS, types=["ticket.*"])
            rep_feed = rep_live(EVENTS, types=["ticket.*"])
            await until_live(
                [admin_feed, rep_feed], lambda: _ticket_id(new_ticket(rep, customer, "probe")), lambda e: e["entityId"]
            )

            mine = await new_ticket(rep, customer, "Printer on fire")
            for feed in (admin_feed, rep_feed):
                event = await feed.next()
                assert event["type"] == "ticket.created" and event["entityId"] == mine["id"]
                assert event["data"]["subject"] == "Printer on fire" and event["id"] and event["occurredAt"]

            hidden = await new_ticket(other, customer, "South's own")  # PRIVATE: not the rep's to read
            await new_customer(admin)  # customer.created: not a ticket event
            stale = await rep(UPDATE_TICKET, id=mine["id"], input={"subject": "never"}, v=mine["version"] + 5)
            assert [e["code"] for e in stale["errors"]] == ["VERSION_CONFLICT"]  # rolled back: no event
            await rep.ok(UPDATE_TICKET, id=mine["id"], input={"subject": "Sentinel"})

            sentinel = lambda e: e["type"] == "ticket.updated" and e["entityId"] == mine["id"]  # noqa: E731
            seen_by_rep = await rep_feed.until(sentinel)
            seen_by_admin = await admin_feed.until(sentinel)
            assert [(e["type"], e["entityId"]) for e in seen_by_rep] == [("ticket.updated", mine["id"])]
            assert [(e["type"], e["entityId"]) for e in seen_by_admin] == [
                ("ticket.created", hidden["id"]), ("ticket.updated", mine["id"]),
            ]
            assert seen_by_admin[-1]["data"]["subject"] == "Sentinel"
            assert len({e["id"] for e in seen_by_admin}) == len(seen_by_admin)  # each event once


async def _ticket_id(created: Any) -> str:
    return (await created)["id"]


async def test_connection_init_must_carry_valid_credentials(database_url, workdir, settings, db):
    who = await people(db, settings)
    narrow, _ = await make_key(db, settings, role="SUPPORT", email="narrow@example.com", scopes=["customers:read"])
    # Credentials are checked again for every batch; without the cache a revocation counts at once.
    async with servers(database_url, workdir, CRM_AUTH_CACHE_SECONDS="0") as (url,):
        for payload in (None, {}, {"authorization": "Bearer crm_not-a-real-key"}, {"authorization": 42},
                        {"authorization": f"Basic {who['rep']}"}):
            with pytest.raises(TransportConnectionFailed) as refused:
                async with Client(transport=transport(url, payload)) as session:
                    async for _ in session.subscribe(GraphQLRequest(EVENTS, variable_values={"types": ["*"]})):
                        pass
            closed = refused.value.__cause__  # the websockets library's ConnectionClosed
            assert (closed.rcvd.code, closed.rcvd.reason) == (4403, "Forbidden"), payload

        api = Api(url, who["admin"])
        customer = await new_customer(api)
        ticket = await new_ticket(api, customer, "Scoped")
        async with connection(url, narrow) as live:
            # The key may not read tickets: refused when the subscription starts.
            error = await live("subscription($id: ID!) { ticket(id: $id) { id } }", id=ticket["id"]).failure()
            assert error.errors[0]["extensions"]["code"] == "FORBIDDEN"
        async with connection(url, who["rep"]) as live:
            for types, code in (([], "INVALID_EVENT_TYPES"), (["tickets.*"], "UNKNOWN_EVENT_TYPE"), (["*"] * 21, "INVALID_EVENT_TYPES")):
                error = await live(EVENTS, types=types).failure()
                assert error.errors[0]["extensions"]["code"] == code, types
            customer_id = ids.encode("Customer", 1)
            error = await live("subscription($id: ID!) { ticket(id: $id) { id } }", id=customer_id).failure()
            assert error.errors[0]["extensions"]["code"] == "INVALID_ID"

            # The key is revoked while the connection is open: the next event ends the subscription.
            rep = Api(url, who["rep"])
            revoked = live(EVENTS, types=["ticket.*"])
            await until_live([revoked], lambda: _ticket_id(new_ticket(rep, customer, "probe")), lambda e: e["entityId"])
            async with db.reader() as session:
                key_id = await session.scalar(sa.select(ApiKey.id).where(ApiKey.name == "rep's key"))
            await api.ok(REVOKE, id=ids.encode("ApiKey", key_id))
            await new_ticket(api, customer, "After the revocation")
            error = await revoked.failure()
            assert error.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_subscription_sent_over_http_gets_a_clear_error(client):
    body = await client.post(EVENTS, {"types": ["ticket.*"]})
    assert "data" not in body  # a request error: nothing ran
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST" and "WebSocket" in error["message"]
    assert await client.execute("query Subscriptions { __typename }") == {"__typename": "Query"}


async def test_subscriptions_per_connection_are_limited(database_url, workdir, settings, db):
    who = await people(db, settings)
    async with servers(database_url, workdir, CRM_LIVE_MAX_SUBSCRIPTIONS="3") as (url,):
        rep = Api(url, who["rep"])
        customer = await new_customer(Api(url, who["admin"]))
        probe = lambda: _ticket_id(new_ticket(rep, customer, "probe"))  # noqa: E731
        async with connection(url, who["rep"]) as live:
            feeds = [live(EVENTS, types=["ticket.created"]) for _ in range(3)]
            await until_live(feeds, probe, lambda e: e["entityId"])
            error = await live(EVENTS, types=["ticket.*"]).failure()
            assert error.errors[0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
            assert "At most 3 subscriptions" in error.errors[0]["message"]
            # The three keep working; completing one makes room for another.
            created = await new_ticket(rep, customer, "still live")
            for feed in feeds:
                assert (await feed.next())["entityId"] == created["id"]
            assert feeds[0].task is not None
            feeds[0].task.cancel()
            await asyncio.gather(feeds[0].task, return_exceptions=True)
            again = live(EVENTS, types=["ticket.created"])
            await until_live([again, *feeds[1:]], probe, lambda e: e["entityId"])
        async with connection(url, who["rep"]) as second:  # the limit is per connection
            await until_live([second(EVENTS, types=["ticket.*"])], probe, lambda e: e["entityId"])


async def test_ticket_and_entity_changed_follow_one_record_until_it_is_hidden(database_url, workdir, settings, db):
    who = await people(db, settings)
    async with servers(database_url, workdir, 2) as (a, b):
        admin, rep = Api(b, who["admin"]), Api(b, who["rep"])
        ticket = await new_ticket(rep, await new_customer(admin), "Follow me")
        async with connection(a, who["rep"]) as live:
            by_ticket = live("subscription($id: ID!) { ticket(id: $id) { id subject } }", id=ticket["id"])
            by_node = live(
                "subscription($id: ID!) { entityChanged(id: $id) { id ... on Ticket { subject } } }", id=ticket["id"]
            )
            n = iter(range(1000))
            await until_live(
                [by_ticket, by_node],
                lambda: _subject(admin, ticket["id"], f"probe {next(n)}"),
                lambda t: t["subject"],
            )
            await admin.ok(UPDATE_TICKET, id=ticket["id"], input={"subject": "Changed elsewhere"})
            for feed in (by_ticket, by_node):
                assert await feed.next() == {"id": ticket["id"], "subject": "Changed elsewhere"}
            # Given to the other team's agent: the rep may no longer read it, and hears so once.
            owner = ids.encode("User", who["other_id"])
            await admin.ok(REASSIGN, input={"ids": [ticket["id"]], "ownerId": owner})
            for feed in (by_ticket, by_node):
                assert await feed.next() is None
            # Changed while hidden: nothing. Given back: the rep reads it again, then every change.
            await admin.ok(UPDATE_TICKET, id=ticket["id"], input={"subject": "While hidden"})
            await admin.ok(REASSIGN, input={"ids": [ticket["id"]], "ownerId": ids.encode("User", who["rep_id"])})
            for feed in (by_ticket, by_node):
                assert await feed.next() == {"id": ticket["id"], "subject": "While hidden"}
            await admin.ok(UPDATE_TICKET, id=ticket["id"], input={"subject": "Back"})
            for feed in (by_ticket, by_node):
                assert await feed.next() == {"id": ticket["id"], "subject": "Back"}


async def _subject(api: Api, ticket_id: str, subject: str) -> str:
    await api.ok(UPDATE_TICKET, id=ticket_id, input={"subject": subject})
    return subject
