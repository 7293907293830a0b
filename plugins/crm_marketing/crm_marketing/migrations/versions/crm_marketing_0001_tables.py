"""The marketing plugin's tables: lists, consent records, suppressions, campaigns, recipients,
links, engagements and inbound messages (branch crm_marketing).

Revision ID: crm_marketing_0001
Revises:
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_graph.db.types

revision: str = 'crm_marketing_0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('crm_marketing',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('crm_marketing_campaigns',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('from_address', sa.String(length=400), nullable=False),
    sa.Column('reply_to', sa.String(length=320), nullable=True),
    sa.Column('segment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('list_key', sa.String(length=64), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('track_opens', sa.Boolean(), nullable=False),
    sa.Column('track_clicks', sa.Boolean(), nullable=False),
    sa.Column('status', sa.Enum('DRAFT', 'SCHEDULED', 'SENDING', 'PAUSED', 'SENT', 'CANCELLED', name='campaignstatus', native_enum=False, length=32), nullable=False),
    sa.Column('scheduled_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('started_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('audience', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_marketing_campaigns'))
    )
    op.create_index(op.f('ix_crm_marketing_campaigns_segment_id'), 'crm_marketing_campaigns', ['segment_id'], unique=False)
    op.create_index(op.f('ix_crm_marketing_campaigns_status'), 'crm_marketing_campaigns', ['status'], unique=False)
    op.create_table('crm_marketing_consents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('action', sa.Enum('REQUESTED', 'CONFIRMED', 'WITHDRAWN', name='consentaction', native_enum=False, length=32), nullable=False),
    sa.Column('list_key', sa.String(length=64), nullable=False),
    sa.Column('form', sa.String(length=200), nullable=True),
    sa.Column('policy_text', sa.Text(), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=500), nullable=True),
    sa.Column('utm', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=True),
    sa.Column('confirmed_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmation_sent_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_marketing_consents')),
    sa.UniqueConstraint('nonce', name=op.f('uq_crm_marketing_consents_nonce'))
    )
    op.create_index(op.f('ix_crm_marketing_consents_customer_id'), 'crm_marketing_consents', ['customer_id'], unique=False)
    op.create_index(op.f('ix_crm_marketing_consents_email'), 'crm_marketing_consents', ['email'], unique=False)
    op.create_index('ix_crm_marketing_consents_ip_at', 'crm_marketing_consents', ['ip', 'at'], unique=False)
    op.create_table('crm_marketing_engagements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('recipient_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('kind', sa.Enum('OPENED', 'CLICKED', 'UNSUBSCRIBED', 'BOUNCED', 'SOFT_BOUNCED', 'COMPLAINED', name='engagementkind', native_enum=False, length=32), nullable=False),
    sa.Column('link_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('detail', sa.String(length=500), nullable=True),
    sa.Column('at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_marketing_engagements'))
    )
    op.create_index('ix_crm_marketing_engagements_campaign', 'crm_marketing_engagements', ['campaign_id', 'kind', 'recipient_id'], unique=False)
    op.create_index('ix_crm_marketing_engagements_customer', 'crm_marketing_engagements', ['customer_id', 'kind', 'at'], unique=False)
    op.create_table('crm_marketing_inbound',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_marketing_inbound')),
    sa.UniqueConstraint('source', 'external_id', name=op.f('uq_crm_marketing_inbound_source_external_id'))
    )
    op.create_table('crm_marketing_links',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('url_hash', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_marketing_links')),
    sa.UniqueConstraint('campaign_id', 'url_hash', name=op.f('uq_crm_marketing_links_campaign_id_url_hash'))
    )
    op.create_table('crm_marketing_lists',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_marketing_lists')),
    sa.UniqueConstraint('key', name=op.f('uq_crm_marketing_lists_key'))
    )
    op.create_table('crm_marketing_recipients',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('status', sa.Enum('PENDING', 'CLAIMED', 'SENDING', 'SENT', 'FAILED', 'SKIPPED', 'UNCONFIRMED', name='recipientstatus', native_enum=False, length=32), nullable=False),
    sa.Column('lease_until', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_attempt_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=300), nullable=True),
    sa.Column('sent_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_marketing_recipients')),
    sa.UniqueConstraint('campaign_id', 'customer_id', name=op.f('uq_crm_marketing_recipients_campaign_id_customer_id')),
    sa.UniqueConstraint('campaign_id', 'email', name=op.f('uq_crm_marketing_recipients_campaign_id_email'))
    )
    op.create_index(op.f('ix_crm_marketing_recipients_customer_id'), 'crm_marketing_recipients', ['customer_id'], unique=False)
    op.create_index('ix_crm_marketing_recipients_queue', 'crm_marketing_recipients', ['campaign_id', 'status', 'id'], unique=False)
    op.create_table('crm_marketing_suppressions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('list_key', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Enum('UNSUBSCRIBED', 'HARD_BOUNCE', 'SOFT_BOUNCES', 'COMPLAINT', 'MANUAL', name='suppressionreason', native_enum=False, length=32), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('detail', sa.String(length=500), nullable=True),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_marketing_suppressions')),
    sa.UniqueConstraint('email', 'list_key', name=op.f('uq_crm_marketing_suppressions_email_list_key'))
    )


def downgrade() -> None:
    op.drop_table('crm_marketing_suppressions')
    op.drop_index('ix_crm_marketing_recipients_queue', table_name='crm_marketing_recipients')
    op.drop_index(op.f('ix_crm_marketing_recipients_customer_id'), table_name='crm_marketing_recipients')
    op.drop_table('crm_marketing_recipients')
    op.drop_table('crm_marketing_lists')
    op.drop_table('crm_marketing_links')
    op.drop_table('crm_marketing_inbound')
    op.drop_index('ix_crm_marketing_engagements_customer', table_name='crm_marketing_engagements')
    op.drop_index('ix_crm_marketing_engagements_campaign', table_name='crm_marketing_engagements')
    op.drop_table('crm_marketing_engagements')
    op.drop_index('ix_crm_marketing_consents_ip_at', table_name='crm_marketing_consents')
    op.drop_index(op.f('ix_crm_marketing_consents_email'), table_name='crm_marketing_consents')
    op.drop_index(op.f('ix_crm_marketing_consents_customer_id'), table_name='crm_marketing_consents')
    op.drop_table('crm_marketing_consents')
    op.drop_index(op.f('ix_crm_marketing_campaigns_status'), table_name='crm_marketing_campaigns')
    op.drop_index(op.f('ix_crm_marketing_campaigns_segment_id'), table_name='crm_marketing_campaigns')
    op.drop_table('crm_marketing_campaigns')
