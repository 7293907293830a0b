"""Duplicate candidates and customer merges.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy import Text

import crm_graph.db.types


revision: str = '0015'
down_revision: str | Sequence[str] | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('duplicate_keys',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=320), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_duplicate_keys_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'key', name=op.f('pk_duplicate_keys'))
    )
    op.create_index('ix_duplicate_keys_key', 'duplicate_keys', ['key', 'customer_id'], unique=False)
    op.create_table('duplicate_candidates',
    sa.Column('customer_a_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_b_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('computed_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['customer_a_id'], ['customers.id'], name=op.f('fk_duplicate_candidates_customer_a_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_b_id'], ['customers.id'], name=op.f('fk_duplicate_candidates_customer_b_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duplicate_candidates')),
    sa.UniqueConstraint('customer_a_id', 'customer_b_id', name=op.f('uq_duplicate_candidates_customer_a_id_customer_b_id'))
    )
    op.create_index(op.f('ix_duplicate_candidates_customer_b_id'), 'duplicate_candidates', ['customer_b_id'], unique=False)
    op.create_index('ix_duplicate_candidates_score_id', 'duplicate_candidates', ['score', 'id'], unique=False)
    op.create_table('duplicate_dismissals',
    sa.Column('customer_a_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_b_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('dismissed_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('dismissed_by', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['customer_a_id'], ['customers.id'], name=op.f('fk_duplicate_dismissals_customer_a_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_b_id'], ['customers.id'], name=op.f('fk_duplicate_dismissals_customer_b_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_a_id', 'customer_b_id', name=op.f('pk_duplicate_dismissals'))
    )
    op.create_table('duplicate_refresh_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('refreshed_to', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('refreshed_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duplicate_refresh_state'))
    )
    op.create_table('customer_merges',
    sa.Column('survivor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('merged_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('field_choices', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('changes', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('removed', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('plugins', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=True),
    sa.Column('undo_until', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('undone_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['survivor_id'], ['customers.id'], name=op.f('fk_customer_merges_survivor_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_merges'))
    )
    op.create_index(op.f('ix_customer_merges_survivor_id'), 'customer_merges', ['survivor_id'], unique=False)
    op.create_table('merged_customers',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('survivor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('merge_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_merged_customers_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['merge_id'], ['customer_merges.id'], name=op.f('fk_merged_customers_merge_id_customer_merges'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['survivor_id'], ['customers.id'], name=op.f('fk_merged_customers_survivor_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_merged_customers'))
    )
    op.create_index(op.f('ix_merged_customers_merge_id'), 'merged_customers', ['merge_id'], unique=False)
    op.create_index(op.f('ix_merged_customers_survivor_id'), 'merged_customers', ['survivor_id'], unique=False)


def downgrade() -> None:
    op.drop_table('merged_customers')
    op.drop_table('customer_merges')
    op.drop_table('duplicate_refresh_state')
    op.drop_table('duplicate_dismissals')
    op.drop_table('duplicate_candidates')
    op.drop_table('duplicate_keys')
