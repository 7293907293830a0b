"""Tables of exports: one row per export job.

A job remembers who asked (``principal``): it runs later, in the dispatcher, with that
principal's access, and its file belongs to that principal.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_graph.db.base import Base, IdMixin
from crm_graph.db.types import IdType, JSONType, UTCDateTime, enum_column


class ExportEntity(enum.Enum):
    CUSTOMERS = "CUSTOMERS"
    ORDERS = "ORDERS"
    ORDER_LINES = "ORDER_LINES"
    OPPORTUNITIES = "OPPORTUNITIES"
    TICKETS = "TICKETS"


class ExportFormat(enum.Enum):
    CSV = "CSV"
    XLSX = "XLSX"
    PARQUET = "PARQUET"


class ExportStatus(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


class ExportJob(IdMixin, Base):
    __tablename__ = "export_jobs"

    entity: Mapped[ExportEntity] = mapped_column(enum_column(ExportEntity))
    format: Mapped[ExportFormat] = mapped_column(enum_column(ExportFormat))
    # The entity's list filter as plain data (camelCase keys), checked when the job was made.
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    status: Mapped[ExportStatus] = mapped_column(enum_column(ExportStatus), index=True)
    # Who asked (``user:5``, ``api_key:3``); the rows are what it may read. None: the system.
    principal: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    rows_total: Mapped[int | None] = mapped_column(sa.Integer)
    rows_done: Mapped[int] = mapped_column(sa.Integer, default=0)
    file_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("stored_files.id", ondelete="SET NULL"))
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
