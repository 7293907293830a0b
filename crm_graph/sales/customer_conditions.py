"""Conditions the sales domain adds to the customer filter language: ``orders`` and
``purchased``. Correlated subqueries against the outer ``customers`` row; registered through
``crm_register_filters`` by ``crm_graph.sales.plugin``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from crm_graph.core import filters as f
from crm_graph.core import ids
from crm_graph.core.extensions import FilterContext
from crm_graph.customers.models import Customer
from crm_graph.sales.filters import bounded_decimal
from crm_graph.sales.models import Order, OrderLineItem, ProductTag
from crm_graph.sales.service.reports import counted_orders

ORDER_OPS = ("windowDays", "currency", "count", "totalSpent", "averageOrderValue", "firstOrderAt", "lastOrderAt")


def orders_condition(ctx: FilterContext, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    """Aggregates over the customer's counted orders (paid or fulfilled, not cancelled/refunded),
    within ``windowDays`` when given and in ``currency`` when given."""
    ops = f.operators(ops, path, ORDER_OPS)
    conditions = [Order.customer_id == Customer.id, counted_orders()]
    since = f.window_start(ops, path, ctx.now)
    if since is not None:
        conditions.append(Order.ordered_at >= since)
    if ops.get("currency") is not None:
        conditions.append(Order.currency == str(ops["currency"]).upper())

    def aggregate(expression: Any) -> Any:
        return sa.select(expression).where(*conditions).scalar_subquery()

    measures = {
        "count": (aggregate(sa.func.count()), f.whole_number),
        # Bounded, as the order lists' amounts: a value the amount column cannot hold ("1e400", NaN)
        # is a filter error, not an overflow when it is bound.
        "totalSpent": (sa.func.coalesce(aggregate(sa.func.sum(Order.total)), 0), bounded_decimal),
        "averageOrderValue": (aggregate(sa.func.avg(Order.total)), bounded_decimal),
        "firstOrderAt": (aggregate(sa.func.min(Order.ordered_at)), f.aware_datetime),
        "lastOrderAt": (aggregate(sa.func.max(Order.ordered_at)), f.aware_datetime),
    }
    clauses = []
    for name, (expression, parse) in measures.items():
        if name in ops:
            typed = sa.type_coerce(expression, Order.total.type) if name in ("totalSpent", "averageOrderValue") else expression
            clauses.append(f.comparable_condition(typed, ops[name], f"{path}.{name}", parse))
    return sa.and_(sa.true(), *clauses)


def purchased_condition(ctx: FilterContext, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    """True when a counted order of the customer has a line of one of the products (or tags)."""
    ops = f.operators(ops, path, ("productIds", "productTags", "windowDays"))
    products: list[int] = []
    for i, gid in enumerate(f.check_in(ops.get("productIds", []), f"{path}.productIds")):
        try:
            products.append(ids.decode_as(gid, "Product"))
        except ValueError as exc:
            raise f.FilterError(f"{path}.productIds.{i}", str(exc)) from None
    tags = [str(t).strip().lower() for t in f.check_in(ops.get("productTags", []), f"{path}.productTags")]
    if not products and not tags:
        raise f.FilterError(path, "give productIds or productTags")
    which = []
    if products:
        which.append(OrderLineItem.product_id.in_(products))
    if tags:
        which.append(OrderLineItem.product_id.in_(sa.select(ProductTag.product_id).where(ProductTag.tag.in_(tags))))
    conditions = [Order.customer_id == Customer.id, counted_orders(), sa.or_(*which)]
    since = f.window_start(ops, path, ctx.now)
    if since is not None:
        conditions.append(Order.ordered_at >= since)
    return sa.exists().where(OrderLineItem.order_id == Order.id, *conditions)
