"""Customer insights: churn risks, lifecycle stages with their history, product association rules.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_graph.core.money
import crm_graph.db.types


revision: str = '0011'
down_revision: str | Sequence[str] | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('churn_risks',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('raised_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('assessed_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('cleared_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rfm_run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('previous_rfm_run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('value_run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('previous_as_of', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('recency_score_before', sa.SmallInteger(), nullable=False),
    sa.Column('recency_score', sa.SmallInteger(), nullable=False),
    sa.Column('frequency_score_before', sa.SmallInteger(), nullable=False),
    sa.Column('frequency_score', sa.SmallInteger(), nullable=False),
    sa.Column('recency_days', sa.Integer(), nullable=False),
    sa.Column('monetary', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('probability_alive', sa.Double(), nullable=False),
    sa.Column('clv', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('clv_currency', sa.String(length=3), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_churn_risks_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_churn_risks'))
    )
    with op.batch_alter_table('churn_risks', schema=None) as batch_op:
        batch_op.create_index('ix_churn_risks_open_rank', ['cleared_at', 'monetary', 'customer_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('churn_risks', schema=None) as batch_op:
        batch_op.drop_index('ix_churn_risks_open_rank')

    op.drop_table('churn_risks')
