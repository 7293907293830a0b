"""Ticket rules: opening, editing, assigning, the thread, the status machine and ratings.

Inputs are plain mappings shaped like the GraphQL inputs (camelCase keys, enums by name, ids as
primary keys). Every write locks the ticket row (``FOR UPDATE`` on PostgreSQL; SQLite writers are
serialised anyway), stores SLA breaches that happened meanwhile, then changes the ticket.

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

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_graph.core import errors as codes
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, FieldError, NotFound, ValidationFailed, VersionConflict
from crm_graph.core.events import record_event
from crm_graph.core.filters import compile_filter
from crm_graph.core.hooks import validate_with_plugins
from crm_graph.core.pagination import SortKey, parse_datetime
from crm_graph.customers.models import Customer, CustomerKind
from crm_graph.support import errors as support_codes
from crm_graph.support import sla
from crm_graph.support.filters import clean_tags, ticket_filter_spec
from crm_graph.support.models import (
    CLOCK_RUNNING,
    SlaPolicy,
    Ticket,
    TicketAuthorKind,
    TicketChannel,
    TicketComment,
    TicketExternalRef,
    TicketPriority,
    TicketRating,
    TicketStatus,
    TicketTag,
)
from crm_graph.support.service.breaches import store_ticket_breaches
from crm_graph.support.service.common import InvalidValue, check_version, enum_value, text
from crm_graph.support.service.policies import matching_policy

S = TicketStatus
TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.NEW: frozenset({S.OPEN, S.PENDING, S.RESOLVED}),
    S.OPEN: frozenset({S.PENDING, S.RESOLVED}),
    S.PENDING: frozenset({S.OPEN, S.RESOLVED}),
    S.RESOLVED: frozenset({S.OPEN, S.CLOSED}),
    S.CLOSED: frozenset(),
}

MAX_BODY = 100_000
MAX_EXTERNAL_REFS = 10

# A ticket's thread reads oldest first.
THREAD_ORDER = [
    SortKey(TicketComment.created_at, "created_at", False, parse_datetime),
    SortKey(TicketComment.id, "id", False, int),
]


# --- reading ------------------------------------------------------------------------------------


def _live() -> sa.Select[tuple[Ticket]]:
    """Tickets of customers that are not deleted (a deleted customer's tickets leave every list)."""
    return sa.select(Ticket).join(Customer, Customer.id == Ticket.customer_id).where(Customer.deleted_at.is_(None))


def ticket_select(filter: Mapping[str, Any] | None = None, *, now: datetime | None = None) -> sa.Select[tuple[Ticket]]:
    """The (unordered) select of tickets matching ``filter``; ``FilterError`` if it cannot compile."""
    stmt = _live()
    if filter:
        stmt = stmt.where(compile_filter(ticket_filter_spec(now or utcnow()), filter))
    return stmt


async def tickets_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Ticket]:
    rows = await session.scalars(_live().where(Ticket.id.in_(ids)))
    return {t.id: t for t in rows}


async def get_ticket(session: AsyncSession, ticket_id: int) -> Ticket | None:
    return (await tickets_by_ids(session, [ticket_id])).get(ticket_id)


async def tags_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[str]]:
    rows = await session.execute(
        sa.select(TicketTag.ticket_id, TicketTag.tag).where(TicketTag.ticket_id.in_(ids)).order_by(TicketTag.tag)
    )
    out: dict[int, list[str]] = defaultdict(list)
    for ticket_id, tag in rows.all():
        out[ticket_id].append(tag)
    return out


async def external_refs_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[TicketExternalRef]]:
    rows = await session.scalars(
        sa.select(TicketExternalRef)
        .where(TicketExternalRef.ticket_id.in_(ids))
        .order_by(TicketExternalRef.system)
    )
    out: dict[int, list[TicketExternalRef]] = defaultdict(list)
    for ref in rows:
        out[ref.ticket_id].append(ref)
    return out


async def ratings_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[TicketRating]]:
    """Every rating of each ticket, oldest first."""
    rows = await session.scalars(
        sa.select(TicketRating)
        .where(TicketRating.ticket_id.in_(ids))
        .order_by(TicketRating.ticket_id, TicketRating.rated_at, TicketRating.id)
    )
    out: dict[int, list[TicketRating]] = defaultdict(list)
    for rating in rows:
        out[rating.ticket_id].append(rating)
    return out


async def comments_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, TicketComment]:
    rows = await session.scalars(
        sa.select(TicketComment)
        .join(Ticket, Ticket.id == TicketComment.ticket_id)
        .join(Customer, Customer.id == Ticket.customer_id)
        .where(TicketComment.id.in_(ids), Customer.deleted_at.is_(None))
    )
    return {c.id: c for c in rows}


def comment_select(public: bool | None = None) -> sa.Select[tuple[TicketComment]]:
    """Comments (to be grouped by ticket); ``public`` True/False keeps replies or notes only."""
    stmt = sa.select(TicketComment)
    if public is not None:
        stmt = stmt.where(TicketComment.public.is_(public))
    return stmt


def ticket_payload(ticket: Ticket, tags: list[str]) -> dict[str, Any]:
    """The ticket as events carry it (to plugins and webhooks)."""
    return {
        "id": ticket.id,
        "number": ticket.number,
        "customerId": ticket.customer_id,
        "contactId": ticket.contact_id,
        "subject": ticket.subject,
        "description": ticket.description,
        "channel": ticket.channel,
        "priority": ticket.priority,
        "status": ticket.status,
        "assignee": ticket.assignee,
        "tags": tags,
        "slaPolicyId": ticket.sla_policy_id,
        "firstResponseDueAt": ticket.first_response_due_at,
        "resolutionDueAt": ticket.resolution_due_at,
        "firstRespondedAt": ticket.first_responded_at,
        "resolvedAt": ticket.resolved_at,
        "closedAt": ticket.closed_at,
        "createdAt": ticket.created_at,
        "updatedAt": ticket.updated_at,
        "version": ticket.version,
    }


async def _payload(session: AsyncSession, ticket: Ticket) -> dict[str, Any]:
    return ticket_payload(ticket, (await tags_for(session, [ticket.id])).get(ticket.id, []))


# --- opening a ticket ---------------------------------------------------------------------------


async def create_ticket(session: AsyncSession, *, actor: Actor, data: Mapping[str, Any]) -> Ticket:
    """Open a ticket. With an external reference that is known already, return that ticket instead:
    a helpdesk tool that sends the same ticket twice gets one ticket."""
    errors = ErrorCollector()
    refs = _external_refs(data.get("externalRefs"), errors)
    errors.raise_if_any()
    if refs:
        existing = await _by_external_refs(session, refs)
        if existing is not None:
            return existing

    customer = await _customer(session, data.get("customerId"), errors)
    contact_id = await _contact(session, customer, data.get("contactId"), errors) if data.get("contactId") is not None else None
    subject = text(data, "subject", 300, errors, required=True)
    description = _body(data, "description", errors, required=False)
    channel = _enum(TicketChannel, data, "channel", errors, required=True)
    priority = _enum(TicketPriority, data, "priority", errors) or TicketPriority.NORMAL
    assignee = text(data, "assignee", 200, errors)
    tags = _tags(data, errors)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="ticket", data=data, actor=actor)

    now = utcnow()
    policy = await matching_policy(session, priority=priority.name, channel=channel.name, tags=tags)
    first_due, resolution_due = sla.due_times(policy, now)
    ticket = Ticket(
        customer_id=customer.id,
        contact_id=contact_id,
        subject=subject,
        description=description,
        channel=channel,
        priority=priority,
        status=TicketStatus.NEW,
        assignee=assignee,
        sla_policy_id=policy.id if policy else None,
        first_response_due_at=first_due,
        resolution_due_at=resolution_due,
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    await session.flush()
    session.add_all(TicketTag(ticket_id=ticket.id, tag=tag) for tag in tags)
    session.add_all(TicketExternalRef(ticket_id=ticket.id, system=s, external_id=e) for s, e in refs)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        # Another transaction stored the same external reference a moment ago.
        raise ValidationFailed(
            [FieldError("externalRefs", codes.DUPLICATE, "A ticket with this external reference was just created; retry to get it.")]
        ) from None
    record_event(session, type="ticket.created", entity_type="Ticket", entity_id=ticket.id, actor=actor,
                 payload=ticket_payload(ticket, tags))
    return ticket


def _external_refs(items: Any, errors: ErrorCollector) -> list[tuple[str, str]]:
    if not items:
        return []
    if not isinstance(items, list) or len(items) > MAX_EXTERNAL_REFS:
        errors.add("externalRefs", codes.TOO_MANY, f"At most {MAX_EXTERNAL_REFS} external references.")
        return []
    out: list[tuple[str, str]] = []
    for i, item in enumerate(items):
        here = f"externalRefs.{i}"
        if not isinstance(item, Mapping):
            errors.add(here, codes.INVALID_VALUE, "Expected {system, externalId}.")
            continue
        found = ErrorCollector()
        system = text(item, "system", 64, found, required=True)
        external_id = text(item, "externalId", 200, found, required=True)
        errors.extend(found.errors, prefix=here)
        if system is None or external_id is None:
            continue
        if any(s == system for s, _ in out):
            errors.add(f"{here}.system", codes.DUPLICATE, f"A ticket has one reference per system; {system!r} is listed twice.")
            continue
        out.append((system, external_id))
    return out


async def _by_external_refs(session: AsyncSession, refs: list[tuple[str, str]]) -> Ticket | None:
    condition = sa.or_(*(sa.and_(TicketExternalRef.system == s, TicketExternalRef.external_id == e) for s, e in refs))
    ids = set(await session.scalars(sa.select(TicketExternalRef.ticket_id).where(condition)))
    if not ids:
        return None
    if len(ids) > 1:
        raise ValidationFailed(
            [FieldError("externalRefs", codes.DUPLICATE, "These external references belong to different tickets.")]
        )
    ticket = await session.get(Ticket, ids.pop())
    assert ticket is not None
    return ticket


async def _customer(session: AsyncSession, customer_id: Any, errors: ErrorCollector) -> Customer:
    customer = await session.get(Customer, customer_id) if isinstance(customer_id, int) else None
    if customer is None or customer.deleted_at is not None:
        if customer_id is None:
            errors.add("customerId", codes.REQUIRED, "A ticket belongs to a customer.")
        else:
            errors.add("customerId", codes.NOT_FOUND, "The customer was not found.")
    return customer  # type: ignore[return-value]  (only used when there are no errors)


async def _contact(session: AsyncSession, customer: Customer | None, contact_id: Any, errors: ErrorCollector) -> int | None:
    contact = await session.get(Customer, contact_id) if isinstance(contact_id, int) else None
    if contact is None or contact.deleted_at is not None:
        errors.add("contactId", codes.NOT_FOUND, "The contact person was not found.")
        return None
    if customer is None:
        return None
    if customer.kind is not CustomerKind.ORGANIZATION or contact.kind is not CustomerKind.PERSON or contact.organization_id != customer.id:
        errors.add("contactId", codes.INVALID_VALUE, "The contact must be a person who belongs to the ticket's organization.")
        return None
    return contact.id


def _body(data: Mapping[str, Any], key: str, errors: ErrorCollector, *, required: bool) -> str | None:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.add(key, codes.REQUIRED, f"{key} is required.")
        return None
    if not isinstance(value, str):
        errors.add(key, codes.INVALID_VALUE, "Expected text.")
        return None
    if len(value) > MAX_BODY:
        errors.add(key, codes.INVALID_VALUE, f"At most {MAX_BODY:,} characters.")
        return None
    return value.strip()


def _enum(enum_type: Any, data: Mapping[str, Any], key: str, errors: ErrorCollector, *, required: bool = False) -> Any:
    if data.get(key) is None:
        if required:
            errors.add(key, codes.REQUIRED, f"{key} is required.")
        return None
    try:
        return enum_value(enum_type, data[key])
    except InvalidValue as exc:
        errors.add(key, codes.INVALID_VALUE, str(exc))
        return None


def _tags(data: Mapping[str, Any], errors: ErrorCollector) -> list[str]:
    try:
        return clean_tags(data.get("tags") or [])
    except InvalidValue as exc:
        errors.add("tags", codes.INVALID_VALUE, str(exc))
        return []


# --- changing a ticket --------------------------------------------------------------------------


async def _for_write(session: AsyncSession, ticket_id: int, expected_version: int | None, *, actor: Actor, now: datetime) -> Ticket:
    """Lock and load the ticket, check the client's version, store breaches that happened meanwhile."""
    ticket = await session.scalar(_live().where(Ticket.id == ticket_id).with_for_update(of=Ticket))
    if ticket is None:
        raise NotFound("Ticket")
    check_version(expected_version, ticket.version)
    await store_ticket_breaches(session, ticket, actor=actor, now=now)
    return ticket


def _not_closed(ticket: Ticket) -> None:
    if ticket.status is TicketStatus.CLOSED:
        raise ValidationFailed([FieldError("id", support_codes.TICKET_CLOSED, f"{ticket.number} is closed; open a new ticket instead.")])


async def _save(session: AsyncSession, ticket: Ticket, now: datetime) -> None:
    ticket.updated_at = now
    try:
        await session.flush()
    except StaleDataError:
        fresh = await session.scalar(sa.select(Ticket.version).where(Ticket.id == ticket.id))
        raise VersionConflict(ticket.version, fresh or 0) from None


async def update_ticket(
    session: AsyncSession, *, actor: Actor, ticket_id: int, data: Mapping[str, Any], expected_version: int | None
) -> Ticket:
    """Edit subject, description, channel, priority, contact and tags. Absent keys stay; null
    clears the optional ones. The SLA targets set at opening stay as they are."""
    now = utcnow()
    ticket = await _for_write(session, ticket_id, expected_version, actor=actor, now=now)
    _not_closed(ticket)
    before = await _payload(session, ticket)
    errors = ErrorCollector()
    if "subject" in data:
        ticket.subject = text(data, "subject", 300, errors, required=True) or ticket.subject
    if "description" in data:
        ticket.description = _body(data, "description", errors, required=False)
    for key, enum_type in (("channel", TicketChannel), ("priority", TicketPriority)):
        if key in data:
            value = _enum(enum_type, data, key, errors, required=True)
            if value is not None:
                setattr(ticket, key, value)
    if "contactId" in data:
        if data["contactId"] is None:
            ticket.contact_id = None
        else:
            customer = await session.get(Customer, ticket.customer_id)
            ticket.contact_id = await _contact(session, customer, data["contactId"], errors)
    tags = _tags(data, errors) if "tags" in data else None
    errors.raise_if_any()
    await validate_with_plugins(session, entity="ticket", data={**data, "id": ticket_id}, actor=actor)
    if tags is not None:
        await session.execute(sa.delete(TicketTag).where(TicketTag.ticket_id == ticket.id))
        session.add_all(TicketTag(ticket_id=ticket.id, tag=tag) for tag in tags)
    await _save(session, ticket, now)
    after = await _payload(session, ticket)
    changed = sorted(k for k in after if after[k] != before.get(k) and k not in ("updatedAt", "version"))
    record_event(session, type="ticket.updated", entity_type="Ticket", entity_id=ticket.id, actor=actor,
                 payload=after, changes={"fields": changed, "before": {k: before[k] for k in changed}})
    return ticket


async def assign_ticket(
    session: AsyncSession, *, actor: Actor, ticket_id: int, assignee: str | None, expected_version: int | None
) -> Ticket:
    """Give the ticket to someone (free text until users exist); null or blank unassigns it."""
    now = utcnow()
    ticket = await _for_write(session, ticket_id, expected_version, actor=actor, now=now)
    _not_closed(ticket)
    errors = ErrorCollector()
    name = text({"assignee": assignee}, "assignee", 200, errors)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="ticket", data={"id": ticket_id, "assignee": name}, actor=actor)
    if name == ticket.assignee:
        return ticket
    previous, ticket.assignee = ticket.assignee, name
    await _save(session, ticket, now)
    record_event(session, type="ticket.assigned", entity_type="Ticket", entity_id=ticket.id, actor=actor,
                 payload=await _payload(session, ticket), changes={"fields": ["assignee"], "before": {"assignee": previous}})
    return ticket


async def change_ticket_status(
    session: AsyncSession, *, actor: Actor, ticket_id: int, status: Any, expected_version: int | None
) -> Ticket:
    now = utcnow()
    ticket = await _for_write(session, ticket_id, expected_version, actor=actor, now=now)
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
    await _save(session, ticket, now)
    payload = await _payload(session, ticket)
    record_event(session, type="ticket.status_changed", entity_type="Ticket", entity_id=ticket.id, actor=actor,
                 payload=payload, changes={"fields": ["status"], "before": {"status": source}})
    if target is TicketStatus.RESOLVED:
        record_event(session, type="ticket.resolved", entity_type="Ticket", entity_id=ticket.id, actor=actor, payload=payload)


async def reply_to_ticket(
    session: AsyncSession, *, actor: Actor, ticket_id: int, data: Mapping[str, Any], expected_version: int | None = None
) -> tuple[Ticket, TicketComment]:
    """Add a public reply or an internal note to the thread.

    ``from`` is AGENT (default) or CUSTOMER; a customer cannot write internal notes. The first
    public agent reply is the first response and opens a NEW ticket; a customer reply re-opens a
    PENDING or RESOLVED ticket. A CLOSED ticket takes no replies.
    """
    now = utcnow()
    ticket = await _for_write(session, ticket_id, expected_version, actor=actor, now=now)
    _not_closed(ticket)
    errors = ErrorCollector()
    body = _body(data, "body", errors, required=True)
    public = data.get("public", True)
    if not isinstance(public, bool):
        errors.add("public", codes.INVALID_VALUE, "public is true or false.")
    author_kind = _enum(TicketAuthorKind, data, "from", errors) or TicketAuthorKind.AGENT
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
        await _save(session, ticket, now)
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
    ticket = await _for_write(session, ticket_id, None, actor=actor, now=now)
    if ticket.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        raise ValidationFailed(
            [FieldError("id", support_codes.TICKET_NOT_RESOLVED,
                        f"{ticket.number} is {ticket.status.name}: customers rate a ticket after it is resolved.")]
        )
    errors = ErrorCollector()
    rating = _score(data, "rating", errors, required=True)
    expectation = _score(data, "expectation", errors, required=False)
    comment = _body(data, "comment", errors, required=False)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="ticket_rating", data={**data, "ticketId": ticket_id}, actor=actor)
    previous = None
    if ticket.rating is not None:
        previous = {"rating": ticket.rating, "expectation": ticket.rating_expectation, "comment": ticket.rating_comment,
                    "ratedAt": ticket.rated_at}
    session.add(TicketRating(ticket_id=ticket.id, rating=rating, expectation=expectation, comment=comment,
                             rated_at=now, rated_by=actor.label))
    ticket.rating, ticket.rating_expectation, ticket.rating_comment, ticket.rated_at = rating, expectation, comment, now
    await _save(session, ticket, now)
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
