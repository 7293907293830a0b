"""Storing files and the signed links that download them.

A link names the file, an expiry and the principal it was made for (``user:5``, ``api_key:3``),
signed with the server's secret. It needs no Authorization header (a browser, a BI tool's
downloader), but it works only until it expires, only for the file's owner, and only while that
principal can still act: the route resolves the principal again, so a revoked key stops it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from crm_graph.core import ids
from crm_graph.core.clock import utcnow
from crm_graph.files.models import StoredFile
from crm_graph.settings import Settings

ROUTE = "/files/{id}/{name}"
NODE = "StoredFile"


async def store(session: AsyncSession, *, purpose: str, name: str, content_type: str, content: bytes,
                owner: str | None, expires_at: datetime | None = None) -> StoredFile:
    """Keep ``content`` in the caller's transaction: it is stored exactly when the rest commits."""
    stored = StoredFile(purpose=purpose, name=name, content_type=content_type, size=len(content),
                        sha256=hashlib.sha256(content).hexdigest(), content=content, owner=owner,
                        created_at=utcnow(), expires_at=expires_at)
    session.add(stored)
    await session.flush()
    return stored


async def get(session: AsyncSession, file_id: int, *, with_content: bool = True) -> StoredFile | None:
    query = sa.select(StoredFile).where(StoredFile.id == file_id)
    if with_content:
        query = query.options(undefer(StoredFile.content))
    return (await session.scalars(query)).one_or_none()


async def prune(session: AsyncSession, now: datetime) -> int:
    """Delete the files past their ``expires_at``; the number deleted."""
    result = await session.execute(sa.delete(StoredFile).where(StoredFile.expires_at < now))
    return int(result.rowcount or 0)


def _signature(settings: Settings, file_id: int, expires: int, principal: str) -> str:
    key = hmac.new(settings.hash_key(), b"crm_graph file download", hashlib.sha256).digest()
    mac = hmac.new(key, f"{file_id}|{expires}|{principal}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def download_url(settings: Settings, base: str, stored: StoredFile, principal: str, ttl: int | None = None) -> str:
    """A link to ``stored`` for ``principal``, valid ``ttl`` seconds (CRM_DOWNLOAD_TTL by default)."""
    expires = int(time.time()) + (settings.download_ttl if ttl is None else ttl)
    query = urlencode({"expires": expires, "principal": principal,
                       "signature": _signature(settings, stored.id, expires, principal)})
    return f"{base.rstrip('/')}/files/{ids.encode(NODE, stored.id)}/{quote(stored.name)}?{query}"


def base_url(context: Any) -> str:
    """The server's address for links: CRM_PUBLIC_URL, else the address the request came in on."""
    settings: Settings = context.settings
    if settings.public_url:
        return settings.public_url
    request = getattr(context, "request", None)
    return str(request.base_url) if request is not None else f"http://{settings.host}:{settings.port}/"


def check_link(settings: Settings, file_id: int, expires: int, principal: str, signature: str) -> str | None:
    """Why a link is refused (``BAD_SIGNATURE``, ``LINK_EXPIRED``), or None when it is good."""
    if not principal or not hmac.compare_digest(signature, _signature(settings, file_id, expires, principal)):
        return "BAD_SIGNATURE"
    if expires < time.time():
        return "LINK_EXPIRED"
    return None
