"""Sales: products, pipelines and stages (with the default pipeline), opportunities, quotes, orders, payments.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 14:34:21.378103
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_graph.core.money
import crm_graph.db.types
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('pipelines',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipelines')),
    sa.UniqueConstraint('name', name=op.f('uq_pipelines_name'))
    )
    op.create_table('products',
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('unit_price', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_products')),
    sa.UniqueConstraint('sku', name=op.f('uq_products_sku'))
    )
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.create_index('ix_products_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_products_name_id', ['name', 'id'], unique=False)

    op.create_table('sales_number_sequences',
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('last_value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'year', name=op.f('pk_sales_number_sequences'))
    )
    op.create_table('pipeline_stages',
    sa.Column('pipeline_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('probability', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('OPEN', 'WON', 'LOST', name='stagekind', native_enum=False, length=32), nullable=False),
    sa.Column('removed_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipelines.id'], name=op.f('fk_pipeline_stages_pipeline_id_pipelines'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_stages'))
    )
    with op.batch_alter_table('pipeline_stages', schema=None) as batch_op:
        batch_op.create_index('ix_pipeline_stages_pipeline_position', ['pipeline_id', 'position'], unique=False)

    op.create_table('product_tags',
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tag', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_product_tags_product_id_products'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('product_id', 'tag', name=op.f('pk_product_tags'))
    )
    with op.batch_alter_table('product_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_product_tags_tag'), ['tag'], unique=False)

    op.create_table('opportunities',
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('pipeline_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('stage_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=True),
    sa.Column('amount', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('probability_override', sa.Integer(), nullable=True),
    sa.Column('expected_close_date', sa.Date(), nullable=True),
    sa.Column('source', sa.Enum('WEB', 'APP', 'PHONE', 'IN_STORE', 'SOCIAL', 'REFERRAL', 'IMPORT', 'API', name='acquisitionchannel', native_enum=False, length=32), nullable=True),
    sa.Column('status', sa.Enum('OPEN', 'WON', 'LOST', name='opportunitystatus', native_enum=False, length=32), nullable=False),
    sa.Column('lost_reason', sa.String(length=500), nullable=True),
    sa.Column('closed_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stage_entered_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('deleted_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_opportunities_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipelines.id'], name=op.f('fk_opportunities_pipeline_id_pipelines')),
    sa.ForeignKeyConstraint(['stage_id'], ['pipeline_stages.id'], name=op.f('fk_opportunities_stage_id_pipeline_stages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opportunities'))
    )
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.create_index('ix_opportunities_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunities_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_opportunities_expected_close_date', ['expected_close_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunities_owner'), ['owner'], unique=False)
        batch_op.create_index('ix_opportunities_pipeline_status', ['pipeline_id', 'status', 'expected_close_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunities_stage_id'), ['stage_id'], unique=False)
        batch_op.create_index('ix_opportunities_updated_at_id', ['updated_at', 'id'], unique=False)

    op.create_table('opportunity_line_items',
    sa.Column('opportunity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('discount_percent', sa.Numeric(precision=9, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('subtotal', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('discount', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('total', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'], name=op.f('fk_opportunity_line_items_opportunity_id_opportunities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_opportunity_line_items_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opportunity_line_items'))
    )
    with op.batch_alter_table('opportunity_line_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_opportunity_line_items_opportunity_id'), ['opportunity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunity_line_items_product_id'), ['product_id'], unique=False)

    op.create_table('opportunity_stage_history',
    sa.Column('opportunity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('stage_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entered_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('left_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('moved_by', sa.String(length=200), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'], name=op.f('fk_opportunity_stage_history_opportunity_id_opportunities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['stage_id'], ['pipeline_stages.id'], name=op.f('fk_opportunity_stage_history_stage_id_pipeline_stages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opportunity_stage_history'))
    )
    with op.batch_alter_table('opportunity_stage_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_opportunity_stage_history_stage_id'), ['stage_id'], unique=False)
        batch_op.create_index('ix_opportunity_stage_history_timeline', ['opportunity_id', 'entered_at', 'id'], unique=False)

    op.create_table('quotes',
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('opportunity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.Enum('DRAFT', 'SENT', 'ACCEPTED', 'REJECTED', 'EXPIRED', name='quotestatus', native_enum=False, length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('subtotal', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('discount', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('tax_rate', sa.Numeric(precision=9, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('tax', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('total', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('customer_name', sa.String(length=300), nullable=False),
    sa.Column('billing_address', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('sent_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('accepted_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rejected_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rejection_reason', sa.String(length=500), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_quotes_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'], name=op.f('fk_quotes_opportunity_id_opportunities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quotes')),
    sa.UniqueConstraint('number', name=op.f('uq_quotes_number'))
    )
    with op.batch_alter_table('quotes', schema=None) as batch_op:
        batch_op.create_index('ix_quotes_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_quotes_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_quotes_opportunity_id'), ['opportunity_id'], unique=False)

    op.create_table('orders',
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.Enum('PENDING', 'CONFIRMED', 'FULFILLED', 'CANCELLED', 'REFUNDED', name='orderstatus', native_enum=False, length=32), nullable=False),
    sa.Column('payment_status', sa.Enum('UNPAID', 'PARTIALLY_PAID', 'PAID', 'REFUNDED', name='paymentstatus', native_enum=False, length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('subtotal', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('discount', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('tax_rate', sa.Numeric(precision=9, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('tax', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('total', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('paid_amount', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('ordered_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('origin', sa.Enum('OPPORTUNITY', 'QUOTE', 'EXTERNAL', 'DIRECT', name='orderorigin', native_enum=False, length=32), nullable=False),
    sa.Column('opportunity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('quote_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_orders_customer_id_customers'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'], name=op.f('fk_orders_opportunity_id_opportunities'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['quote_id'], ['quotes.id'], name=op.f('fk_orders_quote_id_quotes'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('number', name=op.f('uq_orders_number')),
    sa.UniqueConstraint('quote_id', name=op.f('uq_orders_quote_id'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_orders_customer_ordered_at', ['customer_id', 'ordered_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_opportunity_id'), ['opportunity_id'], unique=False)
        batch_op.create_index('ix_orders_ordered_at_id', ['ordered_at', 'id'], unique=False)

    op.create_table('quote_line_items',
    sa.Column('quote_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('sku', sa.String(length=64), nullable=True),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('discount_percent', sa.Numeric(precision=9, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('subtotal', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('discount', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('total', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_quote_line_items_product_id_products'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['quote_id'], ['quotes.id'], name=op.f('fk_quote_line_items_quote_id_quotes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quote_line_items'))
    )
    with op.batch_alter_table('quote_line_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quote_line_items_quote_id'), ['quote_id'], unique=False)

    op.create_table('order_external_refs',
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('system', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_external_refs_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_external_refs')),
    sa.UniqueConstraint('system', 'external_id', name=op.f('uq_order_external_refs_system_external_id'))
    )
    with op.batch_alter_table('order_external_refs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_external_refs_order_id'), ['order_id'], unique=False)

    op.create_table('order_line_items',
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('sku', sa.String(length=64), nullable=True),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('discount_percent', sa.Numeric(precision=9, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('subtotal', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('discount', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('total', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_line_items_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_order_line_items_product_id_products'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_line_items'))
    )
    with op.batch_alter_table('order_line_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_line_items_order_id'), ['order_id'], unique=False)

    op.create_table('payments',
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.Numeric(precision=19, scale=4).with_variant(crm_graph.core.money.ScaledInteger(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('paid_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('external_system', sa.String(length=64), nullable=True),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_payments_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments')),
    sa.UniqueConstraint('external_system', 'external_id', name=op.f('uq_payments_external_system_external_id'))
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_order_id'), ['order_id'], unique=False)

    _default_pipeline()


# The pipeline every installation starts with: new opportunities land here unless told otherwise.
DEFAULT_PIPELINE = "Sales"
DEFAULT_STAGES = [
    ("Qualification", "OPEN", 10),
    ("Needs analysis", "OPEN", 25),
    ("Proposal", "OPEN", 50),
    ("Negotiation", "OPEN", 75),
    ("Won", "WON", 100),
    ("Lost", "LOST", 0),
]


def _default_pipeline() -> None:
    from crm_graph.core.clock import utcnow

    now = utcnow()
    pipelines = sa.table(
        "pipelines",
        sa.column("id", sa.Integer()),
        sa.column("name", sa.String()),
        sa.column("is_default", sa.Boolean()),
        sa.column("created_at", crm_graph.db.types.UTCDateTime()),
        sa.column("updated_at", crm_graph.db.types.UTCDateTime()),
        sa.column("version", sa.Integer()),
    )
    stages = sa.table(
        "pipeline_stages",
        sa.column("pipeline_id", sa.Integer()),
        sa.column("name", sa.String()),
        sa.column("position", sa.Integer()),
        sa.column("probability", sa.Integer()),
        sa.column("kind", sa.String()),
    )
    connection = op.get_bind()
    connection.execute(
        pipelines.insert().values(name=DEFAULT_PIPELINE, is_default=True, created_at=now, updated_at=now, version=1)
    )
    pipeline_id = connection.execute(sa.select(pipelines.c.id).where(pipelines.c.name == DEFAULT_PIPELINE)).scalar_one()
    connection.execute(
        stages.insert(),
        [
            {"pipeline_id": pipeline_id, "name": name, "position": i, "probability": probability, "kind": kind}
            for i, (name, kind, probability) in enumerate(DEFAULT_STAGES)
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_order_id'))

    op.drop_table('payments')
    with op.batch_alter_table('order_line_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_line_items_order_id'))

    op.drop_table('order_line_items')
    with op.batch_alter_table('order_external_refs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_external_refs_order_id'))

    op.drop_table('order_external_refs')
    with op.batch_alter_table('quote_line_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quote_line_items_quote_id'))

    op.drop_table('quote_line_items')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_ordered_at_id')
        batch_op.drop_index(batch_op.f('ix_orders_opportunity_id'))
        batch_op.drop_index('ix_orders_customer_ordered_at')
        batch_op.drop_index('ix_orders_created_at_id')

    op.drop_table('orders')
    with op.batch_alter_table('quotes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quotes_opportunity_id'))
        batch_op.drop_index(batch_op.f('ix_quotes_customer_id'))
        batch_op.drop_index('ix_quotes_created_at_id')

    op.drop_table('quotes')
    with op.batch_alter_table('opportunity_stage_history', schema=None) as batch_op:
        batch_op.drop_index('ix_opportunity_stage_history_timeline')
        batch_op.drop_index(batch_op.f('ix_opportunity_stage_history_stage_id'))

    op.drop_table('opportunity_stage_history')
    with op.batch_alter_table('opportunity_line_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_opportunity_line_items_product_id'))
        batch_op.drop_index(batch_op.f('ix_opportunity_line_items_opportunity_id'))

    op.drop_table('opportunity_line_items')
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.drop_index('ix_opportunities_updated_at_id')
        batch_op.drop_index(batch_op.f('ix_opportunities_stage_id'))
        batch_op.drop_index('ix_opportunities_pipeline_status')
        batch_op.drop_index(batch_op.f('ix_opportunities_owner'))
        batch_op.drop_index('ix_opportunities_expected_close_date')
        batch_op.drop_index(batch_op.f('ix_opportunities_customer_id'))
        batch_op.drop_index('ix_opportunities_created_at_id')

    op.drop_table('opportunities')
    with op.batch_alter_table('product_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_product_tags_tag'))

    op.drop_table('product_tags')
    with op.batch_alter_table('pipeline_stages', schema=None) as batch_op:
        batch_op.drop_index('ix_pipeline_stages_pipeline_position')

    op.drop_table('pipeline_stages')
    op.drop_table('sales_number_sequences')
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index('ix_products_name_id')
        batch_op.drop_index('ix_products_created_at_id')

    op.drop_table('products')
    op.drop_table('pipelines')
