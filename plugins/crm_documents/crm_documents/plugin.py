"""The hooks of the documents plugin (entry point ``crm_documents``, see pyproject.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crm_documents.models import DocumentsBase
from crm_graph import hookimpl
from crm_graph.hookspecs import PluginMigrations
from crm_graph.settings import Settings


@hookimpl
def crm_register_migrations() -> PluginMigrations:
    return PluginMigrations(versions=Path(__file__).parent / "migrations" / "versions", metadata=DocumentsBase.metadata)


@hookimpl
def crm_register_schema():  # type: ignore[no-untyped-def]
    from crm_documents.schema import SCHEMA  # imported here: the CLI needs no GraphQL types

    return SCHEMA


@hookimpl
def crm_register_type_extensions():  # type: ignore[no-untyped-def]
    from crm_documents.schema import EXTENSIONS

    return EXTENSIONS


@hookimpl
def crm_register_routes():  # type: ignore[no-untyped-def]
    from crm_documents.delivery import routes

    return routes()


@hookimpl
def crm_register_subscribers(settings: Settings, plugins: Any):  # type: ignore[no-untyped-def]
    from crm_documents.delivery import DocumentConversions

    return DocumentConversions(settings, plugins)


@hookimpl
def crm_document_engines():  # type: ignore[no-untyped-def]
    from crm_documents.engines import DocxEngine, XlsxEngine

    return [DocxEngine(), XlsxEngine()]


@hookimpl
def crm_document_converters(settings: Settings):  # type: ignore[no-untyped-def]
    from crm_documents.config import document_settings
    from crm_documents.convert import LibreOfficeConverter

    config = document_settings()
    return LibreOfficeConverter(settings.data_dir / "libreoffice", processes=config.converter_processes,
                                soffice=config.soffice or None, python=config.uno_python)


@hookimpl
async def crm_document_attachments(entity_type: str, entity_id: int, purpose: str, db: Any, settings: Settings,
                                   plugins: Any):  # type: ignore[no-untyped-def]
    """A quote being sent gets its PDF (made from the default template if need be)."""
    if entity_type != "Quote" or purpose != "quote.sent":
        return None
    from crm_documents.attachments import quote_pdf

    return await quote_pdf(db, settings, plugins, entity_id)


@hookimpl
async def crm_merge_customers(session: Any, survivor_id: int, merged_ids: Any, dry_run: bool) -> dict[str, int] | None:
    """Documents made for a merged customer's quotes and orders list under the survivor
    (``Customer.documents``): the quotes and orders moved to it with the merge."""
    import sqlalchemy as sa

    from crm_documents.models import Document

    where = Document.customer_id.in_(list(merged_ids))
    moved = int(await session.scalar(sa.select(sa.func.count()).select_from(Document).where(where)) or 0)
    if moved and not dry_run:
        await session.execute(sa.update(Document).where(where).values(customer_id=survivor_id))
    return {"documents": moved} if moved else None
