"""GraphQL API of imports: ``startImport``, ``importJob(id)``, ``saveImportMapping``, ``importMappings``.

Thin: the rules are in service.py, the job runs in service.run_job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.file_uploads import Upload
from strawberry.scalars import JSON
from strawberry.types import Info

from crm_graph.domains import SchemaPart
from crm_graph.files import service as files
from crm_graph.graphql import access
from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.errors import UserError
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.graphql.relay import decode_global_id, encode_global_id
from crm_graph.imports import service
from crm_graph.imports.models import ImportEntity, ImportFormat, ImportJob as JobModel, ImportKey, ImportMapping as MappingModel
from crm_graph.imports.models import ImportMode, ImportStatus

graphql_enum(ImportEntity, "What an import creates or updates.", {
    "CUSTOMER": "Persons (an organization column links them to organizations, created by name when missing).",
    "ORGANIZATION": "Organizations; contact columns create or link persons of the organization.",
    "PRODUCT": "Products of the catalogue, matched by SKU.",
    "ORDER": "Historic orders: one row per line; rows with the same externalId are one order.",
})
graphql_enum(ImportFormat, "The file's format.", {
    "CSV": "Comma, semicolon or tab separated text; UTF-8 (with or without BOM), GB18030/GBK or Latin-1/cp1252, detected.",
    "XLSX": "An Excel workbook (its first sheet, or the `sheet` option).",
})
graphql_enum(ImportMode, "What happens to a row whose key matches an existing record.", {
    "CREATE": "Only new records: a row matching an existing one fails with DUPLICATE.",
    "UPSERT": "New records are created, matching ones updated; a row that changes nothing leaves the record untouched.",
})
graphql_enum(ImportKey, "The natural key rows are matched by.", {
    "EXTERNAL_REF": "The `externalId` column (with the `externalSystem` option, default `import`).",
    "EMAIL": "The normalised email address (customers, organizations).",
    "PHONE": "The E.164 phone number (customers, organizations).",
    "SKU": "The product's SKU.",
    "NAME": "The organization's name.",
})
graphql_enum(ImportStatus, "Where an import job is.", {
    "PENDING": "Stored, not started yet.",
    "RUNNING": "Being imported (or waiting to be resumed after a crash: its lease runs out and another worker takes it).",
    "SUCCEEDED": "Every row was processed; failed rows are in the error report.",
    "FAILED": "Stopped as a whole (unreadable file, too many rows, the starter can no longer act): see `failure`.",
})


@strawberry.input(description="One mapped field: from a source column of the file, or a constant.")
class ImportColumnInput:
    target: str = strawberry.field(description="The field it fills, e.g. `email`, `fullName`, `birthday`, `tags` (docs/imports.md lists them).")
    source: str | None = strawberry.field(default=None, description="The column's header in the file (case and spaces ignored when no exact match).")
    constant: str | None = strawberry.field(default=None, description="A value for every row, instead of a source column.")
    separator: str | None = strawberry.field(default=None, description="For `tags`: what separates tags in a cell (default , ; and |).")


@strawberry.input(description="How the file's columns become fields, and how values are read.")
class ImportMappingInput:
    columns: list[ImportColumnInput] = strawberry.field(description="The mapped fields.")
    options: JSON | None = strawberry.field(
        default=None,
        description="Optional: `phoneRegion` (e.g. CN), `dayFirst` (04/12/2026 is 4 December), `externalSystem`, `currency`, "
        "`tagSeparator`, `encoding`, `delimiter`, `sheet`.")


def _spec(mapping: ImportMappingInput) -> dict[str, Any]:
    return {
        "columns": [{k: v for k, v in (("target", c.target), ("source", c.source), ("constant", c.constant),
                                         ("separator", c.separator)) if v is not None} for c in mapping.columns],
        "options": mapping.options or {},
    }


@strawberry.input(description="An import: the file, what it holds, how its columns map, and how rows match existing records.")
class StartImportInput:
    entity: ImportEntity = strawberry.field(description="What the rows are.")
    file: Upload | None = strawberry.field(
        default=None, description="The file, as a GraphQL multipart upload (send the `Authorization` header; docs/imports.md).")
    content: str | None = strawberry.field(default=None, description="Instead of `file`: the file's bytes in base64.")
    file_name: str | None = strawberry.field(default=None, description="The file's name, with `content` (default: import).")
    format: ImportFormat | None = strawberry.field(default=None, description="CSV or XLSX; guessed from the content when omitted.")
    mapping: ImportMappingInput | None = strawberry.field(default=None, description="The column mapping.")
    mapping_id: strawberry.ID | None = strawberry.field(default=None, description="Instead of `mapping`: a saved ImportMapping.")
    mode: ImportMode = strawberry.field(default=ImportMode.UPSERT, description="CREATE or UPSERT (the default).")
    key: ImportKey | None = strawberry.field(
        default=None, description="The natural key rows match by; UPSERT defaults to EXTERNAL_REF (SKU for products).")
    dry_run: bool = strawberry.field(default=False, description="Validate every row and report the errors; write nothing.")


@strawberry.type(description="A problem with one row of an import.")
class ImportRowError:
    row: int = strawberry.field(description="The row's line in the file: the header is row 1 (empty rows are skipped).")
    column: str | None = strawberry.field(description="The source column, when one is to blame.")
    field: str | None = strawberry.field(description="The target field (camelCase).")
    code: str = strawberry.field(description="SCREAMING_SNAKE code, as in UserError.")
    message: str = strawberry.field(description="What is wrong, for a person.")


@strawberry.type(description="An import of one file, run as a durable job.")
class ImportJob:
    id: strawberry.ID = strawberry.field(description="Global ID of the job; poll it with `importJob(id)`.")
    entity: ImportEntity = strawberry.field(description="What the rows are.")
    mode: ImportMode = strawberry.field(description="CREATE or UPSERT.")
    key: ImportKey | None = strawberry.field(description="The natural key rows are matched by.")
    dry_run: bool = strawberry.field(description="Whether this run only validates.")
    status: ImportStatus = strawberry.field(description="Where the job is.")
    progress: float = strawberry.field(description="Share of rows done, 0 to 1.")
    file_name: str = strawberry.field(description="The uploaded file's name.")
    rows_total: int | None = strawberry.field(description="Data rows in the file; null until the job has counted them.")
    rows_done: int = strawberry.field(description="Rows processed (imported, unchanged or failed): the job's checkpoint.")
    rows_failed: int = strawberry.field(description="Rows with errors, not imported.")
    rows_created: int = strawberry.field(description="Rows that created a record (in a dry run: would).")
    rows_updated: int = strawberry.field(description="Rows that changed an existing record (in a dry run: would).")
    rows_unchanged: int = strawberry.field(description="Rows that matched a record and changed nothing.")
    failure: str | None = strawberry.field(description="Why a FAILED job stopped.")
    created_at: datetime = strawberry.field(description="When it was started.")
    started_at: datetime | None = strawberry.field(description="When a worker first took it.")
    finished_at: datetime | None = strawberry.field(description="When it finished.")
    report_file_id: strawberry.Private[int | None]
    job_pk: strawberry.Private[int]

    @strawberry.field(description="The first 50 row errors, by row; all of them are in the error report.")
    async def errors(self, info: Info) -> list[ImportRowError]:
        async with info.context.db.reader() as session:
            rows = (await service.first_errors(session, [self.job_pk]))[self.job_pk]
        return [ImportRowError(row=e.row, column=e.column, field=e.field, code=e.code, message=e.message) for e in rows]

    @strawberry.field(description="A signed link to a CSV of the failed rows with their errors (valid for minutes); "
                      "null when no row failed or before the job finished.")
    async def error_report_url(self, info: Info) -> str | None:
        principal = info.context.actor.principal
        if self.report_file_id is None or principal is None:
            return None
        async with info.context.db.reader() as session:
            stored = await files.get(session, self.report_file_id, with_content=False)
        if stored is None:
            return None
        return files.download_url(info.context.settings, files.base_url(info.context), stored, principal)

    @classmethod
    def from_model(cls, j: JobModel) -> ImportJob:
        total = j.rows_total
        progress = 1.0 if j.finished_at is not None else (min(1.0, j.rows_done / total) if total else 0.0)
        return cls(id=encode_global_id("ImportJob", j.id), entity=j.entity, mode=j.mode, key=j.key, dry_run=j.dry_run,
                   status=j.status, progress=progress, file_name=j.file_name, rows_total=total, rows_done=j.rows_done,
                   rows_failed=j.rows_failed, rows_created=j.rows_created, rows_updated=j.rows_updated,
                   rows_unchanged=j.rows_unchanged, failure=j.failure, created_at=j.created_at, started_at=j.started_at, finished_at=j.finished_at,
                   report_file_id=j.report_file_id, job_pk=j.id)


@strawberry.type(description="A saved, reusable column mapping.")
class ImportMapping:
    id: strawberry.ID = strawberry.field(description="Global ID; pass it as `mappingId` to `startImport`.")
    name: str = strawberry.field(description="Its unique name.")
    entity: ImportEntity = strawberry.field(description="What it maps.")
    mapping: JSON = strawberry.field(description="`{columns: [{target, source, constant, separator}], options}`.")
    updated_at: datetime = strawberry.field(description="When it was last saved.")

    @classmethod
    def from_model(cls, m: MappingModel) -> ImportMapping:
        return cls(id=encode_global_id("ImportMapping", m.id), name=m.name, entity=m.entity, mapping=m.spec, updated_at=m.updated_at)


@strawberry.type(description="The job `startImport` created (it runs in the background).")
class StartImportPayload:
    import_job: ImportJob | None = strawberry.field(description="The new job; null when the request was refused.")
    errors: list[UserError] = strawberry.field(description="Why nothing was started.")


@strawberry.input(description="A mapping to save under a name (an existing name is replaced).")
class SaveImportMappingInput:
    name: str = strawberry.field(description="Its name, 1 to 100 characters.")
    entity: ImportEntity = strawberry.field(description="What it maps.")
    mapping: ImportMappingInput = strawberry.field(description="The columns and options.")


@strawberry.type(description="The saved mapping.")
class SaveImportMappingPayload:
    import_mapping: ImportMapping | None = strawberry.field(description="The mapping; null on errors.")
    errors: list[UserError] = strawberry.field(description="What was wrong.")


@strawberry.type
class ImportsQuery:
    @access.signed_in(description="An import job, for the user or key that started it (or an administrator); null otherwise.")
    async def import_job(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the ImportJob.")]
    ) -> ImportJob | None:
        try:
            pk = decode_global_id(id, "ImportJob")[1]
        except Exception:  # noqa: BLE001 - a malformed ID is a missing job
            return None
        async with info.context.db.reader() as session:
            job = await service.get_job(session, actor=info.context.actor, job_id=pk)
        return ImportJob.from_model(job) if job is not None else None

    @access.signed_in(description="The saved import mappings, by name.")
    async def import_mappings(
        self, info: Info,
        entity: Annotated[ImportEntity | None, strawberry.argument(description="Only mappings of this entity.")] = None,
    ) -> list[ImportMapping]:
        async with info.context.db.reader() as session:
            return [ImportMapping.from_model(m) for m in await service.list_mappings(session, entity)]


@strawberry.type
class ImportsMutation:
    @access.signed_in(
        "mutation",
        description="Start importing a CSV or XLSX file. Needs the create (and, for UPSERT, update) permission of the "
        "entity's records (customers, products, orders). The job runs in the background: poll `importJob(id)`.",
    )
    async def start_import(
        self, info: Info, input: Annotated[StartImportInput, strawberry.argument(description="The file, mapping and mode.")]
    ) -> StartImportPayload:
        actor = info.context.actor
        name = input.file_name or "import"
        if input.file is not None:
            content = await input.file.read()
            name = input.file_name or getattr(input.file, "filename", None) or name
        elif input.content is not None:
            content = None
        else:
            return StartImportPayload(import_job=None, errors=[UserError(field="file", code="REQUIRED", message="Give the file (an upload) or its base64 content.")])
        spec = _spec(input.mapping) if input.mapping is not None else None
        mapping_pk = None
        if input.mapping_id is not None:
            try:
                mapping_pk = decode_global_id(input.mapping_id, "ImportMapping")[1]
            except Exception:  # noqa: BLE001
                return StartImportPayload(import_job=None, errors=[UserError(field="mappingId", code="NOT_FOUND", message="The import mapping was not found.")])

        async def work(session: Any) -> JobModel:
            data = content if content is not None else service.decode_content(input.content or "")
            return await service.start_import(
                session, actor=actor, entity=input.entity, file_name=name, content=data, format=input.format,
                mode=input.mode, key=input.key, dry_run=input.dry_run, spec=spec, mapping_id=mapping_pk)

        job, errors = await unit_of_work(info, work)
        if job is None:
            return StartImportPayload(import_job=None, errors=errors)
        service.start_in_background(info.context.base_db, job.id)
        return StartImportPayload(import_job=ImportJob.from_model(job), errors=[])

    @access.signed_in("mutation", description="Save a column mapping under a name, to reuse with `startImport(mappingId)`.")
    async def save_import_mapping(
        self, info: Info, input: Annotated[SaveImportMappingInput, strawberry.argument(description="The name and the mapping.")]
    ) -> SaveImportMappingPayload:
        actor = info.context.actor
        model, errors = await unit_of_work(info, lambda s: service.save_mapping(
            s, actor=actor, name=input.name, entity=input.entity, spec=_spec(input.mapping)))
        return SaveImportMappingPayload(import_mapping=ImportMapping.from_model(model) if model is not None else None, errors=errors)


SCHEMA = SchemaPart(query=ImportsQuery, mutation=ImportsMutation)
