"""The dispatcher: backoff, leases, several workers sharing one database, and `crm-graph worker`."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import Counter

import pytest

from crm_graph import hookimpl
from crm_graph.core.actor import Actor
from crm_graph.core.dispatch import Dispatcher, backoff
from crm_graph.core.events import DeliveryStatus, Event
from crm_graph.customers.service import ServiceConfig, create_customer
from crm_graph.db.session import Database
from crm_graph.plugins import make_plugin_manager
from crm_graph.settings import PROJECT_ROOT
from crm_graph.webhooks.receiver import Receiver
from crm_graph.webhooks.service import WebhookConfig, create_subscription
from tests.plugins.support import SECRET, clock, delivery_rows, eventually, receiver, settings  # noqa: F401


def test_backoff_doubles_up_to_the_cap_and_takes_off_a_random_part_of_up_to_half():
    rng = random.Random(7)
    for attempts, full in [(1, 5), (2, 10), (3, 20), (4, 40), (10, 300), (30, 300)]:
        delays = [backoff(attempts, base=5, cap=300, rng=rng) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len({round(d, 6) for d in delays}) > 100  # jitter: retries do not all come back at once


async def write_customers(db: Database, count: int, offset: int = 0) -> None:
    for i in range(count):
        async with db.writer() as session, session.begin():
            await create_customer(
                session, actor=Actor("user", "1"), data={"kind": "PERSON", "lastName": f"Load {offset + i}"},
                config=ServiceConfig(),
            )


async def subscribe(db: Database, url: str) -> None:
    async with db.writer() as session, session.begin():
        await create_subscription(
            session, actor=Actor("user", "1"), data={"url": url, "events": ["*"], "secret": SECRET},
            config=WebhookConfig(allow_private=True),
        )


class Counting:
    """One plugin, loaded by every worker: counts what the workers together delivered."""

    name = "counting"

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts

    @hookimpl
    async def crm_on_event(self, event: Event) -> None:
        await asyncio.sleep(0)  # let the other worker run in between
        self.counts[event.id] += 1


async def test_two_workers_on_one_database_deliver_each_event_exactly_once(settings, db, receiver):
    from dataclasses import replace

    await subscribe(db, receiver.url)
    plugin_counts: Counter[str] = Counter()
    small_batches = replace(settings, dispatch_batch_size=7)
    workers = []
    for name in ("worker-a", "worker-b"):
        own_db = Database.from_settings(small_batches)  # a worker process has its own connections
        pm = make_plugin_manager(small_batches, plugins=[Counting(plugin_counts)], entry_points=False)
        workers.append(Dispatcher(own_db, small_batches, pm, name=name))
    for worker in workers:
        worker.start()
    try:
        await write_customers(db, 30)  # written while both workers poll
        await eventually(lambda: len(receiver.received) >= 30 and sum(plugin_counts.values()) >= 30, within=30)
        for worker in workers:  # one more round each: nothing is left to deliver twice
            await worker.run_once()
    finally:
        for worker in workers:
            await worker.stop()
            await worker.db.dispose()

    assert len(receiver.counts()) == 30 and set(receiver.counts().values()) == {1}
    assert set(plugin_counts.values()) == {1} and len(plugin_counts) == 30
    assert set(receiver.counts()) == set(plugin_counts)
    rows = await delivery_rows(db)
    assert len(rows) == 60 and {r.status for r in rows} == {DeliveryStatus.DELIVERED}
    assert {r.attempts for r in rows} == {1}


async def test_a_claim_left_by_a_crashed_worker_is_taken_over_after_its_lease(settings, db, receiver, clock):
    await subscribe(db, receiver.url)
    await write_customers(db, 1)
    crashed = Dispatcher(db, settings, None, name="crashed")
    healthy = Dispatcher(db, settings, None, name="healthy")
    try:
        await crashed.fan_out()
        claims = await crashed.claim()  # ...and the process dies before delivering
        assert len(claims) == 1

        assert (await healthy.run_once()).claimed == 0  # the claim holds while its lease runs
        clock.advance(seconds=settings.dispatch_lease + 1)
        assert (await healthy.run_once()).delivered == 1
        assert len(receiver.received) == 1

        # Had the first worker only been slow, its late report changes nothing: the claim moved on.
        from crm_graph.core.dispatch import Result

        await crashed.record([Result(claims[0], "failed", retry=True, error="late")])
        (row,) = await delivery_rows(db)
        assert (row.status, row.attempts, row.last_error) == (DeliveryStatus.DELIVERED, 1, None)
    finally:
        await crashed.aclose()
        await healthy.aclose()


async def test_crm_graph_worker_delivers_and_stops_on_sigterm(settings, db):
    got = Receiver(secret=SECRET)  # real clock: the worker process signs with the real time
    await got.start()
    try:
        await subscribe(db, got.url)
        await write_customers(db, 3)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
        env.update(
            CRM_DATABASE_URL=settings.database_url,
            CRM_WEBHOOK_ALLOW_PRIVATE="true",
            CRM_DISPATCH_POLL_INTERVAL="0.1",
            CRM_PLUGINS_BLOCK="crm_audit",
            CRM_LOG_LEVEL="warning",
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crm_graph.cli", "worker",
            cwd=PROJECT_ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            await eventually(lambda: len(got.received) == 3, within=60)
            await write_customers(db, 2, offset=3)  # the running worker picks up new events by polling
            await eventually(lambda: len(got.received) == 5, within=30)
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        assert b"delivering events" in out
        assert set(got.counts().values()) == {1} and all(r.verified for r in got.received)
    finally:
        await got.stop()


async def test_crm_graph_worker_once_delivers_what_is_due_and_exits(settings, db):
    got = Receiver(secret=SECRET)
    await got.start()
    try:
        await subscribe(db, got.url)
        await write_customers(db, 2)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
        env.update(CRM_DATABASE_URL=settings.database_url, CRM_WEBHOOK_ALLOW_PRIVATE="true", CRM_PLUGINS_BLOCK="crm_audit")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crm_graph.cli", "worker", "--once",
            cwd=PROJECT_ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        assert "delivered 2, failed 0 (to retry), dead 0" in out.decode()
        assert len(got.received) == 2
    finally:
        await got.stop()


@pytest.mark.parametrize("value, expected", [("true", True), ("off", False), ("1", True), ("No", False)])
def test_boolean_settings_read_from_the_environment(value, expected):
    from crm_graph.settings import Settings

    assert Settings.from_env({"CRM_WEBHOOK_ALLOW_PRIVATE": value}).webhook_allow_private is expected
    assert Settings.from_env({"CRM_DISPATCHER_ENABLED": value}).dispatcher_enabled is expected


def test_dispatcher_settings_that_cannot_work_are_refused():
    from crm_graph.settings import Settings

    with pytest.raises(ValueError, match="CRM_WEBHOOK_ALLOW_PRIVATE"):
        Settings.from_env({"CRM_WEBHOOK_ALLOW_PRIVATE": "maybe"})
    with pytest.raises(ValueError, match="CRM_DISPATCH_LEASE"):
        Settings.from_env({"CRM_DISPATCH_LEASE": "10", "CRM_WEBHOOK_TIMEOUT": "10"})
    with pytest.raises(ValueError, match="CRM_DISPATCH_MAX_ATTEMPTS"):
        Settings.from_env({"CRM_DISPATCH_MAX_ATTEMPTS": "0"})
