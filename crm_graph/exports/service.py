"""Rules of exports: starting an export job, running it, and reading jobs back.

``start_export`` checks what it can at once (the permission, the filter) and records the job
with an ``export.requested`` event in the same transaction. The ``ExportRuns`` subscriber
(crm_graph/exports/subscriber.py) picks the event up after commit and calls ``run_export``: so a
crash before the file is stored leaves the event undelivered, and the dispatcher runs the job
again (from the start: nothing is stored until the whole file is written).

A run reads with the requester's access, resolved again from its principal when the job runs:
the same scope and the same list selects (``customer_select``, ``order_select``, ...) the
GraphQL lists use, so the file holds exactly the rows the requester's list would show. Rows are
read in keyset pages of ``PAGE_SIZE`` ids as Core rows (never ORM objects) and written page by
page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import access
from crm_graph.core.access import AccessDenied
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import FieldError, ValidationFailed
from crm_graph.core.events import record_event, register_event_type
from crm_graph.core.filters import FilterError
from crm_graph.exports.datasets import DATASETS, Dataset, count_select, rows_of
from crm_graph.exports.models import ExportEntity, ExportFormat, ExportJob, ExportStatus
from crm_graph.exports.writers import CONTENT_TYPES, EXTENSIONS, writer_for
from crm_graph.files import service as files

log = logging.getLogger("crm_graph.exports")

INVALID_FILTER = "INVALID_FILTER"
PAGE_SIZE = 1000
# A stored export is kept this long, then pruned with the other expired files.
FILE_RETENTION = timedelta(days=7)
# A run that fails this many times (the process died each time) is marked FAILED.
MAX_ATTEMPTS = 3
REQUESTED = "export.requested"
# A RUNNING job whose run started longer ago than this is taken to have died with its process,
# and is run again; a younger one is left to the delivery running it.
STALE_AFTER = timedelta(minutes=10)

register_event_type(REQUESTED, "An export job was started (`startExport`); the file is written in the background.")

# The permission object each entity's rows belong to: the requester needs ``<object>:export``.
PERMISSION_OBJECTS = {
    ExportEntity.CUSTOMERS: "customers",
    ExportEntity.ORDERS: "orders",
    ExportEntity.ORDER_LINES: "orders",
    ExportEntity.OPPORTUNITIES: "opportunities",
    ExportEntity.TICKETS: "tickets",
}


def dataset(entity: ExportEntity) -> Dataset:
    return DATASETS[entity]


async def check_filter(session: AsyncSession, entity: ExportEntity, filter: Mapping[str, Any] | None, field: str = "filter") -> None:
    """Compile ``filter`` as the entity's list would; ``ValidationFailed`` (INVALID_FILTER) if it cannot."""
    if filter is not None and not isinstance(filter, Mapping):
        raise ValidationFailed([FieldError(field, INVALID_FILTER, "A filter is an object, as the entity's list takes it.")])
    try:
        await dataset(entity).base(session, filter or None)
    except FilterError as exc:
        path = exc.path.replace("filter", field, 1) if exc.path.startswith("filter") else f"{field}.{exc.path}"
        raise ValidationFailed([FieldError(path, INVALID_FILTER, exc.reason)]) from None


async def start_export(
    session: AsyncSession, *, actor: Actor, entity: ExportEntity, format: ExportFormat,
    filter: Mapping[str, Any] | None = None, filter_field: str = "filter",
) -> ExportJob:
    """Record an export job for ``actor`` and ask for it to run (``export.requested``)."""
    obj = PERMISSION_OBJECTS[entity]
    if not actor.can(obj, "export"):
        raise AccessDenied(f"Exporting {obj} needs the `{obj}:export` permission.", "entity")
    if actor.principal is None:
        raise AccessDenied("Only a user or an API key of this server can start an export (the file is theirs).", "entity")
    await check_filter(session, entity, filter, filter_field)
    job = ExportJob(entity=entity, format=format, filter=dict(filter) if filter else None, status=ExportStatus.PENDING,
                    principal=actor.principal, rows_done=0, attempts=0, created_at=utcnow())
    session.add(job)
    await session.flush()
    record_event(session, type=REQUESTED, entity_type="ExportJob", entity_id=job.id, actor=actor,
                 payload={"entity": entity.name, "format": format.name})
    return job


async def get_job(session: AsyncSession, *, actor: Actor, job_id: int) -> ExportJob | None:
    """The job, for the principal that started it only (anyone else: None, as if missing)."""
    job = await session.get(ExportJob, job_id)
    if job is None or actor.principal is None or job.principal != actor.principal:
        return None
    return job


async def jobs_by_ids(session: AsyncSession, ids: list[int]) -> dict[int, ExportJob]:
    rows = await session.scalars(sa.select(ExportJob).where(ExportJob.id.in_(ids)))
    return {j.id: j for j in rows}


async def stored_file(session: AsyncSession, job: ExportJob) -> Any:
    if job.file_id is None or job.status is not ExportStatus.DONE:
        return None
    return await files.get(session, job.file_id, with_content=False)


# --- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    job_id: int
    status: ExportStatus
    rows: int = 0
    file_id: int | None = None
    error: str | None = None


class JobFailed(Exception):
    """A run that cannot succeed (the requester cannot act any more, the filter no longer compiles)."""


def file_name(job: ExportJob) -> str:
    stamp = job.created_at.strftime("%Y%m%d-%H%M%S")
    return f"{dataset(job.entity).file_stem}-{stamp}.{EXTENSIONS[job.format]}"


async def _scope(session: AsyncSession, principal: str | None, narrow: Callable[..., Any] | None) -> access.Scope | None:
    """The requester's scope now; None for a job of the system (every row)."""
    if principal is None:
        return None
    actor = await access.principal_actor(session, principal)
    if actor is None:
        raise JobFailed("The requester can no longer sign in.")
    return access.Scope(actor, sharing=await access.sharing_defaults(session), narrow=narrow)


async def produce(
    db: Any, *, entity: ExportEntity, format: ExportFormat, filter: Mapping[str, Any] | None,
    scope: access.Scope | None, progress: Callable[[int, int | None], Any] | None = None,
    page_size: int = PAGE_SIZE,
) -> tuple[bytes, int]:
    """Write the export file and return ``(content, rows)``. Reads through ``scope`` (None: as
    the system). ``progress(rows_done, rows_total)`` is awaited after each page."""
    data = dataset(entity)
    info = {access.SCOPE_KEY: scope} if scope is not None else {}
    writer = writer_for(format, data.columns, data.file_stem)
    done = 0
    async with db.reader(info=info) as session:
        try:
            base = await data.base(session, filter or None)
        except FilterError as exc:
            raise JobFailed(f"The filter no longer applies: {exc}") from None
        total = int(await session.scalar(count_select(data, base)) or 0)
        if progress is not None:
            await progress(0, total)
        after = 0
        while True:
            rows = await rows_of(session, data, base, after, page_size)
            if not rows:
                break
            writer.write(rows)
            done += len(rows)
            after = rows[-1]["id"]
            if progress is not None:
                await progress(done, total)
            if len(rows) < page_size:
                break
    return writer.finish(), done


async def run_export(db: Any, job_id: int, *, narrow: Callable[..., Any] | None = None, page_size: int = PAGE_SIZE) -> Outcome | None:
    """Run one job to its end: DONE with its file, or FAILED with a reason. A job already DONE
    or FAILED is left alone (a delivery repeated); None when there is no such job."""
    async with db.writer() as session, session.begin():
        job = await session.get(ExportJob, job_id, with_for_update=db.dialect == "postgresql")
        if job is None:
            return None
        if job.status in (ExportStatus.DONE, ExportStatus.FAILED):
            return Outcome(job.id, job.status, job.rows_done, job.file_id, job.error)
        if job.status is ExportStatus.RUNNING and job.started_at is not None and job.started_at > utcnow() - STALE_AFTER:
            return Outcome(job.id, job.status, job.rows_done)  # another delivery of it is running now
        if job.attempts >= MAX_ATTEMPTS:
            job.status, job.finished_at = ExportStatus.FAILED, utcnow()
            job.error = f"The export stopped {job.attempts} times before it was done; start it again."
            return Outcome(job.id, job.status, error=job.error)
        job.status, job.started_at, job.attempts = ExportStatus.RUNNING, utcnow(), job.attempts + 1
        job.rows_done = 0
        entity, fmt, filter, principal = job.entity, job.format, job.filter, job.principal
        name = file_name(job)

    async def progress(done: int, total: int | None) -> None:
        async with db.writer() as s, s.begin():
            await s.execute(sa.update(ExportJob).where(ExportJob.id == job_id).values(rows_done=done, rows_total=total))

    try:
        async with db.reader() as session:
            scope = await _scope(session, principal, narrow)
        content, rows = await produce(db, entity=entity, format=fmt, filter=filter, scope=scope,
                                      progress=progress, page_size=page_size)
    except JobFailed as exc:
        return await _finish_failed(db, job_id, str(exc))
    except Exception:  # noqa: BLE001 - a failed run is recorded on the job; the log has the details
        log.exception("export job %s failed", job_id)
        return await _finish_failed(db, job_id, "The export failed; see the server log, or start it again.")
    async with db.writer() as session, session.begin():
        stored = await files.store(session, purpose="export", name=name, content_type=CONTENT_TYPES[fmt], content=content,
                                   owner=principal, expires_at=utcnow() + FILE_RETENTION)
        await session.execute(sa.update(ExportJob).where(ExportJob.id == job_id).values(
            status=ExportStatus.DONE, rows_done=rows, rows_total=rows, file_id=stored.id, finished_at=utcnow(), error=None))
    return Outcome(job_id, ExportStatus.DONE, rows, stored.id)


async def _finish_failed(db: Any, job_id: int, reason: str) -> Outcome:
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(ExportJob).where(ExportJob.id == job_id).values(
            status=ExportStatus.FAILED, error=reason, finished_at=utcnow()))
    return Outcome(job_id, ExportStatus.FAILED, error=reason)

