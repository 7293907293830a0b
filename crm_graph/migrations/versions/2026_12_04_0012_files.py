"""Stored files and their signed downloads.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_graph.db.types


revision: str = '0012'
down_revision: str | Sequence[str] | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('stored_files',
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=True),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stored_files'))
    )
    op.create_index(op.f('ix_stored_files_expires_at'), 'stored_files', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_stored_files_expires_at'), table_name='stored_files')
    op.drop_table('stored_files')
