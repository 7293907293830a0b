"""Export jobs, analytics views and address districts.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 01:00:00

On PostgreSQL this also creates the schema ``analytics`` with one view per exported entity
(docs/analytics.md): stable column names for BI tools, the same as the export files', over
live rows only. They are plain views, so they always show the current data; the SQL below is
their contract, and a later migration that changes the tables under them rewrites the views
to keep their columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_graph.db.types


revision: str = '0016'
down_revision: str | Sequence[str] | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


VIEWS: dict[str, str] = {
    "customers": """
        SELECT c.id, c.kind, c.display_name, c.first_name, c.last_name, c.organization_name, c.organization_id,
               c.job_title,
               (SELECT e.address FROM customer_emails e WHERE e.customer_id = c.id AND e.is_primary
                 ORDER BY e.position LIMIT 1) AS email,
               (SELECT p.number FROM customer_phones p WHERE p.customer_id = c.id AND p.is_primary
                 ORDER BY p.position LIMIT 1) AS phone,
               c.lifecycle_stage, c.source, c.consent_status, c.country, c.region, c.city, c.locale, c.time_zone,
               c.birthday, c.gender,
               (SELECT string_agg(t.tag, ', ' ORDER BY t.tag) FROM customer_tags t WHERE t.customer_id = c.id) AS tags,
               c.external_system, c.external_id, c.owner_id, c.team_id, c.created_at, c.updated_at
        FROM customers c
        WHERE c.deleted_at IS NULL AND c.erased_at IS NULL
    """,
    "orders": """
        SELECT o.id, o.number, o.customer_id,
               (SELECT c.display_name FROM customers c WHERE c.id = o.customer_id AND c.erased_at IS NULL) AS customer_name,
               o.status, o.payment_status, o.origin, o.currency, o.subtotal, o.discount, o.tax_rate, o.tax, o.total,
               o.paid_amount, o.ordered_at, o.opportunity_id, o.quote_id, o.owner_id, o.team_id, o.created_at, o.updated_at
        FROM orders o
    """,
    "order_lines": """
        SELECT l.id, l.order_id, o.number AS order_number, l.position, l.product_id, l.sku, l.description, l.quantity,
               o.currency, l.unit_price, l.discount_percent, l.subtotal, l.discount, l.total, o.ordered_at
        FROM order_line_items l JOIN orders o ON o.id = l.order_id
    """,
    "opportunities": """
        SELECT op.id, op.title, op.customer_id, c.display_name AS customer_name, pl.name AS pipeline, st.name AS stage,
               op.status, op.currency, op.amount, COALESCE(op.probability_override, st.probability) AS probability,
               op.expected_close_date, op.source, op.lost_reason, op.closed_at, op.owner_id, op.team_id,
               op.created_at, op.updated_at
        FROM opportunities op
        JOIN customers c ON c.id = op.customer_id
        JOIN pipelines pl ON pl.id = op.pipeline_id
        JOIN pipeline_stages st ON st.id = op.stage_id
        WHERE op.deleted_at IS NULL AND c.deleted_at IS NULL
    """,
    "tickets": """
        SELECT t.id, 'T-' || lpad(t.id::text, 6, '0') AS number, t.subject, t.customer_id,
               c.display_name AS customer_name, t.contact_id, t.channel, t.priority, t.status, t.assignee,
               (SELECT string_agg(g.tag, ', ' ORDER BY g.tag) FROM ticket_tags g WHERE g.ticket_id = t.id) AS tags,
               t.first_response_due_at, t.first_responded_at, t.resolution_due_at, t.resolved_at, t.closed_at,
               t.rating, t.owner_id, t.team_id, t.created_at, t.updated_at
        FROM tickets t JOIN customers c ON c.id = t.customer_id
        WHERE c.deleted_at IS NULL
    """,
}


def upgrade() -> None:
    op.create_table('export_jobs',
    sa.Column('entity', sa.Enum('CUSTOMERS', 'ORDERS', 'ORDER_LINES', 'OPPORTUNITIES', 'TICKETS', name='exportentity', native_enum=False, length=32), nullable=False),
    sa.Column('format', sa.Enum('CSV', 'XLSX', 'PARQUET', name='exportformat', native_enum=False, length=32), nullable=False),
    sa.Column('filter', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('status', sa.Enum('PENDING', 'RUNNING', 'DONE', 'FAILED', name='exportstatus', native_enum=False, length=32), nullable=False),
    sa.Column('principal', sa.String(length=64), nullable=True),
    sa.Column('rows_total', sa.Integer(), nullable=True),
    sa.Column('rows_done', sa.Integer(), nullable=False),
    sa.Column('file_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['file_id'], ['stored_files.id'], name=op.f('fk_export_jobs_file_id_stored_files'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export_jobs'))
    )
    op.create_index(op.f('ix_export_jobs_principal'), 'export_jobs', ['principal'], unique=False)
    op.create_index(op.f('ix_export_jobs_status'), 'export_jobs', ['status'], unique=False)
    with op.batch_alter_table('customer_addresses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('district', sa.String(length=100), nullable=True))

    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SCHEMA IF NOT EXISTS analytics")
        for name, body in VIEWS.items():
            op.execute(f"CREATE VIEW analytics.{name} AS {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in reversed(list(VIEWS)):
            op.execute(f"DROP VIEW IF EXISTS analytics.{name}")
        # The schema goes only when nothing else was put in it (a role's grants go with it).
        op.execute("DROP SCHEMA IF EXISTS analytics RESTRICT")
    with op.batch_alter_table('customer_addresses', schema=None) as batch_op:
        batch_op.drop_column('district')
    op.drop_index(op.f('ix_export_jobs_status'), table_name='export_jobs')
    op.drop_index(op.f('ix_export_jobs_principal'), table_name='export_jobs')
    op.drop_table('export_jobs')
