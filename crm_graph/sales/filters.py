"""The filter language for sales lists (products, opportunities, quotes, orders) and their orderings.

Filters are the plain camelCase mappings of ``crm_graph.core.filters``; ID conditions take
primary keys (the GraphQL layer decodes global IDs before calling in).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm_graph.core import filters as f
from crm_graph.core import money
from crm_graph.core.pagination import SortKey, parse_datetime
from crm_graph.customers.models import AcquisitionChannel
from crm_graph.sales.models import (
    Opportunity,
    OpportunityStatus,
    Order,
    OrderExternalRef,
    OrderOrigin,
    OrderStatus,
    PaymentStatus,
    Pipeline,
    Product,
    ProductTag,
    Quote,
    QuoteStatus,
)

ID_OPS = ("eq", "neq", "in", "isNull")


def _id(column: Any) -> f.Handler:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(value)
        return value

    return lambda ops, path: f.comparable_condition(column, ops, path, parse, allowed=ID_OPS)


# Largest magnitude a filter or cursor may compare an amount with: what every amount column can
# hold. On SQLite an amount is a 64-bit count of ten-thousandths (crm_graph/core/money.py), so
# 10**15 (which PostgreSQL's NUMERIC(19, 4) would take) overflows it; 10**14 is far above any
# amount or sum a write can make.
_LIMIT = Decimal(10) ** 14


def bounded_decimal(value: Any) -> Decimal:
    """A Decimal from a filter or cursor value, refused (ValueError) beyond what a column can hold."""
    number = money.decimal(value)
    if abs(number) >= _LIMIT:
        raise ValueError("number out of range")
    return number


def _decimal(column: Any) -> f.Handler:
    return lambda ops, path: f.comparable_condition(column, ops, path, bounded_decimal)


def _boolean(column: Any) -> f.Handler:
    def handler(value: Any, path: str) -> sa.ColumnElement[bool]:
        if not isinstance(value, bool):
            raise f.FilterError(path, "expected true or false")
        return column.is_(True) if value else column.is_(False)

    return handler


def _product_tags(ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    def tagged(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
        return sa.exists().where(ProductTag.product_id == Product.id, condition)

    clauses = []
    for op, values in f.operators(ops, path, ("containsAny", "containsAll", "isEmpty")).items():
        if op == "isEmpty":
            clauses.append(sa.not_(tagged(sa.true())) if values else tagged(sa.true()))
            continue
        wanted = sorted({str(t).strip().lower() for t in f.check_in(values, f"{path}.{op}")})
        if not wanted:
            clauses.append(sa.true() if op == "containsAll" else sa.false())
        elif op == "containsAny":
            clauses.append(tagged(ProductTag.tag.in_(wanted)))
        else:
            matched = (
                sa.select(sa.func.count())
                .where(ProductTag.product_id == Product.id, ProductTag.tag.in_(wanted))
                .scalar_subquery()
            )
            clauses.append(matched == len(wanted))
    return sa.and_(sa.true(), *clauses)


PRODUCT_FILTER: f.FilterSpec = {
    "sku": f.column_string(Product.sku),
    "name": f.column_string(Product.name),
    "active": _boolean(Product.active),
    "tags": _product_tags,
    "currency": f.column_string(Product.currency),
    "unitPrice": _decimal(Product.unit_price),
    "createdAt": f.column_comparable(Product.created_at, f.aware_datetime),
    "updatedAt": f.column_comparable(Product.updated_at, f.aware_datetime),
}

OPPORTUNITY_FILTER: f.FilterSpec = {
    "title": f.column_string(Opportunity.title),
    "status": f.column_enum(Opportunity.status, OpportunityStatus.__members__),
    "stage": _id(Opportunity.stage_id),
    "pipeline": _id(Opportunity.pipeline_id),
    "customer": _id(Opportunity.customer_id),
    "amount": _decimal(Opportunity.amount),
    "currency": f.column_string(Opportunity.currency),
    "expectedCloseDate": f.column_comparable(Opportunity.expected_close_date, f.iso_date),
    "owner": f.column_string(Opportunity.owner),
    "source": f.column_enum(Opportunity.source, AcquisitionChannel.__members__),
    "closedAt": f.column_comparable(Opportunity.closed_at, f.aware_datetime),
    "createdAt": f.column_comparable(Opportunity.created_at, f.aware_datetime),
    "updatedAt": f.column_comparable(Opportunity.updated_at, f.aware_datetime),
}


def quote_status(today: date) -> sa.ColumnElement[str]:
    """The status a client sees: a DRAFT or SENT quote past its validity date reads as EXPIRED."""
    stored = sa.type_coerce(Quote.status, sa.String())
    return sa.case(
        (
            sa.and_(stored.in_([QuoteStatus.DRAFT.name, QuoteStatus.SENT.name]), Quote.valid_until < today),
            sa.literal(QuoteStatus.EXPIRED.name, sa.String()),
        ),
        else_=stored,
    )


def quote_filter(today: date) -> f.FilterSpec:
    status = quote_status(today)
    return {
        "number": f.column_string(Quote.number),
        "status": lambda ops, path: f.enum_condition(status, ops, path, QuoteStatus.__members__),
        "customer": _id(Quote.customer_id),
        "opportunity": _id(Quote.opportunity_id),
        "currency": f.column_string(Quote.currency),
        "total": _decimal(Quote.total),
        "validUntil": f.column_comparable(Quote.valid_until, f.iso_date),
        "createdAt": f.column_comparable(Quote.created_at, f.aware_datetime),
    }


def _external_ref(value: Any, path: str) -> sa.ColumnElement[bool]:
    if not isinstance(value, Mapping):
        raise f.FilterError(path, "expected {system, externalId}")
    clauses = [OrderExternalRef.order_id == Order.id]
    for key, column in (("system", OrderExternalRef.system), ("externalId", OrderExternalRef.external_id)):
        if value.get(key) is not None:
            if not isinstance(value[key], str):
                raise f.FilterError(f"{path}.{key}", "expected a string")
            clauses.append(column == value[key])
    return sa.exists().where(*clauses)


ORDER_FILTER: f.FilterSpec = {
    "number": f.column_string(Order.number),
    "status": f.column_enum(Order.status, OrderStatus.__members__),
    "paymentStatus": f.column_enum(Order.payment_status, PaymentStatus.__members__),
    "origin": f.column_enum(Order.origin, OrderOrigin.__members__),
    "customer": _id(Order.customer_id),
    "opportunity": _id(Order.opportunity_id),
    "currency": f.column_string(Order.currency),
    "total": _decimal(Order.total),
    "orderedAt": f.column_comparable(Order.ordered_at, f.aware_datetime),
    "createdAt": f.column_comparable(Order.created_at, f.aware_datetime),
    "externalRef": _external_ref,
}


# --- orderings ------------------------------------------------------------------------------

_date = date.fromisoformat

PRODUCT_ORDER: dict[str, tuple[Any, str, Any]] = {
    "NAME": (Product.name, "name", str),
    "SKU": (Product.sku, "sku", str),
    "UNIT_PRICE": (Product.unit_price, "unit_price", bounded_decimal),
    "CREATED_AT": (Product.created_at, "created_at", parse_datetime),
}
OPPORTUNITY_ORDER: dict[str, tuple[Any, str, Any]] = {
    "CREATED_AT": (Opportunity.created_at, "created_at", parse_datetime),
    "UPDATED_AT": (Opportunity.updated_at, "updated_at", parse_datetime),
    "EXPECTED_CLOSE_DATE": (Opportunity.close_sort, "close_sort", _date),
    "AMOUNT": (Opportunity.amount, "amount", bounded_decimal),
    "TITLE": (Opportunity.title, "title", str),
}
QUOTE_ORDER: dict[str, tuple[Any, str, Any]] = {
    "CREATED_AT": (Quote.created_at, "created_at", parse_datetime),
    "NUMBER": (Quote.number, "number", str),
    "VALID_UNTIL": (Quote.valid_until, "valid_until", _date),
    "TOTAL": (Quote.total, "total", bounded_decimal),
}
ORDER_ORDER: dict[str, tuple[Any, str, Any]] = {
    "ORDERED_AT": (Order.ordered_at, "ordered_at", parse_datetime),
    "CREATED_AT": (Order.created_at, "created_at", parse_datetime),
    "NUMBER": (Order.number, "number", str),
    "TOTAL": (Order.total, "total", bounded_decimal),
}


def sort_keys(
    columns: Mapping[str, tuple[Any, str, Any]],
    id_column: Any,
    order_by: list[Mapping[str, Any]] | None,
    default: Mapping[str, Any],
) -> list[SortKey]:
    """The requested ordering plus the id as the final tie-breaker."""
    keys: list[SortKey] = []
    seen: set[str] = set()
    for item in order_by or [default]:
        name = item["field"]
        if name in seen:
            continue
        seen.add(name)
        column, attr, parse = columns[name]
        keys.append(SortKey(column, attr, item.get("direction", "ASC") == "DESC", parse))
    keys.append(SortKey(id_column, "id", keys[-1].descending, int))
    return keys


def pipeline_sort() -> list[SortKey]:
    """Pipelines in creation order: the default pipeline of a fresh installation comes first."""
    return [SortKey(Pipeline.id, "id", False, int)]


def product_sort(order_by: list[Mapping[str, Any]] | None) -> list[SortKey]:
    return sort_keys(PRODUCT_ORDER, Product.id, order_by, {"field": "NAME", "direction": "ASC"})


def opportunity_sort(order_by: list[Mapping[str, Any]] | None) -> list[SortKey]:
    return sort_keys(OPPORTUNITY_ORDER, Opportunity.id, order_by, {"field": "CREATED_AT", "direction": "DESC"})


def quote_sort(order_by: list[Mapping[str, Any]] | None) -> list[SortKey]:
    return sort_keys(QUOTE_ORDER, Quote.id, order_by, {"field": "CREATED_AT", "direction": "DESC"})


def order_sort(order_by: list[Mapping[str, Any]] | None) -> list[SortKey]:
    return sort_keys(ORDER_ORDER, Order.id, order_by, {"field": "ORDERED_AT", "direction": "DESC"})
