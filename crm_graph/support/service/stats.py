"""``supportStats``: service figures for a period, computed in SQL in one statement.

Every figure is a scalar subquery over the tickets of customers that are not deleted, each
restricted by an indexed timestamp, so the database aggregates and Python only reads one row.
Periods are half-open: ``from <= t < to``. Definitions (docs/support.md has the long version):

- opened: tickets created in the period; resolved: tickets whose (latest) resolution falls in it.
- open backlog: tickets NEW, OPEN or PENDING when asked, by priority (a snapshot, not historical).
- SLA compliance: targets decided in the period, met / (met + breached) x 100. A target is decided
  when it is met (first response or resolution in time) or when it is breached (at its due time).
- first-response and resolution times: elapsed minutes from opening to the first response / to
  the resolution, for tickets responded to / resolved in the period; median and 90th percentile
  with linear interpolation between the closest ranks (``percentile_cont``).
- CSAT: share of ratings of 4 or 5; average rating; satisfaction index = mean of rating /
  expectation over ratings that state an expectation. The current rating of each ticket counts
  in the period it was given.

Percentiles: PostgreSQL has ``percentile_cont``. SQLite has none, so the same interpolation is
written with window functions: number the n values in order (i = 0..n-1), take the position
p x (n - 1), its whole part k and fraction f, and sum v_k x (1 - f) + v_(k+1) x f.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.customers.models import Customer
from crm_graph.support.filters import first_response_breached, resolution_breached
from crm_graph.support.models import UNRESOLVED, Ticket, TicketPriority, TicketStatus


@dataclass(frozen=True)
class Durations:
    count: int
    median_minutes: float | None
    p90_minutes: float | None


@dataclass(frozen=True)
class SupportStats:
    start: datetime
    end: datetime
    opened: int
    resolved: int
    backlog: dict[str, int]
    first_response_met: int
    first_response_breached: int
    resolution_met: int
    resolution_breached: int
    first_response_time: Durations
    resolution_time: Durations
    ratings: int
    satisfied: int
    average_rating: float | None
    satisfaction_index: float | None

    @property
    def first_response_compliance(self) -> float | None:
        return _percent(self.first_response_met, self.first_response_met + self.first_response_breached)

    @property
    def resolution_compliance(self) -> float | None:
        return _percent(self.resolution_met, self.resolution_met + self.resolution_breached)

    @property
    def csat(self) -> float | None:
        return _percent(self.satisfied, self.ratings)


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def _minutes(dialect: str, start: Any, end: Any) -> sa.ColumnElement[float]:
    if dialect == "postgresql":
        return sa.cast(sa.extract("epoch", end - start), sa.Float) / 60.0
    # SQLite keeps UTC timestamps as text; julianday() reads them as fractional days.
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 1440.0


def _percentile(dialect: str, value: sa.ColumnElement[Any], where: list[Any], p: float) -> sa.ScalarSelect[Any]:
    if dialect == "postgresql":
        return _live(sa.func.percentile_cont(p).within_group(value), where).scalar_subquery()
    values = _live(value.label("v"), where).subquery()
    ranked = sa.select(
        values.c.v,
        (sa.func.row_number().over(order_by=values.c.v) - 1).label("i"),
        sa.func.count().over().label("n"),
    ).subquery()
    position = sa.literal(p, sa.Float) * (ranked.c.n - 1)
    whole = sa.cast(position, sa.Integer)  # truncation = floor, the position is never negative
    fraction = position - whole
    return sa.select(
        sa.func.sum(
            sa.case(
                (ranked.c.i == whole, ranked.c.v * (1 - fraction)),
                (ranked.c.i == whole + 1, ranked.c.v * fraction),
                else_=0.0,
            )
        )
    ).scalar_subquery()


def _live(column: Any, where: list[Any]) -> sa.Select[Any]:
    return (
        sa.select(column)
        .select_from(Ticket)
        .join(Customer, Customer.id == Ticket.customer_id)
        .where(Customer.deleted_at.is_(None), *where)
    )


def _count(*where: Any) -> sa.ScalarSelect[Any]:
    return _live(sa.func.count(), list(where)).scalar_subquery()


def _within(column: Any, start: datetime, end: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(column >= start, column < end)


async def support_stats(session: AsyncSession, *, start: datetime, end: datetime, now: datetime) -> SupportStats:
    dialect = session.bind.dialect.name
    t = Ticket
    fr_breached, res_breached = first_response_breached(now), resolution_breached(now)
    first_response = _minutes(dialect, t.created_at, t.first_responded_at)
    resolution = _minutes(dialect, t.created_at, t.resolved_at)
    responded = [_within(t.first_responded_at, start, end)]
    resolved = [_within(t.resolved_at, start, end)]
    rated = [_within(t.rated_at, start, end), t.rating.is_not(None)]
    columns: dict[str, Any] = {
        "opened": _count(_within(t.created_at, start, end)),
        "resolved": _count(*resolved),
        **{
            f"backlog_{p.name}": _count(t.status.in_(UNRESOLVED), t.priority == p)
            for p in TicketPriority
        },
        # A breach happens at the due time (and a breached due time never moves), so breaches are
        # counted by due time; met targets by the moment they were met.
        "fr_met": _count(t.first_response_due_at.is_not(None), sa.not_(fr_breached), *responded),
        "fr_breached": _count(fr_breached, _within(t.first_response_due_at, start, end)),
        "res_met": _count(
            t.resolution_due_at.is_not(None), sa.not_(res_breached),
            t.status.in_((TicketStatus.RESOLVED, TicketStatus.CLOSED)), *resolved,
        ),
        "res_breached": _count(res_breached, _within(t.resolution_due_at, start, end)),
        "fr_count": _count(*responded),
        "fr_median": _percentile(dialect, first_response, responded, 0.5),
        "fr_p90": _percentile(dialect, first_response, responded, 0.9),
        "res_count": _count(*resolved),
        "res_median": _percentile(dialect, resolution, resolved, 0.5),
        "res_p90": _percentile(dialect, resolution, resolved, 0.9),
        "ratings": _count(*rated),
        "satisfied": _count(*rated, t.rating >= 4),
        "average_rating": _live(sa.func.avg(sa.cast(t.rating, sa.Float)), rated).scalar_subquery(),
        "satisfaction_index": _live(
            sa.func.avg(sa.cast(t.rating, sa.Float) / sa.cast(t.rating_expectation, sa.Float)),
            [*rated, t.rating_expectation.is_not(None)],
        ).scalar_subquery(),
    }
    row = (await session.execute(sa.select(*(value.label(name) for name, value in columns.items())))).one()._mapping
    return SupportStats(
        start=start,
        end=end,
        opened=row["opened"],
        resolved=row["resolved"],
        backlog={p.name: row[f"backlog_{p.name}"] for p in TicketPriority},
        first_response_met=row["fr_met"],
        first_response_breached=row["fr_breached"],
        resolution_met=row["res_met"],
        resolution_breached=row["res_breached"],
        first_response_time=Durations(row["fr_count"], _round(row["fr_median"]), _round(row["fr_p90"])),
        resolution_time=Durations(row["res_count"], _round(row["res_median"]), _round(row["res_p90"])),
        ratings=row["ratings"],
        satisfied=row["satisfied"],
        average_rating=_round(row["average_rating"]),
        satisfaction_index=_round(row["satisfaction_index"]),
    )
