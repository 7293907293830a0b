"""Deliveries to a real receiver on loopback: signed, retried, and complete after an outage."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from crm_graph.webhooks.receiver import Receiver
from crm_graph.webhooks.signature import verify_signature
from tests.plugins.support import SECRET, create_customer, deliveries
from tests.webhooks.test_subscriptions import CREATE, DELETE, UPDATE


async def subscribe(server, url: str, events: list[str], secret: str = SECRET) -> dict:  # noqa: ANN001
    created = await server.client.mutate(CREATE, {"input": {"url": url, "events": events, "secret": secret}})
    return created["webhookSubscription"]


async def test_each_delivery_is_a_signed_post_with_the_event_id(server_factory, receiver, clock):
    server = await server_factory()
    sub = await subscribe(server, receiver.url, ["customer.*"])
    ada = await create_customer(server.client, firstName="Ada", lastName="Lovelace")
    await server.drain()

    (got,) = receiver.received
    assert got.verified  # the receiver checked the signature with verify_signature()
    assert got.headers["content-type"] == "application/json"
    assert verify_signature(got.body, got.headers["crm-signature"], SECRET, now=clock.current.timestamp())
    body = got.json()
    assert got.headers["crm-event-id"] == body["id"]
    assert got.headers["crm-event-type"] == "customer.created"
    assert got.headers["crm-delivery-attempt"] == "1"
    assert body["type"] == "customer.created"
    assert body["entity"] == {"type": "Customer", "id": ada["id"]}
    assert body["data"]["displayName"] == "Ada Lovelace"
    assert body["occurredAt"] == "2026-11-22T09:00:00Z"
    assert body["changes"] is None

    (delivery,) = await deliveries(server.client, subscriptionId=sub["id"])
    assert delivery["status"] == "DELIVERED" and delivery["lastStatusCode"] == 200
    assert delivery["event"]["eventId"] == body["id"]
    assert delivery["subscription"]["url"] == receiver.url


async def test_only_events_matching_the_patterns_are_sent(server_factory, receiver):
    server = await server_factory()
    await subscribe(server, receiver.url, ["activity.*", "order.paid"])
    await create_customer(server.client, lastName="Hopper")
    await server.drain()
    assert receiver.received == []
    assert await deliveries(server.client) == []


async def test_a_receiver_that_is_down_for_a_while_gets_every_event_once_back(server_factory, receiver, clock):
    server = await server_factory()
    await subscribe(server, receiver.url, ["*"])
    await receiver.stop()  # the receiver goes down: connections are refused

    customers = [await create_customer(server.client, lastName=f"Customer {i}") for i in range(5)]
    for _ in range(2):  # two rounds of attempts while it is down
        await server.drain()
        clock.advance(seconds=3)
    waiting = await deliveries(server.client)
    assert len(waiting) == 5 and {d["status"] for d in waiting} == {"PENDING"}
    # What the user sees names the failure: the refused connection, or, on a loaded machine, the
    # connect attempt running out of time first (httpx's ConnectTimeout). Anything else (an HTTP
    # status, a refused URL) would be wrong.
    errors = [d["lastError"] for d in waiting if d["lastError"]]
    assert errors, waiting
    assert all(e.startswith("connection failed") or e == "timed out" for e in errors), errors

    await receiver.start()  # back, on the same port
    # Retries until nothing is pending. On a loaded machine an attempt can still run out of its
    # (test-short) time and wait for its next turn; what matters is that each event arrives once.
    for _ in range(5):
        clock.advance(seconds=10)
        await server.drain()
        if {d["status"] for d in await deliveries(server.client)} == {"DELIVERED"}:
            break
    assert all(r.verified for r in receiver.received)
    assert sorted(receiver.counts().values()) == [1, 1, 1, 1, 1]  # each event exactly once
    assert {r.json()["entity"]["id"] for r in receiver.received} == {c["id"] for c in customers}
    assert {d["status"] for d in await deliveries(server.client)} == {"DELIVERED"}


async def test_5xx_is_retried_and_4xx_is_not(server_factory, receiver, clock):
    server = await server_factory()
    gone = Receiver(secret=SECRET, status=410, clock=lambda: clock.current.timestamp())
    await gone.start()
    try:
        await subscribe(server, receiver.url, ["*"])
        await subscribe(server, gone.url, ["*"])
        receiver.status = 503
        await create_customer(server.client, lastName="Hamilton")
        await server.drain()

        by_url = {d["subscription"]["url"]: d for d in await deliveries(server.client)}
        assert (by_url[receiver.url]["status"], by_url[receiver.url]["lastStatusCode"]) == ("PENDING", 503)
        assert (by_url[gone.url]["status"], by_url[gone.url]["lastStatusCode"]) == ("DEAD", 410)
        assert by_url[gone.url]["lastError"] == "HTTP 410 (not retried)"

        receiver.status = 200
        clock.advance(seconds=5)
        await server.drain()
        by_url = {d["subscription"]["url"]: d for d in await deliveries(server.client)}
        assert (by_url[receiver.url]["status"], by_url[receiver.url]["attempts"]) == ("DELIVERED", 2)
        assert len(receiver.received) == 1 and receiver.received[0].headers["crm-delivery-attempt"] == "2"
        assert by_url[gone.url]["status"] == "DEAD"
    finally:
        await gone.stop()


async def test_a_receiver_that_does_not_answer_in_time_is_retried(server_factory, settings, clock):
    slow_release = asyncio.Event()

    class Slow(Receiver):
        async def __call__(self, scope, receive, send):  # noqa: ANN001
            if scope["type"] == "http" and not slow_release.is_set():
                await asyncio.wait_for(slow_release.wait(), 5)
            await super().__call__(scope, receive, send)

    slow = Slow(secret=SECRET, clock=lambda: clock.current.timestamp())
    await slow.start()
    try:
        server = await server_factory(settings_=replace(settings, webhook_timeout=0.3))
        await subscribe(server, slow.url, ["*"])
        await create_customer(server.client, lastName="Slow")
        await server.drain()
        (delivery,) = await deliveries(server.client)
        assert (delivery["status"], delivery["lastError"]) == ("PENDING", "timed out")
        slow_release.set()
        clock.advance(seconds=5)
        await server.drain()
        assert [d["status"] for d in await deliveries(server.client)] == ["DELIVERED"]
    finally:
        slow_release.set()
        await slow.stop()


async def test_during_a_secret_rotation_receivers_with_either_secret_verify(server_factory, receiver, clock):
    server = await server_factory()
    sub = await subscribe(server, receiver.url, ["*"])
    rotated = await server.client.mutate(UPDATE, {"id": sub["id"], "input": {"secret": "whsec_the_new_secret_value"}})
    assert rotated["secret"] == "whsec_the_new_secret_value"

    await create_customer(server.client, lastName="Rotation")
    await server.drain()
    (got,) = receiver.received  # the receiver still knows only the old secret
    assert got.verified
    header = got.headers["crm-signature"]
    assert header.count("v1=") == 2
    assert verify_signature(got.body, header, "whsec_the_new_secret_value", now=clock.current.timestamp())

    clock.advance(days=1, seconds=1)  # the grace period is over: only the new secret signs
    await create_customer(server.client, lastName="After")
    await server.drain()
    assert receiver.rejected == 1  # the receiver, still on the old secret, answers 400...
    refused = next(d for d in await deliveries(server.client) if d["status"] == "DEAD")
    assert refused["lastStatusCode"] == 400  # ...which is not retried by itself
    receiver.secret = "whsec_the_new_secret_value"  # the receiver takes the new secret
    await server.client.mutate(
        "mutation($id: ID!) { retryEventDelivery(id: $id) { errors { code } } }", {"id": refused["id"]}
    )
    await server.drain()
    assert [r.verified for r in receiver.received] == [True, True]
    assert receiver.received[1].headers["crm-signature"].count("v1=") == 1


async def test_an_address_that_became_private_is_refused_at_delivery(server_factory, settings, receiver):
    lenient = await server_factory()
    await subscribe(lenient, receiver.url, ["*"])  # allowed while CRM_WEBHOOK_ALLOW_PRIVATE was on
    strict = await server_factory(settings_=replace(settings, webhook_allow_private=False))
    await create_customer(strict.client, lastName="Guarded")
    await strict.drain()
    assert receiver.received == []
    (delivery,) = await deliveries(strict.client)
    assert delivery["status"] == "DEAD"
    assert delivery["lastError"].startswith("URL refused")


async def test_deleting_a_subscription_drops_its_waiting_deliveries(server_factory, receiver, clock):
    server = await server_factory()
    sub = await subscribe(server, receiver.url, ["*"])
    receiver.status = 500
    await create_customer(server.client, lastName="Pending")
    await server.drain()
    await server.client.mutate(DELETE, {"id": sub["id"]})
    receiver.status = 200
    clock.advance(seconds=10)
    await server.drain()
    assert receiver.received == []
    (delivery,) = await deliveries(server.client)
    assert (delivery["status"], delivery["lastError"], delivery["subscription"]) == ("DEAD", "subscription deleted", None)
    retried = await server.client.execute(
        "mutation($id: ID!) { retryEventDelivery(id: $id) { errors { field code } } }", {"id": delivery["id"]}
    )
    assert retried["retryEventDelivery"]["errors"] == [{"field": "id", "code": "INVALID_STATE"}]


async def test_paused_subscriptions_keep_their_deliveries_waiting(server_factory, receiver, clock):
    server = await server_factory()
    sub = await subscribe(server, receiver.url, ["*"])
    receiver.status = 500
    await create_customer(server.client, lastName="Paused")
    await server.drain()
    await server.client.mutate(UPDATE, {"id": sub["id"], "input": {"active": False}})
    receiver.status = 200
    clock.advance(seconds=10)
    await server.drain()
    assert receiver.received == []
    await create_customer(server.client, lastName="While paused")  # not fanned out to a paused subscription
    await server.drain()
    assert [d["status"] for d in await deliveries(server.client)] == ["PENDING"]

    await server.client.mutate(UPDATE, {"id": sub["id"], "input": {"active": True}})
    await server.drain()
    assert [r.json()["data"]["displayName"] for r in receiver.received] == ["Paused"]
