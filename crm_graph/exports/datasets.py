"""What each export contains: its rows (the entity's list select, filter included, so the rows
are exactly those the list shows the same actor) and its columns.

Column names are stable, snake_case and documented in docs/exports.md; the ``analytics`` views
on PostgreSQL (the 0016 migration) use the same names. Ids are the numeric keys (they join:
``orders.customer_id`` is a ``customers.id``); the API's global ID of a row is
``base64("Customer:<id>")``. Money is two columns: the amount (a decimal) and its ``currency``.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.clock import utcnow
from crm_graph.customers.models import Customer, CustomerEmail, CustomerPhone, CustomerTag
from crm_graph.customers.service import customer_select
from crm_graph.exports.models import ExportEntity
from crm_graph.sales.models import Opportunity, Order, OrderLineItem, Pipeline, PipelineStage
from crm_graph.sales.service.opportunities import opportunity_select
from crm_graph.sales.service.orders import order_select
from crm_graph.support.models import Ticket, TicketTag, ticket_number
from crm_graph.support.service import ticket_select

# Kinds of column values, and how each format writes them (docs/exports.md).
INT, TEXT, DECIMAL, DATETIME, DATE, BOOL = "int", "text", "decimal", "datetime", "date", "bool"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    expr: Any  # a SQL expression, or None for a column filled after the select (tags)
    currency: str | None = None  # for DECIMAL amounts: the name of the column with their currency


@dataclass(frozen=True)
class Dataset:
    entity: ExportEntity
    file_stem: str
    model: Any  # the table the keyset runs over (its ``id``)
    columns: tuple[Column, ...]
    # ``await base(session, filter)``: the list's select of the rows (any columns).
    base: Callable[[AsyncSession, Mapping[str, Any] | None], Awaitable[sa.Select[Any]]]
    # ``await extra(session, rows)``: fills the columns whose ``expr`` is None, per page.
    extra: Callable[[AsyncSession, list[dict[str, Any]]], Awaitable[None]] | None = None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def _primary(model: Any, value: Any) -> Any:
    return (
        sa.select(value).where(model.customer_id == Customer.id, model.is_primary.is_(True))
        .order_by(model.position).limit(1).scalar_subquery()
    )


def _name_of(customer_id: Any) -> Any:
    return sa.select(Customer.display_name).where(Customer.id == customer_id).scalar_subquery()


async def _tags(session: AsyncSession, rows: list[dict[str, Any]], model: Any, key: Any) -> None:
    """Each row's tags, alphabetical, joined by ``, `` (one query per page)."""
    ids = [r["id"] for r in rows]
    found: dict[int, list[str]] = {}
    if ids:
        result = await session.execute(sa.select(key, model.tag).where(key.in_(ids)).order_by(key, model.tag))
        for owner, tag in result.all():
            found.setdefault(owner, []).append(tag)
    for r in rows:
        r["tags"] = ", ".join(found.get(r["id"], []))


async def _customer_base(session: AsyncSession, filter: Mapping[str, Any] | None) -> sa.Select[Any]:
    return await customer_select(session, filter=filter)


async def _customer_tags(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await _tags(session, rows, CustomerTag, CustomerTag.customer_id)


CUSTOMERS = Dataset(
    ExportEntity.CUSTOMERS, "customers", Customer,
    (
        Column("id", INT, Customer.id),
        Column("kind", TEXT, Customer.kind),
        Column("display_name", TEXT, Customer.display_name),
        Column("first_name", TEXT, Customer.first_name),
        Column("last_name", TEXT, Customer.last_name),
        Column("organization_name", TEXT, Customer.organization_name),
        Column("organization_id", INT, Customer.organization_id),
        Column("job_title", TEXT, Customer.job_title),
        Column("email", TEXT, _primary(CustomerEmail, CustomerEmail.address)),
        Column("phone", TEXT, _primary(CustomerPhone, CustomerPhone.number)),
        Column("lifecycle_stage", TEXT, Customer.lifecycle_stage),
        Column("source", TEXT, Customer.source),
        Column("consent_status", TEXT, Customer.consent_status),
        Column("country", TEXT, Customer.country),
        Column("region", TEXT, Customer.region),
        Column("city", TEXT, Customer.city),
        Column("locale", TEXT, Customer.locale),
        Column("time_zone", TEXT, Customer.time_zone),
        Column("birthday", DATE, Customer.birthday),
        Column("gender", TEXT, Customer.gender),
        Column("tags", TEXT, None),
        Column("external_system", TEXT, Customer.external_system),
        Column("external_id", TEXT, Customer.external_id),
        Column("owner_id", INT, Customer.owner_id),
        Column("team_id", INT, Customer.team_id),
        Column("created_at", DATETIME, Customer.created_at),
        Column("updated_at", DATETIME, Customer.updated_at),
    ),
    _customer_base, _customer_tags,
)


async def _order_base(session: AsyncSession, filter: Mapping[str, Any] | None) -> sa.Select[Any]:
    return order_select(filter)


ORDERS = Dataset(
    ExportEntity.ORDERS, "orders", Order,
    (
        Column("id", INT, Order.id),
        Column("number", TEXT, Order.number),
        Column("customer_id", INT, Order.customer_id),
        Column("customer_name", TEXT, _name_of(Order.customer_id)),
        Column("status", TEXT, Order.status),
        Column("payment_status", TEXT, Order.payment_status),
        Column("origin", TEXT, Order.origin),
        Column("currency", TEXT, Order.currency),
        Column("subtotal", DECIMAL, Order.subtotal, "currency"),
        Column("discount", DECIMAL, Order.discount, "currency"),
        Column("tax_rate", DECIMAL, Order.tax_rate),
        Column("tax", DECIMAL, Order.tax, "currency"),
        Column("total", DECIMAL, Order.total, "currency"),
        Column("paid_amount", DECIMAL, Order.paid_amount, "currency"),
        Column("ordered_at", DATETIME, Order.ordered_at),
        Column("opportunity_id", INT, Order.opportunity_id),
        Column("quote_id", INT, Order.quote_id),
        Column("owner_id", INT, Order.owner_id),
        Column("team_id", INT, Order.team_id),
        Column("created_at", DATETIME, Order.created_at),
        Column("updated_at", DATETIME, Order.updated_at),
    ),
    _order_base,
)


async def _order_line_base(session: AsyncSession, filter: Mapping[str, Any] | None) -> sa.Select[Any]:
    orders = order_select(filter).with_only_columns(Order.id)
    return (
        sa.select(OrderLineItem).join(Order, Order.id == OrderLineItem.order_id)
        .where(OrderLineItem.order_id.in_(orders))
    )


ORDER_LINES = Dataset(
    ExportEntity.ORDER_LINES, "order_lines", OrderLineItem,
    (
        Column("id", INT, OrderLineItem.id),
        Column("order_id", INT, OrderLineItem.order_id),
        Column("order_number", TEXT, Order.number),
        Column("position", INT, OrderLineItem.position),
        Column("product_id", INT, OrderLineItem.product_id),
        Column("sku", TEXT, OrderLineItem.sku),
        Column("description", TEXT, OrderLineItem.description),
        Column("quantity", DECIMAL, OrderLineItem.quantity),
        Column("currency", TEXT, Order.currency),
        Column("unit_price", DECIMAL, OrderLineItem.unit_price, "currency"),
        Column("discount_percent", DECIMAL, OrderLineItem.discount_percent),
        Column("subtotal", DECIMAL, OrderLineItem.subtotal, "currency"),
        Column("discount", DECIMAL, OrderLineItem.discount, "currency"),
        Column("total", DECIMAL, OrderLineItem.total, "currency"),
        Column("ordered_at", DATETIME, Order.ordered_at),
    ),
    _order_line_base,
)


async def _opportunity_base(session: AsyncSession, filter: Mapping[str, Any] | None) -> sa.Select[Any]:
    return opportunity_select(filter)


_stage = lambda column: (  # noqa: E731
    sa.select(column).where(PipelineStage.id == Opportunity.stage_id).scalar_subquery()
)

OPPORTUNITIES = Dataset(
    ExportEntity.OPPORTUNITIES, "opportunities", Opportunity,
    (
        Column("id", INT, Opportunity.id),
        Column("title", TEXT, Opportunity.title),
        Column("customer_id", INT, Opportunity.customer_id),
        Column("customer_name", TEXT, Customer.display_name),
        Column("pipeline", TEXT, sa.select(Pipeline.name).where(Pipeline.id == Opportunity.pipeline_id).scalar_subquery()),
        Column("stage", TEXT, _stage(PipelineStage.name)),
        Column("status", TEXT, Opportunity.status),
        Column("currency", TEXT, Opportunity.currency),
        Column("amount", DECIMAL, Opportunity.amount, "currency"),
        Column("probability", INT, sa.func.coalesce(Opportunity.probability_override, _stage(PipelineStage.probability))),
        Column("expected_close_date", DATE, Opportunity.expected_close_date),
        Column("source", TEXT, Opportunity.source),
        Column("lost_reason", TEXT, Opportunity.lost_reason),
        Column("closed_at", DATETIME, Opportunity.closed_at),
        Column("owner_id", INT, Opportunity.owner_id),
        Column("team_id", INT, Opportunity.team_id),
        Column("created_at", DATETIME, Opportunity.created_at),
        Column("updated_at", DATETIME, Opportunity.updated_at),
    ),
    _opportunity_base,
)


async def _ticket_base(session: AsyncSession, filter: Mapping[str, Any] | None) -> sa.Select[Any]:
    return ticket_select(filter, now=utcnow())


async def _ticket_tags(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await _tags(session, rows, TicketTag, TicketTag.ticket_id)
    for r in rows:
        r["number"] = ticket_number(r["id"])


TICKETS = Dataset(
    ExportEntity.TICKETS, "tickets", Ticket,
    (
        Column("id", INT, Ticket.id),
        Column("number", TEXT, None),
        Column("subject", TEXT, Ticket.subject),
        Column("customer_id", INT, Ticket.customer_id),
        Column("customer_name", TEXT, Customer.display_name),
        Column("contact_id", INT, Ticket.contact_id),
        Column("channel", TEXT, Ticket.channel),
        Column("priority", TEXT, Ticket.priority),
        Column("status", TEXT, Ticket.status),
        Column("assignee", TEXT, Ticket.assignee),
        Column("tags", TEXT, None),
        Column("first_response_due_at", DATETIME, Ticket.first_response_due_at),
        Column("first_responded_at", DATETIME, Ticket.first_responded_at),
        Column("resolution_due_at", DATETIME, Ticket.resolution_due_at),
        Column("resolved_at", DATETIME, Ticket.resolved_at),
        Column("closed_at", DATETIME, Ticket.closed_at),
        Column("rating", INT, Ticket.rating),
        Column("owner_id", INT, Ticket.owner_id),
        Column("team_id", INT, Ticket.team_id),
        Column("created_at", DATETIME, Ticket.created_at),
        Column("updated_at", DATETIME, Ticket.updated_at),
    ),
    _ticket_base, _ticket_tags,
)

DATASETS: dict[ExportEntity, Dataset] = {d.entity: d for d in (CUSTOMERS, ORDERS, ORDER_LINES, OPPORTUNITIES, TICKETS)}


def page_select(dataset: Dataset, base: sa.Select[Any], after: int, size: int) -> sa.Select[Any]:
    """One keyset page of ``base`` (the rows after id ``after``), selecting the export's columns
    only: Core rows, never ORM objects."""
    model = dataset.model
    columns = [c.expr.label(c.name) for c in dataset.columns if c.expr is not None]
    return base.with_only_columns(*columns).where(model.id > after).order_by(model.id).limit(size)


def count_select(dataset: Dataset, base: sa.Select[Any]) -> sa.Select[Any]:
    ids = base.with_only_columns(dataset.model.id).subquery()
    return sa.select(sa.func.count()).select_from(ids)


def plain_value(value: Any) -> Any:
    """Enums by name; everything else as read."""
    return value.name if isinstance(value, enum.Enum) else value


def _enum_positions(dataset: Dataset) -> list[int]:
    selected = [c for c in dataset.columns if c.expr is not None]
    return [i for i, c in enumerate(selected) if isinstance(getattr(c.expr, "type", None), sa.Enum)]


async def rows_of(session: AsyncSession, dataset: Dataset, base: sa.Select[Any], after: int, size: int) -> list[dict[str, Any]]:
    result = await session.execute(page_select(dataset, base, after, size))
    names = [c.name for c in dataset.columns if c.expr is not None]
    enums = _enum_positions(dataset)
    rows = []
    for row in result.all():
        values = list(row)
        for i in enums:
            if values[i] is not None:
                values[i] = values[i].name
        rows.append(dict(zip(names, values)))
    if dataset.extra is not None and rows:
        await dataset.extra(session, rows)
    return rows

