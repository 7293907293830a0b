"""The plugin's outbox subscriber (kind ``service``): agents' replies mailed (``service:mail``)
and CRM tickets pushed to each helpdesk connection (``service:helpdesk.<id>``), from the ticket
events after they committed. The dispatcher keeps retries and backoff."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from crm_graph.core import ids
from crm_graph.core.events import register_event_type
from crm_graph.core.helpdesk import HelpdeskError
from crm_graph.core.subscribers import Claim, EventRow, Result, Target, deliver_each
from crm_graph.settings import Settings
from crm_service.config import service_settings
from crm_service.helpdesk import sync
from crm_service.replies import has_mail_thread, send_reply, wants_mail

log = logging.getLogger("crm_service")

register_event_type("mail.received", "A mail was read from a support mailbox (`data.outcome`: TICKET, COMMENT, QUEUED, "
                    "AUTO_REPLY, BOUNCE, OWN or FLOOD; `data.channel`, `data.from`, `data.subject`, `data.messageId`). "
                    "On the Ticket it opened or commented on, else on the MailChannel.")

# Ticket events that may change what a helpdesk should show.
SYNCED = frozenset({"ticket.created", "ticket.replied", "ticket.status_changed", "ticket.updated", "ticket.rated"})


class ServiceEvents:
    kind = "service"

    def __init__(self, settings: Settings, plugins: Any) -> None:
        self.settings = settings
        self.plugins = plugins

    async def fan_out(self, db: Any, session: Any, events: Sequence[EventRow]) -> list[Target]:
        tickets = [e for e in events if e.entity_type == "Ticket" and e.type in SYNCED]
        if not tickets:
            return []
        connections = await sync.connection_ids(db)
        out = []
        for event in tickets:
            if event.type == "ticket.replied" and await has_mail_thread(session, int(event.entity_id)):
                out.append(Target(event.pk, "mail"))
            out.extend(Target(event.pk, f"helpdesk.{c}") for c in connections)
        return out

    def servable(self) -> Any:
        return None

    async def deliver(self, db: Any, claims: Sequence[Claim], deadline: float) -> list[Result]:
        service = service_settings()

        async def one(claim: Claim) -> Result:
            if claim.key == "mail":
                if not wants_mail(claim.event.data):
                    return Result(claim, "delivered")
                return await send_reply(db, self.settings, service, self.plugins, claim)
            connection_id = int(claim.key.partition(".")[2])
            try:
                done = await sync.push_ticket(db, self.settings, service, self.plugins, connection_id,
                                              ids.decode_as(claim.event.entity_id, "Ticket"))
            except HelpdeskError as exc:
                return Result(claim, "failed", retry=exc.retry, error=exc.message[:1000])
            log.info("helpdesk %s: %s", connection_id, done)
            return Result(claim, "delivered")

        return await deliver_each(claims, deadline, one)

    async def aclose(self) -> None:
        return None
