"""Rules of imports: saved mappings, starting a job, reading it, and running it in batches.

A job is picked up by claiming a lease on its ``import_jobs`` row (``claim``): the process that
accepted ``startImport`` starts it at once; ``resume_stale`` takes any job whose lease expired
(its worker crashed) and is meant to run on the server's job scheduler; ``crm-graph import``
runs one in-process. Each batch commits its rows, its failed rows and the new checkpoint in
one transaction, fenced by the lease token, so a batch is either fully done or redone.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import io
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import errors as codes
from crm_graph.core.access import AccessDenied, principal_actor
from crm_graph.core.actor import SYSTEM, Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import FieldError, NotFound, ValidationFailed
from crm_graph.core.events import record_event, register_event_type
from crm_graph.files import service as files
from crm_graph.imports import mapping as m
from crm_graph.imports import parsing
from crm_graph.imports.models import (
    FINISHED,
    ImportEntity,
    ImportFormat,
    ImportJob,
    ImportKey,
    ImportMapping,
    ImportMode,
    ImportRowError,
    ImportStatus,
)
from crm_graph.imports.writers import WRITERS, Row, WriteContext

log = logging.getLogger("crm_graph.imports")

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_ROWS = 200_000
BATCH_ROWS = 1_000
LEASE_SECONDS = 120
INLINE_ERRORS = 50  # errors kept on the job for the API; all of them are in the report
DEFAULT_PHONE_REGION = "US"

# code -> meaning, for docs/api-guide.md
FILE_TOO_LARGE = "FILE_TOO_LARGE"
INVALID_FILE = "INVALID_FILE"

COMPLETED = "import.completed"
register_event_type(COMPLETED, "An import job finished (SUCCEEDED or FAILED), with its counts; rows raise no events of their own.")

_PERMISSION_OBJECT = {
    ImportEntity.CUSTOMER: "customers",
    ImportEntity.ORGANIZATION: "customers",
    ImportEntity.PRODUCT: "products",
    ImportEntity.ORDER: "orders",
}
_KEYS = {
    ImportEntity.CUSTOMER: (ImportKey.EXTERNAL_REF, ImportKey.EMAIL, ImportKey.PHONE),
    ImportEntity.ORGANIZATION: (ImportKey.EXTERNAL_REF, ImportKey.EMAIL, ImportKey.PHONE, ImportKey.NAME),
    ImportEntity.PRODUCT: (ImportKey.SKU,),
    ImportEntity.ORDER: (ImportKey.EXTERNAL_REF,),
}


def _fail(field: str | None, code: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field, code, message)])


def check_permission(actor: Actor, entity: ImportEntity, mode: ImportMode) -> None:
    obj = _PERMISSION_OBJECT[entity]
    needed = ["create"] + (["update"] if mode is ImportMode.UPSERT else [])
    missing = [a for a in needed if not actor.can(obj, a)]
    if missing:
        raise AccessDenied(f"Importing {entity.name.lower()} records in {mode.name} mode needs "
                           + " and ".join(f"{obj}:{a}" for a in missing) + ".", field="entity")


# --- mappings ----------------------------------------------------------------------------


async def save_mapping(session: AsyncSession, *, actor: Actor, name: str, entity: ImportEntity, spec: Mapping[str, Any]) -> ImportMapping:
    """Save (or replace, by name) a column mapping."""
    clean_name = (name or "").strip()
    if not clean_name or len(clean_name) > 100:
        raise _fail("name", codes.REQUIRED if not clean_name else codes.INVALID_VALUE, "A mapping has a name of 1 to 100 characters.")
    check_permission(actor, entity, ImportMode.CREATE)
    parsed = _parse(entity, spec)
    existing = await session.scalar(sa.select(ImportMapping).where(ImportMapping.name == clean_name))
    now = utcnow()
    if existing is None:
        existing = ImportMapping(name=clean_name, entity=entity, spec=m.spec_of(parsed), created_by=actor.principal,
                                 created_at=now, updated_at=now)
        session.add(existing)
    else:
        existing.entity, existing.spec, existing.updated_at = entity, m.spec_of(parsed), now
    await session.flush()
    return existing


async def list_mappings(session: AsyncSession, entity: ImportEntity | None = None) -> list[ImportMapping]:
    stmt = sa.select(ImportMapping).order_by(ImportMapping.name)
    if entity is not None:
        stmt = stmt.where(ImportMapping.entity == entity)
    return list(await session.scalars(stmt))


async def mapping_by_name_or_id(session: AsyncSession, ref: str | int) -> ImportMapping | None:
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        found = await session.get(ImportMapping, int(ref))
        if found is not None:
            return found
    return await session.scalar(sa.select(ImportMapping).where(ImportMapping.name == str(ref)))


def _parse(entity: ImportEntity, spec: Mapping[str, Any]) -> m.Mapping_:
    try:
        return m.parse_spec(entity, spec)
    except m.MappingInvalid as exc:
        raise _fail(exc.field, exc.code, str(exc)) from None


# --- starting and reading jobs --------------------------------------------------------------


def decode_content(content: str) -> bytes:
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise _fail("content", codes.INVALID_VALUE, "content is the file's bytes in base64.") from None


async def start_import(
    session: AsyncSession,
    *,
    actor: Actor,
    entity: ImportEntity,
    file_name: str,
    content: bytes,
    format: ImportFormat | None,
    mode: ImportMode,
    key: ImportKey | None,
    dry_run: bool,
    spec: Mapping[str, Any] | None = None,
    mapping_id: int | None = None,
) -> ImportJob:
    """Check the request and the file's header against the mapping, store the file and the job
    (PENDING). Nothing is imported yet: ``run_job`` does that."""
    check_permission(actor, entity, mode)
    if len(content) > MAX_FILE_BYTES:
        raise _fail("file", FILE_TOO_LARGE, f"A file has at most {MAX_FILE_BYTES // (1024 * 1024)} MB; split it.")
    if not content:
        raise _fail("file", codes.REQUIRED, "The file is empty.")
    saved = None
    if mapping_id is not None:
        saved = await session.get(ImportMapping, mapping_id)
        if saved is None:
            raise NotFound("The import mapping", field="mappingId")
        if saved.entity is not entity:
            raise _fail("mappingId", codes.INVALID_VALUE, f"That mapping is for {saved.entity.name}, not {entity.name}.")
        spec = saved.spec
    if spec is None:
        raise _fail("mapping", codes.REQUIRED, "Give a mapping or the mappingId of a saved one.")
    parsed = _parse(entity, spec)
    if key is not None and key not in _KEYS[entity]:
        raise _fail("key", codes.INVALID_VALUE,
                    f"{entity.name} records are matched by {', '.join(k.name for k in _KEYS[entity])}.")
    if mode is ImportMode.UPSERT and key is None and entity is not ImportEntity.ORGANIZATION:
        key = _KEYS[entity][0]
    key_target = {ImportKey.EXTERNAL_REF: "externalId", ImportKey.EMAIL: "email", ImportKey.PHONE: "phone",
                  ImportKey.SKU: "sku", ImportKey.NAME: "name"}.get(key) if key else None
    if key_target and key_target not in parsed.targets():
        raise _fail("key", codes.REQUIRED, f"Matching by {key.name} needs a column mapped to {key_target}.")
    name = (file_name or "import").strip()[:255] or "import"
    fmt = format or parsing.guess_format(name, content)
    try:
        sheet = parsing.read(fmt, content, parsed.options)
        m.bind(parsed, sheet.header)
    except parsing.FileProblem as exc:
        raise _fail("file", exc.code if exc.code != "INVALID_FILE" else INVALID_FILE, str(exc)) from None
    except m.MappingInvalid as exc:
        raise _fail(exc.field, exc.code, str(exc)) from None
    stored = await files.store(session, purpose="import", name=name, content_type=_content_type(fmt), content=content,
                               owner=actor.principal)
    now = utcnow()
    job = ImportJob(
        entity=entity, format=fmt, mode=mode, key=key, dry_run=dry_run, status=ImportStatus.PENDING,
        file_id=stored.id, file_name=name, file_sha256=stored.sha256, mapping_id=saved.id if saved else None,
        spec=m.spec_of(parsed), principal=actor.principal, rows_done=0, rows_failed=0, rows_created=0,
        rows_updated=0, rows_unchanged=0, attempts=0, created_at=now, updated_at=now,
    )
    session.add(job)
    await session.flush()
    return job


def _content_type(fmt: ImportFormat) -> str:
    return "text/csv" if fmt is ImportFormat.CSV else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def may_read(actor: Actor, job: ImportJob) -> bool:
    return actor.view_all or (job.principal is not None and job.principal == actor.principal) or actor is SYSTEM


async def get_job(session: AsyncSession, *, actor: Actor, job_id: int) -> ImportJob | None:
    """The job, for the actor who started it (or one who sees everything); else None."""
    job = await session.get(ImportJob, job_id)
    return job if job is not None and may_read(actor, job) else None


async def jobs_by_ids(session: AsyncSession, ids: list[int]) -> dict[int, ImportJob]:
    return {j.id: j for j in await session.scalars(sa.select(ImportJob).where(ImportJob.id.in_(ids)))}


async def first_errors(session: AsyncSession, job_ids: list[int], limit: int = INLINE_ERRORS) -> dict[int, list[ImportRowError]]:
    out: dict[int, list[ImportRowError]] = {i: [] for i in job_ids}
    for job_id in job_ids:  # one statement per job; the API reads one job at a time
        rows = await session.scalars(sa.select(ImportRowError).where(ImportRowError.job_id == job_id)
                                     .order_by(ImportRowError.row, ImportRowError.id).limit(limit))
        out[job_id] = list(rows)
    return out


async def unfinished_job_of(session: AsyncSession, *, sha256: str, entity: ImportEntity, dry_run: bool) -> ImportJob | None:
    """The latest job of the same file and entity that has not finished (for ``crm-graph import``)."""
    return await session.scalar(
        sa.select(ImportJob).where(ImportJob.file_sha256 == sha256, ImportJob.entity == entity,
                                   ImportJob.dry_run.is_(dry_run), ImportJob.status.not_in(FINISHED))
        .order_by(ImportJob.id.desc()).limit(1))


# --- running -----------------------------------------------------------------------------


class LeaseLost(Exception):
    """Another worker took the job (this one was too slow to renew its lease)."""


async def claim(db: Any, job_id: int, *, lease_seconds: float = LEASE_SECONDS) -> str | None:
    """Take the job's lease when nobody holds it (or the holder's lease expired); the token."""
    token = secrets.token_hex(16)
    now = utcnow()
    async with db.writer() as session, session.begin():
        result = await session.execute(
            sa.update(ImportJob)
            .where(ImportJob.id == job_id, ImportJob.status.not_in(FINISHED),
                   sa.or_(ImportJob.lease_expires_at.is_(None), ImportJob.lease_expires_at < now))
            .values(lease_token=token, lease_expires_at=now + timedelta(seconds=lease_seconds),
                    status=ImportStatus.RUNNING, attempts=ImportJob.attempts + 1,
                    started_at=sa.func.coalesce(ImportJob.started_at, now), updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return token if result.rowcount == 1 else None


Progress = Callable[[ImportJob], Awaitable[None] | None]


async def run_job(
    db: Any, job_id: int, *, batch_rows: int = BATCH_ROWS, lease_seconds: float = LEASE_SECONDS,
    on_progress: Progress | None = None, token: str | None = None, pause: float = 0.0,
) -> ImportJob | None:
    """Claim the job and import it, batch after batch, from its checkpoint. None when another
    worker holds it. A failure of the file as a whole (unreadable, too many rows) fails the job."""
    token = token or await claim(db, job_id, lease_seconds=lease_seconds)
    if token is None:
        return None
    async with db.reader() as session:
        job = await session.get(ImportJob, job_id)
        assert job is not None
        stored = await files.get(session, job.file_id) if job.file_id is not None else None
        actor = SYSTEM if job.principal is None else await principal_actor(session, job.principal)
    if stored is None:
        return await _finish(db, job_id, token, failure="The uploaded file is gone.")
    if actor is None:
        return await _finish(db, job_id, token, failure="The user or API key that started the import can no longer act.")
    try:
        check_permission(actor, job.entity, job.mode)
    except AccessDenied as exc:
        return await _finish(db, job_id, token, failure=exc.errors[0].message)
    parsed = m.parse_spec(job.entity, job.spec)
    try:
        sheet = parsing.read(job.format, stored.content, parsed.options)
        m.bind(parsed, sheet.header)
        # One pass over the file: the rows are held in memory (MAX_ROWS bounds them).
        all_rows = []
        for raw in sheet.rows:
            all_rows.append(raw)
            if len(all_rows) > MAX_ROWS:
                return await _finish(db, job_id, token, failure=f"The file has more than {MAX_ROWS} rows; split it.")
    except (parsing.FileProblem, m.MappingInvalid) as exc:
        return await _finish(db, job_id, token, failure=str(exc))
    if job.rows_total is None:
        await _checkpoint(db, job_id, token, {"rows_total": len(all_rows)}, lease_seconds)
        job.rows_total = len(all_rows)
    columns = {c.target: c.source for c in parsed.columns}
    done = job.rows_done
    rows = iter(all_rows[done:])  # what the checkpoint says is done is skipped
    number = done + 1  # the header is row 1
    pending: list[Any] = []
    exhausted = False
    while not exhausted:
        batch: list[Row] = []
        while True:
            if len(batch) >= batch_rows and job.entity is not ImportEntity.ORDER:
                break
            raw = pending.pop() if pending else next(rows, None)
            if raw is None:
                exhausted = True
                break
            values, errors = m.apply(parsed, raw, default_region=DEFAULT_PHONE_REGION)
            # Keep an order's lines in one batch: a full batch ends before another order's row.
            if len(batch) >= batch_rows and values.get("externalId") != batch[-1].values.get("externalId"):
                pending.append(raw)
                break
            batch.append(Row(number + 1, list(raw), values, list(errors)))
            number += 1
        if not batch:
            break
        try:
            await _write_batch(db, job, token, actor, batch, columns, lease_seconds)
        except LeaseLost:
            log.warning("import job %s: lease lost, another worker continues it", job_id)
            return None
        if on_progress is not None:
            async with db.reader() as session:
                fresh = await session.get(ImportJob, job_id)
            outcome = on_progress(fresh)  # type: ignore[arg-type]
            if asyncio.iscoroutine(outcome):
                await outcome
        if pause:
            await asyncio.sleep(pause)
    return await _finish(db, job_id, token)


async def _write_batch(db: Any, job: ImportJob, token: str, actor: Actor, batch: list[Row], columns: dict[str, Any],
                       lease_seconds: float) -> None:
    now = utcnow()
    async with db.writer() as session, session.begin():
        ctx = WriteContext(session, actor, job.entity, job.mode, job.key, job.dry_run, dict(job.spec.get("options") or {}),
                           columns, now)
        await WRITERS[job.entity](ctx, batch)
        failed = [r for r in batch if r.errors]
        errors = []
        for r in failed:
            for i, e in enumerate(r.errors):
                errors.append({"job_id": job.id, "row": r.number, "column": e.column, "field": e.field, "code": e.code,
                               "message": e.message[:1000], "values": [_plain(v) for v in r.raw] if i == 0 else None})
        if errors:
            await session.execute(sa.insert(ImportRowError.__table__), errors)
        counts = {
            "rows_done": ImportJob.rows_done + len(batch),
            "rows_failed": ImportJob.rows_failed + len(failed),
            "rows_created": ImportJob.rows_created + sum(1 for r in batch if not r.errors and r.outcome == "created"),
            "rows_updated": ImportJob.rows_updated + sum(1 for r in batch if not r.errors and r.outcome == "updated"),
            "rows_unchanged": ImportJob.rows_unchanged + sum(1 for r in batch if not r.errors and r.outcome == "unchanged"),
        }
        # The checkpoint, fenced: it commits only while this worker still holds the lease.
        result = await session.execute(
            sa.update(ImportJob).where(ImportJob.id == job.id, ImportJob.lease_token == token)
            .values(**counts, lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
            .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            raise LeaseLost()
        if not job.dry_run:
            await _reindex(session, ctx.touched)


async def _reindex(session: AsyncSession, touched: Mapping[str, set[int]]) -> None:
    from crm_graph.search.service import reindex

    for kind, ids in touched.items():
        if ids:
            await reindex(session, kind, sorted(ids))


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


async def _checkpoint(db: Any, job_id: int, token: str, values: dict[str, Any], lease_seconds: float) -> None:
    now = utcnow()
    async with db.writer() as session, session.begin():
        result = await session.execute(
            sa.update(ImportJob).where(ImportJob.id == job_id, ImportJob.lease_token == token)
            .values(**values, lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
            .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            raise LeaseLost()


async def _finish(db: Any, job_id: int, token: str, *, failure: str | None = None) -> ImportJob | None:
    """Write the error report, mark the job finished and raise ``import.completed``."""
    now = utcnow()
    async with db.writer() as session, session.begin():
        job = await session.get(ImportJob, job_id, with_for_update=True)
        if job is None or job.lease_token != token:
            return None
        if job.rows_failed and job.report_file_id is None:
            report = await error_report(session, job)
            stored = await files.store(session, purpose="import-report", name=f"import-{job.id}-errors.csv",
                                       content_type="text/csv", content=report, owner=job.principal,
                                       expires_at=now + timedelta(days=30))
            job.report_file_id = stored.id
        job.status = ImportStatus.FAILED if failure else ImportStatus.SUCCEEDED
        job.failure = failure[:1000] if failure else None
        job.finished_at = now
        job.updated_at = now
        job.lease_token = None
        job.lease_expires_at = None
        actor = SYSTEM if job.principal is None else (await principal_actor(session, job.principal) or SYSTEM)
        record_event(session, type=COMPLETED, entity_type="ImportJob", entity_id=job.id, actor=actor,
                     payload=job_payload(job))
    return job


def job_payload(job: ImportJob) -> dict[str, Any]:
    return {
        "id": job.id, "entity": job.entity.name, "mode": job.mode.name, "key": job.key.name if job.key else None,
        "dryRun": job.dry_run, "status": job.status.name, "fileName": job.file_name, "rowsTotal": job.rows_total,
        "rowsDone": job.rows_done, "rowsFailed": job.rows_failed, "rowsCreated": job.rows_created,
        "rowsUpdated": job.rows_updated, "rowsUnchanged": job.rows_unchanged, "failure": job.failure,
    }


async def error_report(session: AsyncSession, job: ImportJob) -> bytes:
    """A CSV (UTF-8 with BOM, for Excel): one line per failed row, its errors, then its values."""
    header: list[str] = []
    stored = await files.get(session, job.file_id) if job.file_id is not None else None
    if stored is not None:
        try:
            header = parsing.read(job.format, stored.content, dict(job.spec.get("options") or {})).header
        except parsing.FileProblem:
            header = []
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "errors", *header])
    rows = await session.execute(sa.select(ImportRowError).where(ImportRowError.job_id == job.id)
                                 .order_by(ImportRowError.row, ImportRowError.id))
    current: int | None = None
    messages: list[str] = []
    values: list[Any] = []

    def flush() -> None:
        if current is not None:
            writer.writerow([current, "; ".join(messages), *values])

    for (error,) in rows:
        if error.row != current:
            flush()
            current, messages, values = error.row, [], error.values or []
        messages.append(f"{error.field or error.column or 'row'}: {error.code} {error.message}")
    flush()
    return ("\ufeff" + out.getvalue()).encode("utf-8")


async def resume_stale(db: Any) -> str:
    """Run every unfinished job nobody holds (a crashed worker's lease expired): for the
    server's job scheduler (crm_graph/core/jobs.py)."""
    now = utcnow()
    async with db.reader() as session:
        ids = list(await session.scalars(
            sa.select(ImportJob.id).where(ImportJob.status.not_in(FINISHED),
                                          sa.or_(ImportJob.lease_expires_at.is_(None), ImportJob.lease_expires_at < now))
            .order_by(ImportJob.id)))
    ran = 0
    for job_id in ids:
        if await run_job(db, job_id) is not None:
            ran += 1
    return f"{ran} import jobs run" if ran else ""


_running: set[asyncio.Task[Any]] = set()


def start_in_background(db: Any, job_id: int) -> asyncio.Task[Any]:
    """Run the job in this process's event loop (after the request that started it committed)."""

    async def run() -> None:
        try:
            await run_job(db, job_id)
        except Exception:  # noqa: BLE001 - the lease expires and ``resume_stale`` takes the job again
            log.exception("import job %s stopped", job_id)

    task = asyncio.create_task(run(), name=f"crm-import-{job_id}")
    _running.add(task)
    task.add_done_callback(_running.discard)
    return task


async def wait_background() -> None:
    """Wait for the jobs this process runs (tests, shutdown)."""
    while _running:
        await asyncio.gather(*list(_running), return_exceptions=True)
