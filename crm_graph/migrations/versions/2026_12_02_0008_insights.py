"""Customer insights: customer-value model runs and each customer's figures in them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_graph.core.money
import crm_graph.db.types


revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('customer_value_runs',
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('time_unit', sa.Enum('DAY', 'WEEK', name='timeunit', native_enum=False, length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('customer_count', sa.Integer(), nullable=False),
    sa.Column('repeat_customers', sa.Integer(), nullable=False),
    sa.Column('r', sa.Double(), nullable=False),
    sa.Column('alpha', sa.Double(), nullable=False),
    sa.Column('a', sa.Double(), nullable=False),
    sa.Column('b', sa.Double(), nullable=False),
    sa.Column('log_likelihood', sa.Double(), nullable=False),
    sa.Column('p', sa.Double(), nullable=False),
    sa.Column('q', sa.Double(), nullable=False),
    sa.Column('gamma', sa.Double(), nullable=False),
    sa.Column('spend_log_likelihood', sa.Double(), nullable=False),
    sa.Column('horizon_days', sa.Integer(), nullable=False),
    sa.Column('discount_rate', sa.Double(), nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_value_runs'))
    )
    op.create_table('customer_values',
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('frequency', sa.Integer(), nullable=False),
    sa.Column('recency_days', sa.Integer(), nullable=False),
    sa.Column('age_days', sa.Integer(), nullable=False),
    sa.Column('average_spend', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=True),
    sa.Column('expected_spend', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('probability_alive', sa.Double(), nullable=False),
    sa.Column('expected_purchases', sa.Double(), nullable=False),
    sa.Column('clv', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_values_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['customer_value_runs.id'], name=op.f('fk_customer_values_run_id_customer_value_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'customer_id', name=op.f('pk_customer_values'))
    )
    with op.batch_alter_table('customer_values', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_values_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_customer_values_run_alive', ['run_id', 'probability_alive'], unique=False)
        batch_op.create_index('ix_customer_values_run_clv', ['run_id', 'clv'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('customer_values', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_values_run_clv')
        batch_op.drop_index('ix_customer_values_run_alive')
        batch_op.drop_index(batch_op.f('ix_customer_values_customer_id'))

    op.drop_table('customer_values')
    op.drop_table('customer_value_runs')
