"""The customer-service plugin's tables, on its own MetaData (its Alembic branch ``crm_service``).

- ``crm_service_mail_channels``: a support mailbox: its IMAP account (read), its SMTP server
  (replies), the credentials sealed, and the reading checkpoint (UIDVALIDITY and the last UID
  whose mail is committed).
- ``crm_service_inbound_mails``: every mail read from a mailbox, unique on (channel, Message-ID
  or content hash), written in the same transaction as the ticket or comment it made: a mail
  read twice (a reconnect, a move that did not happen) is recognised and changes nothing.
  Mails that made nothing (auto-replies, bounces, our own, floods) are kept with their reason;
  mails from unknown senders wait here (QUEUED) when the channel queues them.
- ``crm_service_ticket_messages``: a ticket's email thread, in and out: the headers that
  matter, the sanitised HTML, the full text, the original message; outgoing ones carry their
  sending state (SENDING is marked before the SMTP server is handed the message: a message
  whose outcome is unknown is UNCONFIRMED, never sent twice).
- ``crm_service_attachments``: the files of a message (inline images too), size-limited.
- ``crm_service_helpdesk_connections``: a helpdesk program the tickets sync with.
- ``crm_service_helpdesk_tickets``: the mapping of CRM ticket and remote ticket, with the
  status and priority last agreed (so each side's changes since can be told apart).
- ``crm_service_helpdesk_messages``: each reply or comment copied across, once, either way.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_graph.db.base import NAMING_CONVENTION
from crm_graph.db.types import IdType, JSONType, UTCDateTime, enum_column


class ServiceBase(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UnknownSenders(enum.Enum):
    CREATE = "CREATE"  # a new customer (source EMAIL) and a ticket
    QUEUE = "QUEUE"  # kept as a QUEUED inbound mail for an agent to assign


class InboundOutcome(enum.Enum):
    TICKET = "TICKET"  # opened a ticket
    COMMENT = "COMMENT"  # added a comment to a ticket
    QUEUED = "QUEUED"  # from an unknown sender, waiting for an agent
    ASSIGNED = "ASSIGNED"  # was QUEUED; an agent made it a ticket
    AUTO_REPLY = "AUTO_REPLY"  # an out-of-office or other automatic answer: nothing made
    BOUNCE = "BOUNCE"  # a delivery failure report: nothing made
    OWN = "OWN"  # our own outgoing mail come back: nothing made
    FLOOD = "FLOOD"  # one sender over the hourly limit: nothing made
    FAILED = "FAILED"  # could not be taken (see the log); kept whole


class MessageDirection(enum.Enum):
    IN = "IN"
    OUT = "OUT"


class MessageStatus(enum.Enum):
    RECEIVED = "RECEIVED"  # an incoming mail
    PENDING = "PENDING"  # an agent's reply waiting to be sent
    SENDING = "SENDING"  # handed to the SMTP server; its answer not yet recorded
    SENT = "SENT"
    FAILED = "FAILED"  # refused for good (the error says why)
    UNCONFIRMED = "UNCONFIRMED"  # the connection dropped after the message was handed over: not sent again


class MailChannel(ServiceBase):
    __tablename__ = "crm_service_mail_channels"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    address: Mapped[str] = mapped_column(sa.String(320), index=True)
    imap_host: Mapped[str] = mapped_column(sa.String(255))
    imap_port: Mapped[int] = mapped_column(sa.Integer)
    imap_username: Mapped[str] = mapped_column(sa.String(320))
    imap_folder: Mapped[str] = mapped_column(sa.String(255))
    processed_folder: Mapped[str] = mapped_column(sa.String(255))
    imap_tls: Mapped[str] = mapped_column(sa.String(16))  # none, starttls, tls
    smtp_host: Mapped[str] = mapped_column(sa.String(255))
    smtp_port: Mapped[int] = mapped_column(sa.Integer)
    smtp_username: Mapped[str | None] = mapped_column(sa.String(320))
    smtp_tls: Mapped[str] = mapped_column(sa.String(16))
    secrets: Mapped[bytes | None] = mapped_column(sa.LargeBinary)  # sealed {"imapPassword", "smtpPassword"}
    unknown_senders: Mapped[UnknownSenders] = mapped_column(enum_column(UnknownSenders))
    active: Mapped[bool] = mapped_column(sa.Boolean)
    uidvalidity: Mapped[int | None] = mapped_column(sa.BigInteger)
    last_uid: Mapped[int] = mapped_column(sa.BigInteger)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InboundMail(ServiceBase):
    __tablename__ = "crm_service_inbound_mails"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    channel_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("crm_service_mail_channels.id", ondelete="CASCADE"))
    dedupe_key: Mapped[str] = mapped_column(sa.String(500))  # the Message-ID, or "sha256:..." of the mail
    uidvalidity: Mapped[int | None] = mapped_column(sa.BigInteger)
    uid: Mapped[int | None] = mapped_column(sa.BigInteger)
    from_address: Mapped[str | None] = mapped_column(sa.String(320))
    subject: Mapped[str] = mapped_column(sa.String(300))
    outcome: Mapped[InboundOutcome] = mapped_column(enum_column(InboundOutcome))
    ticket_id: Mapped[int | None] = mapped_column(IdType)
    message_row_id: Mapped[int | None] = mapped_column(IdType)
    raw: Mapped[bytes | None] = mapped_column(sa.LargeBinary)  # kept while QUEUED, and when FAILED
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("channel_id", "dedupe_key"),
        # The flood check counts one sender's mails of the last hour.
        sa.Index("ix_crm_service_inbound_mails_sender", "from_address", "received_at"),
        sa.Index("ix_crm_service_inbound_mails_outcome", "outcome", "id"),
    )


class TicketMessage(ServiceBase):
    __tablename__ = "crm_service_ticket_messages"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(IdType)
    comment_id: Mapped[int | None] = mapped_column(IdType)
    channel_id: Mapped[int | None] = mapped_column(
        IdType, sa.ForeignKey("crm_service_mail_channels.id", ondelete="SET NULL"))
    direction: Mapped[MessageDirection] = mapped_column(enum_column(MessageDirection))
    status: Mapped[MessageStatus] = mapped_column(enum_column(MessageStatus))
    message_id: Mapped[str] = mapped_column(sa.String(500))
    in_reply_to: Mapped[str | None] = mapped_column(sa.String(500))
    references: Mapped[list[str]] = mapped_column(JSONType)
    from_address: Mapped[str | None] = mapped_column(sa.String(320))
    from_name: Mapped[str | None] = mapped_column(sa.String(300))
    to: Mapped[list[str]] = mapped_column(JSONType)
    cc: Mapped[list[str]] = mapped_column(JSONType)
    subject: Mapped[str] = mapped_column(sa.String(300))
    text: Mapped[str] = mapped_column(sa.Text)  # the whole text (the comment holds the reply without quotes)
    html: Mapped[str | None] = mapped_column(sa.Text)  # sanitised
    headers: Mapped[dict[str, Any]] = mapped_column(JSONType)
    raw: Mapped[bytes | None] = mapped_column(sa.LargeBinary)  # the original message as received or sent
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(sa.Integer)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the Date header, or when it was handed over
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.Index("ix_crm_service_ticket_messages_thread", "ticket_id", "created_at", "id"),
        sa.Index("ix_crm_service_ticket_messages_message_id", "message_id"),
        sa.UniqueConstraint("comment_id", "direction"),
    )


class Attachment(ServiceBase):
    __tablename__ = "crm_service_attachments"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("crm_service_ticket_messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(255))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    content_id: Mapped[str | None] = mapped_column(sa.String(500))
    inline: Mapped[bool] = mapped_column(sa.Boolean)
    data: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    dropped: Mapped[str | None] = mapped_column(sa.String(200))


class HelpdeskConnection(ServiceBase):
    __tablename__ = "crm_service_helpdesk_connections"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    connector: Mapped[str] = mapped_column(sa.String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    secrets: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    active: Mapped[bool] = mapped_column(sa.Boolean)
    cursor: Mapped[datetime | None] = mapped_column(UTCDateTime)  # remote changes read up to here
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HelpdeskTicket(ServiceBase):
    __tablename__ = "crm_service_helpdesk_tickets"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    connection_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("crm_service_helpdesk_connections.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(IdType)
    remote_id: Mapped[str] = mapped_column(sa.String(200))
    synced_status: Mapped[str] = mapped_column(sa.String(32))
    synced_priority: Mapped[str] = mapped_column(sa.String(32))
    synced_rating: Mapped[int | None] = mapped_column(sa.Integer)
    card_hash: Mapped[str | None] = mapped_column(sa.String(64))
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("connection_id", "ticket_id"),
        sa.UniqueConstraint("connection_id", "remote_id"),
        sa.Index("ix_crm_service_helpdesk_tickets_ticket", "ticket_id"),
    )


class HelpdeskMessage(ServiceBase):
    __tablename__ = "crm_service_helpdesk_messages"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    connection_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("crm_service_helpdesk_connections.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(IdType)
    comment_id: Mapped[int | None] = mapped_column(IdType)
    remote_id: Mapped[str | None] = mapped_column(sa.String(200))
    direction: Mapped[MessageDirection] = mapped_column(enum_column(MessageDirection))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("connection_id", "remote_id"),
        sa.UniqueConstraint("connection_id", "comment_id"),
    )
