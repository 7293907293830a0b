"""Tables of imports: saved column mappings, import jobs and the rows each job could not import.

A job is a durable record of one file being imported. Its ``rows_done`` is the checkpoint:
the number of data rows whose outcome (written, unchanged or failed) is committed. Each batch
commits its rows, its failed rows and the new checkpoint in one transaction, so a job taken
again after a crash starts exactly where the last commit left it.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_graph.db.base import Base, IdMixin, TimestampMixin
from crm_graph.db.types import IdType, JSONType, UTCDateTime, enum_column


class ImportEntity(enum.Enum):
    CUSTOMER = "CUSTOMER"
    ORGANIZATION = "ORGANIZATION"
    PRODUCT = "PRODUCT"
    ORDER = "ORDER"


class ImportFormat(enum.Enum):
    CSV = "CSV"
    XLSX = "XLSX"


class ImportMode(enum.Enum):
    CREATE = "CREATE"
    UPSERT = "UPSERT"


class ImportKey(enum.Enum):
    EXTERNAL_REF = "EXTERNAL_REF"
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    SKU = "SKU"
    NAME = "NAME"


class ImportStatus(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


FINISHED = (ImportStatus.SUCCEEDED, ImportStatus.FAILED)


class ImportMapping(IdMixin, TimestampMixin, Base):
    """A saved, reusable column mapping: which source column feeds which field, and how."""

    __tablename__ = "import_mappings"

    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    entity: Mapped[ImportEntity] = mapped_column(enum_column(ImportEntity))
    # {"columns": [{"source", "target", "constant", "separator"}], "options": {...}}
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_by: Mapped[str | None] = mapped_column(sa.String(64))


class ImportJob(IdMixin, TimestampMixin, Base):
    __tablename__ = "import_jobs"

    entity: Mapped[ImportEntity] = mapped_column(enum_column(ImportEntity))
    format: Mapped[ImportFormat] = mapped_column(enum_column(ImportFormat))
    mode: Mapped[ImportMode] = mapped_column(enum_column(ImportMode))
    key: Mapped[ImportKey | None] = mapped_column(enum_column(ImportKey))
    dry_run: Mapped[bool] = mapped_column(sa.Boolean)
    status: Mapped[ImportStatus] = mapped_column(enum_column(ImportStatus), index=True)
    # The uploaded file (crm_graph/files, purpose "import"), its name and digest.
    file_id: Mapped[int | None] = mapped_column(IdType)
    file_name: Mapped[str] = mapped_column(sa.String(255))
    file_sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    mapping_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("import_mappings.id", ondelete="SET NULL"))
    # The mapping as it was when the job started (a saved mapping may change later).
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # Who started it: the job writes as this principal (``user:5``, ``api_key:3``; None: the system).
    principal: Mapped[str | None] = mapped_column(sa.String(64))
    rows_total: Mapped[int | None] = mapped_column(sa.Integer)
    rows_done: Mapped[int] = mapped_column(sa.Integer, default=0)
    rows_failed: Mapped[int] = mapped_column(sa.Integer, default=0)
    rows_created: Mapped[int] = mapped_column(sa.Integer, default=0)
    rows_updated: Mapped[int] = mapped_column(sa.Integer, default=0)
    rows_unchanged: Mapped[int] = mapped_column(sa.Integer, default=0)
    # A worker holds the job while ``lease_expires_at`` is ahead; each batch renews it, and a
    # batch commits only while its token still holds the lease (a fenced checkpoint).
    lease_token: Mapped[str | None] = mapped_column(sa.String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    failure: Mapped[str | None] = mapped_column(sa.String(1000))  # why a FAILED job stopped
    report_file_id: Mapped[int | None] = mapped_column(IdType)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ImportRowError(IdMixin, Base):
    """One problem of one row a job could not import (a row may have several)."""

    __tablename__ = "import_row_errors"

    job_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("import_jobs.id", ondelete="CASCADE"))
    row: Mapped[int] = mapped_column(sa.Integer)  # 1-based line of the file, the header being line 1
    column: Mapped[str | None] = mapped_column(sa.String(255))
    field: Mapped[str | None] = mapped_column(sa.String(64))
    code: Mapped[str] = mapped_column(sa.String(64))
    message: Mapped[str] = mapped_column(sa.String(1000))
    # The row's source values, for the error report (only on the row's first error).
    values: Mapped[list[Any] | None] = mapped_column(JSONType)

    __table_args__ = (sa.Index("ix_import_row_errors_job_row", "job_id", "row", "id"),)
