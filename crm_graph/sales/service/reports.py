"""Aggregates computed in SQL: the pipeline forecast and funnel, and customers' order statistics.

Amounts of different currencies are never added up. The pipeline summary covers one currency
(the one asked for, else the pipeline's most used one) and names the others; customer statistics
are grouped by currency and the customer's main currency is reported at the top.

Weighted amounts are ``SUM(amount * probability)`` in SQL, divided by 100 and rounded once per
figure in Python with Decimal arithmetic (so a stage total can differ by a cent from the sum of
its opportunities' individually rounded weighted amounts).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import money
from crm_graph.core.money import AmountType
from crm_graph.customers.models import Customer
from crm_graph.sales.models import (
    Opportunity,
    OpportunityStatus,
    Order,
    OrderStatus,
    PaymentStatus,
    Pipeline,
    PipelineStage,
    StageKind,
)
from crm_graph.sales.service import pipelines as pipeline_service
from crm_graph.sales.service.common import dialect


@dataclass
class Figures:
    count: int = 0
    amount: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)


@dataclass
class StageFigures(Figures):
    stage: PipelineStage | None = None


@dataclass
class MonthFigures(Figures):
    month: str = ""


@dataclass
class PipelineSummary:
    pipeline: Pipeline
    currency: str | None
    currencies: list[str]
    date_from: date | None
    date_to: date | None
    stages: list[StageFigures] = field(default_factory=list)
    months: list[MonthFigures] = field(default_factory=list)
    open: Figures = field(default_factory=Figures)
    won: Figures = field(default_factory=Figures)
    lost_count: int = 0
    win_rate: Decimal | None = None
    average_days_to_win: Decimal | None = None


def _probability() -> sa.ColumnElement[int]:
    return sa.case(
        (Opportunity.status == OpportunityStatus.WON, 100),
        (Opportunity.status == OpportunityStatus.LOST, 0),
        else_=sa.func.coalesce(Opportunity.probability_override, PipelineStage.probability),
    )


def _weighted_sum() -> sa.ColumnElement[Decimal]:
    # amount x probability keeps the amount's scale, so the column type converts it back exactly.
    return sa.func.sum(sa.type_coerce(Opportunity.amount * _probability(), AmountType))


def _in_range(date_from: date | None, date_to: date | None) -> sa.ColumnElement[bool]:
    """Open opportunities by expected close date; closed ones by the day they closed (UTC)."""
    if date_from is None and date_to is None:
        return sa.true()
    open_clauses: list[Any] = [Opportunity.status == OpportunityStatus.OPEN]
    closed_clauses: list[Any] = [Opportunity.status != OpportunityStatus.OPEN]
    if date_from is not None:
        open_clauses.append(Opportunity.expected_close_date >= date_from)
        closed_clauses.append(Opportunity.closed_at >= datetime.combine(date_from, time(), UTC))
    if date_to is not None:
        open_clauses.append(Opportunity.expected_close_date <= date_to)
        if date_to < date.max:
            closed_clauses.append(Opportunity.closed_at < datetime.combine(date_to + timedelta(days=1), time(), UTC))
    return sa.or_(sa.and_(*open_clauses), sa.and_(*closed_clauses))


def _live(pipeline_id: int) -> list[sa.ColumnElement[bool]]:
    return [Opportunity.pipeline_id == pipeline_id, Opportunity.deleted_at.is_(None), Customer.deleted_at.is_(None)]


def _month(session: AsyncSession, column: Any) -> sa.ColumnElement[str]:
    if dialect(session) == "postgresql":
        return sa.func.to_char(column, "YYYY-MM")
    return sa.func.strftime("%Y-%m", column)


def _days_between(session: AsyncSession, start: Any, end: Any) -> sa.ColumnElement[Any]:
    if dialect(session) == "postgresql":
        return sa.func.extract("epoch", end - start) / 86400
    return sa.func.julianday(end) - sa.func.julianday(start)


def _per(amount: Decimal | None, currency: str) -> Decimal:
    """A SUM(amount x probability) as an amount: divided by 100, rounded to the currency."""
    return money.round_amount((amount or Decimal(0)) / 100, currency)


async def pipeline_summary(
    session: AsyncSession, *, pipeline_id: int, date_from: date | None, date_to: date | None, currency: str | None
) -> PipelineSummary | None:
    pipeline = await pipeline_service.get_pipeline(session, pipeline_id)
    if pipeline is None:
        return None
    base = (
        sa.select()
        .select_from(Opportunity)
        .join(Customer, Customer.id == Opportunity.customer_id)
        .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
        .where(*_live(pipeline_id), _in_range(date_from, date_to))
    )
    by_currency = await session.execute(
        base.add_columns(Opportunity.currency, sa.func.count())
        .group_by(Opportunity.currency)
        .order_by(sa.func.count().desc(), Opportunity.currency)
    )
    currencies = [row[0] for row in by_currency.all()]
    chosen = currency or (currencies[0] if currencies else None)
    summary = PipelineSummary(pipeline, chosen, sorted(currencies), date_from, date_to)
    live_stages = (await pipeline_service.stages_for(session, [pipeline_id])).get(pipeline_id, [])
    if chosen is None:
        summary.stages = [StageFigures(stage=s) for s in live_stages]
        return summary
    base = base.where(Opportunity.currency == chosen)

    rows = await session.execute(
        base.add_columns(Opportunity.stage_id, sa.func.count(), sa.func.sum(Opportunity.amount), _weighted_sum())
        .group_by(Opportunity.stage_id)
    )
    figures = {sid: (n, amount or Decimal(0), _per(weighted, chosen)) for sid, n, amount, weighted in rows.all()}
    stage_rows = list(live_stages)
    missing = [sid for sid in figures if sid not in {s.id for s in live_stages}]
    if missing:  # opportunities can only sit in removed stages if data was edited by hand
        stage_rows += list((await pipeline_service.stages_by_ids(session, missing)).values())
    for stage in stage_rows:
        n, amount, weighted = figures.get(stage.id, (0, Decimal(0), Decimal(0)))
        summary.stages.append(StageFigures(count=n, amount=amount, weighted=weighted, stage=stage))
        target = {StageKind.OPEN: summary.open, StageKind.WON: summary.won}.get(stage.kind)
        if target is not None:
            target.count += n
            target.amount += amount
            target.weighted += weighted
        else:
            summary.lost_count += n

    month = _month(session, Opportunity.expected_close_date).label("month")
    rows = await session.execute(
        base.add_columns(month, sa.func.count(), sa.func.sum(Opportunity.amount), _weighted_sum())
        .where(Opportunity.status == OpportunityStatus.OPEN, Opportunity.expected_close_date.is_not(None))
        .group_by(month)
        .order_by(month)
    )
    summary.months = [
        MonthFigures(count=n, amount=amount or Decimal(0), weighted=_per(weighted, chosen), month=m)
        for m, n, amount, weighted in rows.all()
    ]

    closed = summary.won.count + summary.lost_count
    if closed:
        summary.win_rate = (Decimal(summary.won.count) / closed).quantize(Decimal("0.0001"))
    if summary.won.count:
        days = await session.scalar(
            base.add_columns(sa.func.avg(_days_between(session, Opportunity.created_at, Opportunity.closed_at)))
            .where(Opportunity.status == OpportunityStatus.WON)
        )
        if days is not None:
            summary.average_days_to_win = Decimal(str(days)).quantize(Decimal("0.1"))
    return summary


# --- customer statistics --------------------------------------------------------------------


@dataclass
class CurrencyStats:
    currency: str
    order_count: int
    total_spent: Decimal
    first_order_at: datetime
    last_order_at: datetime

    @property
    def average(self) -> Decimal:
        return money.round_amount(self.total_spent / self.order_count, self.currency)


@dataclass
class CustomerStats:
    """Paid or fulfilled orders of one customer (never cancelled or refunded ones)."""

    order_count: int = 0
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    by_currency: list[CurrencyStats] = field(default_factory=list)

    @property
    def main(self) -> CurrencyStats | None:
        """The currency most of the customer's orders are in (ties: the most recent)."""
        if not self.by_currency:
            return None
        return max(self.by_currency, key=lambda c: (c.order_count, c.last_order_at, c.currency))


def counted_orders() -> sa.ColumnElement[bool]:
    """The orders that count as a purchase: paid or fulfilled, not cancelled or refunded."""
    return sa.and_(
        Order.status.not_in([OrderStatus.CANCELLED, OrderStatus.REFUNDED]),
        sa.or_(Order.payment_status == PaymentStatus.PAID, Order.status == OrderStatus.FULFILLED),
    )


async def customer_stats(session: AsyncSession, customer_ids: Sequence[int]) -> dict[int, CustomerStats]:
    """Statistics of many customers in one ``GROUP BY customer, currency``."""
    rows = await session.execute(
        sa.select(
            Order.customer_id,
            Order.currency,
            sa.func.count(),
            sa.func.sum(Order.total),
            sa.func.min(Order.ordered_at),
            sa.func.max(Order.ordered_at),
        )
        .where(Order.customer_id.in_(customer_ids), counted_orders())
        .group_by(Order.customer_id, Order.currency)
    )
    grouped: dict[int, list[CurrencyStats]] = defaultdict(list)
    for customer_id, code, n, total, first, last in rows.all():
        grouped[customer_id].append(CurrencyStats(code, n, total or Decimal(0), first, last))
    out: dict[int, CustomerStats] = {}
    for customer_id in customer_ids:
        parts = sorted(grouped.get(customer_id, []), key=lambda c: c.currency)
        out[customer_id] = CustomerStats(
            order_count=sum(c.order_count for c in parts),
            first_order_at=min((c.first_order_at for c in parts), default=None),
            last_order_at=max((c.last_order_at for c in parts), default=None),
            by_currency=parts,
        )
    return out
