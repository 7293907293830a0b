"""Segments, their members, and stored RFM runs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 14:33:31.239153
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_graph.core.money
import crm_graph.db.types
from sqlalchemy.dialects import postgresql

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('rfm_runs',
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('window_days', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('customer_count', sa.Integer(), nullable=False),
    sa.Column('revenue', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rfm_runs'))
    )
    with op.batch_alter_table('rfm_runs', schema=None) as batch_op:
        batch_op.create_index('ix_rfm_runs_params', ['as_of', 'window_days', 'currency'], unique=False)
    op.create_table('segments',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('kind', sa.Enum('STATIC', 'DYNAMIC', 'SNAPSHOT', name='segmentkind', native_enum=False, length=32), nullable=False),
    sa.Column('filter', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('refreshed_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('deleted_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segments'))
    )
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_segments_name'), ['name'], unique=False)
    op.create_table('rfm_scores',
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('recency_days', sa.Integer(), nullable=True),
    sa.Column('frequency', sa.Integer(), nullable=True),
    sa.Column('monetary', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=True),
    sa.Column('recency_score', sa.SmallInteger(), nullable=True),
    sa.Column('frequency_score', sa.SmallInteger(), nullable=True),
    sa.Column('monetary_score', sa.SmallInteger(), nullable=True),
    sa.Column('group', sa.Enum('CHAMPIONS', 'LOYAL', 'POTENTIAL_LOYALIST', 'NEW', 'PROMISING', 'NEEDS_ATTENTION', 'ABOUT_TO_SLEEP', 'AT_RISK', 'CANNOT_LOSE', 'HIBERNATING', 'LOST', name='rfmgroup', native_enum=False, length=32), nullable=True),
    sa.Column('value_tier', sa.Enum('KEY', 'ORDINARY', 'POTENTIAL', name='valuetier', native_enum=False, length=32), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_rfm_scores_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['rfm_runs.id'], name=op.f('fk_rfm_scores_run_id_rfm_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'customer_id', name=op.f('pk_rfm_scores'))
    )
    with op.batch_alter_table('rfm_scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rfm_scores_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_rfm_scores_run_group', ['run_id', 'group'], unique=False)
        batch_op.create_index('ix_rfm_scores_run_tier', ['run_id', 'value_tier'], unique=False)
    op.create_table('segment_members',
    sa.Column('segment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('added_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_segment_members_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_segment_members_segment_id_segments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('segment_id', 'customer_id', name=op.f('pk_segment_members'))
    )
    with op.batch_alter_table('segment_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_segment_members_customer_id'), ['customer_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('segment_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_segment_members_customer_id'))
    op.drop_table('segment_members')
    with op.batch_alter_table('rfm_scores', schema=None) as batch_op:
        batch_op.drop_index('ix_rfm_scores_run_tier')
        batch_op.drop_index('ix_rfm_scores_run_group')
        batch_op.drop_index(batch_op.f('ix_rfm_scores_customer_id'))
    op.drop_table('rfm_scores')
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_segments_name'))
    op.drop_table('segments')
    with op.batch_alter_table('rfm_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_rfm_runs_params')
    op.drop_table('rfm_runs')
