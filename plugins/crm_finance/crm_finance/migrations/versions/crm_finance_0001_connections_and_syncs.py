"""The finance plugin's tables: connections, order syncs and inbound payments (branch crm_finance).

Revision ID: crm_finance_0001
Revises:
Create Date: 2026-12-02 02:04:06.875641
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_graph.db.types
from sqlalchemy.dialects import postgresql

revision: str = 'crm_finance_0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('crm_finance',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('crm_finance_connections',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('backend', sa.String(length=32), nullable=False),
    sa.Column('config', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('secrets', sa.LargeBinary(), nullable=True),
    sa.Column('secret_env', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('push_statuses', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('payments_checkpoint', sa.String(length=500), nullable=True),
    sa.Column('last_pull_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_pull_error', sa.Text(), nullable=True),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_finance_connections')),
    sa.UniqueConstraint('name', name=op.f('uq_crm_finance_connections_name'))
    )
    op.create_table('crm_finance_inbound_payments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('connection_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('amount', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('applied', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('paid_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['crm_finance_connections.id'], name=op.f('fk_crm_finance_inbound_payments_connection_id_crm_finance_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_finance_inbound_payments')),
    sa.UniqueConstraint('connection_id', 'external_id', name=op.f('uq_crm_finance_inbound_payments_connection_id_external_id'))
    )
    op.create_table('crm_finance_order_syncs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('connection_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.Enum('PENDING', 'SYNCED', 'FAILED', 'CANCELLED', name='syncstatus', native_enum=False, length=32), nullable=False),
    sa.Column('remote_id', sa.String(length=200), nullable=True),
    sa.Column('remote_number', sa.String(length=200), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('synced_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unapplied', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('lease_until', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['crm_finance_connections.id'], name=op.f('fk_crm_finance_order_syncs_connection_id_crm_finance_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_finance_order_syncs')),
    sa.UniqueConstraint('order_id', 'connection_id', name=op.f('uq_crm_finance_order_syncs_order_id_connection_id'))
    )
    with op.batch_alter_table('crm_finance_order_syncs', schema=None) as batch_op:
        batch_op.create_index('ix_crm_finance_order_syncs_status', ['connection_id', 'status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('crm_finance_order_syncs', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_finance_order_syncs_status')

    op.drop_table('crm_finance_order_syncs')
    op.drop_table('crm_finance_inbound_payments')
    op.drop_table('crm_finance_connections')
