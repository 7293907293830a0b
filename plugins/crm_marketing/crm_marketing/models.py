"""The marketing plugin's tables, on its own MetaData (its Alembic branch ``crm_marketing``).

- ``crm_marketing_lists``: mailing lists a customer can subscribe to and unsubscribe from one by
  one (a campaign may name one); the form's optional ``list``.
- ``crm_marketing_consents``: the consent record, append-only: every request, confirmation and
  withdrawal with when, from where (address, user agent), through which form, under which policy
  text, and the sign-up's UTM parameters.
- ``crm_marketing_suppressions``: addresses that receive no marketing mail, globally (``list_key``
  empty) or for one list: unsubscribes, hard bounces, complaints, repeated soft bounces.
- ``crm_marketing_campaigns``: the campaign, its template and its status.
- ``crm_marketing_recipients``: the audience snapshot taken when sending starts; it is the queue
  of mail to send too (a row's status moves PENDING -> CLAIMED -> SENDING -> SENT; see sender.py).
- ``crm_marketing_links``: the tracked links of a campaign's HTML, one row per URL.
- ``crm_marketing_engagements``: opens, clicks, unsubscribes, bounces and complaints, one row each.
- ``crm_marketing_inbound``: every inbound message that changes something (a DSN, a result file's
  row), unique on (source, external id), written before it takes effect.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_graph.db.base import NAMING_CONVENTION
from crm_graph.db.types import IdType, JSONType, UTCDateTime, enum_column


class MarketingBase(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class ConsentAction(enum.Enum):
    REQUESTED = "REQUESTED"  # signed up; a confirmation link was sent
    CONFIRMED = "CONFIRMED"  # the link was followed: OPTED_IN
    WITHDRAWN = "WITHDRAWN"  # unsubscribed (globally, or from the list named)


class SuppressionReason(enum.Enum):
    UNSUBSCRIBED = "UNSUBSCRIBED"
    HARD_BOUNCE = "HARD_BOUNCE"
    SOFT_BOUNCES = "SOFT_BOUNCES"
    COMPLAINT = "COMPLAINT"
    MANUAL = "MANUAL"


class CampaignStatus(enum.Enum):
    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"
    SENDING = "SENDING"
    PAUSED = "PAUSED"
    SENT = "SENT"
    CANCELLED = "CANCELLED"


class RecipientStatus(enum.Enum):
    PENDING = "PENDING"  # to send
    CLAIMED = "CLAIMED"  # taken by a sender, not tried yet (back to PENDING when its lease ends)
    SENDING = "SENDING"  # handed to the transport; SENT when it answered
    SENT = "SENT"
    FAILED = "FAILED"  # refused for good (the server rejected the recipient, or too many tries)
    SKIPPED = "SKIPPED"  # suppressed or withdrawn after the snapshot: not sent
    UNCONFIRMED = "UNCONFIRMED"  # its sender died while sending: maybe sent, never sent again


class EngagementKind(enum.Enum):
    OPENED = "OPENED"
    CLICKED = "CLICKED"
    UNSUBSCRIBED = "UNSUBSCRIBED"
    BOUNCED = "BOUNCED"  # hard
    SOFT_BOUNCED = "SOFT_BOUNCED"
    COMPLAINED = "COMPLAINED"


class MarketingList(MarketingBase):
    __tablename__ = "crm_marketing_lists"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConsentRecord(MarketingBase):
    __tablename__ = "crm_marketing_consents"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(IdType, index=True)
    email: Mapped[str] = mapped_column(sa.String(320), index=True)
    action: Mapped[ConsentAction] = mapped_column(enum_column(ConsentAction))
    list_key: Mapped[str] = mapped_column(sa.String(64), default="")
    form: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    policy_text: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    ip: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    utm: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The REQUESTED row's confirmation nonce: its link confirms once.
    nonce: Mapped[str | None] = mapped_column(sa.String(64), unique=True, nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When the REQUESTED row's confirmation mail was handed to the transport (set before sending:
    # a redelivered event finds it set and sends nothing; see confirm_mail.py).
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    campaign_id: Mapped[int | None] = mapped_column(IdType, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (sa.Index("ix_crm_marketing_consents_ip_at", "ip", "at"),)


class Suppression(MarketingBase):
    __tablename__ = "crm_marketing_suppressions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(sa.String(320))
    list_key: Mapped[str] = mapped_column(sa.String(64), default="")  # "" = every list
    reason: Mapped[SuppressionReason] = mapped_column(enum_column(SuppressionReason))
    campaign_id: Mapped[int | None] = mapped_column(IdType, nullable=True)
    detail: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (sa.UniqueConstraint("email", "list_key"),)


class Campaign(MarketingBase):
    __tablename__ = "crm_marketing_campaigns"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    subject: Mapped[str] = mapped_column(sa.String(500))
    from_address: Mapped[str] = mapped_column(sa.String(400))
    reply_to: Mapped[str | None] = mapped_column(sa.String(320), nullable=True)
    segment_id: Mapped[int] = mapped_column(IdType, index=True)
    list_key: Mapped[str] = mapped_column(sa.String(64), default="")
    html: Mapped[str] = mapped_column(sa.Text)
    text: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    track_opens: Mapped[bool] = mapped_column(sa.Boolean)
    track_clicks: Mapped[bool] = mapped_column(sa.Boolean)
    status: Mapped[CampaignStatus] = mapped_column(enum_column(CampaignStatus), index=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    audience: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Recipient(MarketingBase):
    __tablename__ = "crm_marketing_recipients"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(IdType)
    customer_id: Mapped[int] = mapped_column(IdType, index=True)
    email: Mapped[str] = mapped_column(sa.String(320))
    status: Mapped[RecipientStatus] = mapped_column(enum_column(RecipientStatus))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    message_id: Mapped[str | None] = mapped_column(sa.String(300), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(sa.String(1000), nullable=True)

    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "customer_id"),
        sa.UniqueConstraint("campaign_id", "email"),
        sa.Index("ix_crm_marketing_recipients_queue", "campaign_id", "status", "id"),
    )


class Link(MarketingBase):
    __tablename__ = "crm_marketing_links"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(IdType)
    url_hash: Mapped[str] = mapped_column(sa.String(64))  # sha256 of the URL
    url: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (sa.UniqueConstraint("campaign_id", "url_hash"),)


class Engagement(MarketingBase):
    __tablename__ = "crm_marketing_engagements"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int | None] = mapped_column(IdType, nullable=True)
    recipient_id: Mapped[int | None] = mapped_column(IdType, nullable=True)
    customer_id: Mapped[int | None] = mapped_column(IdType, nullable=True)
    kind: Mapped[EngagementKind] = mapped_column(enum_column(EngagementKind))
    link_id: Mapped[int | None] = mapped_column(IdType, nullable=True)
    detail: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.Index("ix_crm_marketing_engagements_campaign", "campaign_id", "kind", "recipient_id"),
        sa.Index("ix_crm_marketing_engagements_customer", "customer_id", "kind", "at"),
    )


class Inbound(MarketingBase):
    __tablename__ = "crm_marketing_inbound"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(sa.String(64))
    external_id: Mapped[str] = mapped_column(sa.String(300))
    kind: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (sa.UniqueConstraint("source", "external_id"),)
