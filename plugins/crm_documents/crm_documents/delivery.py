"""Where documents leave the server: the converting subscriber (PDFs from the outbox), the signed
download URLs and the route that serves them.

A download URL names the document, an expiry and the principal it was made for (``user:5``,
``api_key:3``), signed with the server's secret. It works without an Authorization header (a
browser link, an email client), but only until it expires, and only while that principal may
still read the record: the route resolves the principal again and checks the record in its
scope, so a revoked key or a record made private stops the download.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_documents import service
from crm_documents.models import Document, DocumentStatus
from crm_documents.storage import MissingFile
from crm_graph.core import access, ids
from crm_graph.core.subscribers import Claim, EventRow, Result, Target, deliver_each, find_subscriber
from crm_graph.settings import Settings

log = logging.getLogger("crm_documents")

ROUTE = "/documents/{id}/{name}"


# --- the subscriber --------------------------------------------------------------------------


class DocumentConversions:
    """Converts the documents that ``document.requested`` events ask for (kind ``documents``)."""

    kind = "documents"

    def __init__(self, settings: Settings, plugins: Any) -> None:
        self.runtime = service.Runtime(settings, plugins)

    async def fan_out(self, db: Any, session: Any, events: Sequence[EventRow]) -> list[Target]:
        return [Target(e.pk, "convert") for e in events if e.type == "document.requested"]

    def servable(self) -> sa.ColumnElement[bool] | None:
        return None

    async def deliver(self, db: Any, claims: Sequence[Claim], deadline: float) -> list[Result]:
        async def convert(claim: Claim) -> Result:
            outcome = await service.produce(db, self.runtime, ids.decode_as(claim.event.entity_id, "Document"))
            if outcome == service.Outcome.RETRY:
                return Result(claim, "failed", error="conversion failed; retried")
            if outcome == service.Outcome.BUSY:
                return Result(claim, "postponed")
            return Result(claim, "delivered")  # READY or FAILED: the document says which

        return await deliver_each(claims, deadline, convert)

    async def aclose(self) -> None:
        await self.runtime.aclose()


def runtime_of(context: Any) -> service.Runtime:
    """The runtime of this process's documents subscriber, so a request converts with the same
    warm converters as the dispatcher."""
    return find_subscriber(getattr(context, "dispatcher", None), DocumentConversions).runtime


# --- signed URLs -----------------------------------------------------------------------------


def _signature(settings: Settings, document_id: int, expires: int, principal: str) -> str:
    key = hmac.new(settings.hash_key(), b"crm_documents download", hashlib.sha256).digest()
    mac = hmac.new(key, f"{document_id}|{expires}|{principal}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def download_url(settings: Settings, base: str, document: Document, principal: str, ttl: int) -> str:
    expires = int(time.time()) + ttl
    query = urlencode({"expires": expires, "principal": principal,
                       "signature": _signature(settings, document.id, expires, principal)})
    return f"{base.rstrip('/')}/documents/{ids.encode('Document', document.id)}/{quote(document.file_name)}?{query}"


def _refuse(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers={"Cache-Control": "no-store"})


async def download(request: Request) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    params = request.query_params
    try:
        document_id = ids.decode_as(request.path_params["id"], "Document")
        expires = int(params.get("expires", ""))
    except ValueError:
        return _refuse(404, "NOT_FOUND", "No such document.")
    principal, signature = params.get("principal", ""), params.get("signature", "")
    if not principal or not hmac.compare_digest(signature, _signature(settings, document_id, expires, principal)):
        return _refuse(403, "BAD_SIGNATURE", "This download link is not valid: ask the API for a new `downloadUrl`.")
    if expires < time.time():
        return _refuse(403, "LINK_EXPIRED", "This download link has expired: ask the API for a new `downloadUrl`.")
    db = state.db
    async with db.reader() as session:
        document = await session.get(Document, document_id)
        actor = await access.principal_actor(session, principal)
        sharing = await access.sharing_defaults(session) if actor is not None else None
    if actor is None:
        return _refuse(403, "FORBIDDEN", "The link's owner can no longer sign in.")
    if document is None or not await _readable(db, actor, sharing, document):
        return _refuse(404, "NOT_FOUND", "No such document.")
    if document.status is not DocumentStatus.READY:
        return _refuse(409, document.status.value, "The document is not ready." if document.status is DocumentStatus.PENDING
                       else f"The document could not be made: {document.failure}")
    runtime = runtime_of(state)  # the process's own: no second set of engines per download
    try:
        async with db.reader() as session:
            content = await service.content_of(session, runtime, document)
    except MissingFile:
        log.error("document %s: its file %s is missing from the storage", document.id, document.sha256)
        return _refuse(410, "GONE", "The document's file is missing; make it again.")
    disposition = f"attachment; filename*=UTF-8''{quote(document.file_name)}"
    return Response(content, media_type=document.content_type, headers={
        "Content-Disposition": disposition, "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
        "ETag": f'"{document.sha256}"',
    })


async def _readable(db: Any, actor: Any, sharing: Any, document: Document) -> bool:
    scope = access.Scope(actor, sharing=sharing) if sharing else access.Scope(actor)
    return str(document.entity_pk) in await access.readable_ids(db.reader, scope, document.entity_type, [document.entity_pk])


def routes() -> list[Route]:
    return [Route(ROUTE, download, methods=["GET"])]
