"""crm_on_event: every event after commit, each plugin on its own, retried until it succeeds."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter

import pytest

from crm_graph import hookimpl
from crm_graph.core.actor import Actor
from crm_graph.core.events import Event, record_event
from crm_graph.customers.service import ServiceConfig, create_customer
from tests.plugins.support import UPDATE_CUSTOMER, create_customer as create_via_api
from tests.plugins.support import deliveries, eventually, outbox


class Listener:
    """Keeps what it receives; fails the first ``failures`` calls in the way it is told to."""

    def __init__(self, name: str, *, failures: int = 0, how: str = "raise") -> None:
        self.name = name
        self.failures = failures
        self.how = how
        self.calls = 0
        self.events: list[Event] = []

    @hookimpl
    async def crm_on_event(self, event: Event):  # noqa: ANN201
        self.calls += 1
        if self.calls <= self.failures:
            if self.how == "hang":
                await asyncio.sleep(60)
            if self.how == "garbage":
                return {"status": "done?"}
            raise RuntimeError(f"{self.name} is broken today")
        self.events.append(event)
        return None

    def received(self) -> Counter[str]:
        return Counter(e.id for e in self.events)


async def test_hook_crm_on_event_receives_each_event_after_commit(server_factory, db, clock):
    listener = Listener("listener")
    server = await server_factory(listener)
    customer = await create_via_api(server.client, firstName="Ada", lastName="Lovelace")
    await server.client.mutate(UPDATE_CUSTOMER, {"id": customer["id"], "input": {"jobTitle": "Analyst"}})
    assert listener.events == []  # nothing is delivered from inside the transaction

    await server.drain()
    created, updated = listener.events
    assert (created.type, updated.type) == ("customer.created", "customer.updated")
    assert created.entity_type == "Customer"
    assert created.entity_id == customer["id"]  # the ID the API shows: node(id:) fetches it
    assert created.data["displayName"] == "Ada Lovelace"
    assert created.actor == server.actor
    assert created.occurred_at == clock.current
    assert updated.changes["fields"] == ["jobTitle"]
    assert [e.event_id for e in await outbox(db)] == [created.id, updated.id]

    await server.drain()  # delivered events are not delivered again
    assert len(listener.events) == 2


async def test_the_dispatcher_in_the_server_delivers_right_after_commit(server_factory):
    listener = Listener("listener")
    server = await server_factory(listener, lifespan=True)  # the app's lifespan runs the dispatcher
    await create_via_api(server.client, lastName="Hopper")
    await eventually(lambda: len(listener.events) == 1)
    assert listener.events[0].type == "customer.created"


@pytest.mark.parametrize("how", ["raise", "hang", "garbage"])
async def test_a_plugin_that_fails_does_not_fail_the_mutation_and_gets_the_event_again(
    server_factory, db, clock, caplog, how
):
    caplog.set_level(logging.ERROR, logger="crm_graph")
    flaky = Listener("flaky", failures=2, how=how)
    steady = Listener("steady")
    server = await server_factory(flaky, steady)
    customer = await create_via_api(server.client, lastName="Turing")
    assert customer["displayName"] == "Turing"  # the request succeeded, whatever the plugin does

    await server.drain()
    assert len(steady.events) == 1  # the other plugin is not held up
    assert flaky.events == []
    waiting = await deliveries(server.client, subscriber={"eq": "plugin:flaky"})
    assert [(d["status"], d["attempts"]) for d in waiting] == [("PENDING", 1)]
    reason = {"raise": "RuntimeError: flaky is broken today", "hang": "did not finish within 0.5 s",
              "garbage": "returned dict"}[how]
    assert reason in waiting[0]["lastError"]
    assert any(f"plugin flaky: crm_on_event failed for event {steady.events[0].id}" in r.getMessage()
               for r in caplog.records)

    clock.advance(seconds=1)  # backoff after a first failure: between 0.5 and 1 s
    await server.drain()
    clock.advance(seconds=2)  # after a second: between 1 and 2 s
    await server.drain()
    assert flaky.received() == {steady.events[0].id: 1}
    assert flaky.calls == 3
    done = await deliveries(server.client, subscriber={"startsWith": "plugin:"})
    assert {(d["plugin"], d["status"], d["attempts"]) for d in done} == {("flaky", "DELIVERED", 3), ("steady", "DELIVERED", 1)}
    assert len(steady.events) == 1  # never delivered twice to the plugin that took it


async def test_a_plugin_that_blocks_its_thread_is_timed_out(server_factory, clock):
    release = threading.Event()

    class Blocking:
        name = "blocking"

        @hookimpl
        def crm_on_event(self, event: Event) -> None:
            release.wait(30)  # a plain function stuck in I/O: it runs in a worker thread

    server = await server_factory(Blocking())
    try:
        await create_via_api(server.client, lastName="Knuth")
        await server.drain()
        (delivery,) = await deliveries(server.client)
        assert delivery["status"] == "PENDING"
        assert delivery["lastError"] == "did not finish within 0.5 s"
    finally:
        release.set()


async def test_after_the_last_attempt_a_delivery_is_dead_until_retried(server_factory, clock):
    broken = Listener("broken", failures=100)
    server = await server_factory(broken)
    await create_via_api(server.client, lastName="Liskov")
    for _ in range(6):
        await server.drain()
        clock.advance(seconds=10)
    (dead,) = await deliveries(server.client)
    assert (dead["status"], dead["attempts"]) == ("DEAD", 4)  # dispatch_max_attempts in these tests
    assert broken.calls == 4

    broken.failures = 0  # the plugin's author fixed it; an operator retries
    retried = await server.client.mutate(
        "mutation($id: ID!) { retryEventDelivery(id: $id) { eventDelivery { status attempts } errors { code } } }",
        {"id": dead["id"]},
    )
    assert retried["eventDelivery"] == {"status": "PENDING", "attempts": 0}
    await server.drain()
    assert [d["status"] for d in await deliveries(server.client)] == ["DELIVERED"]
    assert len(broken.events) == 1

    again = await server.client.execute(
        "mutation($id: ID!) { retryEventDelivery(id: $id) { eventDelivery { id } errors { field code } } }",
        {"id": dead["id"]},
    )
    assert again["retryEventDelivery"] == {"eventDelivery": None, "errors": [{"field": "id", "code": "ALREADY_DELIVERED"}]}


async def test_events_of_rolled_back_transactions_are_never_delivered(server_factory, db):
    listener = Listener("listener")
    server = await server_factory(listener)
    actor = Actor("user", "7")

    class Abort(Exception):
        pass

    # A whole transaction that fails after the service recorded its event.
    with pytest.raises(Abort):
        async with db.writer() as session, session.begin():
            await create_customer(session, actor=actor, data={"kind": "PERSON", "lastName": "Ghost"}, config=ServiceConfig())
            raise Abort
    # A savepoint that is rolled back while the transaction around it commits.
    async with db.writer() as session, session.begin():
        try:
            async with session.begin_nested():
                record_event(session, type="customer.updated", entity_type="Customer", entity_id=999,
                             actor=actor, payload={"id": 999})
                await session.flush()
                raise Abort
        except Abort:
            pass
        record_event(session, type="customer.created", entity_type="Customer", entity_id=1000,
                     actor=actor, payload={"id": 1000, "displayName": "Kept"})

    await server.drain()
    assert [(e.type, e.data.get("displayName")) for e in listener.events] == [("customer.created", "Kept")]
    assert [e.type for e in await outbox(db)] == ["customer.created"]
