"""The event dispatcher: from the outbox to every plugin and webhook subscription.

One round:

1. Fan out: take outbox events not yet dispatched and create one ``event_deliveries`` row per
   subscriber (each plugin implementing ``crm_on_event``, each active subscription whose
   patterns match), then mark the events dispatched.
2. Claim: take due deliveries (``PENDING`` and due, or ``DELIVERING`` whose claim lapsed because
   its worker died), mark them ``DELIVERING`` with a claim token and a lease.
3. Deliver: plugins one implementation call at a time, webhooks concurrently (deliveries of
   one entity to one subscription stay in order).
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

from crm_graph.core import access
from crm_graph.core.clock import utcnow
from crm_graph.core.events import DeliveryStatus, Event, EventDelivery, OutboxEvent, matches
from crm_graph.core.hooks import (
    HookGarbage,
    HookTimeout,
    call_implementation,
    describe,
    find_implementation,
    implementations,
)
from crm_graph.db.session import Database
from crm_graph.settings import Settings

log = logging.getLogger("crm_graph.dispatch")

PLUGIN_PREFIX = "plugin:"
WEBHOOK_PREFIX = "webhook:"


def plugin_subscriber(name: str) -> str:
    return f"{PLUGIN_PREFIX}{name}"


def webhook_subscriber(subscription_id: int) -> str:
    return f"{WEBHOOK_PREFIX}{subscription_id}"


def backoff(attempts: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: ``min(cap, base * 2**(attempts-1))``,
    less a random part of up to half of it, so failed deliveries do not all return at once."""
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


@dataclass
class Claim:
    """A delivery this dispatcher holds, with what it needs to carry it out."""

    id: int
    token: str
    subscriber: str
    attempts: int
    last_attempt_at: datetime | None
    last_error: str | None
    last_status_code: int | None
    event: Event
    target: Any = None  # webhooks.delivery.Target for webhook deliveries


@dataclass
class Result:
    claim: Claim
    kind: str  # "delivered", "failed", "postponed"
    retry: bool = True
    status_code: int | None = None
    error: str | None = None


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
        self.plugins = plugins
        self.name = name or f"dispatcher-{uuid.uuid4().hex[:8]}"
        self.rng = rng or random.Random()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._http: Any = None

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
        if self._http is not None:
            await self._http.aclose()
            self._http = None

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

    def plugin_names(self) -> list[str]:
        if self.plugins is None:
            return []
        return [impl.plugin_name for impl in implementations(self.plugins, "crm_on_event")]

    async def fan_out(self) -> int:
        from crm_graph.webhooks.models import WebhookSubscription

        now = utcnow()
        plugins = self.plugin_names()
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
            subscriptions = (
                await session.execute(
                    sa.select(WebhookSubscription.id, WebhookSubscription.events, WebhookSubscription.principal).where(
                        WebhookSubscription.active.is_(True), WebhookSubscription.deleted_at.is_(None)
                    )
                )
            ).all()
            wanted = {
                (event_pk, sid): principal
                for event_pk, event_type, _, _ in rows
                for sid, patterns, principal in subscriptions
                if any(matches(p, event_type) for p in patterns or [])
            }
            visible = await self._visible(session, rows, wanted)
            values: list[dict[str, Any]] = []
            for event_pk, event_type, _, _ in rows:
                subscribers = [(plugin_subscriber(p), None) for p in plugins]
                subscribers += [
                    (webhook_subscriber(sid), sid)
                    for sid, _, _ in subscriptions
                    if (event_pk, sid) in wanted and (event_pk, sid) in visible
                ]
                values.extend(
                    {
                        "event_pk": event_pk,
                        "subscriber": subscriber,
                        "subscription_id": sid,
                        "event_type": event_type,
                        "status": DeliveryStatus.PENDING,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for subscriber, sid in subscribers
                )
            if values:
                await session.execute(sa.insert(EventDelivery), values)
            await session.execute(
                sa.update(OutboxEvent).where(OutboxEvent.id.in_([r[0] for r in rows])).values(dispatched_at=now)
            )
        return len(rows)

    async def _visible(self, session: Any, rows: Sequence[Any], wanted: dict[tuple[int, int], str | None]) -> set[tuple[int, int]]:
        """The (event, subscription) pairs whose subscription's principal may read the event's
        record. One query per principal and entity type; principals that can no longer sign in
        (a revoked key, a deactivated user) get nothing. Subscriptions without a principal
        (made by the system, or before access existed) and plugins see everything."""
        by_principal: dict[str, list[tuple[int, int]]] = defaultdict(list)
        out: set[tuple[int, int]] = set()
        for pair, principal in wanted.items():
            if principal is None:
                out.add(pair)
            else:
                by_principal[principal].append(pair)
        events = {pk: (entity_type, entity_id) for pk, _, entity_type, entity_id in rows}
        sharing = await access.sharing_defaults(session) if by_principal else None
        for principal, pairs in by_principal.items():
            actor = await access.principal_actor(session, principal)
            if actor is None:
                continue
            scope = access.Scope(actor, sharing=sharing)
            by_type: dict[str, set[str]] = defaultdict(set)
            for event_pk, _ in pairs:
                by_type[events[event_pk][0]].add(events[event_pk][1])
            readable: set[tuple[str, str]] = set()
            for entity_type, ids in by_type.items():
                readable |= {(entity_type, i) for i in await access.readable_ids(self.db.reader, scope, entity_type, ids)}
            out |= {pair for pair in pairs if events[pair[0]] in readable}
        return out

    # --- 2. claim -------------------------------------------------------------------------------

    async def claim(self) -> list[Claim]:
        from crm_graph.webhooks.delivery import Target
        from crm_graph.webhooks.models import WebhookSubscription

        now = utcnow()
        token = f"{self.name}:{uuid.uuid4().hex}"
        servable = [
            EventDelivery.subscription_id.in_(
                sa.select(WebhookSubscription.id).where(
                    WebhookSubscription.active.is_(True), WebhookSubscription.deleted_at.is_(None)
                )
            )
        ]
        plugins = self.plugin_names()
        if plugins:
            servable.append(EventDelivery.subscriber.in_([plugin_subscriber(p) for p in plugins]))
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
            sub_ids = {d.subscription_id for d, _ in rows if d.subscription_id is not None}
            subs = {}
            if sub_ids:
                for sub in await session.scalars(
                    sa.select(WebhookSubscription).where(WebhookSubscription.id.in_(sub_ids))
                ):
                    subs[sub.id] = Target(sub.id, sub.url, tuple(sub.signing_secrets(now)))
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
                    target=subs.get(delivery.subscription_id) if delivery.subscription_id is not None else None,
                )
            )
        return claims

    # --- 3. deliver -----------------------------------------------------------------------------

    async def deliver(self, claims: Sequence[Claim]) -> list[Result]:
        started = asyncio.get_running_loop().time()
        deadline = started + self.settings.dispatch_lease / 2
        plugin_claims = [c for c in claims if c.subscriber.startswith(PLUGIN_PREFIX)]
        webhook_claims = [c for c in claims if c.target is not None and not c.subscriber.startswith(PLUGIN_PREFIX)]
        handled = {c.id for c in plugin_claims} | {c.id for c in webhook_claims}
        results = [Result(c, "postponed") for c in claims if c.id not in handled]
        lanes = await asyncio.gather(
            self._deliver_to_plugins(plugin_claims, deadline),
            self._deliver_to_webhooks(webhook_claims, deadline),
        )
        for lane in lanes:
            results.extend(lane)
        return results

    async def _deliver_to_plugins(self, claims: Sequence[Claim], deadline: float) -> list[Result]:
        """One implementation call at a time. A plugin that fails sits out the rest of the round:
        its other deliveries are postponed, not attempted, so a hung plugin costs one timeout."""
        results = []
        failing: set[str] = set()
        loop = asyncio.get_running_loop()
        timeout = self.settings.plugin_hook_timeout
        for claim in claims:
            name = claim.subscriber[len(PLUGIN_PREFIX):]
            impl = find_implementation(self.plugins, "crm_on_event", name) if self.plugins is not None else None
            if impl is None or name in failing or loop.time() > deadline:
                results.append(Result(claim, "postponed"))
                continue
            try:
                value = await call_implementation(impl, {"event": claim.event, "db": self.db}, timeout)
                if value is not None:
                    raise HookGarbage(f"returned {type(value).__name__}; crm_on_event implementations return None")
            except Exception as exc:  # noqa: BLE001 - isolation: a plugin's failure is recorded, not raised
                failing.add(name)
                log.error(
                    "plugin %s: crm_on_event failed for event %s (%s), attempt %d: %s",
                    name,
                    claim.event.id,
                    claim.event.type,
                    claim.attempts + 1,
                    describe(exc),
                    exc_info=None if isinstance(exc, (HookTimeout, HookGarbage)) else exc,
                )
                results.append(Result(claim, "failed", retry=True, error=describe(exc)[:1000]))
                continue
            results.append(Result(claim, "delivered"))
        return results

    async def _deliver_to_webhooks(self, claims: Sequence[Claim], deadline: float) -> list[Result]:
        """Concurrently, at most ``dispatch_concurrency`` requests at a time; the deliveries of one
        entity to one subscription go one after the other, in event order. A subscription that
        times out, refuses connections or answers 5xx sits out the rest of the round."""
        if not claims:
            return []
        from crm_graph.webhooks.delivery import new_client, send

        if self._http is None:
            self._http = new_client(
                timeout=self.settings.webhook_timeout, connections=self.settings.dispatch_concurrency
            )
        client = self._http
        gate = asyncio.Semaphore(self.settings.dispatch_concurrency)
        down: set[int] = set()
        loop = asyncio.get_running_loop()
        lanes: dict[tuple[int, str, str], list[Claim]] = defaultdict(list)
        for claim in claims:
            lanes[(claim.target.subscription_id, claim.event.entity_type, claim.event.entity_id)].append(claim)

        async def lane(items: list[Claim]) -> list[Result]:
            out = []
            for claim in items:
                sid = claim.target.subscription_id
                if sid in down or loop.time() > deadline:
                    out.append(Result(claim, "postponed"))
                    continue
                async with gate:
                    if sid in down:
                        out.append(Result(claim, "postponed"))
                        continue
                    answer = await send(
                        client,
                        claim.target,
                        claim.event,
                        attempt=claim.attempts + 1,
                        now=utcnow(),
                        allow_private=self.settings.webhook_allow_private,
                    )
                if answer.delivered:
                    out.append(Result(claim, "delivered", status_code=answer.status_code))
                    continue
                if answer.retry:
                    down.add(sid)
                log.warning(
                    "webhook %s: delivery of event %s (%s) failed, attempt %d: %s",
                    sid,
                    claim.event.id,
                    claim.event.type,
                    claim.attempts + 1,
                    answer.error,
                )
                out.append(Result(claim, "failed", retry=answer.retry, status_code=answer.status_code, error=answer.error))
            return out

        batches = await asyncio.gather(*(lane(items) for items in lanes.values()))
        return [result for batch in batches for result in batch]

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
