"""Customer-value analyses: stored RFM runs and the live Pareto view of revenue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import errors as codes
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, ValidationFailed
from crm_graph.segments import rfm
from crm_graph.segments.models import RfmRun, Segment, SegmentKind, ValueTier
from crm_graph.segments.service.membership import refresh_snapshot
from crm_graph.segments.values import main_currency, ranked_revenue, revenue_by_customer, tier_case

DEFAULT_WINDOW_DAYS = 365


@dataclass
class RfmAnalysis:
    run: RfmRun
    groups: list[rfm.GroupRow]
    grid: list[rfm.GridCell]
    previous: RfmRun | None
    movements: list[rfm.Movement]


async def _params(session: AsyncSession, as_of: date | None, window_days: int | None, currency: str | None,
                  ) -> tuple[date, int, str | None]:
    as_of = as_of or utcnow().date()
    window_days = DEFAULT_WINDOW_DAYS if window_days is None else window_days
    errors = ErrorCollector()
    if not 1 <= window_days <= 36600:
        errors.add("windowDays", codes.INVALID_VALUE, "windowDays is between 1 and 36600.")
    if currency is not None:
        from crm_graph.core.money import InvalidCurrency, currency_code

        try:
            currency = currency_code(currency)
        except InvalidCurrency as exc:
            errors.add("currency", codes.INVALID_VALUE, str(exc))
    errors.raise_if_any()
    return as_of, window_days, currency or await main_currency(session, as_of, window_days)


async def rfm_analysis(
    session: AsyncSession, *, as_of: date | None = None, window_days: int | None = None,
    currency: str | None = None, recompute: bool = False,
) -> RfmAnalysis | None:
    """The stored run for these parameters, computed and stored first when there is none (or
    when ``recompute``). None when no order counts in the window at all."""
    as_of, window_days, currency = await _params(session, as_of, window_days, currency)
    if currency is None:
        return None
    run = None if recompute else await rfm.find_run(session, as_of=as_of, window_days=window_days, currency=currency)
    if run is None:
        run = await rfm.compute_run(session, as_of=as_of, window_days=window_days, currency=currency)
    previous = await rfm.previous_run(session, run)
    # What the reader may see: totals and shares of the customers in their scope only.
    shown = await _as_seen(session, run)
    return RfmAnalysis(
        run=shown,
        groups=await rfm.group_table(session, run, shown.revenue),
        grid=await rfm.grid(session, run),
        previous=await _as_seen(session, previous) if previous else None,
        movements=await rfm.movements(session, run, previous) if previous else [],
    )


async def _as_seen(session: AsyncSession, run: Any) -> Any:
    """A detached copy of a stored run whose totals count only the customers the session's
    scope shows (for an unrestricted scope, the stored ones)."""
    shown = type(run)(**{c.key: getattr(run, c.key) for c in type(run).__table__.columns})
    shown.customer_count, shown.revenue = await rfm.totals(session, run)
    return shown


@dataclass
class TierRow:
    tier: ValueTier
    customers: int
    revenue: Decimal
    share_of_revenue: Decimal


@dataclass
class ValueConcentration:
    as_of: date
    window_days: int
    currency: str
    customers: int
    revenue: Decimal
    tiers: list[TierRow]
    top_10_percent_share: Decimal
    top_20_percent_share: Decimal


async def value_concentration(
    session: AsyncSession, *, as_of: date | None = None, window_days: int | None = None, currency: str | None = None
) -> ValueConcentration | None:
    """The Pareto view of revenue in the window, computed live in SQL."""
    as_of, window_days, currency = await _params(session, as_of, window_days, currency)
    if currency is None:
        return None
    ranked = ranked_revenue(revenue_by_customer(as_of, window_days, currency).subquery("revenue"))
    tier = tier_case(ranked.c.monetary, ranked.c.cumulative, ranked.c.total).label("tier")
    tiered = sa.select(ranked, tier).subquery("tiered")
    rows = (
        await session.execute(
            sa.select(tiered.c.tier, sa.func.count(), sa.func.sum(tiered.c.monetary)).group_by(tiered.c.tier)
        )
    ).all()
    top = (
        await session.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(tiered.c.monetary), 0),
                sa.func.coalesce(sa.func.sum(sa.case((tiered.c.position * 10 <= tiered.c.customers + 9, tiered.c.monetary), else_=0)), 0),
                sa.func.coalesce(sa.func.sum(sa.case((tiered.c.position * 5 <= tiered.c.customers + 4, tiered.c.monetary), else_=0)), 0),
            )
        )
    ).one()
    count, total = int(top[0]), _amount(top[1])
    found = {ValueTier[name]: (n, _amount(revenue)) for name, n, revenue in rows}

    def share(part: Decimal) -> Decimal:
        return (part / total).quantize(Decimal("0.0001")) if total else Decimal(0)

    tiers = [TierRow(t, found.get(t, (0, Decimal(0)))[0], found.get(t, (0, Decimal(0)))[1],
                     share(found.get(t, (0, Decimal(0)))[1])) for t in ValueTier]
    return ValueConcentration(as_of, window_days, currency, count, total, tiers, share(_amount(top[2])), share(_amount(top[3])))


def _amount(value: Any) -> Decimal:
    """Sums of amount columns come back as Decimal, except through CASE on SQLite (scaled integers)."""
    from crm_graph.core.money import SCALE

    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    return Decimal(int(value)).scaleb(-SCALE)


async def refresh_all(session: AsyncSession, *, actor: Actor, window_days: int = DEFAULT_WINDOW_DAYS) -> dict[str, int]:
    """Refresh every valid SNAPSHOT segment and store a new RFM run for today."""
    refreshed = 0
    snapshots = await session.scalars(
        sa.select(Segment).where(Segment.kind == SegmentKind.SNAPSHOT, Segment.deleted_at.is_(None))
    )
    for segment in list(snapshots):
        try:
            async with session.begin_nested():
                await refresh_snapshot(session, segment, actor)
            refreshed += 1
        except ValidationFailed:
            continue
    analysis = await rfm_analysis(session, window_days=window_days, recompute=True)
    return {"snapshots": refreshed, "rfmCustomers": analysis.run.customer_count if analysis else 0}
