"""``crm-graph import FILE``: the same import as ``startImport``, run in this process with a
progress bar. Running it again on the same file resumes the unfinished job of that file."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import click

from crm_graph.imports.models import ImportEntity, ImportFormat, ImportKey, ImportMode


def _choice(enum: Any) -> click.Choice:
    return click.Choice([m.name for m in enum], case_sensitive=False)


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--entity", type=_choice(ImportEntity), required=True, help="What the rows are.")
@click.option("--mapping", "mapping", required=True,
              help="A saved mapping's name or id, a JSON file, or inline JSON {columns: [...], options: {...}}.")
@click.option("--mode", type=_choice(ImportMode), default="UPSERT", show_default=True)
@click.option("--key", type=_choice(ImportKey), default=None, help="The natural key (default: EXTERNAL_REF, SKU for products).")
@click.option("--format", "fmt", type=_choice(ImportFormat), default=None, help="CSV or XLSX (default: from the content).")
@click.option("--dry-run", is_flag=True, help="Validate every row and report errors; write nothing.")
@click.option("--batch-rows", type=click.IntRange(1, 20_000), default=1_000, show_default=True, hidden=True)
@click.option("--pause", type=float, default=0.0, hidden=True, help="Seconds to wait after each batch (tests).")
def import_command(file: Path, entity: str, mapping: str, mode: str, key: str | None, fmt: str | None,
                   dry_run: bool, batch_rows: int, pause: float) -> None:
    """Import FILE (CSV or XLSX) into the database of CRM_DATABASE_URL, as the system."""
    from crm_graph.cli import load_settings
    from crm_graph.core.actor import SYSTEM
    from crm_graph.core.errors import DomainError
    from crm_graph.db import migrate
    from crm_graph.db.session import Database
    from crm_graph.imports import service

    settings = load_settings()
    migrate.upgrade(settings)
    content = file.read_bytes()
    entity_v, mode_v = ImportEntity[entity.upper()], ImportMode[mode.upper()]
    key_v = ImportKey[key.upper()] if key else None
    fmt_v = ImportFormat[fmt.upper()] if fmt else None

    async def run() -> Any:
        db = Database.from_settings(settings)
        try:
            spec, mapping_id = None, None
            async with db.writer() as session, session.begin():
                job = await service.unfinished_job_of(session, sha256=hashlib.sha256(content).hexdigest(),
                                                      entity=entity_v, dry_run=dry_run)
                if job is not None:
                    click.echo(f"resuming import job {job.id} ({job.rows_done} rows done)", err=True)
                else:
                    spec, mapping_id = await _mapping(session, mapping)
                    job = await service.start_import(
                        session, actor=SYSTEM, entity=entity_v, file_name=file.name, content=content, format=fmt_v,
                        mode=mode_v, key=key_v, dry_run=dry_run, spec=spec, mapping_id=mapping_id)
            job_id = job.id
            # A job of a crashed run of this command holds a lease that has not expired yet: it
            # was this command's, so take it over.
            async with db.writer() as session, session.begin():
                await session.execute(service.sa.update(service.ImportJob).where(service.ImportJob.id == job_id)
                                      .values(lease_expires_at=None).execution_options(synchronize_session=False))
            with click.progressbar(length=job.rows_total or 0, label=f"import {file.name}", show_pos=True) as bar:
                seen = {"done": job.rows_done}

                def progress(fresh: Any) -> None:
                    if fresh.rows_total and bar.length != fresh.rows_total:
                        bar.length = fresh.rows_total
                    bar.update(fresh.rows_done - seen["done"])
                    seen["done"] = fresh.rows_done

                return await service.run_job(db, job_id, batch_rows=batch_rows, on_progress=progress, pause=pause)
        finally:
            await db.dispose()

    try:
        job = asyncio.run(run())
    except DomainError as exc:
        raise click.ClickException("; ".join(f"{e.field or '-'}: {e.code} {e.message}" for e in exc.errors)) from None
    if job is None:
        raise click.ClickException("another process is running this import; try again when it stops")
    click.echo(json.dumps({"job": job.id, "status": job.status.name, "rowsTotal": job.rows_total, "rowsDone": job.rows_done,
                           "rowsCreated": job.rows_created, "rowsUpdated": job.rows_updated,
                           "rowsUnchanged": job.rows_unchanged, "rowsFailed": job.rows_failed, "failure": job.failure}))
    if job.rows_failed:
        click.echo(f"{job.rows_failed} rows failed; the first errors:", err=True)
        asyncio.run(_print_errors(settings, job.id))
    if job.failure:
        raise SystemExit(1)


async def _print_errors(settings: Any, job_id: int) -> None:
    from crm_graph.db.session import Database
    from crm_graph.imports import service

    db = Database.from_settings(settings)
    try:
        async with db.reader() as session:
            for e in (await service.first_errors(session, [job_id], limit=20))[job_id]:
                click.echo(f"  row {e.row} {e.field or e.column or ''}: {e.code} {e.message}", err=True)
    finally:
        await db.dispose()


async def _mapping(session: Any, ref: str) -> tuple[dict[str, Any] | None, int | None]:
    from crm_graph.imports import service

    text = ref.strip()
    if text.startswith("{"):
        try:
            return json.loads(text), None
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--mapping") from None
    path = Path(text)
    if path.suffix.lower() == ".json" and path.exists():
        return json.loads(path.read_text(encoding="utf-8")), None
    saved = await service.mapping_by_name_or_id(session, text)
    if saved is None:
        raise click.BadParameter(f"no saved mapping {text!r} and no such JSON file", param_hint="--mapping")
    return None, saved.id
