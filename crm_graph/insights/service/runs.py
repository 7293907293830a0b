"""Customer-value runs: read the inputs (SQL), fit the two models (numpy/scipy), store the
parameters and every customer's figures, and read them back.

A run is computed over every customer, whoever asks for it, like an RFM run: the parameters
describe the whole customer base. Its per-customer rows follow the customer's visibility (they
are guarded as the customer's children), so a reader sees the figures of the customers their
scope shows and no others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import errors as codes
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, FieldError, ValidationFailed
from crm_graph.core.money import InvalidCurrency, currency_code
from crm_graph.insights.models import CustomerValue, CustomerValueRun, TimeUnit
from crm_graph.insights.service import fit
from crm_graph.insights.service.summary import Summary, read_summary

# Codes of this domain (docs/insights.md).
NO_ORDERS = "NO_ORDERS"
NOT_ENOUGH_DATA = "NOT_ENOUGH_DATA"
FIT_FAILED = "FIT_FAILED"

MAX_HORIZON_DAYS = 36600
MAX_DISCOUNT_RATE = 10.0


@dataclass(frozen=True)
class ValueConfig:
    """What a run needs from the settings (``CRM_CLV_*``)."""

    horizon_days: int = 365
    discount_rate: float = 0.10
    min_repeat_customers: int = 20


def config_from(settings: Any) -> ValueConfig:
    return ValueConfig(
        horizon_days=settings.clv_horizon_days, discount_rate=settings.clv_discount_rate,
        min_repeat_customers=settings.clv_min_repeat_customers,
    )


def _fail(field: str | None, code: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field, code, message)])


@dataclass
class Computed:
    """A fitted run not stored yet: its parameters and every customer's row (without run id)."""

    run: CustomerValueRun
    rows: list[dict[str, Any]]


async def refresh_model(
    session: AsyncSession, *, as_of: date | None = None, time_unit: TimeUnit = TimeUnit.WEEK,
    currency: str | None = None, config: ValueConfig = ValueConfig(),
) -> CustomerValueRun:
    """``compute_model`` and ``store_model`` in one session (scripts, tests)."""
    computed = await compute_model(session, as_of=as_of, time_unit=time_unit, currency=currency, config=config)
    return await store_model(session, computed)


async def compute_model(
    session: AsyncSession, *, as_of: date | None = None, time_unit: TimeUnit = TimeUnit.WEEK,
    currency: str | None = None, config: ValueConfig = ValueConfig(),
) -> Computed:
    """Read the inputs from the orders up to and including ``as_of`` (default today, UTC) and fit
    both models; writes nothing, so a read session will do. The fit and the predictions run in
    a worker thread: they take seconds on a large customer base, which the event loop must not
    wait for. Raises ``ValidationFailed`` with the input field."""
    today = utcnow().date()
    as_of = as_of or today
    errors = ErrorCollector()
    if as_of > today:
        errors.add("asOf", codes.INVALID_VALUE, f"asOf is in the future ({as_of.isoformat()}); the model can only "
                   f"learn from orders that happened, up to today ({today.isoformat()}).")
    if currency is not None:
        try:
            currency = currency_code(currency)
        except InvalidCurrency as exc:
            errors.add("currency", codes.INVALID_VALUE, str(exc))
    errors.raise_if_any()

    summary = await read_summary(session, as_of=as_of, currency=currency)
    if summary.currency is None:
        if currency is not None:
            raise _fail("currency", NO_ORDERS, f"No counted order in {currency} on or before {as_of.isoformat()}.")
        raise _fail("asOf", NO_ORDERS, f"No counted order (paid or fulfilled) on or before {as_of.isoformat()}: nothing to learn from.")
    run = CustomerValueRun(as_of=as_of, time_unit=time_unit, currency=summary.currency, customer_count=len(summary),
                           horizon_days=config.horizon_days, discount_rate=config.discount_rate)
    rows = await asyncio.to_thread(_fit_and_predict, run, summary, config)
    return Computed(run, rows)


async def store_model(session: AsyncSession, computed: Computed) -> CustomerValueRun:
    """Store a computed run and its rows: one INSERT of the run, one ``executemany`` of the rows
    (a Core INSERT: the ORM's bulk path would cut it into many statements). A short write
    transaction, whatever the time the fit took."""
    run = computed.run
    run.created_at = utcnow()
    session.add(run)
    await session.flush()
    for row in computed.rows:
        row["run_id"] = run.id
    connection = await session.connection()
    await connection.execute(sa.insert(CustomerValue.__table__), computed.rows)
    return run


def _fit_and_predict(run: CustomerValueRun, summary: Summary, config: ValueConfig) -> list[dict[str, Any]]:
    """Fit both models into ``run`` (its parameters) and return every customer's row."""
    repeat = int(np.count_nonzero(summary.frequency > 0))
    spending = (summary.frequency > 0) & (summary.spend > 0)
    if min(repeat, int(np.count_nonzero(spending))) < config.min_repeat_customers:
        raise _fail("asOf", NOT_ENOUGH_DATA,
                    f"{min(repeat, int(np.count_nonzero(spending)))} customers bought again (on another day, for more than "
                    f"nothing) in {run.currency} up to {run.as_of.isoformat()}; the models need at least "
                    f"{config.min_repeat_customers} (CRM_CLV_MIN_REPEAT_CUSTOMERS).")
    unit = run.time_unit.days
    x, t_x, T = summary.frequency, summary.recency_days / unit, summary.age_days / unit
    try:
        purchases = _fit_purchases(x, t_x, T)
        spend = fit.fit_gamma_gamma(x[spending], summary.spend[spending])
    except fit.FitFailed as exc:
        raise _fail("asOf", FIT_FAILED, f"The models could not be fitted: {exc}.") from None
    if spend.q <= 1:
        raise _fail("asOf", FIT_FAILED, "Spend varies too much between customers for a mean to exist (q <= 1); "
                    "CLV cannot be estimated from these orders.")
    run.repeat_customers = repeat
    run.r, run.alpha, run.a, run.b, run.log_likelihood = (
        purchases.r, purchases.alpha, purchases.a, purchases.b, purchases.log_likelihood)
    run.p, run.q, run.gamma, run.spend_log_likelihood = spend.p, spend.q, spend.gamma, spend.log_likelihood
    return _rows(run, summary, purchases, spend)


def _fit_purchases(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> fit.BgNbd:
    """The BG/NBD fit over the distinct (x, t_x, T) with their counts: customers of one cohort
    share many, and the likelihood is then evaluated once per distinct triple."""
    triples, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    return fit.fit_bgnbd(triples[:, 0], triples[:, 1], triples[:, 2], counts)


def _rows(run: CustomerValueRun, summary: Summary, purchases: fit.BgNbd, spend: fit.GammaGamma) -> list[dict[str, Any]]:
    unit = run.time_unit.days
    x, t_x, T, m = summary.frequency, summary.recency_days / unit, summary.age_days / unit, summary.spend
    alive = fit.probability_alive(purchases, x, t_x, T)
    expected = fit.expected_purchases(purchases, run.horizon_days / unit, x, t_x, T)
    value = fit.expected_spend(spend, x, m)
    lifetime = fit.clv(purchases, spend, x, t_x, T, m, horizon_days=run.horizon_days,
                       discount_rate=run.discount_rate, days_per_unit=unit)
    return [
        {
            "customer_id": int(cid), "frequency": int(fx), "recency_days": int(rd), "age_days": int(ad),
            "average_spend": avg, "expected_spend": amount(v), "probability_alive": float(pa),
            "expected_purchases": float(ep), "clv": amount(c),
        }
        for cid, fx, rd, ad, avg, v, pa, ep, c in zip(
            summary.customer_ids, summary.frequency, summary.recency_days, summary.age_days, summary.average_spend,
            value, alive, expected, lifetime, strict=True,
        )
    ]


def amount(value: float) -> Decimal:
    """A model estimate as a stored amount: four decimal places, like every amount column."""
    return Decimal(repr(float(value))).quantize(Decimal("0.0001"))


# --- reading ---------------------------------------------------------------------------------------


async def latest_run(session: AsyncSession) -> CustomerValueRun | None:
    return await session.scalar(sa.select(CustomerValueRun).order_by(CustomerValueRun.id.desc()).limit(1))


async def latest_run_id(session: AsyncSession) -> int | None:
    return await session.scalar(sa.select(sa.func.max(CustomerValueRun.id)))


async def values_for(session: AsyncSession, customer_ids: Iterable[int]) -> dict[int, tuple[CustomerValue, CustomerValueRun]]:
    """Each customer's row in the newest run (the customers the session's scope shows)."""
    run = await latest_run(session)
    if run is None:
        return {}
    rows = await session.scalars(
        sa.select(CustomerValue).where(CustomerValue.run_id == run.id, CustomerValue.customer_id.in_(list(customer_ids)))
    )
    return {row.customer_id: (row, run) for row in rows}


def models_of(run: CustomerValueRun) -> tuple[fit.BgNbd, fit.GammaGamma]:
    return (fit.BgNbd(run.r, run.alpha, run.a, run.b, run.log_likelihood),
            fit.GammaGamma(run.p, run.q, run.gamma, run.spend_log_likelihood))


def check_horizon(days: int, field: str) -> None:
    if not 1 <= days <= MAX_HORIZON_DAYS:
        raise _fail(field, codes.INVALID_VALUE, f"{field} is a whole number of days from 1 to {MAX_HORIZON_DAYS}.")


def check_discount_rate(rate: float, field: str) -> None:
    if not (0 <= rate <= MAX_DISCOUNT_RATE) or rate != rate:
        raise _fail(field, codes.INVALID_VALUE, f"{field} is an annual rate from 0 to {MAX_DISCOUNT_RATE:g} (0.1 = 10%).")


def predict(value: CustomerValue, run: CustomerValueRun, *, days: int | None = None,
            discount_rate: float | None = None) -> tuple[float, Decimal]:
    """Expected purchases and CLV of one stored customer over ``days`` (default: the run's horizon)
    at ``discount_rate`` (default: the run's)."""
    purchases, spend = models_of(run)
    unit = run.time_unit.days
    days = run.horizon_days if days is None else days
    rate = run.discount_rate if discount_rate is None else discount_rate
    x, t_x, T = float(value.frequency), value.recency_days / unit, value.age_days / unit
    m = float(value.average_spend or 0)
    expected = float(fit.expected_purchases(purchases, days / unit, x, t_x, T))
    lifetime = float(fit.clv(purchases, spend, x, t_x, T, m, horizon_days=days, discount_rate=rate, days_per_unit=unit))
    return expected, amount(lifetime)
