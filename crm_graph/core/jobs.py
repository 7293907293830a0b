"""Periodic jobs of the server and the worker: breached service levels, scheduled RFM runs,
the diff of DYNAMIC segments, pruning of delivered events from the outbox and of expired
stored files, and import jobs taken up again after their worker stopped.

Each job runs on its own interval in the process's event loop. Running the same job in several
processes is safe: the SLA check stores each breach once (a guarded UPDATE), the RFM job
takes a PostgreSQL advisory lock and skips when a fresh enough run exists, and the segment diff
holds each segment's row lock while it diffs it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from crm_graph.core.actor import SYSTEM
from crm_graph.core.clock import utcnow
from crm_graph.db.session import Database
from crm_graph.settings import Settings

log = logging.getLogger("crm_graph.jobs")

# An arbitrary, fixed key for pg_try_advisory_xact_lock: one RFM refresh at a time.
RFM_LOCK_KEY = 7_402_114


@dataclass(frozen=True)
class Job:
    name: str
    interval: float
    run: Callable[[], Awaitable[str]]


async def check_sla(db: Database, wake: Callable[[], None] | None = None) -> str:
    from crm_graph.support.service import check_sla_breaches

    async with db.writer() as session, session.begin():
        found = await check_sla_breaches(session, actor=SYSTEM, now=utcnow())
    if found and wake is not None:
        wake()  # deliver the ticket.sla_breached events now
    return f"{found} new breaches"


async def refresh_rfm(db: Database, interval: float) -> str:
    """Store a new RFM run over the last year when the newest is older than ``interval``."""
    from crm_graph.segments import service
    from crm_graph.segments.models import RfmRun

    async with db.writer() as session, session.begin():
        if db.dialect == "postgresql":
            locked = await session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(RFM_LOCK_KEY)))
            if not locked:
                return "another process is refreshing"
        newest = await session.scalar(sa.select(sa.func.max(RfmRun.created_at)))
        if newest is not None and utcnow() - newest < timedelta(seconds=interval):
            return "newest run is fresh"
        analysis = await service.rfm_analysis(session, recompute=True)
    return f"scored {analysis.run.customer_count} customers" if analysis else "no orders to score"


async def diff_dynamic_segments(db: Database, wake: Callable[[], None] | None = None) -> str:
    """Compare each DYNAMIC segment's filter with the membership last seen and announce who
    entered and who left (batched segment.member_added / member_removed events), as the system.

    One short transaction per segment, holding its row lock: a segment another process is
    diffing right now is skipped (PostgreSQL, SKIP LOCKED), and the inserts and deletes report
    only rows they changed themselves, so no change is announced twice.
    """
    from crm_graph.segments import service
    from crm_graph.segments.models import Segment, SegmentKind

    async with db.reader() as session:
        ids = list(await session.scalars(
            sa.select(Segment.id).where(Segment.kind == SegmentKind.DYNAMIC, Segment.deleted_at.is_(None))
            .order_by(Segment.id)))
    diffed = entered = left = 0
    for segment_id in ids:
        async with db.writer() as session, session.begin():
            change = await service.diff_dynamic(session, actor=SYSTEM, segment_id=segment_id)
        if change is not None:
            diffed += 1
            entered += len(change.added)
            left += len(change.removed)
    if (entered or left) and wake is not None:
        wake()  # deliver the membership events now
    skipped = f", {len(ids) - diffed} skipped (invalid or busy)" if diffed < len(ids) else ""
    return f"{diffed} dynamic segments diffed: {entered} entered, {left} left{skipped}"


async def prune_outbox(db: Database, retention_days: int) -> str:
    """Delete dispatched events older than the retention whose every delivery succeeded (their
    deliveries go with them). Events with a delivery pending, in flight or dead are kept."""
    from crm_graph.core.events import DeliveryStatus, EventDelivery, OutboxEvent

    cutoff = utcnow() - timedelta(days=retention_days)
    unsettled = sa.exists().where(
        EventDelivery.event_pk == OutboxEvent.id, EventDelivery.status != DeliveryStatus.DELIVERED
    )
    async with db.writer() as session, session.begin():
        result = await session.execute(
            sa.delete(OutboxEvent).where(
                OutboxEvent.dispatched_at.is_not(None), OutboxEvent.occurred_at < cutoff, sa.not_(unsettled)
            )
        )
    return f"{result.rowcount} events older than {retention_days} days removed"


async def resume_imports(db: Database) -> str:
    """Take up the import jobs whose worker stopped (its lease expired): crm_graph/imports."""
    from crm_graph.imports.service import resume_stale

    return await resume_stale(db)


async def prune_files(db: Database) -> str:
    """Delete stored files past their expiry (import reports, exports: crm_graph/files)."""
    from crm_graph.files.service import prune

    async with db.writer() as session, session.begin():
        removed = await prune(session, utcnow())
    return f"{removed} expired files removed" if removed else ""


def default_jobs(db: Database, settings: Settings, wake: Callable[[], None] | None = None) -> list[Job]:
    jobs = []
    if settings.sla_check_interval > 0:
        jobs.append(Job("sla-breaches", settings.sla_check_interval, lambda: check_sla(db, wake)))
    if settings.rfm_refresh_interval > 0:
        jobs.append(Job("rfm-refresh", min(settings.rfm_refresh_interval, 3600.0),
                        lambda: refresh_rfm(db, settings.rfm_refresh_interval)))
    if settings.segment_diff_interval > 0:
        jobs.append(Job("segment-diff", settings.segment_diff_interval, lambda: diff_dynamic_segments(db, wake)))
    if settings.outbox_retention_days > 0:
        jobs.append(Job("outbox-prune", 3600.0, lambda: prune_outbox(db, settings.outbox_retention_days)))
    jobs.append(Job("files-prune", 3600.0, lambda: prune_files(db)))
    jobs.append(Job("import-resume", 60.0, lambda: resume_imports(db)))
    return jobs


class Scheduler:
    """Runs each job once at start, then every ``interval`` seconds, until stopped.

    A job that fails is logged and tried again at its next turn; it never stops the others.
    """

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        self._tasks: list[asyncio.Task[Any]] = []
        self.metrics: Any = None  # the app's metrics (crm_graph/observability/metrics.py), if any

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(job), name=f"crm-job-{job.name}") for job in self.jobs]

    async def _loop(self, job: Job) -> None:
        while True:
            await self.run_once(job, self.metrics)
            await asyncio.sleep(job.interval)

    @staticmethod
    async def run_once(job: Job, metrics: Any = None) -> str | None:
        """One run of ``job``, counted in ``metrics`` (``crm_job_runs_total``) when given."""
        try:
            outcome = await job.run()
        except Exception:  # noqa: BLE001 - a failing job is logged and retried at its next turn
            log.exception("job %s failed", job.name)
            if metrics is not None:
                metrics.job_runs.labels(job.name, "failed").inc()
            return None
        if metrics is not None:
            metrics.job_runs.labels(job.name, "done" if outcome else "idle").inc()
        if outcome:
            log.info("job %s: %s", job.name, outcome)
        else:  # a run with nothing to do: not worth a line every few seconds
            log.debug("job %s: nothing to do", job.name)
        return outcome

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []
