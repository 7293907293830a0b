"""``TicketFilter`` compiled to SQL, the SLA conditions in SQL, and the orderings of ticket lists."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from crm_graph.core import filters as f
from crm_graph.core.pagination import SortKey, parse_datetime
from crm_graph.customers import validation as customer_validation
from crm_graph.support.models import (
    CLOCK_RUNNING,
    Ticket,
    TicketChannel,
    TicketPriority,
    TicketStatus,
    TicketTag,
    parse_ticket_number,
)

# --- the SLA rules of crm_graph/support/sla.py, in SQL --------------------------------------------


def first_response_breached(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        Ticket.first_response_breached_at.is_not(None),
        sa.and_(Ticket.first_responded_at.is_(None), Ticket.first_response_due_at < now),
    )


def resolution_breached(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        Ticket.resolution_breached_at.is_not(None),
        sa.and_(Ticket.status.in_(CLOCK_RUNNING), Ticket.resolution_due_at < now),
    )


def sla_breached(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(first_response_breached(now), resolution_breached(now))


# --- filter -------------------------------------------------------------------------------------


def _tags(ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    def exists(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
        return sa.exists().where(TicketTag.ticket_id == Ticket.id, condition)

    clauses = []
    for op, values in f.operators(ops, path, ("containsAny", "containsAll", "isEmpty")).items():
        if op == "isEmpty":
            clauses.append(sa.not_(exists(sa.true())) if values else exists(sa.true()))
            continue
        tags = sorted({str(t).strip().lower() for t in f.check_in(values, f"{path}.{op}")})
        if not tags:
            clauses.append(sa.true() if op == "containsAll" else sa.false())
        elif op == "containsAny":
            clauses.append(exists(TicketTag.tag.in_(tags)))
        else:
            matched = (
                sa.select(sa.func.count())
                .where(TicketTag.ticket_id == Ticket.id, TicketTag.tag.in_(tags))
                .scalar_subquery()
            )
            clauses.append(matched == len(tags))
    return sa.and_(sa.true(), *clauses)


def _ids(column: sa.ColumnElement[Any]) -> f.Handler:
    """``{eq, in}`` over primary keys (the GraphQL layer decodes global IDs before this)."""

    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(value)
        return value

    return lambda ops, path: f.comparable_condition(column, ops, path, parse, allowed=("eq", "in"))


def _number(ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    def parse(value: Any) -> int:
        pk = parse_ticket_number(value)
        if pk is None:
            raise ValueError(value)
        return pk

    return f.comparable_condition(Ticket.id, ops, path, parse, allowed=("eq", "in"))


def _breached(now: datetime) -> f.Handler:
    def handler(value: Any, path: str) -> sa.ColumnElement[bool]:
        if not isinstance(value, bool):
            raise f.FilterError(path, "expected true or false")
        condition = sla_breached(now)
        return condition if value else sa.not_(condition)

    return handler


def ticket_filter_spec(now: datetime) -> f.FilterSpec:
    """The filter fields of ticket lists; ``now`` decides which running targets count as breached."""
    return {
        "number": _number,
        "status": f.column_enum(Ticket.status, TicketStatus.__members__),
        "priority": f.column_enum(Ticket.priority, TicketPriority.__members__),
        "channel": f.column_enum(Ticket.channel, TicketChannel.__members__),
        "customerId": _ids(Ticket.customer_id),
        "contactId": _ids(Ticket.contact_id),
        "assignee": f.column_string(Ticket.assignee),
        "subject": f.column_string(Ticket.subject),
        "tags": _tags,
        "createdAt": f.column_comparable(Ticket.created_at, f.aware_datetime),
        "updatedAt": f.column_comparable(Ticket.updated_at, f.aware_datetime),
        "resolvedAt": f.column_comparable(Ticket.resolved_at, f.aware_datetime),
        "slaBreached": _breached(now),
    }


def clean_tags(values: Any) -> list[str]:
    """Tickets follow the customers' tag rules: trimmed, lower-case, distinct, at most 50."""
    return customer_validation.tags(values)


# --- ordering -----------------------------------------------------------------------------------

ORDER_COLUMNS: dict[str, tuple[Any, str, Any]] = {
    "CREATED_AT": (Ticket.created_at, "created_at", parse_datetime),
    "UPDATED_AT": (Ticket.updated_at, "updated_at", parse_datetime),
}


def sort_keys(order_by: list[Mapping[str, Any]] | None) -> list[SortKey]:
    """The requested ordering, ending with the id (the number) as tie-breaker; newest first by default.

    NUMBER sorts by the id itself, so fields after it cannot change the order and are ignored.
    """
    order_by = order_by or [{"field": "CREATED_AT", "direction": "DESC"}]
    keys: list[SortKey] = []
    seen: set[str] = set()
    for item in order_by:
        name, descending = item["field"], item.get("direction", "ASC") == "DESC"
        if name == "NUMBER":
            return [*keys, SortKey(Ticket.id, "id", descending, int)]
        if name in seen:
            continue
        seen.add(name)
        column, attr, parse = ORDER_COLUMNS[name]
        keys.append(SortKey(column, attr, descending, parse))
    return [*keys, SortKey(Ticket.id, "id", keys[-1].descending, int)]
