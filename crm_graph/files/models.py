"""Stored files: what a client uploaded for a job (an import's file) and what a job made for a
client (an import's error report, an export).

The bytes live in the database, not on a disk: every server process of a PostgreSQL deployment
can read them, a backup holds them, and a job resumed by another process finds its file.
Files are bounded by the jobs that make them (imports refuse files past their limit).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_graph.db.base import Base, IdMixin
from crm_graph.db.types import UTCDateTime


class StoredFile(IdMixin, Base):
    __tablename__ = "stored_files"

    # What the file is for: "import", "import-report", "export".
    purpose: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    # Loaded only when asked for: listing jobs does not read their files.
    content: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    # The principal the file belongs to (``user:5``, ``api_key:3``); None for the system's own.
    owner: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # After this the file may be pruned; None keeps it.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
