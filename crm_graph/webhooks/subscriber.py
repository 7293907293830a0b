"""Webhook subscriptions as an event subscriber (``crm_graph.core.subscribers.Subscriber``),
registered by the webhooks plugin: blocking ``crm_graph.webhooks.plugin`` stops webhook delivery
(the rows wait until it is back).

Fan-out creates a delivery per active subscription whose patterns match the event and whose
principal may read the event's record now. Delivery is concurrent, at most
``dispatch_concurrency`` requests at a time; the deliveries of one entity to one subscription go
one after the other, in event order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from crm_graph.core import access
from crm_graph.core.clock import utcnow
from crm_graph.core.events import EventDelivery, matches
from crm_graph.core.subscribers import Claim, EventRow, Result, Target
from crm_graph.settings import Settings
from crm_graph.webhooks.delivery import Target as Endpoint
from crm_graph.webhooks.delivery import new_client, send
from crm_graph.webhooks.models import WebhookSubscription
from crm_graph.observability import tracing

log = logging.getLogger("crm_graph.dispatch")


def _active() -> list[sa.ColumnElement[bool]]:
    return [WebhookSubscription.active.is_(True), WebhookSubscription.deleted_at.is_(None)]


class Webhooks:
    kind = "webhook"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._http: Any = None

    # --- fan-out --------------------------------------------------------------------------------

    async def fan_out(self, db: Any, session: Any, events: Sequence[EventRow]) -> list[Target]:
        subscriptions = (
            await session.execute(
                sa.select(WebhookSubscription.id, WebhookSubscription.events, WebhookSubscription.principal).where(*_active())
            )
        ).all()
        if not subscriptions:
            return []
        wanted = {
            (event, sid): principal
            for event in events
            for sid, patterns, principal in subscriptions
            if any(matches(p, event.type) for p in patterns or [])
        }
        visible = await self._visible(db, session, wanted)
        return [Target(event.pk, str(sid), sid) for (event, sid) in wanted if (event, sid) in visible]

    async def _visible(self, db: Any, session: Any, wanted: dict[tuple[EventRow, int], str | None]) -> set[tuple[EventRow, int]]:
        """The (event, subscription) pairs whose subscription's principal may read the event's
        record. One query per principal and entity type; principals that can no longer sign in
        (a revoked key, a deactivated user) get nothing. Subscriptions without a principal (made
        by the system, or before access existed) see everything."""
        by_principal: dict[str, list[tuple[EventRow, int]]] = defaultdict(list)
        out: set[tuple[EventRow, int]] = set()
        for pair, principal in wanted.items():
            if principal is None:
                out.add(pair)
            else:
                by_principal[principal].append(pair)
        sharing = await access.sharing_defaults(session) if by_principal else None
        for principal, pairs in by_principal.items():
            actor = await access.principal_actor(session, principal)
            if actor is None:
                continue
            scope = access.Scope(actor, sharing=sharing)
            by_type: dict[str, set[str]] = defaultdict(set)
            for event, _ in pairs:
                by_type[event.entity_type].add(event.entity_id)
            readable: set[tuple[str, str]] = set()
            for entity_type, ids in by_type.items():
                readable |= {(entity_type, i) for i in await access.readable_ids(db.reader, scope, entity_type, ids)}
            out |= {pair for pair in pairs if (pair[0].entity_type, pair[0].entity_id) in readable}
        return out

    def servable(self) -> sa.ColumnElement[bool] | None:
        return EventDelivery.subscription_id.in_(sa.select(WebhookSubscription.id).where(*_active()))

    # --- delivery -------------------------------------------------------------------------------

    async def _endpoints(self, db: Any, claims: Sequence[Claim]) -> dict[int, Endpoint]:
        ids = {c.ref for c in claims if c.ref is not None}
        if not ids:
            return {}
        now = utcnow()
        async with db.reader() as session:
            rows = await session.scalars(sa.select(WebhookSubscription).where(WebhookSubscription.id.in_(ids)))
            return {s.id: Endpoint(s.id, s.url, tuple(s.signing_secrets(now))) for s in rows}

    async def deliver(self, db: Any, claims: Sequence[Claim], deadline: float) -> list[Result]:
        """A subscription that times out, refuses connections or answers 5xx sits out the rest of
        the round."""
        endpoints = await self._endpoints(db, claims)
        if self._http is None:
            self._http = new_client(timeout=self.settings.webhook_timeout, connections=self.settings.dispatch_concurrency)
        client = self._http
        gate = asyncio.Semaphore(self.settings.dispatch_concurrency)
        down: set[int] = set()
        loop = asyncio.get_running_loop()
        results = [Result(c, "postponed") for c in claims if c.ref not in endpoints]
        lanes: dict[tuple[int, str, str], list[Claim]] = defaultdict(list)
        for claim in claims:
            if claim.ref in endpoints:
                lanes[(claim.ref, claim.event.entity_type, claim.event.entity_id)].append(claim)

        async def lane(items: list[Claim]) -> list[Result]:
            out = []
            for claim in items:
                endpoint = endpoints[claim.ref]  # type: ignore[index]
                sid = endpoint.subscription_id
                if sid in down or loop.time() > deadline:
                    out.append(Result(claim, "postponed"))
                    continue
                async with gate:
                    if sid in down:
                        out.append(Result(claim, "postponed"))
                        continue
                    # The delivery joins the trace of the write that raised the event.
                    with tracing.joined("webhook delivery", claim.event.trace, **{
                        "crm.event.id": claim.event.id, "crm.event.type": claim.event.type,
                        "crm.webhook.subscription": sid, "crm.attempt": claim.attempts + 1,
                    }):
                        answer = await send(
                            client, endpoint, claim.event, attempt=claim.attempts + 1, now=utcnow(),
                            allow_private=self.settings.webhook_allow_private,
                        )
                if answer.delivered:
                    out.append(Result(claim, "delivered", status_code=answer.status_code))
                    continue
                if answer.retry:
                    down.add(sid)
                log.warning(
                    "webhook %s: delivery of event %s (%s) failed, attempt %d: %s",
                    sid, claim.event.id, claim.event.type, claim.attempts + 1, answer.error,
                )
                out.append(Result(claim, "failed", retry=answer.retry, status_code=answer.status_code, error=answer.error))
            return out

        batches = await asyncio.gather(*(lane(items) for items in lanes.values()))
        return results + [result for batch in batches for result in batch]

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
