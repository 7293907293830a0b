"""The plugin's tables, on its own MetaData (its Alembic branch creates them; the core's
migrations never see them).

- ``crm_documents_files``: content-addressed file bodies (templates and documents), in the
  database or, with ``CRM_DOCUMENTS_STORAGE=<directory>``, on disk with only the row here.
- ``crm_documents_templates``: one row per template *version*. A template is a name, kind,
  format and locale; uploading one again adds version n+1 and keeps the old row, so documents
  already made still name the version they came from.
- ``crm_documents_documents``: one row per document asked for, unique on (entity, entity
  version, template version, format): asking again gives the same document.
"""

from __future__ import annotations

import enum
from datetime import datetime
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_graph.db.base import NAMING_CONVENTION
from crm_graph.db.types import IdType, JSONType, UTCDateTime, enum_column


class DocumentsBase(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class DocumentKind(enum.Enum):
    QUOTE = "QUOTE"
    ORDER_CONFIRMATION = "ORDER_CONFIRMATION"
    CONTRACT = "CONTRACT"
    INVOICE = "INVOICE"
    REPORT = "REPORT"


class DocumentStatus(enum.Enum):
    PENDING = "PENDING"  # asked for; being made, or waiting for a converter
    READY = "READY"
    FAILED = "FAILED"  # gave up (``failure`` says why); asking again tries again


class StoredFile(DocumentsBase):
    __tablename__ = "crm_documents_files"

    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    # Null when the body is in the files directory (CRM_DOCUMENTS_STORAGE).
    content: Mapped[bytes | None] = mapped_column(sa.LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DocumentTemplate(DocumentsBase):
    __tablename__ = "crm_documents_templates"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[DocumentKind] = mapped_column(enum_column(DocumentKind))
    format: Mapped[str] = mapped_column(sa.String(16))  # an engine's format: DOCX, XLSX, ...
    locale: Mapped[str] = mapped_column(sa.String(35))  # "en", "de_DE", "zh_Hans_CN"
    version: Mapped[int] = mapped_column(sa.Integer)
    # The template of its kind used when a document names only the kind (per language).
    is_default: Mapped[bool] = mapped_column(sa.Boolean)
    # True for the newest version of its (name, kind, format, locale).
    is_current: Mapped[bool] = mapped_column(sa.Boolean)
    variables: Mapped[list[str]] = mapped_column(JSONType)
    file_name: Mapped[str] = mapped_column(sa.String(255))
    file_sha256: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("crm_documents_files.sha256"))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    builtin: Mapped[bool] = mapped_column(sa.Boolean)  # shipped with the plugin
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(200))

    __table_args__ = (
        sa.UniqueConstraint("name", "kind", "format", "locale", "version"),
        sa.Index("ix_crm_documents_templates_current", "is_current", "kind", "locale"),
    )


class Document(DocumentsBase):
    __tablename__ = "crm_documents_documents"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    entity_type: Mapped[str] = mapped_column(sa.String(64))  # "Quote", "Order", "Pipeline"
    entity_pk: Mapped[int] = mapped_column(IdType)
    # The record's version when the document was made (for a report: a digest of its figures).
    entity_version: Mapped[str] = mapped_column(sa.String(64))
    customer_id: Mapped[int | None] = mapped_column(IdType, nullable=True)  # for Customer.documents
    template_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("crm_documents_templates.id"))
    format: Mapped[str] = mapped_column(sa.String(16))  # what was asked: DOCX, XLSX, PDF
    status: Mapped[DocumentStatus] = mapped_column(enum_column(DocumentStatus))
    file_name: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(200))
    size: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    sha256: Mapped[str | None] = mapped_column(sa.String(64), sa.ForeignKey("crm_documents_files.sha256"), nullable=True)
    # For a converted document (PDF): the filled template it is converted from, made when the
    # document was asked for, so a retry converts exactly that.
    source_sha256: Mapped[str | None] = mapped_column(
        sa.String(64), sa.ForeignKey("crm_documents_files.sha256"), nullable=True
    )
    failure: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    attempts: Mapped[int] = mapped_column(sa.Integer)
    # While one worker makes the document, the others leave it alone until this time.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(sa.String(200))

    __table_args__ = (
        sa.UniqueConstraint("entity_type", "entity_pk", "entity_version", "template_id", "format"),
        sa.Index("ix_crm_documents_documents_entity", "entity_type", "entity_pk", "created_at", "id"),
        sa.Index("ix_crm_documents_documents_customer", "customer_id", "created_at", "id"),
    )
