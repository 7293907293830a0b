"""Live updates: committed events, as they happen, for this process's GraphQL subscriptions.

Every server process has one ``LiveHub``. While at least one client of the process is
subscribed, the hub tails the ``outbox`` table (the rows the dispatcher delivers to webhooks and
plugins) and hands each new event to the subscriptions that asked for it. The outbox is shared,
so an event committed by any process (another server, a ``crm-graph worker``, a CLI import)
reaches the subscribers of every process: no broker, no sticky sessions.

When it reads
    Every ``live_poll_interval`` seconds, one indexed range read. A transaction of this process
    that wrote events wakes the hub as it commits (the session events at the end of this
    module), so the client that made a change hears about it without waiting for the poll.
    PostgreSQL's LISTEN/NOTIFY could wake the other processes early too, but only if every
    writing transaction sent a NOTIFY (a trigger, or a change to ``record_event``), and each
    process would hold a connection of its own outside the pool (poolers in transaction mode do
    not carry LISTEN); the poll would stay as the safety net anyway. With nobody subscribed the
    hub does not run and costs nothing.

Commit order
    Ids are taken at insert, so on PostgreSQL a transaction holding id 10 can commit after one
    that took 11. The hub remembers each run of ids it skipped over (a hole) for
    ``HOLE_SECONDS`` and reads them again with every poll, so a late commit is still delivered,
    once; a hole that never fills (a rolled-back insert) is forgotten. When the hub starts, the
    gaps among the last ``START_WINDOW`` ids count as holes too. SQLite serialises writers, so
    there holes do not fill late; but its ids can go back when the newest events were pruned,
    and the hub starts over from the largest id when that falls below what it has seen.

Back-pressure
    Each subscription queues at most ``live_queue_size`` events. A client that does not keep up
    fills its queue; the subscription is then ended with ``SLOW_CONSUMER`` and its queue
    emptied, so memory never grows with a slow reader.

Access
    A subscription brings a function that returns its connection's access scope as it is now,
    or None once the credentials no longer hold (the subscription then ends). For subscriptions
    that need it the hub keeps only events whose record that scope may read now
    (``access.readable_ids``): one query per distinct scope and entity type per batch.

Delivery is live and best-effort: nothing is stored per subscriber, a client misses what
happens while it is disconnected, and a restart ends the process's subscriptions. Webhooks are
the at-least-once channel. This module imports no domain.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Session

from crm_graph.core import access
from crm_graph.core.events import Event, OutboxEvent, matches
from crm_graph.settings import Settings

log = logging.getLogger("crm_graph.live")

HOLE_SECONDS = 60.0  # how long a skipped id may still commit and be delivered
MAX_HOLES = 200  # runs of skipped ids remembered; the oldest are forgotten beyond that
START_WINDOW = 1000  # ids below the newest one watched for late commits when the hub starts
BATCH = 500  # events read per poll
MAX_ID_CHECK = 10.0  # seconds between checks that ids did not go back (idle polls only)

SLOW_CONSUMER = "SLOW_CONSUMER"
UNAUTHENTICATED = "UNAUTHENTICATED"
UNAVAILABLE = "UNAVAILABLE"
SHUTTING_DOWN = "SHUTTING_DOWN"

ScopeSource = Callable[[], Awaitable["access.Scope | None"]]

_T = OutboxEvent.__table__
_COLUMNS = (_T.c.id, _T.c.event_id, _T.c.type, _T.c.occurred_at, _T.c.actor, _T.c.entity_type, _T.c.entity_id, _T.c.payload)


class LiveEnded(Exception):
    """Why a subscription ended: a code (``SLOW_CONSUMER`` ...) and a message for the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class _Change:
    event: Event
    entity_type: str
    entity_pk: str  # as stored in the outbox (the event's ``entity_id`` is the global ID)


@dataclass
class _Hole:
    low: int
    high: int
    until: float  # loop time after which it is forgotten


class Listener:
    """One subscription's end of the hub: ``batch()`` waits for events, ``close()`` leaves."""

    def __init__(
        self, hub: LiveHub, *, types: Sequence[str], entity: tuple[str, str] | None, scope: ScopeSource, records: bool
    ) -> None:
        self.hub = hub
        self.types = tuple(types)
        self.entity = entity  # (entity type, primary key) or None for any entity
        self.scope = scope
        self.records = records  # keep only events whose record the scope may read
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=hub.settings.live_queue_size)
        self._ended: LiveEnded | None = None
        self._closed = False

    def wants(self, change: _Change) -> bool:
        if self.entity is not None and (change.entity_type, change.entity_pk) != self.entity:
            return False
        return any(matches(p, change.event.type) for p in self.types)

    async def batch(self) -> list[Event]:
        """The events queued for this subscription, waiting for at least one. Raises
        ``LiveEnded`` once the hub has ended it."""
        items = [await self._queue.get()]
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        if self._ended is not None:
            raise self._ended
        return [e for e in items if e is not None]

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            for event in await self.batch():
                yield event

    def close(self) -> None:
        """The subscriber is gone (the client completed or disconnected)."""
        self._closed = True
        self.hub._forget(self)

    def _offer(self, events: Iterable[Event]) -> None:
        for event in events:
            try:
                self._queue.put_nowait(event)
            except asyncio.QueueFull:
                size = self.hub.settings.live_queue_size
                self._end(LiveEnded(
                    SLOW_CONSUMER,
                    f"This subscription fell {size} events behind and was ended; subscribe again "
                    "(what happened meanwhile is not replayed: query it).",
                ))
                return

    def _end(self, reason: LiveEnded) -> None:
        if self._closed:
            return
        self._closed = True
        self._ended = reason
        while not self._queue.empty():  # drop what the client will never read
            self._queue.get_nowait()
        self._queue.put_nowait(None)  # wakes ``batch()``
        self.hub._forget(self)


class LiveHub:
    """Tails the outbox for this process's subscriptions (module docstring)."""

    def __init__(self, db: Any, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.polls = 0  # reads of the outbox so far (the bench reports them)
        self._listeners: set[Listener] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._mark = 0  # the highest id handed out
        self._holes: list[_Hole] = []
        self._checked_at = 0.0
        self.id_check_interval = MAX_ID_CHECK
        self._stopped = False

    @property
    def subscribers(self) -> int:
        return len(self._listeners)

    @property
    def running(self) -> bool:
        return self._task is not None

    async def listen(
        self,
        *,
        types: Sequence[str] = ("*",),
        entity: tuple[str, str] | None = None,
        scope: ScopeSource,
        records: bool = True,
    ) -> Listener:
        """Subscribe. Every matching event committed after this returns is offered to the
        listener (``records``: only those ``scope`` may read). Raises ``LiveEnded`` when the hub
        cannot read the outbox or the server is stopping."""
        if self._stopped:
            raise LiveEnded(SHUTTING_DOWN, "The server is shutting down; connect again.")
        listener = Listener(self, types=types, entity=entity, scope=scope, records=records)
        self._listeners.add(listener)
        try:
            if self._task is None:
                self._start_task()
            assert self._ready is not None
            await asyncio.shield(self._ready)
        except BaseException:
            self._listeners.discard(listener)
            raise
        return listener

    def wake(self) -> None:
        """Poll now (a transaction with events committed in this process)."""
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def stop(self) -> None:
        """End every subscription (the server is shutting down) and the tail."""
        self._stopped = True
        for listener in list(self._listeners):
            listener._end(LiveEnded(SHUTTING_DOWN, "The server is shutting down; connect again."))
        task = self._task
        if task is not None:
            self.wake()
            await asyncio.gather(task, return_exceptions=True)

    def _forget(self, listener: Listener) -> None:
        self._listeners.discard(listener)
        if not self._listeners:
            self.wake()  # let the tail stop now rather than at its next poll

    def _start_task(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._wake = asyncio.Event()
        self._ready = ready = loop.create_future()
        ready.add_done_callback(lambda f: f.cancelled() or f.exception())  # never "not retrieved"
        self._task = loop.create_task(self._run(ready), name="crm-live-hub")
        _RUNNING.add(self)

    def _finish(self) -> None:
        self._task = None
        _RUNNING.discard(self)

    async def _run(self, ready: asyncio.Future[None]) -> None:
        try:
            await self._begin()
        except Exception:  # noqa: BLE001 - reported to the subscribers waiting, logged here
            log.exception("live updates: cannot read the outbox")
            self._finish()
            ready.set_exception(LiveEnded(UNAVAILABLE, "Live updates are unavailable right now; try again shortly."))
            return
        ready.set_result(None)
        assert self._wake is not None
        while True:
            # No await between this check and ``_finish``: a listener arriving now finds either
            # this task still running or no task (and starts one).
            if not self._listeners or self._stopped:
                self._finish()
                return
            self._wake.clear()
            try:
                full = await self.poll()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the tail
                log.exception("live updates: reading the outbox failed; trying again")
                full = False
            if full:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.live_poll_interval)
            except TimeoutError:
                pass

    async def _begin(self) -> None:
        async with self.db.reader() as session:
            newest = await session.scalar(sa.select(sa.func.max(_T.c.id))) or 0
            low = max(newest - START_WINDOW, 0)
            present = (await session.scalars(sa.select(_T.c.id).where(_T.c.id > low).order_by(_T.c.id))).all()
        self._mark = newest
        self._holes = []
        self._remember_gaps(low, present)

    async def poll(self) -> bool:
        """Read what committed since the last poll and hand it out. True when the read was full
        (more may be waiting)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._holes = [h for h in self._holes if h.until > now]
        wanted = sa.or_(_T.c.id > self._mark, *(_T.c.id.between(h.low, h.high) for h in self._holes))
        async with self.db.reader() as session:
            rows = (await session.execute(sa.select(*_COLUMNS).where(wanted).order_by(_T.c.id).limit(BATCH))).all()
            if not rows and now - self._checked_at >= self.id_check_interval:
                self._checked_at = now
                newest = await session.scalar(sa.select(sa.func.max(_T.c.id))) or 0
                if newest < self._mark:
                    log.info("live updates: outbox ids went back from %d to %d; following from there", self._mark, newest)
                    self._mark, self._holes = newest, []
        self.polls += 1
        if not rows:
            return False
        fresh = [r.id for r in rows if r.id > self._mark]
        for late in (r.id for r in rows if r.id <= self._mark):
            self._fill(late)
        if fresh:
            self._remember_gaps(self._mark, fresh)
            self._mark = fresh[-1]
        await self._deliver([_Change(Event.from_row(r), r.entity_type, r.entity_id) for r in rows])
        return len(rows) == BATCH

    def _remember_gaps(self, after: int, ids: Sequence[int]) -> None:
        """Holes for the ids in ``(after, ids[-1]]`` that are not in ``ids`` (sorted)."""
        assert self._loop is not None
        until = self._loop.time() + HOLE_SECONDS
        previous = after
        for i in ids:
            if i > previous + 1:
                self._holes.append(_Hole(previous + 1, i - 1, until))
            previous = max(previous, i)
        if len(self._holes) > MAX_HOLES:
            del self._holes[: len(self._holes) - MAX_HOLES]

    def _fill(self, pk: int) -> None:
        for n, hole in enumerate(self._holes):
            if hole.low <= pk <= hole.high:
                parts = [_Hole(lo, hi, hole.until) for lo, hi in ((hole.low, pk - 1), (pk + 1, hole.high)) if lo <= hi]
                self._holes[n : n + 1] = parts
                return

    async def _deliver(self, changes: Sequence[_Change]) -> None:
        wanted = {listener: [c for c in changes if listener.wants(c)] for listener in list(self._listeners)}
        wanted = {listener: mine for listener, mine in wanted.items() if mine}
        if not wanted:
            return
        scopes: dict[ScopeSource, access.Scope | None] = {}
        for listener in wanted:
            if listener.scope not in scopes:
                try:
                    scopes[listener.scope] = await listener.scope()
                except Exception:  # noqa: BLE001 - credentials that cannot be checked do not pass
                    log.exception("live updates: the credentials of a connection could not be checked")
                    scopes[listener.scope] = None
        # Which records each distinct scope may read: one query per scope and entity type.
        need: dict[tuple[Any, str], set[str]] = defaultdict(set)
        by_key: dict[Any, access.Scope] = {}
        for listener, mine in wanted.items():
            scope = scopes[listener.scope]
            if scope is not None and listener.records:
                key = _scope_key(scope)
                by_key[key] = scope
                for change in mine:
                    need[(key, change.entity_type)].add(change.entity_pk)
        readable: dict[tuple[Any, str], set[str]] = {}
        for (key, entity_type), ids in need.items():
            readable[(key, entity_type)] = await access.readable_ids(self.db.reader, by_key[key], entity_type, ids)
        for listener, mine in wanted.items():
            scope = scopes[listener.scope]
            if scope is None:
                listener._end(LiveEnded(
                    UNAUTHENTICATED, "The credentials of this connection are no longer valid; sign in and connect again."
                ))
                continue
            if listener.records:
                key = _scope_key(scope)
                mine = [c for c in mine if c.entity_pk in readable[(key, c.entity_type)]]
            listener._offer(c.event for c in mine)


def _scope_key(scope: access.Scope) -> Any:
    """Scopes that read the same records: the same actor, sharing defaults and plugin narrowing."""
    return (scope.actor, tuple(sorted((k, getattr(v, "value", v)) for k, v in scope.sharing.items())), id(scope.narrow))


# --- waking the hubs of this process when a transaction with events commits ----------------------

_RUNNING: weakref.WeakSet[LiveHub] = weakref.WeakSet()
_PENDING = "crm_live_events"


@orm_event.listens_for(Session, "before_flush")
def _note_events(session: Session, _context: Any, _instances: Any) -> None:
    if _RUNNING and any(isinstance(obj, OutboxEvent) for obj in session.new):
        session.info[_PENDING] = True


@orm_event.listens_for(Session, "do_orm_execute")
def _note_bulk_events(state: Any) -> None:
    # events written in one INSERT (``write_events``) rather than flushed as objects
    if _RUNNING and state.is_insert and state.bind_mapper is not None and state.bind_mapper.class_ is OutboxEvent:
        state.session.info[_PENDING] = True


@orm_event.listens_for(Session, "after_commit")
def _wake_hubs(session: Session) -> None:
    if session.info.pop(_PENDING, False):
        for hub in list(_RUNNING):
            hub.wake()


@orm_event.listens_for(Session, "after_rollback")
def _drop_note(session: Session) -> None:
    session.info.pop(_PENDING, None)
