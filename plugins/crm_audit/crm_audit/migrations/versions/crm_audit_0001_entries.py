"""The audit trail table (branch crm_audit).

Revision ID: crm_audit_0001
Revises:
Create Date: 2026-11-22 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_graph.db.types

revision: str = "crm_audit_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("crm_audit",)
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "crm_audit_entries",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("entity_type", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("occurred_at", crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_fields", JSON, nullable=True),
        sa.Column("changes", JSON, nullable=True),
        sa.Column("data", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_audit_entries")),
        sa.UniqueConstraint("event_id", name=op.f("uq_crm_audit_entries_event_id")),
    )
    with op.batch_alter_table("crm_audit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_crm_audit_entries_entity", ["entity_id", "occurred_at", "id"], unique=False)
        batch_op.create_index("ix_crm_audit_entries_event_type", ["event_type"], unique=False)
        batch_op.create_index("ix_crm_audit_entries_occurred_at_id", ["occurred_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("crm_audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_crm_audit_entries_occurred_at_id")
        batch_op.drop_index("ix_crm_audit_entries_event_type")
        batch_op.drop_index("ix_crm_audit_entries_entity")

    op.drop_table("crm_audit_entries")
