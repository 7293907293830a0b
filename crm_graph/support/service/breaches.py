"""Storing SLA breaches: once per target, with a ``ticket.sla_breached`` event.

A breach is derived on every read from the due time and the clock (``sla.py``, ``filters.py``);
storing it makes it permanent (a breached target stays breached even when the ticket is answered
or paused later) and tells plugins. Two paths store breaches: every ticket write, for that ticket,
before it changes anything; and ``check_sla_breaches``, which a periodic runner calls.

Each store is one guarded ``UPDATE ... WHERE <breached_at> IS NULL RETURNING``: of two writers
that race, only one gets the row back, so the event is recorded exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from crm_graph.core.actor import Actor
from crm_graph.core.events import record_event
from crm_graph.support.models import CLOCK_RUNNING, Ticket, ticket_number

FIRST_RESPONSE = "FIRST_RESPONSE"
RESOLUTION = "RESOLUTION"


def _due_condition(target: str, now: datetime) -> tuple[Any, Any, sa.ColumnElement[bool]]:
    """(breached_at column, due column, condition of a running target whose due time passed)."""
    if target == FIRST_RESPONSE:
        return (
            Ticket.first_response_breached_at,
            Ticket.first_response_due_at,
            sa.and_(
                Ticket.first_response_breached_at.is_(None),
                Ticket.first_responded_at.is_(None),
                Ticket.first_response_due_at < now,
            ),
        )
    return (
        Ticket.resolution_breached_at,
        Ticket.resolution_due_at,
        sa.and_(
            Ticket.resolution_breached_at.is_(None),
            Ticket.status.in_(CLOCK_RUNNING),
            Ticket.resolution_due_at < now,
        ),
    )


async def _store(
    session: AsyncSession, *, actor: Actor, now: datetime, target: str, ticket_ids: Sequence[int] | None = None
) -> list[Any]:
    breached_at, due, condition = _due_condition(target, now)
    stmt = sa.update(Ticket).where(condition)
    if ticket_ids is not None:
        stmt = stmt.where(Ticket.id.in_(ticket_ids))
    # The breach happened at the due time, whenever it is noticed. The version does not move:
    # this is bookkeeping by the system, and must not turn an agent's next edit into a conflict.
    stmt = stmt.values({breached_at: due}).returning(
        Ticket.id, Ticket.customer_id, Ticket.sla_policy_id, due.label("due_at")
    )
    rows = (await session.execute(stmt, execution_options={"synchronize_session": False})).all()
    for row in rows:
        record_event(
            session,
            type="ticket.sla_breached",
            entity_type="Ticket",
            entity_id=row.id,
            actor=actor,
            payload={
                "id": row.id,
                "number": ticket_number(row.id),
                "customerId": row.customer_id,
                "slaPolicyId": row.sla_policy_id,
                "target": target,
                "dueAt": row.due_at,
                "detectedAt": now,
            },
        )
    return rows


async def check_sla_breaches(session: AsyncSession, *, actor: Actor, now: datetime) -> int:
    """Store every breach that happened by ``now`` and is not stored yet; returns how many.

    Meant for a periodic runner (every minute or so), inside its own write transaction. Running
    it again, or in two processes at once, stores and announces each breach once.
    """
    count = 0
    for target in (FIRST_RESPONSE, RESOLUTION):
        count += len(await _store(session, actor=actor, now=now, target=target))
    return count


async def store_ticket_breaches(session: AsyncSession, ticket: Ticket, *, actor: Actor, now: datetime) -> None:
    """Store the breaches of one loaded ticket, and update the loaded object to match.

    Call it before changing the ticket: it judges the ticket as it stands in the database.
    """
    checks = (
        (FIRST_RESPONSE, "first_response_breached_at", "first_response_due_at",
         ticket.first_response_breached_at is None and ticket.first_responded_at is None),
        (RESOLUTION, "resolution_breached_at", "resolution_due_at",
         ticket.resolution_breached_at is None and ticket.status in CLOCK_RUNNING),
    )
    for target, breached_attr, due_attr, candidate in checks:
        due = getattr(ticket, due_attr)
        if candidate and due is not None and due < now:
            if await _store(session, actor=actor, now=now, target=target, ticket_ids=[ticket.id]):
                set_committed_value(ticket, breached_attr, due)
