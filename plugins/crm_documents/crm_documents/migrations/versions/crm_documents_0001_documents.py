"""The documents plugin's tables: files, templates (one row per version) and documents (branch crm_documents).

Revision ID: crm_documents_0001
Revises:
Create Date: 2026-12-02 01:41:19.143923
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_graph.db.types
from sqlalchemy.dialects import postgresql

revision: str = 'crm_documents_0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('crm_documents',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('crm_documents_files',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_crm_documents_files'))
    )
    op.create_table('crm_documents_templates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.Enum('QUOTE', 'ORDER_CONFIRMATION', 'CONTRACT', 'INVOICE', 'REPORT', name='documentkind', native_enum=False, length=32), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('locale', sa.String(length=35), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('is_current', sa.Boolean(), nullable=False),
    sa.Column('variables', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('file_sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('builtin', sa.Boolean(), nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['file_sha256'], ['crm_documents_files.sha256'], name=op.f('fk_crm_documents_templates_file_sha256_crm_documents_files')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_documents_templates')),
    sa.UniqueConstraint('name', 'kind', 'format', 'locale', 'version', name=op.f('uq_crm_documents_templates_name_kind_format_locale_version'))
    )
    with op.batch_alter_table('crm_documents_templates', schema=None) as batch_op:
        batch_op.create_index('ix_crm_documents_templates_current', ['is_current', 'kind', 'locale'], unique=False)

    op.create_table('crm_documents_documents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entity_type', sa.String(length=64), nullable=False),
    sa.Column('entity_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entity_version', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('template_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('status', sa.Enum('PENDING', 'READY', 'FAILED', name='documentstatus', native_enum=False, length=32), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=200), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('source_sha256', sa.String(length=64), nullable=True),
    sa.Column('failure', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_until', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['sha256'], ['crm_documents_files.sha256'], name=op.f('fk_crm_documents_documents_sha256_crm_documents_files')),
    sa.ForeignKeyConstraint(['source_sha256'], ['crm_documents_files.sha256'], name=op.f('fk_crm_documents_documents_source_sha256_crm_documents_files')),
    sa.ForeignKeyConstraint(['template_id'], ['crm_documents_templates.id'], name=op.f('fk_crm_documents_documents_template_id_crm_documents_templates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_documents_documents')),
    sa.UniqueConstraint('entity_type', 'entity_pk', 'entity_version', 'template_id', 'format', name=op.f('uq_crm_documents_documents_entity_type_entity_pk_entity_version_template_id_format'))
    )
    with op.batch_alter_table('crm_documents_documents', schema=None) as batch_op:
        batch_op.create_index('ix_crm_documents_documents_customer', ['customer_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_crm_documents_documents_entity', ['entity_type', 'entity_pk', 'created_at', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('crm_documents_documents', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_documents_documents_entity')
        batch_op.drop_index('ix_crm_documents_documents_customer')

    op.drop_table('crm_documents_documents')
    with op.batch_alter_table('crm_documents_templates', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_documents_templates_current')

    op.drop_table('crm_documents_templates')
    op.drop_table('crm_documents_files')
