"""Templates and documents: upload and check templates, make documents, convert them, keep them.
No GraphQL here.

How a document is made (``request_document``), in the caller's transaction:

1. the template (named, or the default of the kind in the customer's language) and the record
   (read in the caller's scope) give the context; the engine fills the template;
2. a DOCX or XLSX is stored at once: the document is READY and ``document.generated`` is
   recorded with it;
3. a PDF stores the filled template and records ``document.requested``: the conversion runs
   after commit (``produce``), either in the request (``wait``) or from the outbox, whichever
   claims the document first. A claim is a lease on the row, so two workers never convert the
   same document at once, and a worker that died mid-way leaves a lease that runs out;
4. the same record version, template version and format give the same document: the unique
   key of ``crm_documents_documents`` holds even for two requests at the same instant.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_documents import contexts
from crm_documents.config import DocumentSettings, document_settings
from crm_documents.formatting import Formatter, parse_locale
from crm_documents.models import Document, DocumentKind, DocumentStatus, DocumentTemplate
from crm_documents.storage import MissingFile, Storage
from crm_graph.core import ids
from crm_graph.core.actor import SYSTEM, Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.documents import ConversionError, DocumentConverter, DocumentEngine, TemplateError
from crm_graph.core.errors import NOT_FOUND, ErrorCollector, FieldError, NotFound, ValidationFailed
from crm_graph.core.events import record_event, register_event_type
from crm_graph.plugins import collect_by_key
from crm_graph.settings import Settings

log = logging.getLogger("crm_documents")

TEMPLATES_DIR = Path(__file__).parent / "templates"
PDF = "PDF"
PDF_CONTENT_TYPE = "application/pdf"

# Codes of the UserErrors this plugin gives (beside the core's NOT_FOUND, INVALID_VALUE ...).
UNKNOWN_VARIABLE = "UNKNOWN_VARIABLE"
UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
WRONG_ENTITY = "WRONG_ENTITY"
INVALID_VALUE = "INVALID_VALUE"
REQUIRED = "REQUIRED"
FORBIDDEN = "FORBIDDEN"

register_event_type("document.requested", "A document was asked for that takes a conversion (a PDF); it is made from the outbox.")
register_event_type("document.generated", "A document is ready to download (`data.downloadable`, `data.entityId`, `data.format`).")
register_event_type("document.failed", "A document could not be made (`data.failure` says why); asking again tries again.")
register_event_type("document_template.uploaded", "A document template, or a new version of one, was uploaded.")

# The templates that ship with the plugin: the default of each kind, in each language the
# labels exist in (one file serves them all; its locale decides the formatting).
BUILTIN_LOCALES = ("en_US", "de_DE", "zh_Hans_CN")
BUILTIN: dict[DocumentKind, tuple[str, str]] = {
    DocumentKind.QUOTE: ("Standard quote", "quote.docx"),
    DocumentKind.ORDER_CONFIRMATION: ("Standard order confirmation", "order_confirmation.docx"),
    DocumentKind.INVOICE: ("Standard invoice", "invoice.docx"),
    DocumentKind.CONTRACT: ("Standard sales contract", "contract.docx"),
    DocumentKind.REPORT: ("Pipeline report", "report.xlsx"),
}
# Which permission reads the record a kind is made from.
OBJECT_OF_ENTITY = {"Quote": "quotes", "Order": "orders", "Pipeline": "pipelines"}


# --- the per-process runtime: engines, converters, storage -----------------------------------


class Runtime:
    """What one process uses to make documents: the plugins' engines (by format), their
    converters (started on first use, closed by ``aclose``) and the file storage."""

    def __init__(self, settings: Settings, plugins: Any, config: DocumentSettings | None = None) -> None:
        self.settings = settings
        self.plugins = plugins
        self.config = config or document_settings()
        self.storage = Storage(self.config.storage_dir(settings))
        self.engines = engines_of(plugins)
        self._converters: list[DocumentConverter] | None = None

    def engine(self, fmt: str) -> DocumentEngine | None:
        return self.engines.get(fmt.upper())

    def converter(self, source: str, target: str) -> DocumentConverter | None:
        if self._converters is None:
            self._converters = converters_of(self.plugins, self.settings)
        return next((c for c in self._converters if c.target == target and source in c.sources), None)

    def can_convert(self, source: str, target: str) -> bool:
        return self.converter(source, target) is not None

    async def aclose(self) -> None:
        converters, self._converters = self._converters or [], None
        for converter in converters:
            try:
                await converter.aclose()
            except Exception:  # noqa: BLE001 - closing one must not keep the others open
                log.exception("closing converter %s failed", getattr(converter, "name", converter))


def engines_of(plugins: Any) -> dict[str, DocumentEngine]:
    """The engines plugins register, by format; two for one format stop start-up."""
    return collect_by_key(plugins, "crm_document_engines", protocol=DocumentEngine, key=lambda e: e.format.upper(),
                          what=lambda fmt: f"document engine for {fmt}")


def converters_of(plugins: Any, settings: Settings) -> list[DocumentConverter]:
    """The converters plugins register, in registration order; two of one name stop start-up."""
    return list(collect_by_key(plugins, "crm_document_converters", protocol=DocumentConverter, key=lambda c: c.name,
                               what=lambda name: f"document converter {name!r}", settings=settings).values())


# --- templates ----------------------------------------------------------------------------------


async def builtin_templates_installed(session: AsyncSession) -> bool:
    return await session.scalar(sa.select(DocumentTemplate.id).where(DocumentTemplate.builtin.is_(True)).limit(1)) is not None


async def ensure_builtin_templates(session: AsyncSession, runtime: Runtime) -> None:
    """Install the shipped templates once (the first time templates are used). Requests that do
    it at the same moment insert the same rows: the unique key keeps one of each."""
    if await builtin_templates_installed(session):
        return
    now = utcnow()
    rows = []
    for kind, (name, file_name) in BUILTIN.items():
        content = (TEMPLATES_DIR / file_name).read_bytes()
        fmt = Path(file_name).suffix[1:].upper()
        engine = runtime.engine(fmt)
        if engine is None:
            continue  # its engine's plugin is blocked
        info = await asyncio.to_thread(engine.inspect, content)
        sha = await runtime.storage.put(session, content)
        rows += [dict(name=name, kind=kind, format=fmt, locale=locale, version=1, is_default=True, is_current=True,
                      variables=sorted(info.variables), file_name=file_name, file_sha256=sha, size=len(content),
                      builtin=True, created_at=now, created_by=SYSTEM.label) for locale in BUILTIN_LOCALES]
    if rows:
        dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
        await session.execute(dialect.insert(DocumentTemplate).values(rows).on_conflict_do_nothing(
            index_elements=["name", "kind", "format", "locale", "version"]))


def template_select(filter: Mapping[str, Any] | None = None) -> sa.Select[tuple[DocumentTemplate]]:
    filter = filter or {}
    stmt = sa.select(DocumentTemplate)
    if not filter.get("all_versions"):
        stmt = stmt.where(DocumentTemplate.is_current.is_(True))
    for key, column in (("kind", DocumentTemplate.kind), ("format", DocumentTemplate.format),
                        ("locale", DocumentTemplate.locale), ("name", DocumentTemplate.name)):
        if filter.get(key) is not None:
            stmt = stmt.where(column == filter[key])
    if filter.get("is_default") is not None:
        stmt = stmt.where(DocumentTemplate.is_default.is_(bool(filter["is_default"])))
    return stmt


async def templates_by_ids(session: AsyncSession, pks: Sequence[int]) -> dict[int, DocumentTemplate]:
    rows = await session.scalars(sa.select(DocumentTemplate).where(DocumentTemplate.id.in_(pks)))
    return {t.id: t for t in rows}


def _decode_file(value: Any, limit: int, errors: ErrorCollector) -> bytes | None:
    if not isinstance(value, str) or not value.strip():
        errors.add("fileBase64", REQUIRED, "Send the template file, base64-encoded.")
        return None
    if len(value) > (limit * 4) // 3 + 8:
        errors.add("fileBase64", TemplateError.TOO_LARGE, f"Templates may be at most {limit} bytes (CRM_DOCUMENTS_MAX_TEMPLATE_BYTES).")
        return None
    try:
        content = base64.b64decode(re.sub(r"\s+", "", value), validate=True)
    except (binascii.Error, ValueError):
        errors.add("fileBase64", INVALID_VALUE, "fileBase64 is not valid base64.")
        return None
    if len(content) > limit:
        errors.add("fileBase64", TemplateError.TOO_LARGE, f"Templates may be at most {limit} bytes (CRM_DOCUMENTS_MAX_TEMPLATE_BYTES).")
        return None
    return content


def _kind(value: Any, field: str, errors: ErrorCollector) -> DocumentKind | None:
    try:
        return value if isinstance(value, DocumentKind) else DocumentKind(str(value))
    except ValueError:
        errors.add(field, INVALID_VALUE, f"kind is one of {', '.join(k.value for k in DocumentKind)}.")
        return None


def check_template(engine: DocumentEngine, kind: DocumentKind, content: bytes) -> list[str]:
    """The template's variables; raises ``ValidationFailed`` with where each problem is."""
    try:
        info = engine.inspect(content)
    except TemplateError as exc:
        raise ValidationFailed([FieldError("fileBase64", exc.code, str(exc))]) from exc
    except Exception as exc:  # noqa: BLE001 - an engine's bug is the template's refusal, not a 500
        log.exception("document engine %s failed to inspect a template", engine.format)
        raise ValidationFailed([FieldError("fileBase64", TemplateError.TEMPLATE_SYNTAX,
                                             f"The {engine.format} engine could not read the template ({type(exc).__name__}).")]) from exc
    unknown = sorted(info.variables - contexts.VARIABLES[kind])
    if unknown:
        errors = ErrorCollector()
        for name in unknown:
            where = info.where.get(name)
            errors.add("fileBase64", UNKNOWN_VARIABLE,
                       f"The template reads `{name}`{f' ({where})' if where else ''}, which a {kind.value} "
                       f"document does not have; it has: {', '.join(sorted(contexts.VARIABLES[kind]))}.")
        errors.raise_if_any()
    return sorted(info.variables)


async def upload_template(session: AsyncSession, *, actor: Actor, runtime: Runtime, data: Mapping[str, Any]) -> DocumentTemplate:
    errors = ErrorCollector()
    name = (data.get("name") or "").strip()
    if not 1 <= len(name) <= 200:
        errors.add("name", INVALID_VALUE, "name is 1 to 200 characters.")
    kind = _kind(data.get("kind"), "kind", errors)
    fmt = str(data.get("format") or "").upper()
    engine = runtime.engine(fmt)
    if engine is None:
        errors.add("format", UNSUPPORTED_FORMAT, f"No engine reads {fmt or 'that format'}; this server has: {', '.join(sorted(runtime.engines)) or 'none'}.")
    locale_text = str(data.get("locale") or "").strip()
    locale = parse_locale(locale_text, "") if locale_text else None
    if locale is None or locale_text.replace("-", "_").split("_")[0].lower() != locale.language:
        errors.add("locale", INVALID_VALUE, "locale is a language tag such as en, de-DE or zh-CN.")
    content = _decode_file(data.get("file_base64"), runtime.config.max_template_bytes, errors)
    errors.raise_if_any()
    assert kind is not None and engine is not None and content is not None and locale is not None
    variables = await asyncio.to_thread(check_template, engine, kind, content)
    await ensure_builtin_templates(session, runtime)
    locale_name = str(locale)
    family = [DocumentTemplate.name == name, DocumentTemplate.kind == kind, DocumentTemplate.format == fmt,
              DocumentTemplate.locale == locale_name]
    last = await session.scalar(sa.select(sa.func.max(DocumentTemplate.version)).where(*family))
    is_default = data.get("is_default")
    if is_default is None:  # a new version stays the default if the one it replaces was
        is_default = bool(await session.scalar(sa.select(DocumentTemplate.is_default).where(
            *family, DocumentTemplate.is_current.is_(True))))
    if is_default:  # one default per kind and language
        await session.execute(sa.update(DocumentTemplate).where(
            DocumentTemplate.kind == kind, DocumentTemplate.locale == locale_name).values(is_default=False))
    await session.execute(sa.update(DocumentTemplate).where(*family).values(is_current=False))
    sha = await runtime.storage.put(session, content)
    template = DocumentTemplate(
        name=name, kind=kind, format=fmt, locale=locale_name, version=(last or 0) + 1, is_default=is_default,
        is_current=True, variables=variables, file_name=_file_name(data.get("file_name") or f"{name}.{engine.extension}"),
        file_sha256=sha, size=len(content), builtin=False, created_at=utcnow(), created_by=actor.label,
    )
    session.add(template)
    await session.flush()
    record_event(session, type="document_template.uploaded", entity_type="DocumentTemplate", entity_id=template.id,
                 actor=actor, payload=template_payload(template))
    return template


def template_payload(t: DocumentTemplate) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "kind": t.kind.value, "format": t.format, "locale": t.locale,
            "version": t.version, "isDefault": t.is_default, "variables": t.variables}


def _file_name(value: str) -> str:
    cleaned = re.sub(r"[^\w.\- ]+", "_", Path(str(value)).name, flags=re.UNICODE).strip() or "template"
    return cleaned[:255]


# --- documents ----------------------------------------------------------------------------------


@dataclass
class Requested:
    document: Document
    created: bool


async def _choose_template(session: AsyncSession, runtime: Runtime, kind: DocumentKind, locale: str | None) -> DocumentTemplate | None:
    """The default template of ``kind`` in the customer's language (then in the server's
    default locale's language, then English, then any), newest first."""
    await ensure_builtin_templates(session, runtime)
    rows = list(await session.scalars(
        sa.select(DocumentTemplate).where(DocumentTemplate.kind == kind, DocumentTemplate.is_current.is_(True))
        .order_by(DocumentTemplate.is_default.desc(), DocumentTemplate.builtin, DocumentTemplate.created_at.desc(),
                  DocumentTemplate.id.desc())
    ))
    rows = [t for t in rows if runtime.engine(t.format) is not None]
    wanted = parse_locale(locale, runtime.config.default_locale)
    for test in (lambda t: str(parse_locale(t.locale)) == str(wanted),
                 lambda t: parse_locale(t.locale).language == wanted.language,
                 lambda t: parse_locale(t.locale).language == parse_locale(runtime.config.default_locale).language,
                 lambda t: parse_locale(t.locale).language == "en",
                 lambda t: True):
        found = [t for t in rows if test(t)]
        if found:
            defaults = [t for t in found if t.is_default]
            return (defaults or found)[0]
    return None


def _entity(value: Any, errors: ErrorCollector) -> tuple[str, int] | None:
    try:
        return ids.decode(str(value))
    except ValueError:
        errors.add("entityId", INVALID_VALUE, "entityId is not an ID of this API.")
        return None


def _period(data: Mapping[str, Any]) -> tuple[date | None, date | None]:
    start, end = data.get("period_from"), data.get("period_to")
    if start is not None and end is not None and start > end:
        raise ValidationFailed([FieldError("periodTo", INVALID_VALUE, "periodTo is on or after periodFrom.")])
    return start, end


async def request_document(session: AsyncSession, *, actor: Actor, runtime: Runtime, data: Mapping[str, Any]) -> Requested:
    errors = ErrorCollector()
    entity = _entity(data.get("entity_id"), errors)
    template_pk = None
    if data.get("template_id") is not None:
        try:
            template_pk = ids.decode_as(str(data["template_id"]), "DocumentTemplate")
        except ValueError:
            errors.add("templateId", INVALID_VALUE, "templateId is not a DocumentTemplate ID.")
    kind = _kind(data["kind"], "kind", errors) if data.get("kind") is not None else None
    if template_pk is None and kind is None and not errors.errors:
        errors.add("kind", REQUIRED, "Give templateId or kind.")
    fmt = str(data.get("format") or "").upper()
    errors.raise_if_any()
    assert entity is not None
    entity_type, pk = entity

    template: DocumentTemplate | None = None
    if template_pk is not None:
        template = await session.get(DocumentTemplate, template_pk)
        if template is None:
            raise NotFound("The template", "templateId")
        if kind is not None and template.kind is not kind:
            raise ValidationFailed([FieldError("kind", INVALID_VALUE, f"The template makes {template.kind.value} documents, not {kind.value}.")])
        kind = template.kind
    assert kind is not None
    expected = contexts.ENTITY_OF_KIND[kind]
    if entity_type != expected:
        raise ValidationFailed([FieldError("entityId", WRONG_ENTITY,
                                             f"A {kind.value} document is made from a {expected}, not a {entity_type}.")])
    obj = OBJECT_OF_ENTITY[expected]
    if not actor.can(obj, "read"):
        raise ValidationFailed([FieldError("entityId", FORBIDDEN, f"Making this document needs `{obj}:read`.")])
    try:
        if template is None:
            template = await _choose_template(session, runtime, kind, await contexts.customer_locale(session, kind, pk))
            if template is None:
                raise ValidationFailed([FieldError("kind", NOT_FOUND, f"There is no {kind.value} template this server can fill.")])
        engine = runtime.engine(template.format)
        if engine is None:
            raise ValidationFailed([FieldError("templateId", UNSUPPORTED_FORMAT, f"No engine reads {template.format} templates here (a blocked plugin?).")])
        fmt = fmt or template.format
        if fmt != template.format and not (fmt == PDF and runtime.can_convert(template.format, PDF)):
            raise ValidationFailed([FieldError("format", UNSUPPORTED_FORMAT,
                                                 f"A {template.format} template gives {template.format}"
                                                 f"{' or PDF' if runtime.can_convert(template.format, PDF) else ''}, not {fmt}.")])
        formatter = Formatter(parse_locale(template.locale, runtime.config.default_locale))
        built = await contexts.build(kind, session, pk, formatter, runtime.config, _period(data))
    except contexts.NotFound:
        raise NotFound(f"The {expected}", "entityId") from None

    key = [Document.entity_type == expected, Document.entity_pk == pk, Document.entity_version == built.version,
           Document.template_id == template.id, Document.format == fmt]
    existing = await session.scalar(sa.select(Document).where(*key))
    if existing is not None and existing.status is not DocumentStatus.FAILED:
        return Requested(existing, False)

    source = await runtime.storage.get(session, template.file_sha256)
    try:
        filled = await asyncio.to_thread(engine.render, source, built.context, formatter.filters())
    except TemplateError as exc:
        raise ValidationFailed([FieldError("templateId", exc.code, f"The template could not be filled: {exc}")]) from exc
    except Exception as exc:  # noqa: BLE001 - an engine's bug fails this request with a clear answer
        log.exception("document engine %s failed to fill template %s", engine.format, template.id)
        raise ValidationFailed([FieldError("templateId", TemplateError.RENDER_FAILED,
                                             f"The template could not be filled ({type(exc).__name__}).")]) from exc
    sha = await runtime.storage.put(session, filled)
    now = utcnow()
    ready = fmt == template.format
    values: dict[str, Any] = {
        "status": DocumentStatus.READY if ready else DocumentStatus.PENDING,
        "file_name": _file_name(f"{kind.value.lower()}-{built.number}.{engine.extension if ready else fmt.lower()}"),
        "content_type": engine.content_type if ready else PDF_CONTENT_TYPE,
        "size": len(filled) if ready else None, "sha256": sha if ready else None, "source_sha256": None if ready else sha,
        "failure": None, "attempts": 0, "lease_until": None, "completed_at": now if ready else None,
    }
    if existing is not None:  # FAILED before: try again
        for name, value in values.items():
            setattr(existing, name, value)
        document, created = existing, True
    else:
        document = Document(entity_type=expected, entity_pk=pk, entity_version=built.version, customer_id=built.customer_id,
                            template_id=template.id, format=fmt, created_at=now, created_by=actor.label, **values)
        try:
            async with session.begin_nested():
                session.add(document)
                await session.flush()
        except sa.exc.IntegrityError:  # the same document, asked for at the same moment
            found = await session.scalar(sa.select(Document).where(*key))
            if found is None:
                raise
            return Requested(found, False)
        created = True
    await session.flush()
    record_event(session, type="document.generated" if ready else "document.requested", entity_type="Document",
                 entity_id=document.id, actor=actor, payload=document_payload(document))
    return Requested(document, created)


def document_payload(d: Document) -> dict[str, Any]:
    return {"id": d.id, "entityId": ids.encode(d.entity_type, d.entity_pk), "entityType": d.entity_type,
            "templateId": ids.encode("DocumentTemplate", d.template_id), "format": d.format, "status": d.status.value,
            "fileName": d.file_name, "size": d.size, "sha256": d.sha256, "failure": d.failure,
            "downloadable": d.status is DocumentStatus.READY}


# --- conversion ---------------------------------------------------------------------------------


class Outcome:
    READY = "ready"
    FAILED = "failed"
    RETRY = "retry"  # failed this time; try again later
    BUSY = "busy"  # another worker holds it


async def _claim(db: Any, document_id: int, lease: float) -> Document | None:
    now = utcnow()
    async with db.writer() as session, session.begin():
        result = await session.execute(
            sa.update(Document)
            .where(Document.id == document_id, Document.status == DocumentStatus.PENDING,
                   sa.or_(Document.lease_until.is_(None), Document.lease_until < now))
            .values(lease_until=now + timedelta(seconds=lease), attempts=Document.attempts + 1)
        )
        if result.rowcount != 1:
            return None
        return await session.get(Document, document_id)


async def produce(db: Any, runtime: Runtime, document_id: int) -> str:
    """Convert a PENDING document if nobody else is; returns an ``Outcome``."""
    config = runtime.config
    document = await _claim(db, document_id, config.convert_timeout + 30)
    if document is None:
        async with db.reader() as session:
            status = await session.scalar(sa.select(Document.status).where(Document.id == document_id))
        if status is DocumentStatus.READY:
            return Outcome.READY
        if status is DocumentStatus.FAILED or status is None:
            return Outcome.FAILED
        return Outcome.BUSY
    async with db.reader() as session:
        template = await session.get(DocumentTemplate, document.template_id)
        try:
            source = await runtime.storage.get(session, document.source_sha256 or "")
        except MissingFile:
            source = None
    failure, retry = None, False
    converter = runtime.converter(template.format, document.format) if template is not None else None
    pdf = b""
    if source is None or converter is None:
        failure = "The filled template is missing." if source is None else f"No converter makes {document.format} from {template.format if template else '?'} here."
        retry = converter is None and source is not None  # a converter may be installed later
    else:
        try:
            pdf = await converter.convert(source, template.format, timeout=config.convert_timeout)
        except ConversionError as exc:
            failure, retry = f"{converter.name}: {exc}", exc.retry
        except Exception as exc:  # noqa: BLE001 - a converter's bug fails this document, not the worker
            log.exception("converter %s failed on document %s", converter.name, document_id)
            failure, retry = f"{converter.name}: {type(exc).__name__}", True
        else:
            if not pdf.startswith(b"%PDF"):
                failure, retry = f"{converter.name} gave no PDF.", True
    async with db.writer() as session, session.begin():
        row = await session.get(Document, document_id)
        if row is None or row.status is not DocumentStatus.PENDING:
            return Outcome.READY if row is not None and row.status is DocumentStatus.READY else Outcome.FAILED
        if failure is None:
            row.sha256 = await runtime.storage.put(session, pdf)
            row.size, row.status, row.completed_at, row.failure = len(pdf), DocumentStatus.READY, utcnow(), None
            outcome, event = Outcome.READY, "document.generated"
        elif retry and row.attempts < config.max_attempts:
            row.failure, row.lease_until = failure, None
            return Outcome.RETRY
        else:
            row.status, row.failure, row.completed_at = DocumentStatus.FAILED, failure, utcnow()
            outcome, event = Outcome.FAILED, "document.failed"
        row.lease_until = None
        await session.flush()
        record_event(session, type=event, entity_type="Document", entity_id=row.id, actor=SYSTEM, payload=document_payload(row))
    return outcome


async def wait_for(db: Any, runtime: Runtime, document_id: int, timeout: float) -> None:
    """Make the document here, or wait (up to ``timeout`` s) while another worker does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.1
    while True:
        outcome = await produce(db, runtime, document_id)
        if outcome in (Outcome.READY, Outcome.FAILED) or loop.time() >= deadline:
            return
        if outcome == Outcome.RETRY:
            continue  # the next attempt at once: the caller is waiting
        await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
        delay = min(delay * 2, 1.0)


async def content_of(session: AsyncSession, runtime: Runtime, document: Document) -> bytes:
    if document.status is not DocumentStatus.READY or document.sha256 is None:
        raise MissingFile(str(document.id))
    return await runtime.storage.get(session, document.sha256)


def documents_select(*, entity_type: str | None = None, entity_pks: Sequence[int] | None = None,
                     customer_ids: Sequence[int] | None = None) -> sa.Select[tuple[Document]]:
    stmt = sa.select(Document)
    if entity_type is not None:
        stmt = stmt.where(Document.entity_type == entity_type)
    if entity_pks is not None:
        stmt = stmt.where(Document.entity_pk.in_(entity_pks))
    if customer_ids is not None:
        stmt = stmt.where(Document.customer_id.in_(customer_ids))
    return stmt.order_by(Document.created_at.desc(), Document.id.desc())


async def documents_by_ids(session: AsyncSession, pks: Sequence[int]) -> dict[int, Document]:
    rows = await session.scalars(sa.select(Document).where(Document.id.in_(pks)))
    return {d.id: d for d in rows}
