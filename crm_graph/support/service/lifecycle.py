"""The status machine, the thread and satisfaction ratings.

Status machine (``TRANSITIONS``)::

    NEW      -> OPEN, PENDING, RESOLVED
    OPEN     -> PENDING, RESOLVED
    PENDING  -> OPEN, RESOLVED
    RESOLVED -> OPEN (reopened), CLOSED
    CLOSED   -> nothing: CLOSED is final

Replies move the status too: the first public agent reply opens a NEW ticket; a customer reply
re-opens a PENDING or RESOLVED ticket. Asking for the status a ticket already has changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import errors as codes
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, FieldError, ValidationFailed
from crm_graph.activities import service as timeline
from crm_graph.activities.models import ActivityType
from crm_graph.core.events import record_event
from crm_graph.core.hooks import validate_with_plugins
from crm_graph.customers.models import Customer
from crm_graph.support import errors as support_codes
from crm_graph.support import sla
from crm_graph.support.models import (
    CLOCK_RUNNING,
    SlaPolicy,
    Ticket,
    TicketAuthorKind,
    TicketComment,
    TicketRating,
    TicketStatus,
)
from crm_graph.support.service.common import InvalidValue, enum_value, text
from crm_graph.support.service.reading import payload_of
from crm_graph.support.service.tickets import (
    body_text,
    enum_field,
    lock_for_write,
    refuse_closed,
    save,
)

S = TicketStatus
TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.NEW: frozenset({S.OPEN, S.PENDING, S.RESOLVED}),
    S.OPEN: frozenset({S.PENDING, S.RESOLVED}),
    S.PENDING: frozenset({S.OPEN, S.RESOLVED}),
    S.RESOLVED: frozenset({S.OPEN, S.CLOSED}),
    S.CLOSED: frozenset(),
}


async def change_ticket_status(
    session: AsyncSession, *, actor: Actor, ticket_id: int, status: Any, expected_version: int | None
) -> Ticket:
    now = utcnow()
    ticket = await lock_for_write(session, ticket_id, expected_version, actor=actor, now=now)
    try:
        target = enum_value(TicketStatus, status)
    except InvalidValue as exc:
        raise ValidationFailed([FieldError("status", codes.INVALID_VALUE, str(exc))]) from None
    if target is ticket.status:
        return ticket
    if target not in TRANSITIONS[ticket.status]:
        allowed = ", ".join(s.name for s in TicketStatus if s in TRANSITIONS[ticket.status]) or "none: CLOSED is final"
        raise ValidationFailed(
            [FieldError("status", support_codes.INVALID_TRANSITION,
                        f"A {ticket.status.name} ticket cannot become {target.name} (allowed: {allowed}).")]
        )
    await validate_with_plugins(session, entity="ticket", data={"id": ticket_id, "status": target.name}, actor=actor)
    await _move(session, ticket, target, actor=actor, now=now)
    return ticket


async def _move(session: AsyncSession, ticket: Ticket, target: TicketStatus, *, actor: Actor, now: datetime) -> None:
    """Change the status (already known to be allowed) and keep the SLA clocks in step.

    Leaving NEW/OPEN stops the resolution clock; coming back starts it again with the business
    time that was left, so the due time moves later by the time the clock stood still. A target
    that was breached before the clock stopped stays breached and its due time stays put.
    """
    source = ticket.status
    if source in CLOCK_RUNNING and target not in CLOCK_RUNNING:
        ticket.clock_stopped_at = now
    elif source not in CLOCK_RUNNING and target in CLOCK_RUNNING:
        if ticket.resolution_due_at is not None and ticket.resolution_breached_at is None and ticket.clock_stopped_at is not None:
            policy = await session.get(SlaPolicy, ticket.sla_policy_id) if ticket.sla_policy_id else None
            hours = sla.business_hours_of(policy)
            left = sla.business_time_between(ticket.clock_stopped_at, ticket.resolution_due_at, hours)
            ticket.resolution_due_at = sla.add_business_time(now, left, hours)
        ticket.clock_stopped_at = None
    if target is TicketStatus.RESOLVED:
        ticket.resolved_at = now
        if ticket.first_responded_at is None:
            # Resolving without a public reply settles the first-response target at the same moment.
            ticket.first_responded_at = now
    elif source is TicketStatus.RESOLVED and target is TicketStatus.OPEN:
        ticket.resolved_at = None
    if target is TicketStatus.CLOSED:
        ticket.closed_at = now
    ticket.status = target
    await save(session, ticket, now)
    payload = await payload_of(session, ticket)
    record_event(session, type="ticket.status_changed", entity_type="Ticket", entity_id=ticket.id, actor=actor,
                 payload=payload, changes={"fields": ["status"], "before": {"status": source}})
    if target is TicketStatus.RESOLVED:
        record_event(session, type="ticket.resolved", entity_type="Ticket", entity_id=ticket.id, actor=actor, payload=payload)
        await timeline.add_system_entry(session, customer_id=ticket.customer_id, type=ActivityType.TICKET,
                                        subject=f"{ticket.number} resolved: {ticket.subject}")


async def reply_to_ticket(
    session: AsyncSession, *, actor: Actor, ticket_id: int, data: Mapping[str, Any], expected_version: int | None = None
) -> tuple[Ticket, TicketComment]:
    """Add a public reply or an internal note to the thread.

    ``from`` is AGENT (default) or CUSTOMER; a customer cannot write internal notes. The first
    public agent reply is the first response and opens a NEW ticket; a customer reply re-opens a
    PENDING or RESOLVED ticket. A CLOSED ticket takes no replies.
    """
    now = utcnow()
    ticket = await lock_for_write(session, ticket_id, expected_version, actor=actor, now=now)
    refuse_closed(ticket)
    errors = ErrorCollector()
    body = body_text(data, "body", errors, required=True)
    public = data.get("public", True)
    if not isinstance(public, bool):
        errors.add("public", codes.INVALID_VALUE, "public is true or false.")
    author_kind = enum_field(TicketAuthorKind, data, "from", errors) or TicketAuthorKind.AGENT
    if author_kind is TicketAuthorKind.CUSTOMER and public is False:
        errors.add("public", codes.INVALID_VALUE, "Internal notes are written by agents; a customer's reply is public.")
    author = text(data, "author", 200, errors)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="ticket_comment", data={**data, "ticketId": ticket_id}, actor=actor)
    if author is None:
        if author_kind is TicketAuthorKind.CUSTOMER:
            customer = await session.get(Customer, ticket.contact_id or ticket.customer_id)
            author = customer.display_name if customer else "customer"
        else:
            author = actor.name or actor.label
    comment = TicketComment(ticket_id=ticket.id, body=body, public=public, author_kind=author_kind, author=author, created_at=now)
    session.add(comment)
    await session.flush()  # the comment only: the ticket has not changed yet
    record_event(session, type="ticket.replied", entity_type="Ticket", entity_id=ticket.id, actor=actor,
                 payload={"id": ticket.id, "number": ticket.number, "customerId": ticket.customer_id,
                          "commentId": comment.id, "public": public, "from": author_kind, "author": author,
                          "body": body, "createdAt": now})
    target = None
    if author_kind is TicketAuthorKind.AGENT and public:
        if ticket.first_responded_at is None:
            ticket.first_responded_at = now
        if ticket.status is TicketStatus.NEW:
            target = TicketStatus.OPEN
    elif author_kind is TicketAuthorKind.CUSTOMER and ticket.status in (TicketStatus.PENDING, TicketStatus.RESOLVED):
        target = TicketStatus.OPEN
    if target is not None:
        await _move(session, ticket, target, actor=actor, now=now)
    else:
        await save(session, ticket, now)
    return ticket, comment


# --- satisfaction -------------------------------------------------------------------------------


def satisfaction_index(rating: int | None, expectation: int | None) -> float | None:
    """Satisfaction c = b / a: perceived value (the rating) over expected value (the expectation)."""
    if rating is None or not expectation:
        return None
    return rating / expectation


async def rate_ticket(session: AsyncSession, *, actor: Actor, ticket_id: int, data: Mapping[str, Any]) -> Ticket:
    """Rate a RESOLVED or CLOSED ticket. A later rating replaces the earlier one; all are kept."""
    now = utcnow()
    ticket = await lock_for_write(session, ticket_id, None, actor=actor, now=now)
    if ticket.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        raise ValidationFailed(
            [FieldError("id", support_codes.TICKET_NOT_RESOLVED,
                        f"{ticket.number} is {ticket.status.name}: customers rate a ticket after it is resolved.")]
        )
    errors = ErrorCollector()
    rating = _score(data, "rating", errors, required=True)
    expectation = _score(data, "expectation", errors, required=False)
    comment = body_text(data, "comment", errors, required=False)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="ticket_rating", data={**data, "ticketId": ticket_id}, actor=actor)
    previous = None
    if ticket.rating is not None:
        previous = {"rating": ticket.rating, "expectation": ticket.rating_expectation, "comment": ticket.rating_comment,
                    "ratedAt": ticket.rated_at}
    session.add(TicketRating(ticket_id=ticket.id, rating=rating, expectation=expectation, comment=comment,
                             rated_at=now, rated_by=actor.label))
    ticket.rating, ticket.rating_expectation, ticket.rating_comment, ticket.rated_at = rating, expectation, comment, now
    await save(session, ticket, now)
    record_event(session, type="ticket.rated", entity_type="Ticket", entity_id=ticket.id, actor=actor,
                 payload={"id": ticket.id, "number": ticket.number, "customerId": ticket.customer_id, "rating": rating,
                          "expectation": expectation, "index": satisfaction_index(rating, expectation),
                          "comment": comment, "ratedAt": now},
                 changes={"before": previous} if previous else None)
    return ticket


def _score(data: Mapping[str, Any], key: str, errors: ErrorCollector, *, required: bool) -> int | None:
    value = data.get(key)
    if value is None:
        if required:
            errors.add(key, codes.REQUIRED, f"{key} is required (1 to 5).")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        errors.add(key, support_codes.OUT_OF_RANGE, f"{key} is a whole number from 1 to 5.")
        return None
    return value
