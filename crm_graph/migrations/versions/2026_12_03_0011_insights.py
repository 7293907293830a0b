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
    op.create_table('lifecycle_runs',
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('window_days', sa.Integer(), nullable=False),
    sa.Column('churned_after_days', sa.Integer(), nullable=False),
    sa.Column('trial_orders', sa.Integer(), nullable=False),
    sa.Column('growth_ratio', sa.Double(), nullable=False),
    sa.Column('decline_ratio', sa.Double(), nullable=False),
    sa.Column('customer_count', sa.Integer(), nullable=False),
    sa.Column('changed', sa.Integer(), nullable=False),
    sa.Column('complete', sa.Boolean(), nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lifecycle_runs'))
    )
    op.create_table('product_association_runs',
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('window_days', sa.Integer(), nullable=False),
    sa.Column('customers', sa.Integer(), nullable=False),
    sa.Column('min_support_count', sa.Integer(), nullable=False),
    sa.Column('min_confidence', sa.Double(), nullable=False),
    sa.Column('min_lift', sa.Double(), nullable=False),
    sa.Column('rule_count', sa.Integer(), nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product_association_runs'))
    )
    op.create_table('product_associations',
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('antecedent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('consequent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('both', sa.Integer(), nullable=False),
    sa.Column('antecedent_count', sa.Integer(), nullable=False),
    sa.Column('consequent_count', sa.Integer(), nullable=False),
    sa.Column('support', sa.Double(), nullable=False),
    sa.Column('confidence', sa.Double(), nullable=False),
    sa.Column('lift', sa.Double(), nullable=False),
    sa.ForeignKeyConstraint(['antecedent_id'], ['products.id'], name=op.f('fk_product_associations_antecedent_id_products'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['consequent_id'], ['products.id'], name=op.f('fk_product_associations_consequent_id_products'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['product_association_runs.id'], name=op.f('fk_product_associations_run_id_product_association_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'antecedent_id', 'consequent_id', name=op.f('pk_product_associations'))
    )
    with op.batch_alter_table('product_associations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_product_associations_consequent_id'), ['consequent_id'], unique=False)

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

    op.create_table('customer_lifecycle_states',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('computed_stage', sa.Enum('LEAD', 'EXPLORATION', 'FORMATION', 'STABILITY', 'DECLINE', 'CHURNED', name='lifecyclestage', native_enum=False, length=32), nullable=True),
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('since', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('pinned', sa.Boolean(), nullable=False),
    sa.Column('pinned_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('pinned_by', sa.String(length=200), nullable=True),
    sa.Column('pin_note', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_lifecycle_states_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_customer_lifecycle_states'))
    )
    op.create_table('customer_lifecycles',
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('stage', sa.Enum('LEAD', 'EXPLORATION', 'FORMATION', 'STABILITY', 'DECLINE', 'CHURNED', name='lifecyclestage', native_enum=False, length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('volume', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('previous_volume', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('days_since_last_order', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_lifecycles_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['lifecycle_runs.id'], name=op.f('fk_customer_lifecycles_run_id_lifecycle_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'customer_id', name=op.f('pk_customer_lifecycles'))
    )
    with op.batch_alter_table('customer_lifecycles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_lifecycles_customer_id'), ['customer_id'], unique=False)

    op.create_table('lifecycle_stage_changes',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('from_stage', sa.Enum('LEAD', 'EXPLORATION', 'FORMATION', 'STABILITY', 'DECLINE', 'CHURNED', name='lifecyclestage', native_enum=False, length=32), nullable=True),
    sa.Column('to_stage', sa.Enum('LEAD', 'EXPLORATION', 'FORMATION', 'STABILITY', 'DECLINE', 'CHURNED', name='lifecyclestage', native_enum=False, length=32), nullable=True),
    sa.Column('source', sa.Enum('RUN', 'PIN', 'UNPIN', name='lifecyclechangesource', native_enum=False, length=32), nullable=False),
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('changed_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_lifecycle_stage_changes_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lifecycle_stage_changes'))
    )
    with op.batch_alter_table('lifecycle_stage_changes', schema=None) as batch_op:
        batch_op.create_index('ix_lifecycle_stage_changes_customer', ['customer_id', 'changed_at', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('lifecycle_stage_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_lifecycle_stage_changes_customer')

    op.drop_table('lifecycle_stage_changes')
    with op.batch_alter_table('customer_lifecycles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_lifecycles_customer_id'))

    op.drop_table('customer_lifecycles')
    op.drop_table('customer_lifecycle_states')
    with op.batch_alter_table('churn_risks', schema=None) as batch_op:
        batch_op.drop_index('ix_churn_risks_open_rank')

    op.drop_table('churn_risks')
    with op.batch_alter_table('product_associations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_product_associations_consequent_id'))

    op.drop_table('product_associations')
    op.drop_table('product_association_runs')
    op.drop_table('lifecycle_runs')
