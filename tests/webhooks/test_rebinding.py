"""DNS rebinding: a delivery resolves its host once and connects to the address it checked.

The DNS server is played by a resolver function handed to the delivery (the machine's own
resolver cannot be pointed at a test DNS server): it answers one address on the first lookup
and another on every later one, the way a rebinding attacker's server does. The receivers are
real HTTP servers on two loopback addresses, 127.0.0.1 ("the checked address") and 127.0.0.2
("the internal service"), on the same port. The host name resolves nowhere else, so a request
that looked it up again through the system would fail instead of arriving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from crm_graph.core.events import Event
from crm_graph.webhooks import delivery
from crm_graph.webhooks.receiver import Receiver
from tests.plugins.support import SECRET

HOST = "hooks.rebind.test"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


class RebindingResolver:
    """First lookup: ``first``; every later lookup: ``then``."""

    def __init__(self, first: list[str], then: list[str]) -> None:
        self.first, self.then = first, then
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        return self.first if len(self.lookups) == 1 else self.then


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[Receiver, Receiver]]:
    checked = Receiver(secret=SECRET, clock=NOW.timestamp)
    await checked.start()
    internal = Receiver(secret=SECRET, clock=NOW.timestamp, host="127.0.0.2", port=checked.port)
    await internal.start()
    yield checked, internal
    await internal.stop()
    await checked.stop()


def _event(n: int) -> Event:
    return Event(id=f"evt-{n}", type="customer.created", occurred_at=NOW, actor="system",
                 entity_type="Customer", entity_id="Q3VzdG9tZXI6MQ")


async def _send(url: str, resolver: RebindingResolver, n: int, *, allow_private: bool = True) -> delivery.Answer:
    target = delivery.Target(subscription_id=1, url=url, secrets=(SECRET,))
    async with delivery.new_client(timeout=5, connections=2) as client:
        return await delivery.send(client, target, _event(n), attempt=1, now=NOW,
                                   allow_private=allow_private, resolver=resolver)


async def test_a_delivery_goes_to_the_address_its_check_resolved(receivers):
    checked, internal = receivers
    resolver = RebindingResolver(first=["127.0.0.1"], then=["127.0.0.2"])
    answer = await _send(f"http://{HOST}:{checked.port}/hooks", resolver, 1)
    assert answer.delivered, answer.error
    assert resolver.lookups == [(HOST, checked.port)]  # one lookup: the check's
    assert [r.event_id for r in checked.received] == ["evt-1"]
    assert internal.received == []
    # The receiver saw the URL's host, not the address.
    assert checked.received[0].headers["host"] == f"{HOST}:{checked.port}"


async def test_each_delivery_resolves_again_and_follows_its_own_answer(receivers):
    checked, internal = receivers
    resolver = RebindingResolver(first=["127.0.0.1"], then=["127.0.0.2"])
    url = f"http://{HOST}:{checked.port}/hooks"
    assert (await _send(url, resolver, 1)).delivered
    assert (await _send(url, resolver, 2)).delivered
    assert len(resolver.lookups) == 2
    assert [r.event_id for r in checked.received] == ["evt-1"]
    assert [r.event_id for r in internal.received] == ["evt-2"]


async def test_a_forbidden_answer_is_refused_and_nothing_is_sent(receivers):
    checked, internal = receivers
    resolver = RebindingResolver(first=["127.0.0.1"], then=["127.0.0.1"])
    answer = await _send(f"http://{HOST}:{checked.port}/hooks", resolver, 1, allow_private=False)
    assert not answer.delivered and not answer.retry
    assert "127.0.0.1" in (answer.error or "")
    assert checked.received == [] and internal.received == []


async def test_the_next_checked_address_is_tried_when_one_refuses_the_connection(receivers):
    checked, _ = receivers
    resolver = RebindingResolver(first=["127.0.0.3", "127.0.0.1"], then=["127.0.0.2"])  # nothing on .3
    answer = await _send(f"http://{HOST}:{checked.port}/hooks", resolver, 1)
    assert answer.delivered, answer.error
    assert [r.event_id for r in checked.received] == ["evt-1"]
    assert len(resolver.lookups) == 1


async def test_a_host_that_does_not_resolve_is_retried_later(receivers):
    checked, _ = receivers
    resolver = RebindingResolver(first=[], then=[])
    answer = await _send(f"http://{HOST}:{checked.port}/hooks", resolver, 1)
    assert not answer.delivered and answer.retry
    assert "does not resolve" in (answer.error or "")
