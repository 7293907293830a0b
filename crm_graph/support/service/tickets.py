"""Opening, editing and assigning tickets, and the steps every ticket write shares.

Inputs are plain mappings shaped like the GraphQL inputs (camelCase keys, enums by name, ids as
primary keys). Every write locks the ticket row (``FOR UPDATE`` on PostgreSQL; SQLite writers are
serialised anyway), stores SLA breaches that happened meanwhile, then changes the ticket.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_graph.core import errors as codes
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import (
    ErrorCollector,
    FieldError,
    NotFound,
    ValidationFailed,
    VersionConflict,
)
from crm_graph.activities import service as timeline
from crm_graph.activities.models import ActivityType
from crm_graph.core.events import record_event
from crm_graph.core.hooks import validate_with_plugins
from crm_graph.customers.models import Customer, CustomerKind
from crm_graph.support import errors as support_codes
from crm_graph.support import sla
from crm_graph.support.filters import clean_tags
from crm_graph.support.models import (
    Ticket,
    TicketChannel,
    TicketExternalRef,
    TicketPriority,
    TicketStatus,
    TicketTag,
)
from crm_graph.support.service.breaches import store_ticket_breaches
from crm_graph.support.service.common import (
    InvalidValue,
    check_version,
    enum_value,
    text,
)
from crm_graph.support.service.policies import matching_policy
from crm_graph.support.service.reading import live_tickets, payload_of, ticket_payload

MAX_BODY = 100_000
MAX_EXTERNAL_REFS = 10


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
    description = body_text(data, "description", errors, required=False)
    channel = enum_field(TicketChannel, data, "channel", errors, required=True)
    priority = enum_field(TicketPriority, data, "priority", errors) or TicketPriority.NORMAL
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
    await timeline.add_system_entry(session, customer_id=ticket.customer_id, type=ActivityType.TICKET,
                                    subject=f"{ticket.number} opened: {ticket.subject}", body=ticket.description)
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


def body_text(data: Mapping[str, Any], key: str, errors: ErrorCollector, *, required: bool) -> str | None:
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


def enum_field(enum_type: Any, data: Mapping[str, Any], key: str, errors: ErrorCollector, *, required: bool = False) -> Any:
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


async def lock_for_write(session: AsyncSession, ticket_id: int, expected_version: int | None, *, actor: Actor, now: datetime) -> Ticket:
    """Lock and load the ticket, check the client's version, store breaches that happened meanwhile."""
    ticket = await session.scalar(live_tickets().where(Ticket.id == ticket_id).with_for_update(of=Ticket))
    if ticket is None:
        raise NotFound("Ticket")
    check_version(expected_version, ticket.version)
    await store_ticket_breaches(session, ticket, actor=actor, now=now)
    return ticket


def refuse_closed(ticket: Ticket) -> None:
    if ticket.status is TicketStatus.CLOSED:
        raise ValidationFailed([FieldError("id", support_codes.TICKET_CLOSED, f"{ticket.number} is closed; open a new ticket instead.")])


async def save(session: AsyncSession, ticket: Ticket, now: datetime) -> None:
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
    ticket = await lock_for_write(session, ticket_id, expected_version, actor=actor, now=now)
    refuse_closed(ticket)
    before = await payload_of(session, ticket)
    errors = ErrorCollector()
    if "subject" in data:
        ticket.subject = text(data, "subject", 300, errors, required=True) or ticket.subject
    if "description" in data:
        ticket.description = body_text(data, "description", errors, required=False)
    for key, enum_type in (("channel", TicketChannel), ("priority", TicketPriority)):
        if key in data:
            value = enum_field(enum_type, data, key, errors, required=True)
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
    await save(session, ticket, now)
    after = await payload_of(session, ticket)
    changed = sorted(k for k in after if after[k] != before.get(k) and k not in ("updatedAt", "version"))
    record_event(session, type="ticket.updated", entity_type="Ticket", entity_id=ticket.id, actor=actor,
                 payload=after, changes={"fields": changed, "before": {k: before[k] for k in changed}})
    return ticket


async def assign_ticket(
    session: AsyncSession, *, actor: Actor, ticket_id: int, assignee: str | None, expected_version: int | None
) -> Ticket:
    """Give the ticket to someone (free text until users exist); null or blank unassigns it."""
    now = utcnow()
    ticket = await lock_for_write(session, ticket_id, expected_version, actor=actor, now=now)
    refuse_closed(ticket)
    errors = ErrorCollector()
    name = text({"assignee": assignee}, "assignee", 200, errors)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="ticket", data={"id": ticket_id, "assignee": name}, actor=actor)
    if name == ticket.assignee:
        return ticket
    previous, ticket.assignee = ticket.assignee, name
    await save(session, ticket, now)
    record_event(session, type="ticket.assigned", entity_type="Ticket", entity_id=ticket.id, actor=actor,
                 payload=await payload_of(session, ticket), changes={"fields": ["assignee"], "before": {"assignee": previous}})
    return ticket
