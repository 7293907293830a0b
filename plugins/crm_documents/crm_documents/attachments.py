"""Files for messages about records (``crm_document_attachments``): a quote being sent gets its
PDF. The newest READY PDF of the quote's current version is reused; without one, it is made
from the default template in the customer's language, the way ``generateDocument`` makes it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from crm_documents import service
from crm_documents.models import Document, DocumentKind, DocumentStatus
from crm_graph.core import ids
from crm_graph.core.actor import SYSTEM
from crm_graph.core.documents import Attachment


async def quote_pdf(db: Any, settings: Any, plugins: Any, quote_id: int) -> list[Attachment]:
    runtime = service.Runtime(settings, plugins)
    try:
        async with db.writer() as session, session.begin():
            requested = await service.request_document(session, actor=SYSTEM, runtime=runtime, data={
                "entity_id": ids.encode("Quote", quote_id), "kind": DocumentKind.QUOTE, "format": service.PDF})
        document_id = requested.document.id
        await service.wait_for(db, runtime, document_id, runtime.config.wait_timeout)
        async with db.reader() as session:
            document = await session.scalar(sa.select(Document).where(Document.id == document_id))
            if document is None or document.status is not DocumentStatus.READY:
                raise RuntimeError(f"the quote's PDF could not be made: {document.failure if document else 'gone'}")
            content = await service.content_of(session, runtime, document)
        return [Attachment(document.file_name, document.content_type, content)]
    finally:
        await runtime.aclose()
