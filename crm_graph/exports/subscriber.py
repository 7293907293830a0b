"""The subscriber that runs export jobs: ``export.requested`` events, delivered by the
dispatcher after the job's transaction committed (``crm_graph.core.subscribers``).

Why the outbox and not the periodic job scheduler: the request is durable from the moment
``startExport`` commits, a run that dies with its process is run again when its delivery is
claimed again, and the job starts as soon as the dispatcher is woken instead of at the next tick.

A run is a task of its own: the delivery waits for it up to ``INLINE_WAIT`` seconds (a small
export is done within its delivery) and is otherwise postponed while the task goes on, so a big
export never holds up the dispatcher's rounds (webhooks, plugins). A later claim of the same
delivery finds the task finished (delivered) or still running (postponed again); in another
process it finds the job RUNNING and leaves it to its owner, or DONE.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from crm_graph.core.hooks import scope_narrowing
from crm_graph.core.subscribers import Claim, EventRow, Result, Target, deliver_each
from crm_graph.exports import service
from crm_graph.exports.models import ExportJob, ExportStatus

log = logging.getLogger("crm_graph.exports")

# How long one delivery waits for its run before it is postponed (the run goes on).
INLINE_WAIT = 2.0


class ExportRuns:
    kind = "exports"

    def __init__(self, plugins: Any = None, inline_wait: float = INLINE_WAIT) -> None:
        self.narrow = scope_narrowing(plugins)  # plugins' crm_scope_sql, as requests get it
        self.inline_wait = inline_wait
        self.runs: dict[int, asyncio.Task[Any]] = {}
        self._db: Any = None

    async def fan_out(self, db: Any, session: Any, events: Sequence[EventRow]) -> list[Target]:
        return [Target(e.pk, "run") for e in events if e.type == service.REQUESTED]

    def servable(self) -> sa.ColumnElement[bool] | None:
        return None

    async def deliver(self, db: Any, claims: Sequence[Claim], deadline: float) -> list[Result]:
        self._db = db
        loop = asyncio.get_running_loop()

        async def run(claim: Claim) -> Result:
            job_id = int(claim.event.entity_pk)
            task = self.runs.get(job_id)
            if task is None:
                task = self.runs[job_id] = asyncio.create_task(
                    service.run_export(db, job_id, narrow=self.narrow), name=f"crm-export-{job_id}")
            wait = max(0.0, min(self.inline_wait, deadline - loop.time()))
            done, _ = await asyncio.wait({task}, timeout=wait)
            if not done:
                return Result(claim, "postponed")
            del self.runs[job_id]
            outcome = task.result()  # run_export records its own failures on the job
            if outcome is not None and outcome.status is ExportStatus.RUNNING:
                return Result(claim, "postponed")  # another process is running it
            return Result(claim, "delivered")  # DONE or FAILED: the job says which

        return await deliver_each(claims, deadline, run)

    async def aclose(self) -> None:
        """Stop the runs still going (the server shuts down) and put their jobs back to PENDING,
        so the next claim of their deliveries runs them at once, here or in another process."""
        running = [job_id for job_id, task in self.runs.items() if not task.done()]
        for task in self.runs.values():
            task.cancel()
        await asyncio.gather(*self.runs.values(), return_exceptions=True)
        self.runs.clear()
        if running and self._db is not None:
            try:
                async with self._db.writer() as session, session.begin():
                    await session.execute(sa.update(ExportJob).where(
                        ExportJob.id.in_(running), ExportJob.status == ExportStatus.RUNNING).values(status=ExportStatus.PENDING))
            except Exception:  # noqa: BLE001 - at worst they are run again once STALE_AFTER has passed
                log.exception("could not put the interrupted export jobs %s back to PENDING", running)
