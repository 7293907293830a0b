"""The customer-service plugin's tables: mail channels, inbound mails, ticket messages and attachments,
helpdesk connections and their ticket and message mappings (branch crm_service).

Revision ID: crm_service_0001
Revises:
Create Date: 2026-12-02 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_graph.db.types

revision: str = 'crm_service_0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('crm_service',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('crm_service_helpdesk_connections',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('connector', sa.String(length=64), nullable=False),
    sa.Column('config', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('secrets', sa.LargeBinary(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('cursor', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_sync_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_service_helpdesk_connections')),
    sa.UniqueConstraint('name', name=op.f('uq_crm_service_helpdesk_connections_name'))
    )
    op.create_table('crm_service_mail_channels',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('imap_host', sa.String(length=255), nullable=False),
    sa.Column('imap_port', sa.Integer(), nullable=False),
    sa.Column('imap_username', sa.String(length=320), nullable=False),
    sa.Column('imap_folder', sa.String(length=255), nullable=False),
    sa.Column('processed_folder', sa.String(length=255), nullable=False),
    sa.Column('imap_tls', sa.String(length=16), nullable=False),
    sa.Column('smtp_host', sa.String(length=255), nullable=False),
    sa.Column('smtp_port', sa.Integer(), nullable=False),
    sa.Column('smtp_username', sa.String(length=320), nullable=True),
    sa.Column('smtp_tls', sa.String(length=16), nullable=False),
    sa.Column('secrets', sa.LargeBinary(), nullable=True),
    sa.Column('unknown_senders', sa.Enum('CREATE', 'QUEUE', name='unknownsenders', native_enum=False, length=32), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=True),
    sa.Column('last_uid', sa.BigInteger(), nullable=False),
    sa.Column('last_polled_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_service_mail_channels')),
    sa.UniqueConstraint('name', name=op.f('uq_crm_service_mail_channels_name'))
    )
    op.create_index(op.f('ix_crm_service_mail_channels_address'), 'crm_service_mail_channels', ['address'], unique=False)
    op.create_table('crm_service_helpdesk_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('connection_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('comment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('remote_id', sa.String(length=200), nullable=True),
    sa.Column('direction', sa.Enum('IN', 'OUT', name='messagedirection', native_enum=False, length=32), nullable=False),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['crm_service_helpdesk_connections.id'], name=op.f('fk_crm_service_helpdesk_messages_connection_id_crm_service_helpdesk_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_service_helpdesk_messages')),
    sa.UniqueConstraint('connection_id', 'comment_id', name=op.f('uq_crm_service_helpdesk_messages_connection_id_comment_id')),
    sa.UniqueConstraint('connection_id', 'remote_id', name=op.f('uq_crm_service_helpdesk_messages_connection_id_remote_id'))
    )
    op.create_table('crm_service_helpdesk_tickets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('connection_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('remote_id', sa.String(length=200), nullable=False),
    sa.Column('synced_status', sa.String(length=32), nullable=False),
    sa.Column('synced_priority', sa.String(length=32), nullable=False),
    sa.Column('synced_rating', sa.Integer(), nullable=True),
    sa.Column('card_hash', sa.String(length=64), nullable=True),
    sa.Column('synced_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['crm_service_helpdesk_connections.id'], name=op.f('fk_crm_service_helpdesk_tickets_connection_id_crm_service_helpdesk_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_service_helpdesk_tickets')),
    sa.UniqueConstraint('connection_id', 'remote_id', name=op.f('uq_crm_service_helpdesk_tickets_connection_id_remote_id')),
    sa.UniqueConstraint('connection_id', 'ticket_id', name=op.f('uq_crm_service_helpdesk_tickets_connection_id_ticket_id'))
    )
    op.create_index('ix_crm_service_helpdesk_tickets_ticket', 'crm_service_helpdesk_tickets', ['ticket_id'], unique=False)
    op.create_table('crm_service_inbound_mails',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('channel_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('dedupe_key', sa.String(length=500), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=True),
    sa.Column('uid', sa.BigInteger(), nullable=True),
    sa.Column('from_address', sa.String(length=320), nullable=True),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('outcome', sa.Enum('TICKET', 'COMMENT', 'QUEUED', 'ASSIGNED', 'AUTO_REPLY', 'BOUNCE', 'OWN', 'FLOOD', 'FAILED', name='inboundoutcome', native_enum=False, length=32), nullable=False),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('message_row_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('raw', sa.LargeBinary(), nullable=True),
    sa.Column('received_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['crm_service_mail_channels.id'], name=op.f('fk_crm_service_inbound_mails_channel_id_crm_service_mail_channels'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_service_inbound_mails')),
    sa.UniqueConstraint('channel_id', 'dedupe_key', name=op.f('uq_crm_service_inbound_mails_channel_id_dedupe_key'))
    )
    op.create_index('ix_crm_service_inbound_mails_outcome', 'crm_service_inbound_mails', ['outcome', 'id'], unique=False)
    op.create_index('ix_crm_service_inbound_mails_sender', 'crm_service_inbound_mails', ['from_address', 'received_at'], unique=False)
    op.create_table('crm_service_ticket_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('comment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('channel_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('direction', sa.Enum('IN', 'OUT', name='messagedirection', native_enum=False, length=32), nullable=False),
    sa.Column('status', sa.Enum('RECEIVED', 'PENDING', 'SENDING', 'SENT', 'FAILED', 'UNCONFIRMED', name='messagestatus', native_enum=False, length=32), nullable=False),
    sa.Column('message_id', sa.String(length=500), nullable=False),
    sa.Column('in_reply_to', sa.String(length=500), nullable=True),
    sa.Column('references', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('from_address', sa.String(length=320), nullable=True),
    sa.Column('from_name', sa.String(length=300), nullable=True),
    sa.Column('to', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('cc', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=True),
    sa.Column('headers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('sent_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', crm_graph.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['crm_service_mail_channels.id'], name=op.f('fk_crm_service_ticket_messages_channel_id_crm_service_mail_channels'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_service_ticket_messages')),
    sa.UniqueConstraint('comment_id', 'direction', name=op.f('uq_crm_service_ticket_messages_comment_id_direction'))
    )
    op.create_index('ix_crm_service_ticket_messages_message_id', 'crm_service_ticket_messages', ['message_id'], unique=False)
    op.create_index('ix_crm_service_ticket_messages_thread', 'crm_service_ticket_messages', ['ticket_id', 'created_at', 'id'], unique=False)
    op.create_table('crm_service_attachments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('content_id', sa.String(length=500), nullable=True),
    sa.Column('inline', sa.Boolean(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=True),
    sa.Column('dropped', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['crm_service_ticket_messages.id'], name=op.f('fk_crm_service_attachments_message_id_crm_service_ticket_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_service_attachments'))
    )
    op.create_index(op.f('ix_crm_service_attachments_message_id'), 'crm_service_attachments', ['message_id'], unique=False)

def downgrade() -> None:
    op.drop_index(op.f('ix_crm_service_attachments_message_id'), table_name='crm_service_attachments')
    op.drop_table('crm_service_attachments')
    op.drop_index('ix_crm_service_ticket_messages_thread', table_name='crm_service_ticket_messages')
    op.drop_index('ix_crm_service_ticket_messages_message_id', table_name='crm_service_ticket_messages')
    op.drop_table('crm_service_ticket_messages')
    op.drop_index('ix_crm_service_inbound_mails_sender', table_name='crm_service_inbound_mails')
    op.drop_index('ix_crm_service_inbound_mails_outcome', table_name='crm_service_inbound_mails')
    op.drop_table('crm_service_inbound_mails')
    op.drop_index('ix_crm_service_helpdesk_tickets_ticket', table_name='crm_service_helpdesk_tickets')
    op.drop_table('crm_service_helpdesk_tickets')
    op.drop_table('crm_service_helpdesk_messages')
    op.drop_index(op.f('ix_crm_service_mail_channels_address'), table_name='crm_service_mail_channels')
    op.drop_table('crm_service_mail_channels')
    op.drop_table('crm_service_helpdesk_connections')
