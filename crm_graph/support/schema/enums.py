"""The support enums as GraphQL enums. Imported before any type or input refers to them."""

from __future__ import annotations

import strawberry

from crm_graph.support.models import (
    SlaStatus,
    TicketAuthorKind,
    TicketChannel,
    TicketPriority,
    TicketStatus,
    Weekday,
)

strawberry.enum(TicketChannel, description="How the customer reached the service team.")
strawberry.enum(TicketPriority, description="How urgent a ticket is; SLA policies may set targets by priority.")
strawberry.enum(
    TicketStatus,
    description="NEW (nobody answered yet) -> OPEN (being worked on) <-> PENDING (waiting for the customer; the "
    "resolution clock stands still) -> RESOLVED (the customer may still reply, which re-opens it) -> CLOSED (final).",
)
strawberry.enum(TicketAuthorKind, description="Who wrote a comment: an AGENT of the business or the CUSTOMER.")
strawberry.enum(
    SlaStatus,
    description="State of one SLA target: PENDING (still running or paused), MET (achieved in time), "
    "BREACHED (missed; a breached target stays breached).",
)
strawberry.enum(Weekday, description="A day of the week.")
