"""Cross-sell and up-sell: association rules over co-purchases, computed in SQL per stored run,
and each customer's recommendations from the newest run.

The transactions are customers, not orders: a customer "bought" a product when a counted order
(paid or fulfilled, not cancelled or refunded) of theirs in the window has a line of it. With N
the customers who bought anything in the window, for two products X and Y:

- support(X => Y) = customers who bought both / N,
- confidence(X => Y) = customers who bought both / customers who bought X,
- lift(X => Y) = confidence(X => Y) / (customers who bought Y / N).

A run is one ``INSERT ... SELECT`` of every rule that passes the thresholds (docs/insights.md).
Recommendations for a page of customers are one statement: the products the customer has not
bought that rules lead to from the products they did buy, the strongest rule per product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import errors as codes
from crm_graph.core.access import SKIP_OPTION
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector
from crm_graph.customers.models import Customer
from crm_graph.insights.config import InsightsSettings
from crm_graph.insights.models import AssociationRun, ProductAssociation
from crm_graph.insights.service.summary import day_key, day_literal
from crm_graph.sales.models import Order, OrderLineItem, Product, ProductTag
from crm_graph.sales.service.reports import counted_orders

MAX_WINDOW_DAYS = 36600
MAX_RECOMMENDATIONS = 100


def _skip(stmt: Any) -> Any:
    return stmt.execution_options(**{SKIP_OPTION: True})


def bought_select(as_of: date, window_days: int, dialect: str) -> sa.Select[Any]:
    """(customer_id, product_id): each live customer and each product they bought in the window."""
    day = day_key(Order.ordered_at, dialect)
    return (
        sa.select(Order.customer_id, OrderLineItem.product_id)
        .join(OrderLineItem, OrderLineItem.order_id == Order.id)
        .join(Customer, sa.and_(Customer.id == Order.customer_id, Customer.deleted_at.is_(None)))
        .where(counted_orders(), OrderLineItem.product_id.is_not(None),
               day <= day_literal(as_of, dialect), day > day_literal(as_of - timedelta(days=window_days), dialect))
        .distinct()
    )


def _real(value: Any) -> sa.ColumnElement[float]:
    return sa.cast(value, sa.Double)


async def refresh_rules(session: AsyncSession, *, config: InsightsSettings, as_of: date | None = None,
                        window_days: int | None = None) -> AssociationRun:
    """Compute and store a run of association rules over every customer's purchases."""
    today = utcnow().date()
    as_of = as_of or today
    window_days = config.associations_window_days if window_days is None else window_days
    errors = ErrorCollector()
    if as_of > today:
        errors.add("asOf", codes.INVALID_VALUE, f"asOf is in the future ({as_of.isoformat()}).")
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        errors.add("windowDays", codes.INVALID_VALUE, f"windowDays is between 1 and {MAX_WINDOW_DAYS}.")
    errors.raise_if_any()
    dialect = session.get_bind().dialect.name
    run = AssociationRun(as_of=as_of, window_days=window_days, customers=0, min_support_count=config.associations_min_support_count,
                         min_confidence=config.associations_min_confidence, min_lift=config.associations_min_lift,
                         rule_count=0, created_at=utcnow())
    session.add(run)
    await session.flush()

    bought = bought_select(as_of, window_days, dialect).cte("bought")
    n = sa.select(sa.func.count(sa.distinct(bought.c.customer_id))).scalar_subquery()
    counts = sa.select(bought.c.product_id, sa.func.count().label("buyers")).group_by(bought.c.product_id).cte("counts")
    a, c = bought.alias("a"), bought.alias("c")
    pairs = (
        sa.select(a.c.product_id.label("antecedent_id"), c.c.product_id.label("consequent_id"), sa.func.count().label("both"))
        .join(c, sa.and_(c.c.customer_id == a.c.customer_id, c.c.product_id != a.c.product_id))
        .group_by(a.c.product_id, c.c.product_id)
        .having(sa.func.count() >= config.associations_min_support_count)
        .subquery("pairs")
    )
    ca, cc = counts.alias("ca"), counts.alias("cc")
    confidence = _real(pairs.c.both) / _real(ca.c.buyers)
    lift = _real(pairs.c.both) * _real(n) / (_real(ca.c.buyers) * _real(cc.c.buyers))
    rules = (
        sa.select(sa.literal(run.id, ProductAssociation.run_id.type), pairs.c.antecedent_id, pairs.c.consequent_id, pairs.c.both,
                  ca.c.buyers, cc.c.buyers, _real(pairs.c.both) / _real(n), confidence, lift)
        .join(ca, ca.c.product_id == pairs.c.antecedent_id)
        .join(cc, cc.c.product_id == pairs.c.consequent_id)
        .where(confidence >= config.associations_min_confidence, lift > config.associations_min_lift)
    )
    columns = ["run_id", "antecedent_id", "consequent_id", "both", "antecedent_count", "consequent_count", "support",
               "confidence", "lift"]
    await session.execute(_skip(sa.insert(ProductAssociation).from_select(columns, rules)))
    run.customers = int(await session.scalar(_skip(
        sa.select(sa.func.count(sa.distinct(bought.c.customer_id))).select_from(bought))) or 0)
    run.rule_count = int(await session.scalar(_skip(
        sa.select(sa.func.count()).where(ProductAssociation.run_id == run.id))) or 0)
    await session.flush()
    return run


async def latest_run(session: AsyncSession) -> AssociationRun | None:
    return await session.scalar(sa.select(AssociationRun).order_by(AssociationRun.id.desc()).limit(1))


async def rules_of(session: AsyncSession, run: AssociationRun, *, first: int, product_id: int | None = None) -> list[ProductAssociation]:
    stmt = sa.select(ProductAssociation).where(ProductAssociation.run_id == run.id)
    if product_id is not None:
        stmt = stmt.where(ProductAssociation.antecedent_id == product_id)
    stmt = stmt.order_by(ProductAssociation.lift.desc(), ProductAssociation.confidence.desc(),
                         ProductAssociation.antecedent_id, ProductAssociation.consequent_id).limit(first)
    return list(await session.scalars(stmt))


@dataclass
class Recommendation:
    customer_id: int
    product_id: int
    based_on_id: int  # the product the customer bought that the rule starts from
    up_sell: bool  # a pricier product of the same tag as the one bought
    tag: str | None
    support: float
    confidence: float
    lift: float
    antecedent_count: int
    both: int


async def recommendations_for(session: AsyncSession, customer_ids: Sequence[int], *, first: int) -> dict[int, list[Recommendation]]:
    """The ``first`` best recommendations of each customer from the newest run, one statement.

    A product is recommended when a rule leads to it from a product the customer bought (any
    counted order the reader may see, whenever) and the customer has not bought it; per product
    the strongest rule counts: an up-sell first (the recommended product shares a tag with the
    one bought and costs more, in the same currency), then by confidence and lift. The list is
    by confidence, then lift."""
    ids = list(customer_ids)
    run_id = sa.select(sa.func.max(AssociationRun.id)).scalar_subquery()
    owned = (
        sa.select(Order.customer_id, OrderLineItem.product_id)
        .join(OrderLineItem, OrderLineItem.order_id == Order.id)
        .where(Order.customer_id.in_(ids), counted_orders(), OrderLineItem.product_id.is_not(None))
        .distinct()
        .cte("owned")
    )
    mine = owned.alias("mine")
    rule = ProductAssociation
    base, target = sa.orm.aliased(Product, name="base"), sa.orm.aliased(Product, name="target")
    t1, t2 = sa.orm.aliased(ProductTag, name="t1"), sa.orm.aliased(ProductTag, name="t2")
    shared_tag = (
        sa.select(sa.func.min(t2.tag)).select_from(t1).join(t2, t2.tag == t1.tag)
        .where(t1.product_id == rule.antecedent_id, t2.product_id == rule.consequent_id).scalar_subquery()
    )
    pricier = sa.and_(target.currency == base.currency, target.unit_price > base.unit_price)
    up_sell = sa.case((sa.and_(pricier, shared_tag.is_not(None)), 1), else_=0)
    per_product = sa.func.row_number().over(
        partition_by=(mine.c.customer_id, rule.consequent_id),
        order_by=(up_sell.desc(), rule.confidence.desc(), rule.lift.desc(), rule.antecedent_id))
    candidates = (
        sa.select(
            mine.c.customer_id, rule.consequent_id, rule.antecedent_id, up_sell.label("up_sell"),
            sa.case((pricier, shared_tag)).label("tag"), rule.support, rule.confidence, rule.lift, rule.antecedent_count,
            rule.both, per_product.label("per_product"),
        )
        .select_from(mine)
        .join(rule, sa.and_(rule.antecedent_id == mine.c.product_id, rule.run_id == run_id))
        .join(base, base.id == rule.antecedent_id)
        .join(target, sa.and_(target.id == rule.consequent_id, target.active))
        .where(~sa.exists(sa.select(owned.c.product_id).where(owned.c.customer_id == mine.c.customer_id,
                                                              owned.c.product_id == rule.consequent_id)))
        .subquery("candidates")
    )
    k = sa.func.row_number().over(
        partition_by=candidates.c.customer_id,
        order_by=(candidates.c.confidence.desc(), candidates.c.lift.desc(), candidates.c.consequent_id)).label("k")
    ranked = sa.select(candidates, k).where(candidates.c.per_product == 1).subquery("ranked")
    rows = await session.execute(sa.select(ranked).where(ranked.c.k <= first).order_by(ranked.c.customer_id, ranked.c.k))
    out: dict[int, list[Recommendation]] = {cid: [] for cid in ids}
    for row in rows:
        out[row.customer_id].append(Recommendation(
            customer_id=row.customer_id, product_id=row.consequent_id, based_on_id=row.antecedent_id, up_sell=bool(row.up_sell),
            tag=row.tag if row.up_sell else None, support=row.support, confidence=row.confidence, lift=row.lift,
            antecedent_count=row.antecedent_count, both=row.both))
    return out
