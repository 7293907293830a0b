"""GraphQL of the documents plugin: templates, documents, and the ``documents`` field of the
records they are made from. Thin: the work is in service.py."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from crm_documents import delivery, service
from crm_documents.models import Document as DocumentModel
from crm_documents.models import DocumentKind as KindModel
from crm_documents.models import DocumentStatus as StatusModel
from crm_documents.models import DocumentTemplate as TemplateModel
from crm_graph.core.extensions import NodeType, TypeExtension
from crm_graph.core.pagination import SortKey, paginate, parse_datetime
from crm_graph.domains import SchemaPart
from crm_graph.graphql.access import mutation, signed_in
from crm_graph.graphql.context import Context
from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.errors import UserError
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.graphql.relay import Connection, Node, encode_global_id, page_args, resolve_nodes

DocumentKind = graphql_enum(
    KindModel,
    "What a document is for; each kind has its own template context (docs/documents.md).",
    {
        "QUOTE": "A quote, made from a Quote.",
        "ORDER_CONFIRMATION": "An order confirmation, made from an Order.",
        "CONTRACT": "A contract, made from an Order.",
        "INVOICE": "An invoice, made from an Order.",
        "REPORT": "A pipeline report, made from a Pipeline for a period.",
    },
)
DocumentStatus = graphql_enum(
    StatusModel,
    "Where a document is: PENDING while it is made (a PDF converting), READY, or FAILED.",
    {
        "PENDING": "Asked for and not made yet: a conversion is running or waiting for a converter.",
        "READY": "Made; `downloadUrl` gives the file.",
        "FAILED": "Given up; `failure` says why. Asking for the same document again tries again.",
    },
)

NEWEST_FIRST = [
    SortKey(TemplateModel.created_at, "created_at", descending=True, parse=parse_datetime),
    SortKey(TemplateModel.id, "id", descending=True),
]


@strawberry.type(description="A Word or Excel template documents are made from. Uploading one with the same name, kind, "
                 "format and locale adds a version; documents already made keep naming the version they came from.")
class DocumentTemplate(Node):
    name: str = strawberry.field(description="The template's name; with kind, format and locale it names the template.")
    kind: DocumentKind = strawberry.field(description="The kind of document it makes.")  # type: ignore[valid-type]
    format: str = strawberry.field(description="The engine's format: DOCX, XLSX (or a partner engine's, e.g. ODT).")
    locale: str = strawberry.field(description="The language and formatting of documents made from it, e.g. de_DE.")
    version: int = strawberry.field(description="1 for the first upload, one more for each upload of the same template.")
    is_default: bool = strawberry.field(description="Used for its kind and language when a document names no template.")
    is_current: bool = strawberry.field(description="The newest version of its name, kind, format and locale.")
    builtin: bool = strawberry.field(description="Shipped with the plugin.")
    variables: list[str] = strawberry.field(description="The context names the template reads.")
    file_name: str = strawberry.field(description="The file name it was uploaded with (made safe), or its name plus the "
                                      "format's extension.")
    size: int = strawberry.field(description="Bytes.")
    created_at: datetime = strawberry.field(description="When this version was uploaded (UTC).")

    @classmethod
    def from_model(cls, m: TemplateModel) -> DocumentTemplate:
        return cls(id=encode_global_id("DocumentTemplate", m.id), name=m.name, kind=m.kind, format=m.format,
                   locale=m.locale, version=m.version, is_default=m.is_default, is_current=m.is_current,
                   builtin=m.builtin, variables=list(m.variables), file_name=m.file_name, size=m.size,
                   created_at=m.created_at)


@strawberry.type(description="A page of document templates.")
class DocumentTemplateConnection(Connection[DocumentTemplate]):
    pass


@strawberry.type(description="A document made from a template for one record: a quote, an order, a pipeline report.")
class Document(Node):
    file_name: str = strawberry.field(description="The file name downloads get: the kind, the record's number and the "
                                      "format's extension.")
    content_type: str = strawberry.field(description="The file's media type, e.g. application/pdf.")
    format: str = strawberry.field(description="DOCX, XLSX, PDF, ...")
    status: DocumentStatus = strawberry.field(description="Whether the file is made yet.")  # type: ignore[valid-type]
    size: int | None = strawberry.field(description="Bytes; null until READY.")
    sha256: str | None = strawberry.field(description="SHA-256 of the file (hex); null until READY.")
    failure: str | None = strawberry.field(description="Why it could not be made (FAILED), or why the last try failed.")
    version: str = strawberry.field(description="The record's version it was made from (for a report: a digest of its figures).")
    created_at: datetime = strawberry.field(description="When it was first asked for (UTC).")
    completed_at: datetime | None = strawberry.field(description="When it became READY or FAILED (UTC); null while PENDING.")

    entity_id: strawberry.Private[str]
    template_pk: strawberry.Private[int]
    pk: strawberry.Private[int]
    model: strawberry.Private[DocumentModel]

    @strawberry.field(description="The record it was made from (a Quote, an Order, a Pipeline).")
    async def entity(self, info: Info) -> Node | None:
        return (await resolve_nodes(info, [strawberry.ID(self.entity_id)]))[0]

    @strawberry.field(description="The template version it was made from.")
    async def template(self, info: Info) -> DocumentTemplate | None:
        found = await info.context.loader("crm_documents.template", service.templates_by_ids).load(self.template_pk)
        return DocumentTemplate.from_model(found) if found is not None else None

    @strawberry.field(description="A link that downloads the file, signed for you and valid for CRM_DOCUMENTS_URL_TTL "
                      "seconds (15 minutes by default); it needs no Authorization header, and stops working when you may no "
                      "longer read the record. Null until READY, and for callers that are no user or API key.")
    def download_url(self, info: Info) -> str | None:
        ctx: Context = info.context
        principal = ctx.actor.principal
        if self.model.status is not StatusModel.READY or principal is None:
            return None
        config = delivery.runtime_of(ctx).config
        base = config.public_url or (str(ctx.request.base_url) if ctx.request is not None else "http://localhost/")
        return delivery.download_url(ctx.settings, base, self.model, principal, config.url_ttl)

    @classmethod
    def from_model(cls, m: DocumentModel) -> Document:
        return cls(id=encode_global_id("Document", m.id), file_name=m.file_name, content_type=m.content_type,
                   format=m.format, status=m.status, size=m.size, sha256=m.sha256, failure=m.failure,
                   version=m.entity_version, created_at=m.created_at, completed_at=m.completed_at,
                   entity_id=encode_global_id(m.entity_type, m.entity_pk), template_pk=m.template_id, pk=m.id, model=m)


@strawberry.input(description="Which templates: the current version of each unless `allVersions`.")
class DocumentTemplateFilter:
    kind: DocumentKind | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Only templates of this kind."
    )
    format: str | None = strawberry.field(default=None, description="Only this format, e.g. DOCX (any case).")
    locale: str | None = strawberry.field(default=None, description="Only this locale, exactly as templates show it, "
                                          "e.g. de_DE.")
    name: str | None = strawberry.field(default=None, description="Only templates of exactly this name.")
    is_default: bool | None = strawberry.field(default=None, description="Only defaults (true) or only the others (false).")
    all_versions: bool = strawberry.field(default=False, description="Include the older versions too, not only the "
                                          "current one.")


@strawberry.input(description="A template file, base64-encoded in `fileBase64` (at most CRM_DOCUMENTS_MAX_TEMPLATE_BYTES, "
                  "5 MB by default; the request itself must fit CRM_MAX_REQUEST_BYTES). It is checked: the format, every "
                  "tag, and that every variable it reads is in the kind's context.")
class UploadDocumentTemplateInput:
    name: str = strawberry.field(description="1 to 200 characters. The same name, kind, format and locale as an existing "
                                 "template adds a version of it.")
    kind: DocumentKind = strawberry.field(description="The kind of document it makes; the file may use only this kind's "
                                          "variables (else UNKNOWN_VARIABLE).")  # type: ignore[valid-type]
    format: str = strawberry.field(description="DOCX or XLSX (or a partner engine's format).")
    locale: str = strawberry.field(description="e.g. en, de-DE, zh-CN.")
    file_base64: str = strawberry.field(description="The file, base64-encoded. A file the engine cannot read gives "
                                        "NOT_THIS_FORMAT, TEMPLATE_SYNTAX or TOO_LARGE, with where in the file.")
    file_name: str | None = strawberry.field(default=None, description="The file name to keep; default: the name plus the "
                                             "format's extension.")
    is_default: bool | None = strawberry.field(default=None, description="Make it the default of its kind and locale "
                                               "(true), or not (false); by default a new version is the default if the "
                                               "version it replaces was.")


@strawberry.input(description="Which document to make: from `templateId`, or from the default template of `kind` in the "
                  "customer's language. The same record version, template version and format give the same document.")
class GenerateDocumentInput:
    entity_id: strawberry.ID = strawberry.field(description="A Quote (QUOTE), an Order (ORDER_CONFIRMATION, INVOICE, "
                                                "CONTRACT) or a Pipeline (REPORT).")
    template_id: strawberry.ID | None = strawberry.field(default=None, description="Global ID of the DocumentTemplate to "
                                                         "use (any version).")
    kind: DocumentKind | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="The kind of document, when no `templateId` is given; with one, it must be the "
        "template's kind."
    )
    format: str | None = strawberry.field(default=None, description="DOCX, XLSX or PDF; default: the template's own format.")
    wait: bool = strawberry.field(default=True, description="For a PDF: wait until it is made (up to "
                                  "CRM_DOCUMENTS_WAIT_TIMEOUT s), or answer at once with it PENDING; "
                                  "`document.generated` tells when it is READY.")
    period_from: date | None = strawberry.field(default=None, description="REPORT only: the first day of the period.")
    period_to: date | None = strawberry.field(default=None, description="REPORT only: the last day of the period.")


@strawberry.type(description="The result of `uploadDocumentTemplate`.")
class DocumentTemplatePayload:
    document_template: DocumentTemplate | None = strawberry.field(description="The new template version; null when "
                                                                  "`errors` is not empty.")
    errors: list[UserError]


@strawberry.type(description="The result of `generateDocument`.")
class GenerateDocumentPayload:
    document: Document | None = strawberry.field(description="The document, READY or still PENDING; null when `errors` "
                                                 "is not empty.")
    created: bool = strawberry.field(description="False when the same document had been made before and is given again.")
    errors: list[UserError]


@strawberry.type
class DocumentsQuery:
    @signed_in(description="Document templates, newest first: the current version of each unless `filter.allVersions`.")
    async def document_templates(
        self, info: Info,
        filter: Annotated[DocumentTemplateFilter | None, strawberry.argument(description="Which templates; default: the "
                                                                              "current version of every template.")] = None,
        first: int | None = None, after: str | None = None, last: int | None = None, before: str | None = None,
    ) -> DocumentTemplateConnection:
        ctx: Context = info.context
        async with ctx.db.reader() as session:
            installed = await service.builtin_templates_installed(session)
        if not installed:  # the first use: a write, once
            async with ctx.db.writer() as session, session.begin():
                await service.ensure_builtin_templates(session, delivery.runtime_of(ctx))
        values = {} if filter is None else {k: getattr(filter, k) for k in ("kind", "format", "locale", "name", "is_default", "all_versions")}
        if values.get("format"):
            values["format"] = values["format"].upper()
        page = await paginate(ctx.db.reader, service.template_select(values), NEWEST_FIRST, page_args(first, after, last, before))
        return DocumentTemplateConnection.from_page(page, DocumentTemplate.from_model)


@strawberry.type
class DocumentsMutation:
    @mutation("settings", "update", description="Upload a document template (or a new version of one).")
    async def upload_document_template(
        self, info: Info,
        input: Annotated[UploadDocumentTemplateInput, strawberry.argument(description="The template file and what it is for.")],
    ) -> DocumentTemplatePayload:
        ctx: Context = info.context
        runtime = delivery.runtime_of(ctx)
        data = {k: getattr(input, k) for k in ("name", "kind", "format", "locale", "file_base64", "file_name", "is_default")}
        model, errors = await unit_of_work(info, lambda s: service.upload_template(s, actor=ctx.actor, runtime=runtime, data=data))
        return DocumentTemplatePayload(document_template=DocumentTemplate.from_model(model) if model else None, errors=errors)

    @signed_in("mutation", description="Make a document from a record: a quote, an order confirmation, an invoice, a contract "
               "or a pipeline report, as DOCX, XLSX or PDF. Needs read access to the record (`quotes:read`, `orders:read`, "
               "`pipelines:read`).")
    async def generate_document(
        self, info: Info,
        input: Annotated[GenerateDocumentInput, strawberry.argument(description="The record, the template or kind, and "
                                                                    "the format.")],
    ) -> GenerateDocumentPayload:
        ctx: Context = info.context
        runtime = delivery.runtime_of(ctx)
        data = {k: getattr(input, k) for k in ("entity_id", "template_id", "kind", "format", "period_from", "period_to")}
        requested, errors = await unit_of_work(info, lambda s: service.request_document(s, actor=ctx.actor, runtime=runtime, data=data))
        if requested is None:
            return GenerateDocumentPayload(document=None, created=False, errors=errors)
        document = requested.document
        if document.status is StatusModel.PENDING and input.wait:
            await service.wait_for(ctx.db, runtime, document.id, runtime.config.wait_timeout)
            async with ctx.db.reader() as session:
                document = await session.get(DocumentModel, document.id) or document
        return GenerateDocumentPayload(document=Document.from_model(document), created=requested.created, errors=[])


# --- documents on the records they are made from -----------------------------------------------


def _by_entity(entity_type: str):  # type: ignore[no-untyped-def]
    async def batch(session, pks):  # type: ignore[no-untyped-def]
        out: dict[int, list[DocumentModel]] = {pk: [] for pk in pks}
        for d in await session.scalars(service.documents_select(entity_type=entity_type, entity_pks=pks)):
            out[d.entity_pk].append(d)
        return out
    return batch


async def _by_customer(session, pks):  # type: ignore[no-untyped-def]
    out: dict[int, list[DocumentModel]] = {pk: [] for pk in pks}
    for d in await session.scalars(service.documents_select(customer_ids=pks)):
        out[d.customer_id].append(d)
    return out


async def _documents(info: Info, key: str, batch, pk: int) -> list[Document]:  # type: ignore[no-untyped-def]
    rows = await info.context.loader(f"crm_documents.{key}", batch, list).load(pk)
    return [Document.from_model(d) for d in rows]


DOCS = "Documents made from it, newest first (every version and format)."


@strawberry.type
class QuoteDocuments:
    @strawberry.field(description=DOCS)
    async def documents(self, info: Info) -> list[Document]:
        return await _documents(info, "quote", _by_entity("Quote"), self.pk)  # type: ignore[attr-defined]


@strawberry.type
class OrderDocuments:
    @strawberry.field(description=DOCS)
    async def documents(self, info: Info) -> list[Document]:
        return await _documents(info, "order", _by_entity("Order"), self.pk)  # type: ignore[attr-defined]


@strawberry.type
class PipelineDocuments:
    @strawberry.field(description="Reports made of it, newest first.")
    async def documents(self, info: Info) -> list[Document]:
        return await _documents(info, "pipeline", _by_entity("Pipeline"), self.pk)  # type: ignore[attr-defined]


@strawberry.type
class CustomerDocuments:
    @strawberry.field(description="Documents made for the customer's quotes and orders, newest first.")
    async def documents(self, info: Info) -> list[Document]:
        return await _documents(info, "customer", _by_customer, self.pk)  # type: ignore[attr-defined]


EXTENSIONS = [
    TypeExtension("Quote", QuoteDocuments),
    TypeExtension("Order", OrderDocuments),
    TypeExtension("Pipeline", PipelineDocuments),
    TypeExtension("Customer", CustomerDocuments),
]


async def _load_templates(info: Info, pks: list[int]) -> list[DocumentTemplate | None]:
    found = await info.context.loader("crm_documents.template", service.templates_by_ids).load_many(pks)
    return [DocumentTemplate.from_model(m) if m is not None else None for m in found]


async def _load_documents(info: Info, pks: list[int]) -> list[Document | None]:
    """A document is found only by those who may read its record."""
    found = await info.context.loader("crm_documents.document", service.documents_by_ids).load_many(pks)
    entity_ids = [encode_global_id(m.entity_type, m.entity_pk) if m is not None else None for m in found]
    visible = await resolve_nodes(info, [strawberry.ID(e) for e in entity_ids if e is not None])
    seen = dict(zip([e for e in entity_ids if e is not None], visible, strict=True))
    return [Document.from_model(m) if m is not None and seen.get(e) is not None else None for m, e in zip(found, entity_ids, strict=True)]


NODES = [
    NodeType("DocumentTemplate", _load_templates, DocumentTemplate),
    NodeType("Document", _load_documents, Document),
]

SCHEMA = SchemaPart(query=DocumentsQuery, mutation=DocumentsMutation, nodes=NODES)

__all__ = ["EXTENSIONS", "SCHEMA"]
