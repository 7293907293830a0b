"""Events into the ledger (subscriber kind ``loyalty``): payments earn points, a cancelled or
refunded order gives back what it earned and spent, and EVENT rules award points for the events
they name. Delivery is at least once; each effect has an idempotency key made of the event's
record (``payment:<id>:rule:<id>``, the order's full refund, ``event:<id>:rule:<id>``), so a
redelivered event changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crm_graph.core.actor import SYSTEM
from crm_graph.core.events import Event, customers_of, matches
from crm_graph.core.subscribers import Claim, EventRow, Result, Target, deliver_each
from crm_graph.loyalty import service

ENDED = ("CANCELLED", "REFUNDED")


class LoyaltyEvents:
    kind = "loyalty"

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    async def fan_out(self, db: Any, session: Any, events: Sequence[EventRow]) -> list[Target]:
        patterns: list[str] | None = None
        out = []
        for e in events:
            if e.type in ("payment.recorded", "order.status_changed"):
                out.append(Target(e.pk, "ledger"))
                continue
            if e.type.startswith(("loyalty.", "coupon.", "loyalty_")):
                continue  # the ledger's own events award nothing
            if patterns is None:
                patterns = await service.event_rule_patterns(session)
            if any(matches(p, e.type) for p in patterns):
                out.append(Target(e.pk, "ledger"))
        return out

    def servable(self) -> Any:
        return None

    async def deliver(self, db: Any, claims: Sequence[Claim], deadline: float) -> list[Result]:
        async def one(claim: Claim) -> Result:
            async with db.writer() as session, session.begin():
                await apply(session, claim.event)
            return Result(claim, "delivered")

        return await deliver_each(claims, deadline, one)

    async def aclose(self) -> None:
        return None


async def apply(session: Any, event: Event) -> None:
    if event.type == "payment.recorded":
        await service.earn_for_payment(session, int(event.entity_pk))
    elif event.type == "order.status_changed":
        if (event.changes or {}).get("to") in ENDED and (event.changes or {}).get("from") not in ENDED:
            order_id = int(event.entity_pk)
            await service.reverse_order_points(session, actor=SYSTEM, order_id=order_id, refunded_amount=None,
                                               idempotency_key=f"order:{order_id}:{event.changes['to'].lower()}")
    else:
        await service.earn_for_event(session, event_id=event.id, event_type=event.type, customer_ids=customers_of(event))
