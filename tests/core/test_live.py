"""The live hub on a real database: idle cost, commit order, slow subscribers, ids going back.

What a client of a server sees is in tests/graphql/test_subscriptions.py; these are the cases a
client cannot bring about on purpose.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import sqlalchemy as sa

from crm_graph.core.access import Scope
from crm_graph.core.actor import SYSTEM
from crm_graph.core.events import OutboxEvent, record_event
from crm_graph.core.live import SLOW_CONSUMER, LiveEnded, LiveHub

WAIT = 10.0


async def everything() -> Scope:
    return Scope(SYSTEM)


async def commit_events(db, *types: str, ids: list[int] | None = None) -> None:
    """One transaction recording ``types`` (with explicit outbox ids when given)."""
    async with db.writer() as session, session.begin():
        for n, event_type in enumerate(types):
            row = record_event(session, type=event_type, entity_type="Customer", entity_id=n + 1, actor=SYSTEM, payload={})
            if ids is not None:
                row.id = ids[n]


async def received(listener) -> list[str]:
    return [e.type for e in await asyncio.wait_for(listener.batch(), WAIT)]


@pytest.fixture
async def hubs(db, settings):
    """``hubs(**settings)`` makes a hub over the test's database; all are stopped afterwards."""
    made: list[LiveHub] = []

    def make(**overrides) -> LiveHub:
        made.append(LiveHub(db, replace(settings, **{"live_poll_interval": 0.05, **overrides})))
        return made[-1]

    yield make
    for hub in made:
        await hub.stop()


@pytest.fixture
def hub(hubs):
    return hubs()


async def test_an_idle_hub_does_not_run_and_a_subscribed_one_stops_when_the_last_leaves(hub, db, sql_counter):
    await commit_events(db, "customer.created")
    sql_counter.count = 0
    await asyncio.sleep(0.3)
    assert not hub.running and hub.polls == 0 and sql_counter.count == 0
    listener = await hub.listen(types=["customer.*"], scope=everything)
    assert hub.running
    await commit_events(db, "customer.updated", "ticket.created")
    assert await received(listener) == ["customer.updated"]
    listener.close()
    for _ in range(100):
        if not hub.running:
            break
        await asyncio.sleep(0.02)
    assert not hub.running and hub.subscribers == 0
    polls = hub.polls
    await asyncio.sleep(0.3)
    assert hub.polls == polls


async def test_an_event_that_commits_after_a_later_one_is_still_delivered_once(hub, db, backend):
    listener = await hub.listen(types=["*"], scope=everything)
    if backend == "postgresql":
        # Two writers: the first takes its id, the second takes the next one and commits first.
        async with db.writer() as slow, slow.begin():
            record_event(slow, type="customer.created", entity_type="Customer", entity_id=1, actor=SYSTEM, payload={})
            await slow.flush()
            await commit_events(db, "customer.updated")
            assert await received(listener) == ["customer.updated"]
    else:
        # SQLite serialises writers; the same gap, made with explicit ids.
        newest = await _newest(db)
        await commit_events(db, "customer.updated", ids=[newest + 2])
        assert await received(listener) == ["customer.updated"]
        await commit_events(db, "customer.created", ids=[newest + 1])
    assert await received(listener) == ["customer.created"]
    await commit_events(db, "customer.deleted")
    assert await received(listener) == ["customer.deleted"]  # nothing a second time


async def test_a_subscriber_that_falls_behind_is_ended_and_its_queue_emptied(hubs, db):
    hub = hubs(live_queue_size=5)
    slow = await hub.listen(types=["*"], scope=everything)
    keeping_up = await hub.listen(types=["*"], scope=everything)
    await commit_events(db, *["customer.updated"] * 4)
    assert await received(keeping_up) == ["customer.updated"] * 4
    await commit_events(db, *["customer.updated"] * 2)  # the slow one never read: 6 > 5
    assert await received(keeping_up) == ["customer.updated"] * 2
    assert hub.subscribers == 1 and slow._queue.qsize() == 1  # emptied, but for the end marker
    with pytest.raises(LiveEnded) as ended:
        await asyncio.wait_for(slow.batch(), WAIT)
    assert ended.value.code == SLOW_CONSUMER and "fell 5 events behind" in str(ended.value)


async def test_credentials_that_no_longer_hold_end_the_subscription(hub, db):
    async def revoked() -> None:
        return None

    listener = await hub.listen(types=["*"], scope=revoked)
    await commit_events(db, "customer.created")
    with pytest.raises(LiveEnded) as ended:
        await asyncio.wait_for(listener.batch(), WAIT)
    assert ended.value.code == "UNAUTHENTICATED"


async def test_ids_that_go_back_are_followed(hub, db):
    """SQLite reuses the ids of deleted newest rows: pruning everything makes ids start over."""
    hub.id_check_interval = 0.0
    await commit_events(db, "customer.created", "customer.created", "customer.created")
    listener = await hub.listen(types=["customer.updated"], scope=everything)
    async with db.writer() as session, session.begin():
        await session.execute(sa.delete(OutboxEvent))
    polls = hub.polls
    while hub.polls < polls + 2:  # an idle poll notices the outbox's largest id went back
        await asyncio.sleep(0.01)
    await commit_events(db, "customer.updated")
    assert await received(listener) == ["customer.updated"]


async def test_listening_when_the_outbox_cannot_be_read_is_a_clear_error(settings):
    from crm_graph.db.session import Database

    broken = Database.from_settings(replace(settings, database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none"))
    hub = LiveHub(broken, settings)
    try:
        with pytest.raises(LiveEnded) as ended:
            await hub.listen(scope=everything)
        assert ended.value.code == "UNAVAILABLE" and not hub.running and hub.subscribers == 0
    finally:
        await broken.dispose()


async def _newest(db) -> int:
    async with db.reader() as session:
        return await session.scalar(sa.select(sa.func.max(OutboxEvent.id))) or 0
