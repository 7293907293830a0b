"""Churn risk: customers whose recency and frequency scores fell between the two latest
comparable RFM runs (same window and currency) and whose probability alive in the newest
customer-value run is low, ranked by the revenue they brought in the newer run's window.

An assessment compares the candidates (one SQL statement) with the customers already at risk:
the new ones get a row and a ``customer.churn_risk_raised`` event, the ones still at risk get
their figures refreshed (no event), and the ones no longer at risk are cleared. Like the runs it
reads, an assessment covers every customer, whoever asks for it; the rows are the customers'
(a reader sees those of the customers their scope shows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.access import SKIP_OPTION
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import FieldError, ValidationFailed
from crm_graph.core.events import record_event, write_events
from crm_graph.core.pagination import SortKey
from crm_graph.customers.models import Customer
from crm_graph.insights.config import InsightsSettings
from crm_graph.insights.models import ChurnRisk, CustomerValue, CustomerValueRun
from crm_graph.insights.service import locks
from crm_graph.segments.models import RfmRun, RfmScore

NO_RFM_RUNS = "NO_RFM_RUNS"
NO_VALUE_MODEL = "NO_VALUE_MODEL"
EVENT = "customer.churn_risk_raised"

# The list: most revenue first, then by customer (a stable, keyset-paginated order).
RISK_ORDER = [
    SortKey(ChurnRisk.monetary, "monetary", descending=True, parse=Decimal),
    SortKey(ChurnRisk.customer_id, "customer_id"),
]


@dataclass
class Assessment:
    as_of: date
    previous_as_of: date
    raised: int  # newly at risk (one event each)
    still: int  # at risk before and now (no event)
    cleared: int  # at risk before, not any more


def _skip(stmt: Any) -> Any:
    return stmt.execution_options(**{SKIP_OPTION: True})


async def _runs(session: AsyncSession) -> tuple[RfmRun, RfmRun, CustomerValueRun]:
    newest = await session.scalar(_skip(sa.select(RfmRun).order_by(RfmRun.id.desc()).limit(1)))
    previous = None
    if newest is not None:
        previous = await session.scalar(_skip(
            sa.select(RfmRun).where(RfmRun.window_days == newest.window_days, RfmRun.currency == newest.currency,
                                    RfmRun.id < newest.id).order_by(RfmRun.id.desc()).limit(1)))
    if newest is None or previous is None:
        raise ValidationFailed([FieldError(None, NO_RFM_RUNS, "Churn risk compares the two latest RFM runs of one window "
                                           "and currency; there are fewer than two (run rfmAnalysis with recompute).")])
    value = await session.scalar(_skip(sa.select(CustomerValueRun).order_by(CustomerValueRun.id.desc()).limit(1)))
    if value is None:
        raise ValidationFailed([FieldError(None, NO_VALUE_MODEL, "Churn risk needs each customer's probability alive: "
                                           "run refreshCustomerValueModel first.")])
    return newest, previous, value


def candidates_select(newest: RfmRun, previous: RfmRun, value: CustomerValueRun, config: InsightsSettings) -> sa.Select[Any]:
    """Every live customer at risk now, with the figures that say why."""
    now = RfmScore
    before = sa.orm.aliased(RfmScore)
    r_drop = before.recency_score - now.recency_score
    f_drop = before.frequency_score - now.frequency_score
    return _skip(
        sa.select(
            now.customer_id, before.recency_score.label("recency_score_before"), now.recency_score,
            before.frequency_score.label("frequency_score_before"), now.frequency_score, now.recency_days, now.monetary,
            CustomerValue.probability_alive, CustomerValue.clv,
        )
        .join(before, sa.and_(before.customer_id == now.customer_id, before.run_id == previous.id))
        .join(CustomerValue, sa.and_(CustomerValue.customer_id == now.customer_id, CustomerValue.run_id == value.id))
        .join(Customer, sa.and_(Customer.id == now.customer_id, Customer.deleted_at.is_(None)))
        .where(
            now.run_id == newest.id, now.recency_score.is_not(None), before.recency_score.is_not(None),
            r_drop >= 0, f_drop >= 0, r_drop + f_drop >= config.churn_min_score_drop,
            CustomerValue.probability_alive < config.churn_max_probability_alive,
        )
    )


async def assess(session: AsyncSession, *, actor: Actor, config: InsightsSettings) -> Assessment:
    """Compare who is at risk now with who was, store the difference and announce the new ones."""
    await locks.serialise(session, locks.CHURN)
    newest, previous, value = await _runs(session)
    candidates = candidates_select(newest, previous, value, config)
    found = {row.customer_id: row for row in (await session.execute(candidates)).all()}
    rows = (await session.execute(_skip(sa.select(ChurnRisk.customer_id, ChurnRisk.cleared_at.is_(None))))).all()
    open_ids = {cid for cid, is_open in rows if is_open}
    known = {cid for cid, is_open in rows if not is_open}
    at = utcnow()

    def figures(row: Any) -> dict[str, Any]:
        return {
            "assessed_at": at, "rfm_run_id": newest.id, "previous_rfm_run_id": previous.id, "value_run_id": value.id,
            "as_of": newest.as_of, "previous_as_of": previous.as_of, "currency": newest.currency,
            "recency_score_before": row.recency_score_before, "recency_score": row.recency_score,
            "frequency_score_before": row.frequency_score_before, "frequency_score": row.frequency_score,
            "recency_days": row.recency_days, "monetary": row.monetary or Decimal(0),
            "probability_alive": float(row.probability_alive), "clv": row.clv, "clv_currency": value.currency,
        }

    raised = sorted(set(found) - open_ids)
    still = sorted(set(found) & open_ids)
    connection = await session.connection()
    table = ChurnRisk.__table__
    fresh = [{"customer_id": c, "raised_at": at, "cleared_at": None, **figures(found[c])} for c in raised if c not in known]
    if fresh:
        await connection.execute(sa.insert(table), fresh)
    again = [{"customer_id": c, "raised_at": at, "cleared_at": None, **figures(found[c])} for c in raised if c in known]
    await _update_many(connection, again)
    await _update_many(connection, [{"customer_id": c, **figures(found[c])} for c in still])
    cleared = await connection.execute(
        sa.update(table)
        .where(table.c.cleared_at.is_(None), table.c.customer_id.not_in(candidates.with_only_columns(RfmScore.customer_id)))
        .values(cleared_at=at, assessed_at=at))
    await write_events(session, [
        record_event(session, type="customer.churn_risk_raised", entity_type="Customer", entity_id=cid, actor=actor,
                     payload=event_data(cid, figures(found[cid])))
        for cid in raised])
    await session.flush()
    return Assessment(newest.as_of, previous.as_of, len(raised), len(still), int(cleared.rowcount or 0))


async def _update_many(connection: Any, rows: list[dict[str, Any]]) -> None:
    """One ``executemany`` UPDATE of churn-risk rows by customer."""
    if not rows:
        return
    table = ChurnRisk.__table__
    values = {k: sa.bindparam(f"new_{k}") for k in rows[0] if k != "customer_id"}
    stmt = sa.update(table).where(table.c.customer_id == sa.bindparam("key")).values(values)
    await connection.execute(stmt, [{"key": r["customer_id"], **{f"new_{k}": v for k, v in r.items() if k != "customer_id"}}
                                    for r in rows])


def event_data(customer_id: int, f: dict[str, Any]) -> dict[str, Any]:
    return {
        "customerId": customer_id, "asOf": f["as_of"], "previousAsOf": f["previous_as_of"],
        "recencyScore": {"from": f["recency_score_before"], "to": f["recency_score"]},
        "frequencyScore": {"from": f["frequency_score_before"], "to": f["frequency_score"]},
        "daysSinceLastOrder": f["recency_days"], "probabilityAlive": f["probability_alive"],
        "monetary": {"amount": f["monetary"], "currency": f["currency"]},
        "clv": {"amount": f["clv"], "currency": f["clv_currency"]},
    }


def open_risks_select() -> sa.Select[Any]:
    return sa.select(ChurnRisk).where(ChurnRisk.cleared_at.is_(None))


async def risks_for(session: AsyncSession, customer_ids: list[int]) -> dict[int, ChurnRisk]:
    rows = await session.scalars(open_risks_select().where(ChurnRisk.customer_id.in_(customer_ids)))
    return {row.customer_id: row for row in rows}
