"""What a test's writes raised: the domain events in the outbox, and their delivery to plugins.

The outbox is the record: a service writes an event in the same transaction as its change, so
the outbox of a test's own database holds exactly the events committed during the test, in
commit order, whether or not they have been delivered yet (a write that failed or rolled back
left none). Delivery is a separate, explicit step: ``deliver()`` runs the app's dispatcher until
nothing is due, which calls every plugin's ``crm_on_event``, so a test never waits on a timer.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from crm_graph.core.events import DeliveryStatus, Event, EventDelivery, OutboxEvent, matches

# How the dispatcher names a plugin's deliveries (``event_deliveries.subscriber``, the API's
# ``EventDelivery.subscriber``): ``plugin:<plugin name>``.
PLUGIN_SUBSCRIBER = "plugin:"


class PluginDeliveryFailed(AssertionError):
    """A plugin's ``crm_on_event`` raised, hung or returned something for an event of the test."""


class EventLog:
    """The events of the database of ``app`` (a Starlette app from ``create_app``)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.db = app.state.db

    async def all(self, pattern: str = "*") -> list[Event]:
        """The committed events, oldest first, as ``crm_on_event`` receives them; ``pattern``
        is a type (``"customer.created"``), a family (``"customer.*"``) or ``"*"``."""
        async with self.db.reader() as session:
            rows = await session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.id))
            return [row.envelope() for row in rows if matches(pattern, row.type)]

    async def types(self, pattern: str = "*") -> list[str]:
        """The types of the committed events, oldest first."""
        return [event.type for event in await self.all(pattern)]

    async def deliver(self, *, check: bool = True) -> Any:
        """Deliver every due event to every subscriber (plugins and webhook subscriptions), round
        after round until none is due; returns the dispatcher's totals (``delivered``,
        ``failed``, ``dead``, ...).

        With ``check`` (the default), raise ``PluginDeliveryFailed`` naming the plugin, the
        event and the error when a plugin's delivery is failing afterwards: the dispatcher only
        logs such failures and retries them later, and a test should not pass over one unseen.
        Pass ``check=False`` to test retries (move a frozen clock on and deliver again).
        """
        totals = await self.app.state.dispatcher.drain()
        if check:
            failures = await self.failing_plugin_deliveries()
            if failures:
                raise PluginDeliveryFailed("\n".join(failures))
        return totals

    async def failing_plugin_deliveries(self) -> list[str]:
        """One line per plugin delivery whose last attempt failed (waiting for a retry, or dead)."""
        async with self.db.reader() as session:
            rows = (
                await session.execute(
                    sa.select(EventDelivery, OutboxEvent.type, OutboxEvent.event_id)
                    .join(OutboxEvent, OutboxEvent.id == EventDelivery.event_pk)
                    .where(
                        EventDelivery.subscriber.startswith(PLUGIN_SUBSCRIBER),
                        EventDelivery.status != DeliveryStatus.DELIVERED,
                        EventDelivery.last_error.is_not(None),
                    )
                    .order_by(EventDelivery.id)
                )
            ).all()
        return [
            f"plugin {delivery.subscriber[len(PLUGIN_SUBSCRIBER):]!r} failed event {event_type} ({event_id}), "
            f"{delivery.status.value} after {delivery.attempts} attempt(s): {delivery.last_error}"
            for delivery, event_type, event_id in rows
        ]
