"""Reading tickets: the lists, batches for DataLoaders, and the ticket as events carry it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.clock import utcnow
from crm_graph.core.filters import compile_filter
from crm_graph.core.pagination import SortKey, parse_datetime
from crm_graph.customers.models import Customer
from crm_graph.support.filters import ticket_filter_spec
from crm_graph.support.models import (
    Ticket,
    TicketComment,
    TicketExternalRef,
    TicketRating,
    TicketTag,
)

THREAD_ORDER = [
    SortKey(TicketComment.created_at, "created_at", False, parse_datetime),
    SortKey(TicketComment.id, "id", False, int),
]


# --- reading ------------------------------------------------------------------------------------


def live_tickets() -> sa.Select[tuple[Ticket]]:
    """Tickets of customers that are not deleted (a deleted customer's tickets leave every list)."""
    return sa.select(Ticket).join(Customer, Customer.id == Ticket.customer_id).where(Customer.deleted_at.is_(None))


def ticket_select(filter: Mapping[str, Any] | None = None, *, now: datetime | None = None) -> sa.Select[tuple[Ticket]]:
    """The (unordered) select of tickets matching ``filter``; ``FilterError`` if it cannot compile."""
    stmt = live_tickets()
    if filter:
        stmt = stmt.where(compile_filter(ticket_filter_spec(now or utcnow()), filter))
    return stmt


async def tickets_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Ticket]:
    rows = await session.scalars(live_tickets().where(Ticket.id.in_(ids)))
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


async def payload_of(session: AsyncSession, ticket: Ticket) -> dict[str, Any]:
    return ticket_payload(ticket, (await tags_for(session, [ticket.id])).get(ticket.id, []))
