"""Pushes orders to the books from the outbox (subscriber kind ``finance``): one delivery per
order event and active connection. The core's dispatcher keeps the retries with backoff and the
dead letters; ``retryFinanceSync`` asks again after those."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from crm_finance import service
from crm_finance.models import FinanceConnection
from crm_graph.core import ids
from crm_graph.core.subscribers import Claim, EventRow, Result, Target, deliver_each, find_subscriber
from crm_graph.settings import Settings

# Events after which an order's invoice may need pushing or reversing.
ORDER_EVENTS = ("order.created", "order.status_changed", "order.updated", "finance_sync.requested")


class FinanceSync:
    kind = "finance"

    def __init__(self, settings: Settings, plugins: Any) -> None:
        self.settings = settings
        self.backends = service.backends_of(plugins)

    async def fan_out(self, db: Any, session: Any, events: Sequence[EventRow]) -> list[Target]:
        wanted = [e for e in events if e.type in ORDER_EVENTS and e.entity_type == "Order"]
        if not wanted:
            return []
        active = list(await session.scalars(sa.select(FinanceConnection.id).where(FinanceConnection.active.is_(True))))
        return [Target(e.pk, str(cid), cid) for e in wanted for cid in active]

    def servable(self) -> sa.ColumnElement[bool] | None:
        return None

    async def deliver(self, db: Any, claims: Sequence[Claim], deadline: float) -> list[Result]:
        async def sync(claim: Claim) -> Result:
            order_id = ids.decode_as(claim.event.entity_id, "Order")
            outcome = await service.sync_order(db, self.settings, self.backends, order_id, int(claim.key))
            if outcome.busy:
                return Result(claim, "postponed")
            if outcome.error is not None:
                return Result(claim, "failed", retry=outcome.error.retry, error=outcome.error.message[:1000])
            return Result(claim, "delivered")

        return await deliver_each(claims, deadline, sync)

    async def aclose(self) -> None:
        return None


def subscriber_of(context: Any) -> FinanceSync:
    return find_subscriber(getattr(context, "dispatcher", None), FinanceSync)
