"""The subscriber that runs export jobs: ``export.requested`` events, delivered by the
dispatcher after the job's transaction committed (``crm_graph.core.subscribers``).

Why the outbox and not the periodic job scheduler: the request is durable from the moment
``startExport`` commits, a run that dies with its process is retried by the dispatcher with its
usual backoff, and the job starts as soon as the dispatcher is woken instead of at the next tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from crm_graph.core.hooks import scope_narrowing
from crm_graph.core.subscribers import Claim, EventRow, Result, Target, deliver_each
from crm_graph.exports import service
from crm_graph.exports.models import ExportStatus


class ExportRuns:
    kind = "exports"

    def __init__(self, plugins: Any = None) -> None:
        self.narrow = scope_narrowing(plugins)  # plugins' crm_scope_sql, as requests get it

    async def fan_out(self, db: Any, session: Any, events: Sequence[EventRow]) -> list[Target]:
        return [Target(e.pk, "run") for e in events if e.type == service.REQUESTED]

    def servable(self) -> sa.ColumnElement[bool] | None:
        return None

    async def deliver(self, db: Any, claims: Sequence[Claim], deadline: float) -> list[Result]:
        async def run(claim: Claim) -> Result:
            job_id = int(claim.event.entity_pk)
            outcome = await service.run_export(db, job_id, narrow=self.narrow)
            if outcome is not None and outcome.status is ExportStatus.RUNNING:
                return Result(claim, "postponed")
            return Result(claim, "delivered")  # DONE or FAILED: the job says which

        return await deliver_each(claims, deadline, run)

    async def aclose(self) -> None:
        return None
