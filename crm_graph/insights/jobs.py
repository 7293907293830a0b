"""The insights job of `serve` and `crm-graph worker`: every CRM_INSIGHTS_JOB_INTERVAL seconds
(checked hourly, so several processes share one schedule) a lifecycle run over every customer,
a churn-risk assessment and a run of product association rules, as the system."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from crm_graph.core.actor import SYSTEM
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ValidationFailed
from crm_graph.core.jobs import Job
from crm_graph.insights.config import InsightsSettings, insights_settings
from crm_graph.insights.models import LifecycleRun
from crm_graph.insights.service import associations, churn, lifecycle


async def run(db: Any, config: InsightsSettings) -> str:
    async with db.writer() as session, session.begin():
        newest = await session.scalar(sa.select(sa.func.max(LifecycleRun.created_at)).where(LifecycleRun.complete))
        if newest is not None and utcnow() - newest < timedelta(seconds=config.job_interval):
            return "newest lifecycle run is fresh"
        stages = await lifecycle.refresh_stages(session, actor=SYSTEM, config=config)
    try:
        async with db.writer() as session, session.begin():
            risks = await churn.assess(session, actor=SYSTEM, config=config)
        assessed = f"{risks.raised} new churn risks"
    except ValidationFailed as exc:
        assessed = f"no churn assessment ({exc.errors[0].code})"
    async with db.writer() as session, session.begin():
        rules = await associations.refresh_rules(session, config=config)
    return f"{stages.customer_count} lifecycle stages ({stages.changed} changed), {assessed}, {rules.rule_count} product rules"


def jobs_of(app: Any) -> list[Job]:
    config = insights_settings()
    db = app.state.db
    return [Job("insights", min(config.job_interval, 3600.0), lambda: run(db, config))] if config.job_interval else []
