"""GraphQL API of exports: ``startExport``, ``exportJob(id)`` and the ``ExportJob`` type.

Thin: the rules are in service.py. A job and its file belong to the principal that started it:
anyone else gets null for it, as for an ID that names nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from crm_graph.core.errors import FieldError, ValidationFailed
from crm_graph.core.extensions import NodeType
from crm_graph.customers.schema import CustomerFilter
from crm_graph.domains import SchemaPart
from crm_graph.exports import models as m
from crm_graph.exports import service
from crm_graph.files import service as files
from crm_graph.graphql import access
from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.errors import ClientError, UserError
from crm_graph.graphql.inputs import to_plain
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.graphql.relay import Node, decode_global_id, encode_global_id
from crm_graph.sales.schema.inputs import OPPORTUNITY_IDS, ORDER_IDS, OpportunityFilter, OrderFilter, decode_ids
from crm_graph.support.schema.inputs import TicketFilter, decode_filter

ExportEntity = graphql_enum(m.ExportEntity, "What an export contains (its columns: docs/exports.md).", {
    "CUSTOMERS": "Customers that are not deleted: one row each, with the primary email and phone and the tags.",
    "ORDERS": "Orders: one row per order, amounts with their currency.",
    "ORDER_LINES": "Order lines: one row per line of the orders the order filter selects.",
    "OPPORTUNITIES": "Opportunities that are not deleted, of customers that are not deleted.",
    "TICKETS": "Support tickets of customers that are not deleted.",
})
ExportFormat = graphql_enum(m.ExportFormat, "The file format of an export.", {
    "CSV": "Comma-separated, UTF-8 with a byte-order mark (so Excel shows Chinese text correctly), a header row.",
    "XLSX": "An Excel workbook with one sheet and a header row.",
    "PARQUET": "Apache Parquet with typed columns: amounts decimal128(19, 4), timestamps in UTC.",
})
ExportStatus = graphql_enum(m.ExportStatus, "Where an export job is.", {
    "PENDING": "Waiting to run.",
    "RUNNING": "Reading rows and writing the file; `rowsDone` of `rowsTotal` so far.",
    "DONE": "The file is ready: `downloadUrl`.",
    "FAILED": "The export could not be made: `error` says why.",
})


@strawberry.type(description="An export of one entity's rows to a file, made in the background. Visible to its requester only.")
class ExportJob(Node):
    pk: strawberry.Private[int]
    principal: strawberry.Private[str | None]
    file_id: strawberry.Private[int | None]
    entity: ExportEntity = strawberry.field(description="What is exported.")
    format: ExportFormat = strawberry.field(description="The file format.")
    status: ExportStatus = strawberry.field(description="PENDING, RUNNING, DONE or FAILED.")
    rows_total: int | None = strawberry.field(description="How many rows the file will have; null until the run has counted them.")
    rows_done: int = strawberry.field(description="How many rows are written so far (all of them once DONE).")
    error: str | None = strawberry.field(description="Why the export FAILED; null otherwise.")
    created_at: datetime = strawberry.field(description="When the export was started (UTC).")
    finished_at: datetime | None = strawberry.field(description="When it became DONE or FAILED (UTC); null before.")

    @strawberry.field(
        description="A signed link to the file, once DONE: it works without an Authorization header, for the requester "
        "only, until it expires (CRM_DOWNLOAD_TTL, 15 minutes by default); ask again for a fresh one. Null before DONE."
    )
    async def download_url(self, info: Info) -> str | None:
        ctx = info.context
        principal = ctx.actor.principal
        if self.file_id is None or principal is None or principal != self.principal:
            return None
        async with ctx.db.reader() as session:
            stored = await files.get(session, self.file_id, with_content=False)
        if stored is None:
            return None
        return files.download_url(ctx.settings, files.base_url(ctx), stored, principal)

    @classmethod
    def from_model(cls, job: m.ExportJob) -> ExportJob:
        return cls(
            id=encode_global_id("ExportJob", job.id), pk=job.id, principal=job.principal,
            file_id=job.file_id if job.status is m.ExportStatus.DONE else None,
            entity=job.entity, format=job.format, status=job.status, rows_total=job.rows_total, rows_done=job.rows_done,
            error=job.error, created_at=job.created_at, finished_at=job.finished_at,
        )


@strawberry.input(
    description="What to export. Give the rows' filter either typed, in the field of the entity (`customerFilter` for "
    "CUSTOMERS, `orderFilter` for ORDERS and ORDER_LINES, `opportunityFilter`, `ticketFilter`), or as `filter`: the "
    "same conditions as JSON. At most one of them; none exports every row you may read."
)
class StartExportInput:
    entity: ExportEntity = strawberry.field(description="What to export; needs the `export` permission on it (`customers:export`, ...).")
    format: ExportFormat = strawberry.field(description="CSV, XLSX or PARQUET.")
    filter: JSON | None = strawberry.field(
        default=None,
        description="The entity's list filter as JSON (the filter language of `customers`, `orders`, `opportunities`, "
        "`tickets`), e.g. `{\"country\": {\"eq\": \"CN\"}}`; IDs are global IDs. A filter that does not compile gives INVALID_FILTER.",
    )
    customer_filter: CustomerFilter | None = strawberry.field(default=None, description="For CUSTOMERS: the filter of `customers`.")
    order_filter: OrderFilter | None = strawberry.field(default=None, description="For ORDERS and ORDER_LINES: the filter of `orders`.")
    opportunity_filter: OpportunityFilter | None = strawberry.field(
        default=None, description="For OPPORTUNITIES: the filter of `opportunities`."
    )
    ticket_filter: TicketFilter | None = strawberry.field(default=None, description="For TICKETS: the filter of `tickets`.")


@strawberry.type(description="The export job started, or why none was.")
class StartExportPayload:
    export_job: ExportJob | None = strawberry.field(description="The new job (PENDING); poll `exportJob(id)` for its progress.")
    errors: list[UserError]


_TYPED = {
    "customerFilter": (m.ExportEntity.CUSTOMERS,),
    "orderFilter": (m.ExportEntity.ORDERS, m.ExportEntity.ORDER_LINES),
    "opportunityFilter": (m.ExportEntity.OPPORTUNITIES,),
    "ticketFilter": (m.ExportEntity.TICKETS,),
}


def _decoded(entity: m.ExportEntity, plain: Any) -> Any:
    """The filter with its global IDs replaced by primary keys, as each entity's list does."""
    if entity in (m.ExportEntity.ORDERS, m.ExportEntity.ORDER_LINES):
        return decode_ids(plain, ORDER_IDS)
    if entity is m.ExportEntity.OPPORTUNITIES:
        return decode_ids(plain, OPPORTUNITY_IDS)
    if entity is m.ExportEntity.TICKETS:
        return decode_filter(plain)
    return plain


def _filter_of(data: StartExportInput) -> tuple[Mapping[str, Any] | None, str]:
    """The one filter given (plain data, IDs decoded) and its input field; ValidationFailed otherwise."""
    entity = m.ExportEntity(data.entity.value) if not isinstance(data.entity, m.ExportEntity) else data.entity
    given = {name: value for name, value in (
        ("filter", data.filter), ("customerFilter", data.customer_filter), ("orderFilter", data.order_filter),
        ("opportunityFilter", data.opportunity_filter), ("ticketFilter", data.ticket_filter),
    ) if value is not None}
    if len(given) > 1:
        raise ValidationFailed([FieldError(sorted(given)[1], "INVALID_VALUE", "Give one filter at most.")])
    if not given:
        return None, "filter"
    (name, value), = given.items()
    if name != "filter" and entity not in _TYPED[name]:
        raise ValidationFailed([FieldError(name, "INVALID_VALUE", f"{name} does not filter {entity.name}.")])
    if name == "filter" and not isinstance(value, Mapping):
        raise ValidationFailed([FieldError(name, service.INVALID_FILTER, "A filter is an object, as the entity's list takes it.")])
    return decode_filter_ids(entity, to_plain(value), name), name


def decode_filter_ids(entity: m.ExportEntity, plain: Any, field: str = "filter") -> Any:
    """``plain`` with its global IDs replaced by primary keys; ValidationFailed (INVALID_FILTER) for a bad one."""
    try:
        return _decoded(entity, plain)
    except (ClientError, TypeError, ValueError, AttributeError) as exc:
        raise ValidationFailed([FieldError(field, service.INVALID_FILTER, str(exc) or "An ID in the filter is not valid.")]) from None


@strawberry.type
class ExportQuery:
    @access.signed_in(description="An export job you started, by ID; null for anyone else's (or none).")
    async def export_job(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the ExportJob.")]
    ) -> ExportJob | None:
        pk = decode_global_id(id, "ExportJob")[1]
        async with info.context.db.reader() as session:
            job = await service.get_job(session, actor=info.context.actor, job_id=pk)
        return ExportJob.from_model(job) if job is not None else None


@strawberry.type
class ExportMutation:
    @access.signed_in(
        "mutation",
        description="Export customers, orders, order lines, opportunities or tickets to CSV, XLSX or Parquet, in the "
        "background. The file holds exactly the rows you may read that match the filter; it is yours only. Needs the "
        "entity's `export` permission (FORBIDDEN otherwise); a filter that does not compile gives INVALID_FILTER.",
    )
    async def start_export(
        self, info: Info, input: Annotated[StartExportInput, strawberry.argument(description="Entity, format and filter.")]
    ) -> StartExportPayload:
        actor = info.context.actor
        entity = m.ExportEntity(input.entity.value)
        fmt = m.ExportFormat(input.format.value)
        try:
            filter, field = _filter_of(input)
        except ValidationFailed as exc:
            return StartExportPayload(export_job=None, errors=[UserError.from_field_error(e) for e in exc.errors])
        job, errors = await unit_of_work(info, lambda s: service.start_export(
            s, actor=actor, entity=entity, format=fmt, filter=filter, filter_field=field))
        return StartExportPayload(export_job=ExportJob.from_model(job) if job is not None else None, errors=errors)


async def _resolve_nodes(info: Info, pks: list[int]) -> list[Any]:
    async with info.context.db.reader() as session:
        found = await service.jobs_by_ids(session, pks)
    principal = info.context.actor.principal
    return [ExportJob.from_model(found[p]) if p in found and principal and found[p].principal == principal else None
            for p in pks]


SCHEMA = SchemaPart(
    query=ExportQuery, mutation=ExportMutation, types=[ExportJob],
    nodes=[NodeType("ExportJob", _resolve_nodes, ExportJob)],
)
