"""Customers, custom fields, activities and the event outbox.

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 14:17:11.702163
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_graph.db.types
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('custom_field_definitions',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('type', sa.Enum('TEXT', 'NUMBER', 'DATE', 'BOOLEAN', 'SELECT', name='customfieldtype', native_enum=False, length=32), nullable=False),
    sa.Column('options', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_custom_field_definitions')),
    sa.UniqueConstraint('key', name=op.f('uq_custom_field_definitions_key'))
    )
    op.create_table('customers',
    sa.Column('kind', sa.Enum('PERSON', 'ORGANIZATION', name='customerkind', native_enum=False, length=32), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=True),
    sa.Column('last_name', sa.String(length=100), nullable=True),
    sa.Column('organization_name', sa.String(length=200), nullable=True),
    sa.Column('display_name', sa.String(length=300), nullable=False),
    sa.Column('job_title', sa.String(length=200), nullable=True),
    sa.Column('organization_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('source', sa.Enum('WEB', 'APP', 'PHONE', 'IN_STORE', 'SOCIAL', 'REFERRAL', 'IMPORT', 'API', name='acquisitionchannel', native_enum=False, length=32), nullable=True),
    sa.Column('lifecycle_stage', sa.Enum('LEAD', 'EXPLORATION', 'FORMATION', 'STABILITY', 'DECLINE', 'CHURNED', name='lifecyclestage', native_enum=False, length=32), nullable=False),
    sa.Column('consent_status', sa.Enum('UNKNOWN', 'OPTED_IN', 'OPTED_OUT', name='consentstatus', native_enum=False, length=32), nullable=False),
    sa.Column('consent_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('consent_source', sa.String(length=200), nullable=True),
    sa.Column('birthday', sa.Date(), nullable=True),
    sa.Column('gender', sa.Enum('FEMALE', 'MALE', 'NON_BINARY', 'UNDISCLOSED', name='gender', native_enum=False, length=32), nullable=True),
    sa.Column('locale', sa.String(length=35), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('region', sa.String(length=100), nullable=True),
    sa.Column('city', sa.String(length=100), nullable=True),
    sa.Column('external_system', sa.String(length=64), nullable=True),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('deleted_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['customers.id'], name=op.f('fk_customers_organization_id_customers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customers')),
    sa.UniqueConstraint('external_system', 'external_id', name=op.f('uq_customers_external_system_external_id'))
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customers_country'), ['country'], unique=False)
        batch_op.create_index('ix_customers_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_display_name'), ['display_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index('ix_customers_updated_at_id', ['updated_at', 'id'], unique=False)

    op.create_table('outbox',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('occurred_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('entity_type', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('event_id', name=op.f('uq_outbox_event_id'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_entity', ['entity_type', 'entity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_type'), ['type'], unique=False)

    op.create_table('activities',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('type', sa.Enum('NOTE', 'CALL', 'MEETING', 'EMAIL', 'TASK', name='activitytype', native_enum=False, length=32), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('occurred_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('direction', sa.Enum('INBOUND', 'OUTBOUND', name='direction', native_enum=False, length=32), nullable=True),
    sa.Column('duration_minutes', sa.Integer(), nullable=True),
    sa.Column('due_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('assignee', sa.String(length=200), nullable=True),
    sa.Column('completed_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('deleted_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_activities_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activities'))
    )
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activities_assignee'), ['assignee'], unique=False)
        batch_op.create_index('ix_activities_customer_timeline', ['customer_id', 'occurred_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_due_at'), ['due_at'], unique=False)
        batch_op.create_index('ix_activities_occurred_at_id', ['occurred_at', 'id'], unique=False)

    op.create_table('customer_addresses',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('label', sa.String(length=50), nullable=True),
    sa.Column('line1', sa.String(length=200), nullable=False),
    sa.Column('line2', sa.String(length=200), nullable=True),
    sa.Column('postal_code', sa.String(length=20), nullable=True),
    sa.Column('city', sa.String(length=100), nullable=True),
    sa.Column('region', sa.String(length=100), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('is_primary', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_addresses_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_addresses'))
    )
    with op.batch_alter_table('customer_addresses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_addresses_customer_id'), ['customer_id'], unique=False)

    op.create_table('customer_emails',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('label', sa.String(length=50), nullable=True),
    sa.Column('is_primary', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_emails_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_emails'))
    )
    with op.batch_alter_table('customer_emails', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_emails_address'), ['address'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_emails_customer_id'), ['customer_id'], unique=False)

    op.create_table('customer_field_values',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('definition_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('value_text', sa.Text(), nullable=True),
    sa.Column('value_number', sa.Numeric(precision=30, scale=10), nullable=True),
    sa.Column('value_date', sa.Date(), nullable=True),
    sa.Column('value_bool', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_field_values_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['definition_id'], ['custom_field_definitions.id'], name=op.f('fk_customer_field_values_definition_id_custom_field_definitions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'definition_id', name=op.f('pk_customer_field_values'))
    )
    with op.batch_alter_table('customer_field_values', schema=None) as batch_op:
        batch_op.create_index('ix_customer_field_values_date', ['definition_id', 'value_date'], unique=False)
        batch_op.create_index('ix_customer_field_values_number', ['definition_id', 'value_number'], unique=False)
        batch_op.create_index('ix_customer_field_values_text', ['definition_id', 'value_text'], unique=False)

    op.create_table('customer_phones',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('label', sa.String(length=50), nullable=True),
    sa.Column('is_primary', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_phones_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_phones'))
    )
    with op.batch_alter_table('customer_phones', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_phones_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_phones_number'), ['number'], unique=False)

    op.create_table('customer_tags',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tag', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_tags_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'tag', name=op.f('pk_customer_tags'))
    )
    with op.batch_alter_table('customer_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_tags_tag'), ['tag'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('customer_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_tags_tag'))

    op.drop_table('customer_tags')
    with op.batch_alter_table('customer_phones', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_phones_number'))
        batch_op.drop_index(batch_op.f('ix_customer_phones_customer_id'))

    op.drop_table('customer_phones')
    with op.batch_alter_table('customer_field_values', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_field_values_text')
        batch_op.drop_index('ix_customer_field_values_number')
        batch_op.drop_index('ix_customer_field_values_date')

    op.drop_table('customer_field_values')
    with op.batch_alter_table('customer_emails', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_emails_customer_id'))
        batch_op.drop_index(batch_op.f('ix_customer_emails_address'))

    op.drop_table('customer_emails')
    with op.batch_alter_table('customer_addresses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_addresses_customer_id'))

    op.drop_table('customer_addresses')
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index('ix_activities_occurred_at_id')
        batch_op.drop_index(batch_op.f('ix_activities_due_at'))
        batch_op.drop_index('ix_activities_customer_timeline')
        batch_op.drop_index(batch_op.f('ix_activities_assignee'))

    op.drop_table('activities')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_type'))
        batch_op.drop_index('ix_outbox_entity')

    op.drop_table('outbox')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('ix_customers_updated_at_id')
        batch_op.drop_index(batch_op.f('ix_customers_organization_id'))
        batch_op.drop_index(batch_op.f('ix_customers_display_name'))
        batch_op.drop_index('ix_customers_created_at_id')
        batch_op.drop_index(batch_op.f('ix_customers_country'))

    op.drop_table('customers')
    op.drop_table('custom_field_definitions')
