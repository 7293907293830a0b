"""Automation: flows, their published versions, enrolments, the step log and the action runs
(once per enrolment and step); customers get a time zone (an IANA name) for their local time.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:03:16
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_graph.db.types
from sqlalchemy.dialects import postgresql

revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('automation_flows',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('status', sa.Enum('DRAFT', 'ACTIVE', 'PAUSED', 'ARCHIVED', name='flowstatus', native_enum=False, length=32), nullable=False),
    sa.Column('definition', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('template_key', sa.String(length=64), nullable=True),
    sa.Column('current_version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('activated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('schedule_cursor', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_flows'))
    )
    with op.batch_alter_table('automation_flows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_automation_flows_status'), ['status'], unique=False)

    op.create_table('automation_flow_versions',
    sa.Column('flow_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('definition', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('published_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['flow_id'], ['automation_flows.id'], name=op.f('fk_automation_flow_versions_flow_id_automation_flows'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_flow_versions')),
    sa.UniqueConstraint('flow_id', 'number', name=op.f('uq_automation_flow_versions_flow_id_number'))
    )
    op.create_table('automation_enrolments',
    sa.Column('flow_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.Enum('ACTIVE', 'WAITING', 'COMPLETED', 'CONVERTED', 'UNENROLLED', 'FAILED', name='enrolmentstatus', native_enum=False, length=32), nullable=False),
    sa.Column('trigger_key', sa.String(length=200), nullable=False),
    sa.Column('step_key', sa.String(length=64), nullable=True),
    sa.Column('wait_step', sa.String(length=64), nullable=True),
    sa.Column('waiting_for', sa.String(length=100), nullable=True),
    sa.Column('next_run_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.Column('context', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('claim_token', sa.String(length=32), nullable=True),
    sa.Column('claimed_until', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('enrolled_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_automation_enrolments_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['flow_id'], ['automation_flows.id'], name=op.f('fk_automation_enrolments_flow_id_automation_flows'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['automation_flow_versions.id'], name=op.f('fk_automation_enrolments_version_id_automation_flow_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_enrolments')),
    sa.UniqueConstraint('flow_id', 'customer_id', 'trigger_key', name=op.f('uq_automation_enrolments_flow_id_customer_id_trigger_key'))
    )
    with op.batch_alter_table('automation_enrolments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_automation_enrolments_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_automation_enrolments_due', ['status', 'next_run_at'], unique=False)
        batch_op.create_index('ix_automation_enrolments_flow_status', ['flow_id', 'status'], unique=False)

    op.create_table('automation_action_runs',
    sa.Column('enrolment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('step_key', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('message', sa.Boolean(), nullable=False),
    sa.Column('status', sa.Enum('STARTED', 'DONE', name='actionrunstatus', native_enum=False, length=32), nullable=False),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('started_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('done_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_automation_action_runs_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['enrolment_id'], ['automation_enrolments.id'], name=op.f('fk_automation_action_runs_enrolment_id_automation_enrolments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_action_runs')),
    sa.UniqueConstraint('enrolment_id', 'step_key', name=op.f('uq_automation_action_runs_enrolment_id_step_key'))
    )
    with op.batch_alter_table('automation_action_runs', schema=None) as batch_op:
        batch_op.create_index('ix_automation_action_runs_customer_message', ['customer_id', 'message', 'started_at'], unique=False)

    op.create_table('automation_step_runs',
    sa.Column('enrolment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('flow_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('step_key', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.Enum('ENTERED', 'WAITING', 'COMPLETED', 'SKIPPED', 'FAILED', 'CONVERTED', 'EXITED', name='stepoutcome', native_enum=False, length=32), nullable=False),
    sa.Column('detail', sa.String(length=1000), nullable=True),
    sa.Column('at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['enrolment_id'], ['automation_enrolments.id'], name=op.f('fk_automation_step_runs_enrolment_id_automation_enrolments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['flow_id'], ['automation_flows.id'], name=op.f('fk_automation_step_runs_flow_id_automation_flows'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_step_runs'))
    )
    with op.batch_alter_table('automation_step_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_automation_step_runs_enrolment_id'), ['enrolment_id'], unique=False)
        batch_op.create_index('ix_automation_step_runs_flow_step', ['flow_id', 'step_key', 'outcome'], unique=False)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('time_zone')

    with op.batch_alter_table('automation_step_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_automation_step_runs_flow_step')
        batch_op.drop_index(batch_op.f('ix_automation_step_runs_enrolment_id'))

    op.drop_table('automation_step_runs')
    with op.batch_alter_table('automation_action_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_automation_action_runs_customer_message')

    op.drop_table('automation_action_runs')
    with op.batch_alter_table('automation_enrolments', schema=None) as batch_op:
        batch_op.drop_index('ix_automation_enrolments_flow_status')
        batch_op.drop_index('ix_automation_enrolments_due')
        batch_op.drop_index(batch_op.f('ix_automation_enrolments_customer_id'))

    op.drop_table('automation_enrolments')
    op.drop_table('automation_flow_versions')
    with op.batch_alter_table('automation_flows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_automation_flows_status'))

    op.drop_table('automation_flows')
