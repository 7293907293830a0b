"""The ``tickets`` condition of the customer filter language (registered by
``crm_graph.support.plugin``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from crm_graph.core import filters as f
from crm_graph.core.extensions import FilterContext
from crm_graph.customers.models import Customer
from crm_graph.support.models import Ticket, TicketStatus

OPEN_TICKET = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)


def tickets_condition(ctx: FilterContext, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    ops = f.operators(ops, path, ("count", "openCount"))
    clauses = []
    for name, extra in (("count", sa.true()), ("openCount", Ticket.status.in_(OPEN_TICKET))):
        if name in ops:
            counted = sa.select(sa.func.count()).where(Ticket.customer_id == Customer.id, extra).scalar_subquery()
            clauses.append(f.comparable_condition(counted, ops[name], f"{path}.{name}", f.whole_number))
    return sa.and_(sa.true(), *clauses)
