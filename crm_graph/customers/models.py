"""Customer tables: people and organizations, their contact points, tags and custom fields."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_graph.core.access import guard_child, guard_object, guard_owned
from crm_graph.db.base import Base, IdMixin, OwnedMixin, SoftDeleteMixin, TimestampMixin, VersionMixin
from crm_graph.db.types import IdType, JSONType, UTCDateTime, enum_column


class CustomerKind(enum.Enum):
    PERSON = "PERSON"
    ORGANIZATION = "ORGANIZATION"


class AcquisitionChannel(enum.Enum):
    WEB = "WEB"
    APP = "APP"
    PHONE = "PHONE"
    IN_STORE = "IN_STORE"
    SOCIAL = "SOCIAL"
    REFERRAL = "REFERRAL"
    IMPORT = "IMPORT"
    API = "API"
    EMAIL = "EMAIL"  # wrote to a support mailbox first


class LifecycleStage(enum.Enum):
    """Relationship stages: a lead, then exploration, formation, stability, decline; churned at the end."""

    LEAD = "LEAD"
    EXPLORATION = "EXPLORATION"
    FORMATION = "FORMATION"
    STABILITY = "STABILITY"
    DECLINE = "DECLINE"
    CHURNED = "CHURNED"


class ConsentStatus(enum.Enum):
    UNKNOWN = "UNKNOWN"
    OPTED_IN = "OPTED_IN"
    OPTED_OUT = "OPTED_OUT"


class Gender(enum.Enum):
    FEMALE = "FEMALE"
    MALE = "MALE"
    NON_BINARY = "NON_BINARY"
    UNDISCLOSED = "UNDISCLOSED"


class CustomFieldType(enum.Enum):
    TEXT = "TEXT"
    NUMBER = "NUMBER"
    DATE = "DATE"
    BOOLEAN = "BOOLEAN"
    SELECT = "SELECT"


class Customer(IdMixin, TimestampMixin, VersionMixin, SoftDeleteMixin, OwnedMixin, Base):
    __tablename__ = "customers"

    kind: Mapped[CustomerKind] = mapped_column(enum_column(CustomerKind))
    first_name: Mapped[str | None] = mapped_column(sa.String(100))
    last_name: Mapped[str | None] = mapped_column(sa.String(100))
    organization_name: Mapped[str | None] = mapped_column(sa.String(200))
    display_name: Mapped[str] = mapped_column(sa.String(300), index=True)
    job_title: Mapped[str | None] = mapped_column(sa.String(200))
    organization_id: Mapped[int | None] = mapped_column(
        IdType, sa.ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[AcquisitionChannel | None] = mapped_column(enum_column(AcquisitionChannel))
    lifecycle_stage: Mapped[LifecycleStage] = mapped_column(enum_column(LifecycleStage))
    consent_status: Mapped[ConsentStatus] = mapped_column(enum_column(ConsentStatus))
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_source: Mapped[str | None] = mapped_column(sa.String(200))
    birthday: Mapped[date | None] = mapped_column(sa.Date)
    gender: Mapped[Gender | None] = mapped_column(enum_column(Gender))
    locale: Mapped[str | None] = mapped_column(sa.String(35))
    # An IANA zone name (Europe/Berlin): the customer's local time for automation flows (date
    # triggers, waits until a time of day, quiet hours).
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    country: Mapped[str | None] = mapped_column(sa.String(2), index=True)
    region: Mapped[str | None] = mapped_column(sa.String(100))
    city: Mapped[str | None] = mapped_column(sa.String(100))
    external_system: Mapped[str | None] = mapped_column(sa.String(64))
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    # Set by ``eraseCustomer`` (crm_graph/privacy): the personal data is gone, the row stays for
    # the orders that reference it; an erased customer is deleted too and cannot be restored.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("external_system", "external_id"),
        sa.Index("ix_customers_created_at_id", "created_at", "id"),
        sa.Index("ix_customers_updated_at_id", "updated_at", "id"),
    )


class CustomerEmail(IdMixin, Base):
    __tablename__ = "customer_emails"

    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(sa.String(320), index=True)
    label: Mapped[str | None] = mapped_column(sa.String(50))
    is_primary: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    position: Mapped[int] = mapped_column(sa.Integer, default=0)


class CustomerPhone(IdMixin, Base):
    __tablename__ = "customer_phones"

    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(sa.String(32), index=True)  # E.164
    label: Mapped[str | None] = mapped_column(sa.String(50))
    is_primary: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    position: Mapped[int] = mapped_column(sa.Integer, default=0)


class CustomerAddress(IdMixin, Base):
    __tablename__ = "customer_addresses"

    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    label: Mapped[str | None] = mapped_column(sa.String(50))
    line1: Mapped[str] = mapped_column(sa.String(200))
    line2: Mapped[str | None] = mapped_column(sa.String(200))
    postal_code: Mapped[str | None] = mapped_column(sa.String(20))
    city: Mapped[str | None] = mapped_column(sa.String(100))
    # The part of a city an address is in (a Chinese 区 or 县, a borough); ``region`` is the
    # province or state.
    district: Mapped[str | None] = mapped_column(sa.String(100))
    region: Mapped[str | None] = mapped_column(sa.String(100))
    country: Mapped[str] = mapped_column(sa.String(2))
    is_primary: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    position: Mapped[int] = mapped_column(sa.Integer, default=0)


class CustomerTag(Base):
    __tablename__ = "customer_tags"

    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(sa.String(64), primary_key=True, index=True)


class CustomFieldDefinition(IdMixin, TimestampMixin, Base):
    __tablename__ = "custom_field_definitions"

    key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    label: Mapped[str] = mapped_column(sa.String(200))
    type: Mapped[CustomFieldType] = mapped_column(enum_column(CustomFieldType))
    options: Mapped[list[str] | None] = mapped_column(JSONType)
    required: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    description: Mapped[str | None] = mapped_column(sa.Text)


class CustomerFieldValue(Base):
    """One custom field value; the column used depends on the definition's type (SELECT uses text)."""

    __tablename__ = "customer_field_values"

    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    definition_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("custom_field_definitions.id", ondelete="CASCADE"), primary_key=True
    )
    value_text: Mapped[str | None] = mapped_column(sa.Text)
    value_number: Mapped[Decimal | None] = mapped_column(sa.Numeric(30, 10))
    value_date: Mapped[date | None] = mapped_column(sa.Date)
    value_bool: Mapped[bool | None] = mapped_column(sa.Boolean)

    __table_args__ = (
        sa.Index("ix_customer_field_values_text", "definition_id", "value_text"),
        sa.Index("ix_customer_field_values_number", "definition_id", "value_number"),
        sa.Index("ix_customer_field_values_date", "definition_id", "value_date"),
    )


guard_owned(Customer, "customers")
for _model in (CustomerEmail, CustomerPhone, CustomerAddress, CustomerTag, CustomerFieldValue):
    guard_child(_model, "customers", Customer, "customer_id")
guard_object(CustomFieldDefinition, "custom_fields")
