"""Support: tickets, their thread, tags, external references and ratings; SLA policies.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 14:30:06.446269
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_graph.db.types
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sla_policies',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('priorities', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('channels', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('first_response_minutes', sa.Integer(), nullable=False),
    sa.Column('resolution_minutes', sa.Integer(), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=True),
    sa.Column('weekdays', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('day_start', sa.Time(), nullable=True),
    sa.Column('day_end', sa.Time(), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint('first_response_minutes > 0', name=op.f('ck_sla_policies_first_response_positive')),
    sa.CheckConstraint('resolution_minutes > 0', name=op.f('ck_sla_policies_resolution_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_policies')),
    sa.UniqueConstraint('name', name=op.f('uq_sla_policies_name'))
    )

    with op.batch_alter_table('sla_policies', schema=None) as batch_op:
        batch_op.create_index('ix_sla_policies_rank_id', ['rank', 'id'], unique=False)

    op.create_table('tickets',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('channel', sa.Enum('EMAIL', 'PHONE', 'WEB', 'CHAT', 'SOCIAL', 'IN_PERSON', name='ticketchannel', native_enum=False, length=32), nullable=False),
    sa.Column('priority', sa.Enum('LOW', 'NORMAL', 'HIGH', 'URGENT', name='ticketpriority', native_enum=False, length=32), nullable=False),
    sa.Column('status', sa.Enum('NEW', 'OPEN', 'PENDING', 'RESOLVED', 'CLOSED', name='ticketstatus', native_enum=False, length=32), nullable=False),
    sa.Column('assignee', sa.String(length=200), nullable=True),
    sa.Column('sla_policy_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('first_response_due_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolution_due_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_responded_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_response_breached_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolution_breached_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('clock_stopped_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('rating_expectation', sa.Integer(), nullable=True),
    sa.Column('rating_comment', sa.Text(), nullable=True),
    sa.Column('rated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint('rating BETWEEN 1 AND 5', name=op.f('ck_tickets_rating_range')),
    sa.CheckConstraint('rating_expectation BETWEEN 1 AND 5', name=op.f('ck_tickets_rating_expectation_range')),
    sa.ForeignKeyConstraint(['contact_id'], ['customers.id'], name=op.f('fk_tickets_contact_id_customers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_tickets_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sla_policy_id'], ['sla_policies.id'], name=op.f('fk_tickets_sla_policy_id_sla_policies'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tickets'))
    )

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tickets_assignee'), ['assignee'], unique=False)
        batch_op.create_index('ix_tickets_contact_id', ['contact_id'], unique=False)
        batch_op.create_index('ix_tickets_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_tickets_customer_created', ['customer_id', 'created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tickets_first_responded_at'), ['first_responded_at'], unique=False)
        batch_op.create_index('ix_tickets_first_response_due_at', ['first_response_due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tickets_rated_at'), ['rated_at'], unique=False)
        batch_op.create_index('ix_tickets_resolution_due_at', ['resolution_due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tickets_resolved_at'), ['resolved_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tickets_sla_policy_id'), ['sla_policy_id'], unique=False)
        batch_op.create_index('ix_tickets_status_priority', ['status', 'priority'], unique=False)
        batch_op.create_index('ix_tickets_updated_at_id', ['updated_at', 'id'], unique=False)

    op.create_table('ticket_comments',
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('author_kind', sa.Enum('AGENT', 'CUSTOMER', name='ticketauthorkind', native_enum=False, length=32), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_comments_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_comments'))
    )

    with op.batch_alter_table('ticket_comments', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_comments_thread', ['ticket_id', 'created_at', 'id'], unique=False)

    op.create_table('ticket_external_refs',
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('system', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_external_refs_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_external_refs')),
    sa.UniqueConstraint('system', 'external_id', name=op.f('uq_ticket_external_refs_system_external_id')),
    sa.UniqueConstraint('ticket_id', 'system', name=op.f('uq_ticket_external_refs_ticket_id_system'))
    )

    with op.batch_alter_table('ticket_external_refs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_external_refs_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('ticket_ratings',
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rating', sa.Integer(), nullable=False),
    sa.Column('expectation', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('rated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('rated_by', sa.String(length=200), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_ratings_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_ratings'))
    )

    with op.batch_alter_table('ticket_ratings', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_ratings_ticket', ['ticket_id', 'rated_at', 'id'], unique=False)

    op.create_table('ticket_tags',
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tag', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_tags_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('ticket_id', 'tag', name=op.f('pk_ticket_tags'))
    )

    with op.batch_alter_table('ticket_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_tags_tag'), ['tag'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ticket_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_tags_tag'))

    op.drop_table('ticket_tags')

    with op.batch_alter_table('ticket_ratings', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_ratings_ticket')

    op.drop_table('ticket_ratings')

    with op.batch_alter_table('ticket_external_refs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_external_refs_ticket_id'))

    op.drop_table('ticket_external_refs')

    with op.batch_alter_table('ticket_comments', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_comments_thread')

    op.drop_table('ticket_comments')

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_updated_at_id')
        batch_op.drop_index('ix_tickets_status_priority')
        batch_op.drop_index(batch_op.f('ix_tickets_sla_policy_id'))
        batch_op.drop_index(batch_op.f('ix_tickets_resolved_at'))
        batch_op.drop_index('ix_tickets_resolution_due_at')
        batch_op.drop_index(batch_op.f('ix_tickets_rated_at'))
        batch_op.drop_index('ix_tickets_first_response_due_at')
        batch_op.drop_index(batch_op.f('ix_tickets_first_responded_at'))
        batch_op.drop_index('ix_tickets_customer_created')
        batch_op.drop_index('ix_tickets_created_at_id')
        batch_op.drop_index('ix_tickets_contact_id')
        batch_op.drop_index(batch_op.f('ix_tickets_assignee'))

    op.drop_table('tickets')

    with op.batch_alter_table('sla_policies', schema=None) as batch_op:
        batch_op.drop_index('ix_sla_policies_rank_id')

    op.drop_table('sla_policies')
