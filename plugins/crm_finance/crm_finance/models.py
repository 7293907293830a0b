"""The finance plugin's tables, on its own MetaData (its Alembic branch ``crm_finance``).

- ``crm_finance_connections``: one per set of books, naming its backend; the config without its
  credentials, the credentials encrypted (or the names of environment variables holding them).
- ``crm_finance_order_syncs``: the mapping of an order to its invoice in one set of books (one
  row per order and connection): status, the remote id and number, the last error.
- ``crm_finance_inbound_payments``: every payment read from the books, unique on (connection,
  the books' payment id), written before the payment is applied: a payment seen twice is applied
  once.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_graph.core.money import AmountType
from crm_graph.db.base import NAMING_CONVENTION
from crm_graph.db.types import IdType, JSONType, UTCDateTime, enum_column


class FinanceBase(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class SyncStatus(enum.Enum):
    PENDING = "PENDING"  # to push (or pushing, or waiting for a retry)
    SYNCED = "SYNCED"  # the books have the invoice
    FAILED = "FAILED"  # the last try failed; retried with backoff, then left for retryFinanceSync
    CANCELLED = "CANCELLED"  # the order was cancelled or refunded, and the invoice reversed


class FinanceConnection(FinanceBase):
    __tablename__ = "crm_finance_connections"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    backend: Mapped[str] = mapped_column(sa.String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    secrets: Mapped[bytes | None] = mapped_column(sa.LargeBinary, nullable=True)  # Fernet token of a JSON object
    secret_env: Mapped[dict[str, str]] = mapped_column(JSONType)  # {"password": "TRYTON_PASSWORD"}
    # Order statuses that push the order to these books.
    push_statuses: Mapped[list[str]] = mapped_column(JSONType)
    active: Mapped[bool] = mapped_column(sa.Boolean)
    payments_checkpoint: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    last_pull_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_pull_error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OrderSync(FinanceBase):
    __tablename__ = "crm_finance_order_syncs"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(IdType)
    connection_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("crm_finance_connections.id", ondelete="CASCADE"))
    status: Mapped[SyncStatus] = mapped_column(enum_column(SyncStatus))
    remote_id: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    remote_number: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    last_error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    attempts: Mapped[int] = mapped_column(sa.Integer)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Paid in the books beyond the order's balance: not applied to the order, kept visible here.
    unapplied: Mapped[Decimal] = mapped_column(AmountType)
    # While one worker talks to the books about this order, the others leave it alone until then
    # (two pushes of one order at once could both miss the other's invoice in the lookup).
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("order_id", "connection_id"),
        sa.Index("ix_crm_finance_order_syncs_status", "connection_id", "status"),
    )


class InboundPayment(FinanceBase):
    __tablename__ = "crm_finance_inbound_payments"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    connection_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("crm_finance_connections.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(sa.String(200))
    reference: Mapped[str] = mapped_column(sa.String(200))
    order_id: Mapped[int | None] = mapped_column(IdType, nullable=True)
    amount: Mapped[Decimal] = mapped_column(AmountType)
    currency: Mapped[str] = mapped_column(sa.String(3))
    applied: Mapped[Decimal] = mapped_column(AmountType)  # what reached the order
    # "APPLIED", "OVERPAID" (part applied, the rest unapplied), "UNKNOWN_ORDER", "CURRENCY_MISMATCH", "ORDER_CLOSED"
    outcome: Mapped[str] = mapped_column(sa.String(32))
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (sa.UniqueConstraint("connection_id", "external_id"),)
