"""The support enums as GraphQL enums. Imported before any type or input refers to them."""

from __future__ import annotations

from crm_graph.graphql.enums import graphql_enum
from crm_graph.support.models import (
    SlaStatus,
    TicketAuthorKind,
    TicketChannel,
    TicketPriority,
    TicketStatus,
    Weekday,
)

graphql_enum(
    TicketChannel,
    "How the customer reached the service team.",
    {
        "EMAIL": "By email.",
        "PHONE": "By phone.",
        "WEB": "Through a web form or portal.",
        "CHAT": "Through live chat.",
        "SOCIAL": "Through social media.",
        "IN_PERSON": "Face to face.",
    },
)
graphql_enum(
    TicketPriority,
    "How urgent a ticket is; SLA policies may set targets by priority.",
    {
        "LOW": "The lowest urgency.",
        "NORMAL": "The default for new tickets.",
        "HIGH": "More urgent than NORMAL.",
        "URGENT": "The highest urgency.",
    },
)
graphql_enum(
    TicketStatus,
    "NEW (nobody answered yet) -> OPEN (being worked on) <-> PENDING (waiting for the customer; the "
    "resolution clock stands still) -> RESOLVED (the customer may still reply, which re-opens it) -> CLOSED (final).",
    {
        "NEW": "Opened, no public agent reply yet. Can become OPEN, PENDING or RESOLVED.",
        "OPEN": "Being worked on. Can become PENDING or RESOLVED.",
        "PENDING": "Waiting for the customer; the resolution clock stands still. Can become OPEN or RESOLVED.",
        "RESOLVED": "Solved; the resolution clock stands still. Can become OPEN again (a customer reply does that) or CLOSED.",
        "CLOSED": "Final: no more replies, edits, assignments or status changes; it can still be rated.",
    },
)
graphql_enum(
    TicketAuthorKind,
    "Who wrote a comment: an AGENT of the business or the CUSTOMER.",
    {
        "AGENT": "Someone of the business; may write public replies and internal notes.",
        "CUSTOMER": "The customer (or their contact person); always a public reply.",
    },
)
graphql_enum(
    SlaStatus,
    "State of one SLA target: PENDING (still running or paused), MET (achieved in time), "
    "BREACHED (missed; a breached target stays breached).",
    {
        "PENDING": "Not decided yet: the clock runs, or stands still.",
        "MET": "Achieved before the due time.",
        "BREACHED": "The due time passed first; it stays breached.",
    },
)
graphql_enum(
    Weekday,
    "A day of the week.",
    {
        "MONDAY": "Monday.",
        "TUESDAY": "Tuesday.",
        "WEDNESDAY": "Wednesday.",
        "THURSDAY": "Thursday.",
        "FRIDAY": "Friday.",
        "SATURDAY": "Saturday.",
        "SUNDAY": "Sunday.",
    },
)
