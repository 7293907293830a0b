"""The one protocol through which the dispatcher delivers events: ``Subscriber``.

The dispatcher (``core/dispatch.py``) owns the outbox, the delivery rows, claims, leases,
retries with backoff and dead letters. A subscriber owns the rest: which targets want an event
(``fan_out``), which of its delivery rows may still be served (``servable``) and how one is
carried out (``deliver``). Plugins' ``crm_on_event`` is the built-in ``PluginEvents`` below;
webhook subscriptions are the webhooks domain's ``crm_graph.webhooks.subscriber``, registered
through ``crm_register_subscribers`` like a partner's subscriber. The core imports no domain.

Delivery rows name their subscriber ``<kind>:<key>``; a row whose kind no loaded subscriber
serves (a blocked plugin) waits, untouched, until one does.

Live GraphQL subscriptions are not delivery subscribers: a connected client is served from each
process's tail of the outbox (``crm_graph/core/live.py``), with nothing to retry once it is gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

import sqlalchemy as sa

from crm_graph.core.events import Event, EventDelivery
from crm_graph.core.hooks import HookGarbage, HookTimeout, call_implementation, describe, implementations

log = logging.getLogger("crm_graph.dispatch")
T = TypeVar("T")


@dataclass(frozen=True)
class EventRow:
    """What fan-out knows of an outbox event (no payload: subscribers decide on type and entity)."""

    pk: int
    type: str
    entity_type: str
    entity_id: str


@dataclass(frozen=True)
class Target:
    """One delivery to create: event ``event_pk`` for ``<kind>:<key>``. ``ref`` is the
    subscriber's own record (a webhook subscription's id), kept on the row and in ``Claim.ref``."""

    event_pk: int
    key: str
    ref: int | None = None


@dataclass
class Claim:
    """A delivery a dispatcher holds, with what it needs to carry it out."""

    id: int
    token: str
    subscriber: str
    attempts: int
    last_attempt_at: datetime | None
    last_error: str | None
    last_status_code: int | None
    event: Event
    ref: int | None = None

    @property
    def key(self) -> str:
        return self.subscriber.partition(":")[2]


@dataclass
class Result:
    """What became of one claim: ``delivered``, ``failed`` (retried unless ``retry`` is False) or
    ``postponed`` (not attempted this round; no attempt is counted)."""

    claim: Claim
    kind: str
    retry: bool = True
    status_code: int | None = None
    error: str | None = None


@runtime_checkable
class Subscriber(Protocol):
    kind: str  # the prefix of its delivery rows: "plugin", "webhook", ...

    async def fan_out(self, db: Any, session: Any, events: Sequence[EventRow]) -> Iterable[Target]:
        """The deliveries to create for ``events``, inside the fan-out transaction (``session``;
        ``db`` is the dispatcher's ``Database``, for reads of another scope). Check here who may
        see what: a target that may not read an event's record gets no row."""
        ...

    def servable(self) -> sa.ColumnElement[bool] | None:
        """An extra condition on ``EventDelivery`` for rows of this kind that may be claimed now
        (e.g. the subscription is still active), or None for all of them."""
        ...

    async def deliver(self, db: Any, claims: Sequence[Claim], deadline: float) -> list[Result]:
        """Carry out ``claims`` (all of this kind); one ``Result`` per claim. Stop attempting once
        the event loop's clock passes ``deadline`` (postpone the rest): the claims' lease runs."""
        ...

    async def aclose(self) -> None:
        """Release what ``deliver`` opened (HTTP clients...)."""
        ...


def row_kind(kind: str) -> sa.ColumnElement[bool]:
    """Delivery rows of subscribers of ``kind``."""
    return EventDelivery.subscriber.startswith(f"{kind}:", autoescape=True)


class PluginEvents:
    """Plugins' ``crm_on_event``: one delivery per event and implementing plugin."""

    kind = "plugin"

    def __init__(self, pm: Any, timeout: float) -> None:
        self.pm = pm
        self.timeout = timeout

    def names(self) -> list[str]:
        return [impl.plugin_name for impl in implementations(self.pm, "crm_on_event")]

    async def fan_out(self, db: Any, session: Any, events: Sequence[EventRow]) -> list[Target]:
        names = self.names()
        return [Target(event.pk, name) for event in events for name in names]

    def servable(self) -> sa.ColumnElement[bool] | None:
        return EventDelivery.subscriber.in_([f"{self.kind}:{name}" for name in self.names()])

    async def deliver(self, db: Any, claims: Sequence[Claim], deadline: float) -> list[Result]:
        """One implementation call at a time. A plugin that fails sits out the rest of the round:
        its other deliveries are postponed, not attempted, so a hung plugin costs one timeout."""
        impls = {impl.plugin_name: impl for impl in implementations(self.pm, "crm_on_event")}
        results = []
        failing: set[str] = set()
        loop = asyncio.get_running_loop()
        for claim in claims:
            impl = impls.get(claim.key)
            if impl is None or claim.key in failing or loop.time() > deadline:
                results.append(Result(claim, "postponed"))
                continue
            try:
                value = await call_implementation(impl, {"event": claim.event, "db": db}, self.timeout)
                if value is not None:
                    raise HookGarbage(f"returned {type(value).__name__}; crm_on_event implementations return None")
            except Exception as exc:  # noqa: BLE001 - isolation: a plugin's failure is recorded, not raised
                failing.add(claim.key)
                log.error(
                    "plugin %s: crm_on_event failed for event %s (%s), attempt %d: %s",
                    claim.key, claim.event.id, claim.event.type, claim.attempts + 1, describe(exc),
                    exc_info=None if isinstance(exc, (HookTimeout, HookGarbage)) else exc,
                )
                results.append(Result(claim, "failed", retry=True, error=describe(exc)[:1000]))
                continue
            results.append(Result(claim, "delivered"))
        return results

    async def aclose(self) -> None:
        return None


async def deliver_each(claims: Sequence[Claim], deadline: float, handle: Any) -> list[Result]:
    """Deliver ``claims`` one at a time with ``await handle(claim) -> Result``, postponing the rest
    once the loop's clock passes ``deadline``; a ``handle`` that raises fails that claim alone
    (retried), logged with its traceback. For subscribers whose deliveries are independent."""
    loop = asyncio.get_running_loop()
    results = []
    for claim in claims:
        if loop.time() > deadline:
            results.append(Result(claim, "postponed"))
            continue
        try:
            results.append(await handle(claim))
        except Exception as exc:  # noqa: BLE001 - one delivery's failure is that delivery's
            log.exception("%s: delivery of event %s (%s) failed", claim.subscriber, claim.event.id, claim.event.type)
            results.append(Result(claim, "failed", error=f"{type(exc).__name__}: {exc}"[:1000]))
    return results


def find_subscriber(dispatcher: Any, cls: type[T]) -> T:
    """The subscriber of class ``cls`` a dispatcher runs (so a request can use what a plugin's
    subscriber holds: warm converters, its backends). Raises LookupError when there is none."""
    for subscriber in getattr(dispatcher, "subscribers", ()):
        if isinstance(subscriber, cls):
            return subscriber
    raise LookupError(f"no {cls.__name__} subscriber is loaded")
