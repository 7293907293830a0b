"""The loyalty job of `serve` and `crm-graph worker`, every CRM_LOYALTY_JOB_INTERVAL seconds:
expire lots past their date, announce points about to expire, and review tiers whose period
ended. Safe in several processes at once: each change takes the customer's account lock and
has its own idempotency key (``expire:<lot>``)."""

from __future__ import annotations

from typing import Any

from crm_graph.core.jobs import Job
from crm_graph.loyalty import service
from crm_graph.loyalty.config import loyalty_settings


async def run(db: Any) -> str:
    async with db.writer() as session, session.begin():
        expired = await service.expire_due(session)
    async with db.writer() as session, session.begin():
        noticed = await service.notify_expiring(session)
    async with db.writer() as session, session.begin():
        reviewed = await service.review_due_tiers(session)
    return f"{expired} lots expired, {noticed} customers told of expiring points, {reviewed} tiers reviewed"


def jobs_of(app: Any) -> list[Job]:
    interval = loyalty_settings().job_interval
    db = app.state.db
    return [Job("loyalty", interval, lambda: run(db))] if interval else []
