"""Import jobs and saved column mappings.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_graph.db.types


revision: str = '0014'
down_revision: str | Sequence[str] | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('import_mappings',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('entity', sa.Enum('CUSTOMER', 'ORGANIZATION', 'PRODUCT', 'ORDER', name='importentity', native_enum=False, length=32), nullable=False),
    sa.Column('spec', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_mappings')),
    sa.UniqueConstraint('name', name=op.f('uq_import_mappings_name'))
    )
    op.create_table('import_jobs',
    sa.Column('entity', sa.Enum('CUSTOMER', 'ORGANIZATION', 'PRODUCT', 'ORDER', name='importentity', native_enum=False, length=32), nullable=False),
    sa.Column('format', sa.Enum('CSV', 'XLSX', name='importformat', native_enum=False, length=32), nullable=False),
    sa.Column('mode', sa.Enum('CREATE', 'UPSERT', name='importmode', native_enum=False, length=32), nullable=False),
    sa.Column('key', sa.Enum('EXTERNAL_REF', 'EMAIL', 'PHONE', 'SKU', 'NAME', name='importkey', native_enum=False, length=32), nullable=True),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('status', sa.Enum('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', name='importstatus', native_enum=False, length=32), nullable=False),
    sa.Column('file_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('file_sha256', sa.String(length=64), nullable=False),
    sa.Column('mapping_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('spec', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('principal', sa.String(length=64), nullable=True),
    sa.Column('rows_total', sa.Integer(), nullable=True),
    sa.Column('rows_done', sa.Integer(), nullable=False),
    sa.Column('rows_failed', sa.Integer(), nullable=False),
    sa.Column('rows_created', sa.Integer(), nullable=False),
    sa.Column('rows_updated', sa.Integer(), nullable=False),
    sa.Column('rows_unchanged', sa.Integer(), nullable=False),
    sa.Column('lease_token', sa.String(length=64), nullable=True),
    sa.Column('lease_expires_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('failure', sa.String(length=1000), nullable=True),
    sa.Column('report_file_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('started_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['mapping_id'], ['import_mappings.id'], name=op.f('fk_import_jobs_mapping_id_import_mappings'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_jobs'))
    )
    op.create_index(op.f('ix_import_jobs_file_sha256'), 'import_jobs', ['file_sha256'], unique=False)
    op.create_index(op.f('ix_import_jobs_status'), 'import_jobs', ['status'], unique=False)
    op.create_table('import_row_errors',
    sa.Column('job_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('row', sa.Integer(), nullable=False),
    sa.Column('column', sa.String(length=255), nullable=True),
    sa.Column('field', sa.String(length=64), nullable=True),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('message', sa.String(length=1000), nullable=False),
    sa.Column('values', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['import_jobs.id'], name=op.f('fk_import_row_errors_job_id_import_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_row_errors'))
    )
    op.create_index('ix_import_row_errors_job_row', 'import_row_errors', ['job_id', 'row', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_import_row_errors_job_row', table_name='import_row_errors')
    op.drop_table('import_row_errors')
    op.drop_index(op.f('ix_import_jobs_status'), table_name='import_jobs')
    op.drop_index(op.f('ix_import_jobs_file_sha256'), table_name='import_jobs')
    op.drop_table('import_jobs')
    op.drop_table('import_mappings')
