"""The subscriber protocol: a plugin's own subscriber gets deliveries with the core's retries,
and webhook delivery is a subscriber the webhooks plugin registers (blocking it stops it)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crm_graph import hookimpl
from crm_graph.core.dispatch import Dispatcher
from crm_graph.core.events import DeliveryStatus
from crm_graph.core.subscribers import Result, Target
from crm_graph.plugins import PluginError, make_plugin_manager
from tests.core.test_dispatch import subscribe, write_customers
from tests.plugins.support import clock, delivery_rows, receiver, settings  # noqa: F401


class Ledger:
    """A subscriber that wants customer events only, and fails each delivery's first attempt."""

    kind = "ledger"

    def __init__(self) -> None:
        self.received: list[tuple[str, int]] = []
        self.seen: set[int] = set()

    async def fan_out(self, db, session, events):  # noqa: ANN001
        return [Target(e.pk, "books") for e in events if e.type.startswith("customer.")]

    def servable(self):  # noqa: ANN201
        return None

    async def deliver(self, db, claims, deadline):  # noqa: ANN001
        out = []
        for claim in claims:
            if claim.id not in self.seen:
                self.seen.add(claim.id)
                out.append(Result(claim, "failed", error="books closed"))
                continue
            self.received.append((claim.event.type, claim.attempts + 1))
            out.append(Result(claim, "delivered"))
        return out

    async def aclose(self) -> None:
        pass


class LedgerPlugin:
    name = "ledger"

    def __init__(self, subscriber: Ledger) -> None:
        self.subscriber = subscriber

    @hookimpl
    def crm_register_subscribers(self, settings):  # noqa: ANN001, ANN201
        return self.subscriber


async def test_hook_crm_register_subscribers_delivers_with_the_core_s_retries(settings, db, clock):
    ledger = Ledger()
    pm = make_plugin_manager(settings, plugins=[LedgerPlugin(ledger)], entry_points=False)
    dispatcher = Dispatcher(db, settings, pm)
    try:
        await write_customers(db, 2)
        await dispatcher.drain()
        assert ledger.received == []  # the first attempts failed ...
        rows = [r for r in await delivery_rows(db) if r.subscriber == "ledger:books"]
        assert len(rows) == 2 and {(r.status, r.attempts, r.last_error) for r in rows} == {
            (DeliveryStatus.PENDING, 1, "books closed")
        }
        clock.advance(seconds=settings.dispatch_backoff_cap + 1)
        await dispatcher.drain()
        assert ledger.received == [("customer.created", 2), ("customer.created", 2)]  # ... and were retried
        rows = [r for r in await delivery_rows(db) if r.subscriber == "ledger:books"]
        assert {r.status for r in rows} == {DeliveryStatus.DELIVERED}
    finally:
        await dispatcher.aclose()


async def test_blocking_the_webhooks_plugin_stops_webhook_delivery_until_it_is_back(settings, db, receiver):
    await subscribe(db, receiver.url)
    blocked = replace(settings, plugins_block=("crm_graph.webhooks.plugin",))
    without = Dispatcher(db, blocked, make_plugin_manager(blocked, entry_points=False))
    try:
        await write_customers(db, 1)
        await without.drain()
        assert receiver.received == []
        assert [r.subscriber for r in await delivery_rows(db)] == []  # nobody asked for a webhook row
    finally:
        await without.aclose()
    await write_customers(db, 1, offset=1)
    back = Dispatcher(db, settings, make_plugin_manager(settings, entry_points=False))
    try:
        await back.drain()
        assert len(receiver.received) == 1  # events fanned out while it was blocked stay undelivered
    finally:
        await back.aclose()


def test_a_subscriber_that_does_not_follow_the_protocol_names_its_plugin(settings):
    class Broken:
        name = "broken"

        @hookimpl
        def crm_register_subscribers(self):  # noqa: ANN201
            return object()

    with pytest.raises(PluginError, match="plugin 'broken'.*not a Subscriber"):
        Dispatcher(None, settings, make_plugin_manager(settings, plugins=[Broken()], entry_points=False))  # type: ignore[arg-type]


def test_a_subscriber_kind_taken_by_another_names_the_plugin(settings):
    class Copy(LedgerPlugin):
        name = "copy"

    with pytest.raises(PluginError, match="plugin 'copy'.*'ledger' clashes with plugin 'ledger'"):
        pm = make_plugin_manager(settings, plugins=[LedgerPlugin(Ledger()), Copy(Ledger())], entry_points=False)
        Dispatcher(None, settings, pm)  # type: ignore[arg-type]
