"""RFM analysis in SQL: recency, frequency and monetary value per customer, scored 1-5.

Scores are quintiles by rank: ``score = 1 + floor(5 * (rank - 1) / n)`` where ``rank`` is the
SQL ``RANK()`` of the customer's value among the ``n`` scored customers (worst first). Equal
values share a rank, so ties always land in the same bucket. 5 is best: the most recent
purchase, the most orders, the most revenue. The named groups follow the table in
docs/segments.md. Every run is stored (``rfm_runs`` and ``rfm_scores``), so lists and segments
filter on the newest run with an index, and a run can be compared with the one before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.clock import utcnow
from crm_graph.segments.models import RfmGroup, RfmRun, RfmScore, ValueTier
from crm_graph.customers.models import Customer
from crm_graph.segments.values import potential_customers, revenue_by_customer, tier_case

def _group_case(r: Any, f: Any, m: Any) -> sa.Case[Any]:
    """The named group of a cell; checked top to bottom, as in the table of docs/segments.md."""
    return sa.case(
        (sa.and_(r == 5, f >= 4), RfmGroup.CHAMPIONS.name),
        (sa.and_(r.in_([3, 4]), f >= 4), RfmGroup.LOYAL.name),
        (sa.and_(r >= 4, f.in_([2, 3])), RfmGroup.POTENTIAL_LOYALIST.name),
        (sa.and_(r == 5, f == 1), RfmGroup.NEW.name),
        (sa.and_(r == 4, f == 1), RfmGroup.PROMISING.name),
        (sa.and_(r == 3, f == 3), RfmGroup.NEEDS_ATTENTION.name),
        (sa.and_(r == 3, f <= 2), RfmGroup.ABOUT_TO_SLEEP.name),
        (sa.or_(f == 5, m == 5), RfmGroup.CANNOT_LOSE.name),
        (f.in_([3, 4]), RfmGroup.AT_RISK.name),
        (sa.and_(r == 1, f == 1), RfmGroup.LOST.name),
        else_=RfmGroup.HIBERNATING.name,
    )


def days_since(as_of: date, timestamp: Any, dialect: str) -> sa.ColumnElement[int]:
    """Whole UTC days from the day of ``timestamp`` to ``as_of``."""
    if dialect == "sqlite":
        return sa.cast(sa.func.julianday(as_of.isoformat()) - sa.func.julianday(sa.func.date(timestamp)), sa.Integer)
    day = sa.cast(sa.func.timezone("UTC", timestamp), sa.Date)
    return sa.cast(sa.literal(as_of, sa.Date) - day, sa.Integer)


def _score(rank: Any, n: Any) -> sa.ColumnElement[int]:
    return (5 * (rank - 1)) // n + 1


async def compute_run(session: AsyncSession, *, as_of: date, window_days: int, currency: str) -> RfmRun:
    """Score every customer with counted orders in the window and store the run."""
    dialect = session.bind.dialect.name
    if dialect == "postgresql":
        # Four window sorts over one row per customer: give them memory instead of disk.
        await session.execute(sa.text("SET LOCAL work_mem = '64MB'"))
    # A CTE: read by the scoring and by the POTENTIAL rows, computed once.
    revenue = revenue_by_customer(as_of, window_days, currency).cte("revenue")
    recency = days_since(as_of, revenue.c.last_at, dialect)
    measured = sa.select(
        revenue.c.customer_id,
        recency.label("recency_days"),
        revenue.c.frequency,
        revenue.c.monetary,
    ).subquery("measured")
    n = sa.func.count().over()
    by_revenue = (measured.c.monetary.desc(), measured.c.customer_id)
    # One pass: the three scores and the running revenue total that decides the value tier.
    scored = sa.select(
        measured,
        _score(sa.func.rank().over(order_by=measured.c.recency_days.desc()), n).label("r"),
        _score(sa.func.rank().over(order_by=measured.c.frequency), n).label("f"),
        _score(sa.func.rank().over(order_by=measured.c.monetary), n).label("m"),
        sa.func.sum(measured.c.monetary).over(order_by=by_revenue, rows=(None, 0)).label("cumulative"),
        sa.func.sum(measured.c.monetary).over().label("total"),
    ).subquery("scored")

    run = RfmRun(as_of=as_of, window_days=window_days, currency=currency, customer_count=0,
                 revenue=Decimal(0), created_at=utcnow())
    session.add(run)
    await session.flush()

    run_id = sa.literal(run.id, RfmScore.run_id.type)
    select_scores = sa.select(
        run_id,
        scored.c.customer_id,
        scored.c.recency_days,
        scored.c.frequency,
        scored.c.monetary,
        scored.c.r,
        scored.c.f,
        scored.c.m,
        _group_case(scored.c.r, scored.c.f, scored.c.m),
        tier_case(scored.c.monetary, scored.c.cumulative, scored.c.total),
    )
    potential = potential_customers(revenue.c.customer_id)
    select_potential = potential.with_only_columns(
        run_id, Customer.id, *(sa.null() for _ in range(6)), sa.null(), sa.literal(ValueTier.POTENTIAL.name)
    )
    columns = ["run_id", "customer_id", "recency_days", "frequency", "monetary", "recency_score",
               "frequency_score", "monetary_score", "group", "value_tier"]
    # One statement, so neither half is planned against the other's freshly written rows.
    await session.execute(sa.insert(RfmScore).from_select(columns, sa.union_all(select_scores, select_potential)))
    if dialect == "postgresql":
        # The run just wrote a row per customer that the table's statistics know nothing of yet;
        # planned without them, comparing this run with the one before (``movements``) took a
        # nested loop that ran for over 18 minutes at 100k customers. ANALYZE samples the table
        # (a fraction of a second) in this transaction, so the next statements plan with the rows.
        await session.execute(sa.text("ANALYZE rfm_scores"))
    # The run scores every customer, whoever asked for it; its stored totals are the whole's.
    run.customer_count, run.revenue = await totals(session, run, everyone=True)
    await session.flush()
    return run


async def totals(session: AsyncSession, run: RfmRun, *, everyone: bool = False) -> tuple[int, Decimal]:
    """Customers scored and their revenue in ``run``: of the customers the session's scope
    shows (the stored totals are for everyone, ``everyone=True``)."""
    stmt = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(RfmScore.monetary), 0)).where(
        RfmScore.run_id == run.id, RfmScore.recency_score.is_not(None)
    )
    if everyone:
        stmt = stmt.execution_options(crm_skip_scope=True)
    count, revenue = (await session.execute(stmt)).one()
    return int(count), Decimal(revenue or 0)


async def find_run(session: AsyncSession, *, as_of: date, window_days: int, currency: str) -> RfmRun | None:
    return await session.scalar(
        sa.select(RfmRun)
        .where(RfmRun.as_of == as_of, RfmRun.window_days == window_days, RfmRun.currency == currency)
        .order_by(RfmRun.id.desc())
        .limit(1)
    )


async def latest_run_id(session: AsyncSession) -> int | None:
    return await session.scalar(sa.select(sa.func.max(RfmRun.id)))


async def previous_run(session: AsyncSession, run: RfmRun) -> RfmRun | None:
    """The newest earlier run over the same window and currency."""
    return await session.scalar(
        sa.select(RfmRun)
        .where(RfmRun.window_days == run.window_days, RfmRun.currency == run.currency, RfmRun.id < run.id)
        .order_by(RfmRun.id.desc())
        .limit(1)
    )


@dataclass
class GroupRow:
    group: RfmGroup
    customers: int
    revenue: Decimal
    share_of_revenue: Decimal


@dataclass
class GridCell:
    recency_score: int
    frequency_score: int
    customers: int
    average_monetary: Decimal


@dataclass
class Movement:
    from_group: RfmGroup
    to_group: RfmGroup
    customers: int


async def group_table(session: AsyncSession, run: RfmRun, total: Decimal | None = None) -> list[GroupRow]:
    stmt = (
        sa.select(RfmScore.group, sa.func.count(), sa.func.sum(RfmScore.monetary))
        .where(RfmScore.run_id == run.id, RfmScore.group.is_not(None))
        .group_by(RfmScore.group)
    )
    rows = (await session.execute(stmt)).all()
    found = {group: (count, revenue or Decimal(0)) for group, count, revenue in rows}
    total = (run.revenue if total is None else total) or Decimal(0)
    out = []
    for group in RfmGroup:
        count, revenue = found.get(group, (0, Decimal(0)))
        share = (revenue / total).quantize(Decimal("0.0001")) if total else Decimal(0)
        out.append(GroupRow(group, count, revenue, share))
    return out


async def grid(session: AsyncSession, run: RfmRun) -> list[GridCell]:
    """The 5 x 5 recency-by-frequency grid; every cell is present, empty ones with zero."""
    stmt = (
        sa.select(RfmScore.recency_score, RfmScore.frequency_score, sa.func.count(), sa.func.sum(RfmScore.monetary))
        .where(RfmScore.run_id == run.id, RfmScore.recency_score.is_not(None))
        .group_by(RfmScore.recency_score, RfmScore.frequency_score)
    )
    found = {(r, f): (n, s) for r, f, n, s in (await session.execute(stmt)).all()}
    cells = []
    for r in range(5, 0, -1):
        for f in range(1, 6):
            n, total = found.get((r, f), (0, Decimal(0)))
            average = (total / n).quantize(Decimal("0.01")) if n else Decimal(0)
            cells.append(GridCell(r, f, n, average))
    return cells


async def movements(session: AsyncSession, run: RfmRun, previous: RfmRun) -> list[Movement]:
    """Customers whose group changed between ``previous`` and ``run``, counted per pair of groups."""
    before = sa.orm.aliased(RfmScore)
    stmt = (
        sa.select(before.group, RfmScore.group, sa.func.count())
        .join(before, sa.and_(before.customer_id == RfmScore.customer_id, before.run_id == previous.id))
        .where(RfmScore.run_id == run.id, RfmScore.group.is_not(None), before.group.is_not(None),
               before.group != RfmScore.group)
        .group_by(before.group, RfmScore.group)
        .order_by(sa.func.count().desc())
    )
    return [Movement(a, b, n) for a, b, n in (await session.execute(stmt)).all()]


async def scores_for(session: AsyncSession, customer_ids: list[int]) -> dict[int, RfmScore]:
    """Each customer's row in the newest run."""
    run_id = await latest_run_id(session)
    if run_id is None:
        return {}
    rows = await session.scalars(
        sa.select(RfmScore).where(RfmScore.run_id == run_id, RfmScore.customer_id.in_(customer_ids))
    )
    return {row.customer_id: row for row in rows}
