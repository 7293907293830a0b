"""The event dispatcher: from the outbox to every subscriber.

Subscribers follow one protocol (``crm_graph.core.subscribers.Subscriber``): plugins'
``crm_on_event`` (built in), webhook subscriptions (registered by the webhooks plugin) and
whatever a plugin registers through ``crm_register_subscribers``. This module knows no domain.

One round:

1. Fan out: take outbox events not yet dispatched and create one ``event_deliveries`` row per
   target each subscriber names (each plugin implementing ``crm_on_event``, each active webhook
   subscription whose patterns match...), then mark the events dispatched.
2. Claim: take due deliveries (``PENDING`` and due, or ``DELIVERING`` whose claim lapsed because
   its worker died), mark them ``DELIVERING`` with a claim token and a lease.
3. Deliver: each subscriber carries out its claims (plugins one implementation call at a time,
   webhooks concurrently); the subscribers run side by side.
4. Record: ``DELIVERED``; or ``PENDING`` again with a capped, jittered exponential backoff; or
   ``DEAD`` after ``dispatch_max_attempts`` attempts (or an answer that is not retried).

Steps 1, 2 and 4 are short write transactions. On PostgreSQL the selects of steps 1 and 2 use
``FOR UPDATE SKIP LOCKED``, so any number of dispatchers (``crm-graph worker`` processes, and
servers) share the work and no event is fanned out or delivered twice. On SQLite write
transactions are serialised (``BEGIN IMMEDIATE``), which gives the same guarantee.

Delivery is at least once: a worker that dies after delivering and before recording makes the
delivery happen again once its lease lapses. Consumers dedupe by event id.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from crm_graph.core.clock import utcnow
from crm_graph.core.events import DeliveryStatus, EventDelivery, OutboxEvent
from crm_graph.core.subscribers import Claim, EventRow, PluginEvents, Result, Subscriber, row_kind
from crm_graph.db.session import Database
from crm_graph.settings import Settings
from crm_graph.observability import tracing

log = logging.getLogger("crm_graph.dispatch")

def backoff(attempts: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: ``min(cap, base * 2**(attempts-1))``,
    less a random part of up to half of it, so failed deliveries do not all return at once."""
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


@dataclass
class Round:
    """What one round did (for logs, tests and the benchmark)."""

    fanned_out: int = 0
    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    postponed: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.fanned_out or self.claimed)


@dataclass
class Totals(Round):
    rounds: int = 0

    def add(self, other: Round) -> None:
        for name in ("fanned_out", "claimed", "delivered", "failed", "dead", "postponed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rounds += 1


class Dispatcher:
    """Delivers the outbox. ``run()`` loops until ``stop()``; ``run_once()`` does one round."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        plugins: Any = None,
        *,
        name: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        if plugins is None:  # the core plugins alone (webhooks among them)
            from crm_graph.plugins import make_plugin_manager

            plugins = make_plugin_manager(settings, entry_points=False)
        self.plugins = plugins
        self.subscribers: list[Subscriber] = [PluginEvents(plugins, settings.plugin_hook_timeout), *subscribers_of(plugins, settings)]
        self.name = name or f"dispatcher-{uuid.uuid4().hex[:8]}"
        self.rng = rng or random.Random()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # The app's metrics (crm_graph/observability/metrics.py), when it has them.
        self.metrics: Any = None

    # --- running -------------------------------------------------------------------------------

    def wake(self) -> None:
        """Ask for a round now (a transaction with events has just committed in this process)."""
        if self._wake is not None:
            self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        """Finish the current round, then stop."""
        self._stopping = True
        self.wake()
        if self._task is not None:
            try:
                await self._task
            finally:
                self._task = None
        await self.aclose()

    async def aclose(self) -> None:
        for subscriber in self.subscribers:
            await subscriber.aclose()

    async def run(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        log.info("%s: delivering events", self.name)
        while not self._stopping:
            self._wake.clear()
            try:
                done = await self.run_once()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the loop
                log.exception("%s: round failed; trying again", self.name)
                done = Round()
            if done.busy:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.dispatch_poll_interval)
            except TimeoutError:
                pass

    async def drain(self, max_rounds: int = 10_000) -> Totals:
        """Run rounds until one finds nothing to do (tests, the benchmark, ``worker --once``)."""
        totals = Totals()
        for _ in range(max_rounds):
            done = await self.run_once()
            totals.add(done)
            if not done.busy:
                break
        return totals

    async def run_once(self) -> Round:
        done = Round()
        done.fanned_out = await self.fan_out()
        claims = await self.claim()
        done.claimed = len(claims)
        if claims:
            results = await self.deliver(claims)
            await self.record(results, done)
        return done

    async def _exists(self, stmt: sa.Select[Any]) -> bool:
        async with self.db.reader() as session:
            return (await session.scalar(stmt.limit(1))) is not None

    # --- 1. fan out -----------------------------------------------------------------------------

    async def fan_out(self) -> int:
        now = utcnow()
        # A read first: an idle dispatcher polls without taking the write lock (SQLite) or
        # opening a write transaction (PostgreSQL).
        if not await self._exists(sa.select(OutboxEvent.id).where(OutboxEvent.dispatched_at.is_(None))):
            return 0
        async with self.db.writer() as session, session.begin():
            rows = (
                await session.execute(
                    sa.select(OutboxEvent.id, OutboxEvent.type, OutboxEvent.entity_type, OutboxEvent.entity_id)
                    .where(OutboxEvent.dispatched_at.is_(None))
                    .order_by(OutboxEvent.id)
                    .limit(self.settings.dispatch_batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            events = [EventRow(*row) for row in rows]
            types = {event.pk: event.type for event in events}
            values: list[dict[str, Any]] = []
            for subscriber in self.subscribers:
                for target in await subscriber.fan_out(self.db, session, events):
                    values.append({
                        "event_pk": target.event_pk,
                        "subscriber": f"{subscriber.kind}:{target.key}",
                        "subscription_id": target.ref,
                        "event_type": types[target.event_pk],
                        "status": DeliveryStatus.PENDING,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    })
            values.sort(key=lambda v: v["event_pk"])  # deliveries of an event stay together, in event order
            if values:
                await session.execute(sa.insert(EventDelivery), values)
            await session.execute(
                sa.update(OutboxEvent).where(OutboxEvent.id.in_([e.pk for e in events])).values(dispatched_at=now)
            )
        return len(rows)

    # --- 2. claim -------------------------------------------------------------------------------

    def _servable(self) -> list[sa.ColumnElement[bool]]:
        out = []
        for subscriber in self.subscribers:
            extra = subscriber.servable()
            out.append(row_kind(subscriber.kind) if extra is None else sa.and_(row_kind(subscriber.kind), extra))
        return out

    async def claim(self) -> list[Claim]:
        now = utcnow()
        token = f"{self.name}:{uuid.uuid4().hex}"
        servable = self._servable()
        due = sa.and_(
            EventDelivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.DELIVERING]),
            EventDelivery.next_attempt_at <= now,
            sa.or_(*servable),
        )
        if not await self._exists(sa.select(EventDelivery.id).where(due)):
            return []
        async with self.db.writer() as session, session.begin():
            ids = (
                await session.scalars(
                    sa.select(EventDelivery.id)
                    .where(due)
                    .order_by(EventDelivery.next_attempt_at, EventDelivery.id)
                    .limit(self.settings.dispatch_batch_size)
                    .with_for_update(skip_locked=True, of=EventDelivery)
                )
            ).all()
            if not ids:
                return []
            await session.execute(
                sa.update(EventDelivery)
                .where(EventDelivery.id.in_(ids))
                .values(
                    status=DeliveryStatus.DELIVERING,
                    claim_token=token,
                    next_attempt_at=now + timedelta(seconds=self.settings.dispatch_lease),
                )
            )
            rows = (
                await session.execute(
                    sa.select(EventDelivery, OutboxEvent)
                    .join(OutboxEvent, OutboxEvent.id == EventDelivery.event_pk)
                    .where(EventDelivery.id.in_(ids))
                    .order_by(EventDelivery.event_pk, EventDelivery.id)
                )
            ).all()
        claims = []
        for delivery, event in rows:
            claims.append(
                Claim(
                    id=delivery.id,
                    token=token,
                    subscriber=delivery.subscriber,
                    attempts=delivery.attempts,
                    last_attempt_at=delivery.last_attempt_at,
                    last_error=delivery.last_error,
                    last_status_code=delivery.last_status_code,
                    event=event.envelope(),
                    ref=delivery.subscription_id,
                )
            )
        return claims

    # --- 3. deliver -----------------------------------------------------------------------------

    async def deliver(self, claims: Sequence[Claim]) -> list[Result]:
        started = asyncio.get_running_loop().time()
        deadline = started + self.settings.dispatch_lease / 2
        by_kind: dict[str, list[Claim]] = defaultdict(list)
        for claim in claims:
            by_kind[claim.subscriber.partition(":")[0]].append(claim)
        serving = [(s, by_kind.pop(s.kind)) for s in self.subscribers if s.kind in by_kind]
        results = [Result(c, "postponed") for rest in by_kind.values() for c in rest]
        lanes = await asyncio.gather(
            *(self._deliver(subscriber, items, deadline) for subscriber, items in serving)
        )
        for lane in lanes:
            results.extend(lane)
        return results

    async def _deliver(self, subscriber: Subscriber, claims: list[Claim], deadline: float) -> list[Result]:
        try:
            # One span for the subscriber's batch, linked to the trace of each event in it.
            with tracing.batch_span(f"deliver {subscriber.kind}", [c.event.trace for c in claims],
                                    **{"crm.subscriber": subscriber.kind, "crm.deliveries": len(claims)}):
                results = await subscriber.deliver(self.db, claims, deadline)
        except Exception:  # noqa: BLE001 - a subscriber's own bug postpones its claims, nothing more
            log.exception("%s: subscriber %s failed to deliver; postponing %d deliveries", self.name, subscriber.kind, len(claims))
            return [Result(c, "postponed") for c in claims]
        answered = {r.claim.id for r in results}
        return [*results, *(Result(c, "postponed") for c in claims if c.id not in answered)]

    # --- 4. record ------------------------------------------------------------------------------

    async def record(self, results: Sequence[Result], done: Round | None = None) -> None:
        done = done if done is not None else Round()
        now = utcnow()
        s = self.settings
        rows = []
        for result in results:
            claim = result.claim
            row = {
                "b_id": claim.id,
                "b_token": claim.token,
                "b_status": DeliveryStatus.PENDING,
                "b_attempts": claim.attempts,
                "b_next_attempt_at": now,
                "b_last_attempt_at": claim.last_attempt_at,
                "b_last_error": claim.last_error,
                "b_last_status_code": claim.last_status_code,
                "b_delivered_at": None,
            }
            outcome = result.kind
            if result.kind == "postponed":
                done.postponed += 1
                row["b_next_attempt_at"] = now + timedelta(
                    seconds=backoff(claim.attempts + 1, base=s.dispatch_backoff_base, cap=s.dispatch_backoff_cap, rng=self.rng)
                )
            else:
                row["b_attempts"] = claim.attempts + 1
                row["b_last_attempt_at"] = now
                row["b_last_status_code"] = result.status_code
                row["b_last_error"] = result.error
                if result.kind == "delivered":
                    done.delivered += 1
                    row["b_status"] = DeliveryStatus.DELIVERED
                    row["b_delivered_at"] = now
                elif not result.retry or row["b_attempts"] >= s.dispatch_max_attempts:
                    outcome = "dead"
                    done.dead += 1
                    row["b_status"] = DeliveryStatus.DEAD
                    log.warning(
                        "delivery %s of event %s to %s is dead after %d attempt(s): %s",
                        claim.id, claim.event.id, claim.subscriber, row["b_attempts"], result.error,
                    )
                else:
                    done.failed += 1
                    row["b_next_attempt_at"] = now + timedelta(
                        seconds=backoff(row["b_attempts"], base=s.dispatch_backoff_base, cap=s.dispatch_backoff_cap, rng=self.rng)
                    )
            rows.append(row)
            if self.metrics is not None:
                self.metrics.deliveries.labels(claim.subscriber.partition(":")[0], outcome).inc()
        if not rows:
            return
        table = EventDelivery.__table__
        statement = (
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"), table.c.claim_token == sa.bindparam("b_token"))
            .values(
                status=sa.bindparam("b_status"),
                attempts=sa.bindparam("b_attempts"),
                next_attempt_at=sa.bindparam("b_next_attempt_at"),
                last_attempt_at=sa.bindparam("b_last_attempt_at"),
                last_error=sa.bindparam("b_last_error"),
                last_status_code=sa.bindparam("b_last_status_code"),
                delivered_at=sa.bindparam("b_delivered_at"),
                claim_token=None,
            )
        )
        async with self.db.writer() as session, session.begin():
            connection = await session.connection()
            await connection.execute(statement, rows)


def subscribers_of(pm: Any, settings: Settings) -> list[Subscriber]:
    """The subscribers plugins register (``crm_register_subscribers``), checked against the
    protocol; one that does not follow it stops start-up with an error naming its plugin."""
    from crm_graph.plugins import PluginError, collect

    out: list[Subscriber] = []
    kinds = {PluginEvents.kind: "the core"}
    for plugin, value in reversed(collect(pm, "crm_register_subscribers", settings=settings, plugins=pm)):
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(item, Subscriber) or not isinstance(getattr(item, "kind", None), str):
                raise PluginError(plugin, f"crm_register_subscribers returned {type(item).__name__}, not a Subscriber")
            if ":" in item.kind or not item.kind:
                raise PluginError(plugin, f"subscriber kind {item.kind!r} must be a non-empty word without ':'")
            if item.kind in kinds:
                raise PluginError(plugin, f"subscriber kind {item.kind!r} clashes with {kinds[item.kind]}")
            kinds[item.kind] = f"plugin {plugin!r}"
            out.append(item)
    return out
