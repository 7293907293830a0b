"""File bodies, addressed by their SHA-256: the same bytes are kept once.

In the database (``crm_documents_files.content``) by default; with a files directory
(``CRM_DOCUMENTS_STORAGE``) the body goes to ``<dir>/<sha[:2]>/<sha>``, written to a temporary
name and renamed, before the row that names it commits: a crash leaves at most an unnamed file,
never a row without its body.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_documents.models import StoredFile
from crm_graph.core.clock import utcnow


class MissingFile(Exception):
    """A body the database names but the files directory does not have."""


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class Storage:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def _path(self, sha: str) -> Path:
        assert self.directory is not None
        return self.directory / sha[:2] / sha

    def _write(self, sha: str, content: bytes) -> None:
        path = self._path(sha)
        if path.exists() and path.stat().st_size == len(content):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(self, session: AsyncSession, content: bytes) -> str:
        """Keep ``content`` (in ``session``'s transaction); returns its SHA-256."""
        sha = digest(content)
        if self.directory is not None:
            await asyncio.to_thread(self._write, sha, content)
        exists = await session.scalar(sa.select(StoredFile.sha256).where(StoredFile.sha256 == sha))
        if exists is None:
            # A concurrent writer of the same bytes may insert it first: its row is as good as ours.
            dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
            await session.execute(dialect.insert(StoredFile).values(
                sha256=sha, size=len(content), created_at=utcnow(),
                content=None if self.directory is not None else content,
            ).on_conflict_do_nothing(index_elements=["sha256"]))
        return sha

    async def get(self, session: AsyncSession, sha: str) -> bytes:
        row = (await session.execute(sa.select(StoredFile.content, StoredFile.size).where(StoredFile.sha256 == sha))).one_or_none()
        if row is None:
            raise MissingFile(sha)
        if row.content is not None:
            return bytes(row.content)
        if self.directory is None:
            raise MissingFile(sha)
        try:
            return await asyncio.to_thread(self._path(sha).read_bytes)
        except FileNotFoundError as exc:
            raise MissingFile(sha) from exc
