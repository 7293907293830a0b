"""GraphQL API of customers: types, inputs, queries and mutations. Thin: rules live in service.py."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Annotated, Any

import sqlalchemy as sa
import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry.types.unset import UNSET

from crm_graph.domains import SchemaPart
from crm_graph.core.pagination import paginate
from crm_graph.customers import filters, service
from crm_graph.customers.service.assign import format_address
from crm_graph.customers.models import (
    AcquisitionChannel,
    ConsentStatus,
    CustomFieldType,
    CustomerKind,
    Gender,
    LifecycleStage,
)
from crm_graph.customers.models import CustomFieldDefinition as DefinitionModel
from crm_graph.customers.models import Customer as CustomerModel
from crm_graph.graphql import access
from crm_graph.graphql.context import Context
from crm_graph.graphql.enums import graphql_enum
from crm_graph.ownership.schema import OwnedFields, owned
from crm_graph.graphql.errors import UserError
from crm_graph.graphql.extend import plain_filter
from crm_graph.graphql.inputs import (
    DateFilter,
    DateTimeFilter,
    IntFilter,
    StringFilter,
    TagsFilter,
    enum_filter,
    order_input,
    to_plain,
)
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.core.extensions import NodeType
from crm_graph.graphql.relay import (
    Connection,
    Node,
    decode_global_id,
    encode_global_id,
    grouped_connection,
    page_args,
    node_resolver,
)

graphql_enum(
    CustomerKind,
    "A customer is a PERSON or an ORGANIZATION (which lists its contact people).",
    {
        "PERSON": "A person: has a first and/or last name and may belong to an organization.",
        "ORGANIZATION": "A company or other organization: has an organization name and may have contact people.",
    },
)
graphql_enum(
    AcquisitionChannel,
    "The channel a customer first came from.",
    {
        "WEB": "The website.",
        "APP": "A mobile or desktop app.",
        "PHONE": "A phone call.",
        "IN_STORE": "A visit to a shop.",
        "SOCIAL": "Social media.",
        "REFERRAL": "Recommended by someone.",
        "IMPORT": "Imported from another system.",
        "API": "Created by an integration through the API.",
        "EMAIL": "Wrote to a support mailbox first.",
    },
)
graphql_enum(
    LifecycleStage,
    "Stage of the relationship: a LEAD, then EXPLORATION (trial orders), FORMATION (volume grows), "
    "STABILITY (highest volume, lowest cost), DECLINE (volume falls), CHURNED.",
    {
        "LEAD": "Known but not yet buying; every new customer starts here.",
        "EXPLORATION": "Trying the business out with first orders.",
        "FORMATION": "Order volume is growing.",
        "STABILITY": "Highest volume at the lowest cost to serve.",
        "DECLINE": "Order volume is falling.",
        "CHURNED": "No longer buying.",
    },
)
graphql_enum(
    ConsentStatus,
    "Whether the customer agreed to receive marketing email.",
    {
        "UNKNOWN": "Never recorded; the status of a new customer.",
        "OPTED_IN": "Agreed to receive marketing email.",
        "OPTED_OUT": "Refused or withdrew consent.",
    },
)
graphql_enum(
    Gender,
    "A customer's gender, as they gave it.",
    {
        "FEMALE": "Female.",
        "MALE": "Male.",
        "NON_BINARY": "Non-binary.",
        "UNDISCLOSED": "The customer chose not to say.",
    },
)
graphql_enum(
    CustomFieldType,
    "Value type of a custom field.",
    {
        "TEXT": "A string of at most 1000 characters.",
        "NUMBER": "A decimal number below 10^20 in absolute value; whole numbers read back as integers.",
        "DATE": "A calendar date, `YYYY-MM-DD`.",
        "BOOLEAN": "true or false.",
        "SELECT": "One of the definition's `options`, as text.",
    },
)


@strawberry.type(description="An email address of a customer.")
class EmailAddress:
    address: str = strawberry.field(description="Validated and lower-cased.")
    label: str | None = strawberry.field(description="Free text such as `work` or `home`.")
    primary: bool = strawberry.field(description="The customer's main address; exactly one of a customer's emails is.")


@strawberry.type(description="A phone number of a customer, in E.164 form (`+4930123456`).")
class PhoneNumber:
    number: str = strawberry.field(description="E.164: `+`, country code and number, no spaces.")
    label: str | None = strawberry.field(description="Free text such as `mobile` or `work`.")
    primary: bool = strawberry.field(description="The customer's main number; exactly one of a customer's phones is.")


@strawberry.type(description="A postal address.")
class PostalAddress:
    label: str | None = strawberry.field(description="Free text such as `home` or `billing`.")
    line1: str = strawberry.field(description="First address line (street and number).")
    line2: str | None = strawberry.field(description="Second address line, if any.")
    postal_code: str | None = strawberry.field(description="Postal or ZIP code, as given.")
    city: str | None = strawberry.field(description="City or town.")
    district: str | None = strawberry.field(
        description="The part of the city the address is in (a Chinese district 区 or county 县, a borough), as given."
    )
    region: str | None = strawberry.field(
        description="The province or state (广东省, Bavaria, California), or another first-level region, as given."
    )
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code.")
    primary: bool = strawberry.field(description="The customer's main address; exactly one of a customer's addresses is.")

    @strawberry.field(
        description="The address as one line, in its country's order. CN, TW, HK, MO, JP and KR addresses are written "
        "largest part first, separated by spaces: country, postal code, province, city, district, lines "
        "(`CN 518057 广东省 深圳市 南山区 科技园路1号`); others smallest first, separated by commas "
        "(`Hauptstraße 1, 10115 Berlin, DE`)."
    )
    def formatted(self) -> str:
        return format_address(
            line1=self.line1, line2=self.line2, postal_code=self.postal_code, city=self.city,
            district=self.district, region=self.region, country=self.country,
        )


@strawberry.type(description="Email-marketing consent: the status, when and how it was given or withdrawn.")
class EmailConsent:
    status: ConsentStatus = strawberry.field(description="UNKNOWN until a status is recorded.")
    at: datetime | None = strawberry.field(
        description="When the current status was given or withdrawn (UTC); null while UNKNOWN."
    )
    source: str | None = strawberry.field(description="How consent was collected, e.g. `signup form`.")


@strawberry.type(description="The record of this entity in another system.")
class ExternalRef:
    system: str = strawberry.field(description="Name of the other system, e.g. `shop`.")
    external_id: str = strawberry.field(description="The record's ID in that system; unique together with `system`.")


@strawberry.type(description="A typed custom field that customers may carry (e.g. `industry`, `incomeBand`).")
class CustomFieldDefinition(Node):
    key: str = strawberry.field(description="Key used in `customFields` and filters.")
    label: str = strawberry.field(description="Name to show users.")
    type: CustomFieldType = strawberry.field(description="Value type; it never changes once the field exists.")
    options: list[str] | None = strawberry.field(description="Allowed values of a SELECT field.")
    required: bool = strawberry.field(
        description="Customers must carry a value: creating a customer without one, or clearing it, gives REQUIRED."
    )
    description: str | None = strawberry.field(description="Free text explaining the field; null if none.")

    @classmethod
    def from_model(cls, m: DefinitionModel) -> CustomFieldDefinition:
        return cls(
            id=encode_global_id("CustomFieldDefinition", m.id),
            key=m.key,
            label=m.label,
            type=m.type,
            options=m.options,
            required=m.required,
            description=m.description,
        )


def _loader(info: Info, name: str, batch: Any, default: Any = list) -> Any:
    ctx: Context = info.context
    return ctx.loader(name, batch, default)


@strawberry.type(description="A person or an organization the business has a relationship with.")
class Customer(OwnedFields, Node):
    """Other domains add their fields (opportunities, orders, tickets, segments, the timeline...)
    through ``crm_register_type_extensions``, like any plugin."""


    pk: strawberry.Private[int]
    organization_pk: strawberry.Private[int | None]
    kind: CustomerKind = strawberry.field(description="PERSON or ORGANIZATION; fixed when the customer is created.")
    display_name: str = strawberry.field(description="First and last name of a person; the name of an organization.")
    first_name: str | None = strawberry.field(description="A person's first name; null for an organization.")
    last_name: str | None = strawberry.field(description="A person's last name; null for an organization.")
    organization_name: str | None = strawberry.field(description="An organization's name; null for a person.")
    job_title: str | None = strawberry.field(description="Job title, free text.")
    source: AcquisitionChannel | None = strawberry.field(description="Acquisition channel.")
    lifecycle_stage: LifecycleStage = strawberry.field(description="Stage of the relationship; new customers start as LEAD.")
    email_consent: EmailConsent = strawberry.field(description="Email-marketing consent.")
    birthday: date | None = strawberry.field(description="Date of birth; null if unknown.")
    gender: Gender | None = strawberry.field(description="Null if not given.")
    locale: str | None = strawberry.field(description="BCP 47 language tag, e.g. `en-GB`.")
    time_zone: str | None = strawberry.field(
        description="IANA time zone name, e.g. `Europe/Berlin`: the customer's local time for automation flows."
    )
    country: str | None = strawberry.field(description="ISO 3166-1 alpha-2 code.")
    region: str | None = strawberry.field(description="State, province or region; from the primary address unless given.")
    city: str | None = strawberry.field(description="City or town; from the primary address unless given.")
    external_ref: ExternalRef | None = strawberry.field(
        description="The customer's record in another system; null if none was given."
    )
    created_at: datetime = strawberry.field(description="When the customer was created (UTC).")
    updated_at: datetime = strawberry.field(
        description="When the customer or its emails, phones, addresses, tags or custom fields last changed (UTC)."
    )
    deleted_at: datetime | None = strawberry.field(description="Set while the customer is deleted (soft delete).")
    version: int = strawberry.field(description="Optimistic-concurrency version; pass it as `expectedVersion`.")

    @strawberry.field(description="Age in whole years, from the birthday.")
    def age(self) -> int | None:
        return service.age(self.birthday)

    @strawberry.field(description="Email addresses in the order given; when there are any, exactly one is primary.")
    async def emails(self, info: Info) -> list[EmailAddress]:
        rows = await _loader(info, "customer.emails", service.emails_for).load(self.pk)
        return [EmailAddress(address=r.address, label=r.label, primary=r.is_primary) for r in rows]

    @strawberry.field(description="The primary email address.")
    async def primary_email(self, info: Info) -> str | None:
        rows = await _loader(info, "customer.emails", service.emails_for).load(self.pk)
        return next((r.address for r in rows if r.is_primary), None)

    @strawberry.field(description="Phone numbers in the order given; when there are any, exactly one is primary.")
    async def phones(self, info: Info) -> list[PhoneNumber]:
        rows = await _loader(info, "customer.phones", service.phones_for).load(self.pk)
        return [PhoneNumber(number=r.number, label=r.label, primary=r.is_primary) for r in rows]

    @strawberry.field(description="The primary phone number (E.164).")
    async def primary_phone(self, info: Info) -> str | None:
        rows = await _loader(info, "customer.phones", service.phones_for).load(self.pk)
        return next((r.number for r in rows if r.is_primary), None)

    @strawberry.field(description="Postal addresses in the order given; when there are any, exactly one is primary.")
    async def addresses(self, info: Info) -> list[PostalAddress]:
        rows = await _loader(info, "customer.addresses", service.addresses_for).load(self.pk)
        return [
            PostalAddress(
                label=r.label, line1=r.line1, line2=r.line2, postal_code=r.postal_code, city=r.city,
                district=r.district, region=r.region, country=r.country, primary=r.is_primary,
            )
            for r in rows
        ]

    @strawberry.field(description="Tags, lower-case, in alphabetical order.")
    async def tags(self, info: Info) -> list[str]:
        return await _loader(info, "customer.tags", service.tags_for).load(self.pk)

    @strawberry.field(description="Custom field values by key, e.g. `{\"industry\": \"Retail\", \"employees\": 40}`.")
    async def custom_fields(self, info: Info) -> JSON:
        return await _loader(info, "customer.custom", service.custom_values_for, dict).load(self.pk)

    @strawberry.field(description="The organization this person belongs to.")
    async def organization(self, info: Info) -> Customer | None:
        return await load_customer(info, self.organization_pk) if self.organization_pk else None

    @strawberry.field(description="The contact people of an organization, by name.")
    async def contacts(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> CustomerConnection:
        args = page_args(first, after, None, None)
        keys = filters.sort_keys([{"field": "DISPLAY_NAME", "direction": "ASC"}])
        return await grouped_connection(
            info, ("contacts", args), _live_customers, CustomerModel, CustomerModel.organization_id, self.pk, keys, args,
            CustomerConnection, Customer.from_model,
        )

    @classmethod
    def from_model(cls, m: CustomerModel) -> Customer:
        return cls(
            **owned(m),
            id=encode_global_id("Customer", m.id),
            pk=m.id,
            organization_pk=m.organization_id,
            kind=m.kind,
            display_name=m.display_name,
            first_name=m.first_name,
            last_name=m.last_name,
            organization_name=m.organization_name,
            job_title=m.job_title,
            source=m.source,
            lifecycle_stage=m.lifecycle_stage,
            email_consent=EmailConsent(status=m.consent_status, at=m.consent_at, source=m.consent_source),
            birthday=m.birthday,
            gender=m.gender,
            locale=m.locale,
            time_zone=m.time_zone,
            country=m.country,
            region=m.region,
            city=m.city,
            external_ref=ExternalRef(system=m.external_system, external_id=m.external_id) if m.external_system else None,
            created_at=m.created_at,
            updated_at=m.updated_at,
            deleted_at=m.deleted_at,
            version=m.version,
        )


def _live_customers() -> Any:
    return sa.select(CustomerModel).where(CustomerModel.deleted_at.is_(None))


@strawberry.type(description="A page of customers.")
class CustomerConnection(Connection[Customer]):
    pass


async def _customers_or_survivors(session: Any, ids: Any) -> dict[int, Any]:
    """``customers_by_ids``, except that the ID of a customer merged into another gives the
    survivor (``mergeCustomers``, crm_graph/dedupe): old IDs kept by clients go on working.
    One more statement only when some IDs were not found."""
    from crm_graph.dedupe.service import survivors_of

    found = await service.customers_by_ids(session, ids)
    missing = [pk for pk in ids if pk not in found]
    survivors = await survivors_of(session, missing) if missing else {}
    if survivors:
        alive = await service.customers_by_ids(session, sorted(set(survivors.values())))
        found.update({old: alive[new] for old, new in survivors.items() if new in alive})
    return found


async def load_customer(info: Info, pk: int) -> Customer | None:
    model = await _loader(info, "customer", _customers_or_survivors, lambda: None).load(pk)
    return Customer.from_model(model) if model is not None else None


async def _load_definitions(info: Info, pks: list[int]) -> list[CustomFieldDefinition | None]:
    async with info.context.db.reader() as session:
        by_key = await service.custom_field_definitions(session)
    by_id = {d.id: d for d in by_key.values()}
    return [CustomFieldDefinition.from_model(by_id[pk]) if pk in by_id else None for pk in pks]


NODES = [
    NodeType("Customer", node_resolver("customer", _customers_or_survivors, Customer.from_model), Customer),
    NodeType("CustomFieldDefinition", _load_definitions, CustomFieldDefinition),
]

# --- filters and ordering -------------------------------------------------------------------

CustomerKindFilter = enum_filter(CustomerKind, "CustomerKindFilter")
LifecycleStageFilter = enum_filter(LifecycleStage, "LifecycleStageFilter")
AcquisitionChannelFilter = enum_filter(AcquisitionChannel, "AcquisitionChannelFilter")
ConsentStatusFilter = enum_filter(ConsentStatus, "ConsentStatusFilter")
GenderFilter = enum_filter(Gender, "GenderFilter")


@strawberry.input(
    description="A condition on a custom field, by key. Values are read by the field's type: "
    "numbers for NUMBER, `YYYY-MM-DD` for DATE, true/false for BOOLEAN, text for TEXT and SELECT."
)
class CustomFieldFilter:
    key: str = strawberry.field(description="Key of the custom field definition.")
    eq: JSON | None = strawberry.field(default=None, description="Equal to this value.")
    neq: JSON | None = strawberry.field(
        default=None, description="Not equal to this value; customers without a value for the field match too."
    )
    in_: list[JSON] | None = strawberry.field(default=None, name="in", description="Equal to one of these values.")
    contains: str | None = strawberry.field(default=None, description="TEXT and SELECT only; ignores case.")
    starts_with: str | None = strawberry.field(default=None, description="TEXT and SELECT only; ignores case.")
    gt: JSON | None = strawberry.field(default=None, description="Greater than this value.")
    gte: JSON | None = strawberry.field(default=None, description="Greater than or equal to this value.")
    lt: JSON | None = strawberry.field(default=None, description="Less than this value.")
    lte: JSON | None = strawberry.field(default=None, description="Less than or equal to this value.")
    is_null: bool | None = strawberry.field(default=None, description="true: the customer has no value for this field.")


@strawberry.input(
    description="Conditions on customers; fields combine with AND, and `and`/`or`/`not` nest. The same language "
    "defines dynamic segments; see docs/api.md and docs/segments.md."
)
class CustomerFilter:
    and_: list[CustomerFilter] | None = strawberry.field(
        default=None, name="and", description="Every one of these filters holds."
    )
    or_: list[CustomerFilter] | None = strawberry.field(
        default=None, name="or", description="At least one of these filters holds."
    )
    not_: CustomerFilter | None = strawberry.field(default=None, name="not", description="This filter does not hold.")
    display_name: StringFilter | None = strawberry.field(default=None, description="Person's full name or organization name.")
    first_name: StringFilter | None = strawberry.field(default=None, description="A person's first name.")
    last_name: StringFilter | None = strawberry.field(default=None, description="A person's last name.")
    job_title: StringFilter | None = strawberry.field(default=None, description="Job title.")
    email: StringFilter | None = strawberry.field(default=None, description="Matches if any of the customer's emails matches.")
    phone: StringFilter | None = strawberry.field(default=None, description="Matches if any phone (E.164) matches.")
    tags: TagsFilter | None = strawberry.field(default=None, description="The customer's tags (compared in lower case).")
    kind: CustomerKindFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="PERSON or ORGANIZATION."
    )
    lifecycle_stage: LifecycleStageFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Stage of the relationship."
    )
    source: AcquisitionChannelFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Acquisition channel."
    )
    consent_status: ConsentStatusFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Email-marketing consent status."
    )
    gender: GenderFilter | None = strawberry.field(default=None, description="Gender, as given.")  # type: ignore[valid-type]
    locale: StringFilter | None = strawberry.field(default=None, description="BCP 47 language tag, e.g. `en-GB`.")
    country: StringFilter | None = strawberry.field(default=None, description="ISO 3166-1 alpha-2 code, e.g. `DE`.")
    region: StringFilter | None = strawberry.field(default=None, description="State, province or region.")
    city: StringFilter | None = strawberry.field(default=None, description="City or town.")
    birthday: DateFilter | None = strawberry.field(default=None, description="Date of birth.")
    created_at: DateTimeFilter | None = strawberry.field(default=None, description="When the customer was created.")
    updated_at: DateTimeFilter | None = strawberry.field(default=None, description="When the customer last changed.")
    custom_fields: list[CustomFieldFilter] | None = strawberry.field(default=None, description="All must hold.")
    age: IntFilter | None = strawberry.field(default=None, description="Age in whole years, from the birthday.")


# Resolvers receive the filter as plain data; other domains and plugins add conditions to it
# (``crm_register_filters``: orders, tickets, rfm, segment...).
plain_filter(CustomerFilter)


class CustomerOrderField(enum.Enum):
    DISPLAY_NAME = "DISPLAY_NAME"
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"


graphql_enum(
    CustomerOrderField,
    "Fields customers can be sorted by.",
    {
        "DISPLAY_NAME": "By display name.",
        "CREATED_AT": "By creation time; without `orderBy` the list is sorted by it, newest first.",
        "UPDATED_AT": "By time of the last change.",
    },
)


CustomerOrder = order_input(CustomerOrderField, "CustomerOrder")


# --- queries ---------------------------------------------------------------------------------


@strawberry.type
class CustomerQuery:
    @access.query("customers", description="One customer by ID; null if unknown or deleted.")
    async def customer(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of a Customer.")]
    ) -> Customer | None:
        return await load_customer(info, decode_global_id(id, "Customer")[1])

    @access.query("customers", description="Customers, newest first unless `orderBy` says otherwise.")
    async def customers(
        self,
        info: Info,
        filter: Annotated[
            CustomerFilter | None, strawberry.argument(description="Only customers matching these conditions.")
        ] = None,
        order_by: list[CustomerOrder] | None = None,
        search: Annotated[str | None, strawberry.argument(description="Matches name, email, or phone digits.")] = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> CustomerConnection:
        ctx: Context = info.context
        args = page_args(first, after, last, before)
        async with ctx.db.reader() as session:
            stmt = await service.customer_select(session, filter=to_plain(filter), search=search)
        keys = filters.sort_keys(to_plain(order_by))
        page = await paginate(ctx.db.reader, stmt, keys, args)
        return CustomerConnection.from_page(page, Customer.from_model)

    @access.query("custom_fields", description="All custom field definitions, by key.")
    async def custom_field_definitions(self, info: Info) -> list[CustomFieldDefinition]:
        async with info.context.db.reader() as session:
            definitions = await service.custom_field_definitions(session)
        return [CustomFieldDefinition.from_model(d) for d in definitions.values()]


# --- mutations -------------------------------------------------------------------------------


@strawberry.input(description="An email address of a customer. No two customers that are not deleted share an address.")
class EmailInput:
    address: str = strawberry.field(
        description="Validated and stored in lower case; INVALID_EMAIL if malformed, DUPLICATE if another customer has it."
    )
    label: str | None = strawberry.field(default=None, description="Free text such as `work` or `home`, at most 50 characters.")
    primary: bool = strawberry.field(
        default=False, description="The main address. At most one may be primary; when none is, the first one becomes it."
    )


@strawberry.input(description="A phone number; without a +country prefix it is read in the customer's country (or the server's default region).")
class PhoneInput:
    number: str = strawberry.field(description="The number as written; stored in E.164 form. INVALID_PHONE if it is not valid.")
    label: str | None = strawberry.field(default=None, description="Free text such as `mobile` or `work`, at most 50 characters.")
    primary: bool = strawberry.field(
        default=False, description="The main number. At most one may be primary; when none is, the first one becomes it."
    )


@strawberry.input(description="A postal address. Line and place fields are trimmed; empty text counts as none.")
class AddressInput:
    line1: str = strawberry.field(description="First address line (street and number); required, at most 200 characters.")
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code.")
    line2: str | None = strawberry.field(default=None, description="Second address line, at most 200 characters.")
    postal_code: str | None = strawberry.field(default=None, description="Postal or ZIP code, at most 20 characters.")
    city: str | None = strawberry.field(default=None, description="City or town, at most 100 characters.")
    district: str | None = strawberry.field(
        default=None, description="The part of the city (a Chinese district 区 or county 县, a borough), at most 100 characters."
    )
    region: str | None = strawberry.field(
        default=None, description="The province or state (广东省, Bavaria), or another first-level region; at most 100 characters."
    )
    label: str | None = strawberry.field(
        default=None, description="Free text such as `home` or `billing`, at most 50 characters."
    )
    primary: bool = strawberry.field(
        default=False, description="The main address. At most one may be primary; when none is, the first one becomes it."
    )


@strawberry.input(description="Email-marketing consent to record.")
class EmailConsentInput:
    status: ConsentStatus = strawberry.field(description="The status to record; UNKNOWN clears the consent time.")
    source: str | None = strawberry.field(default=None, description="How consent was collected, e.g. `signup form`.")
    at: datetime | None = strawberry.field(default=None, description="When (UTC); defaults to now and cannot be in the future.")


@strawberry.input(description="The customer's ID in another system. Creating twice with the same reference returns the first.")
class ExternalRefInput:
    system: str = strawberry.field(description="Name of the other system, at most 64 characters.")
    external_id: str = strawberry.field(description="The customer's ID in that system, at most 200 characters.")


@strawberry.input(
    description="A new customer. A person needs a first or a last name and no organization name; an organization "
    "needs an organization name and no first or last name. Text is trimmed; empty text counts as none."
)
class CreateCustomerInput:
    kind: CustomerKind = strawberry.field(description="PERSON or ORGANIZATION; it cannot be changed later.")
    first_name: str | None = strawberry.field(default=None, description="A person's first name, at most 100 characters.")
    last_name: str | None = strawberry.field(default=None, description="A person's last name, at most 100 characters.")
    organization_name: str | None = strawberry.field(
        default=None, description="An organization's name, at most 200 characters."
    )
    job_title: str | None = strawberry.field(default=None, description="Job title, at most 200 characters.")
    organization_id: strawberry.ID | None = strawberry.field(default=None, description="For a person: the organization they belong to.")
    emails: list[EmailInput] | None = strawberry.field(default=None, description="At most 20 email addresses.")
    phones: list[PhoneInput] | None = strawberry.field(default=None, description="At most 20 phone numbers.")
    addresses: list[AddressInput] | None = strawberry.field(
        default=None, description="At most 20; the primary one fills `country`, `region` and `city` when those are not given."
    )
    tags: list[str] | None = strawberry.field(
        default=None, description="At most 50 tags of at most 64 characters; trimmed, lower-cased, duplicates dropped."
    )
    source: AcquisitionChannel | None = strawberry.field(default=None, description="Acquisition channel.")
    lifecycle_stage: LifecycleStage | None = strawberry.field(default=None, description="Defaults to LEAD.")
    email_consent: EmailConsentInput | None = strawberry.field(default=None, description="Without it the status is UNKNOWN.")
    birthday: date | None = strawberry.field(default=None, description="Date of birth; not in the future nor before 1900.")
    gender: Gender | None = strawberry.field(default=None, description="Gender, as the customer gave it.")
    locale: str | None = strawberry.field(default=None, description="BCP 47 language tag, e.g. `en-GB`.")
    time_zone: str | None = strawberry.field(default=None, description="IANA time zone name, e.g. `Europe/Berlin`.")
    country: str | None = strawberry.field(default=None, description="ISO 3166-1 alpha-2; taken from the primary address when omitted.")
    region: str | None = strawberry.field(default=None, description="State, province or region, at most 100 characters.")
    city: str | None = strawberry.field(default=None, description="City or town, at most 100 characters.")
    custom_fields: JSON | None = strawberry.field(default=None, description="Values by custom field key.")
    external_ref: ExternalRefInput | None = strawberry.field(
        default=None,
        description="The customer's ID in another system: when a customer with this reference exists, "
        "that customer is returned and nothing changes, so an import can be retried.",
    )


@strawberry.input(description="Fields to change. Omitted fields stay as they are; null clears a field; lists are replaced whole.")
class UpdateCustomerInput:
    first_name: str | None = strawberry.field(default=UNSET, description="A person's first name, at most 100 characters.")
    last_name: str | None = strawberry.field(default=UNSET, description="A person's last name, at most 100 characters.")
    organization_name: str | None = strawberry.field(
        default=UNSET, description="An organization's name, at most 200 characters."
    )
    job_title: str | None = strawberry.field(default=UNSET, description="Job title, at most 200 characters.")
    organization_id: strawberry.ID | None = strawberry.field(
        default=UNSET, description="For a person: global ID of the organization they belong to; null detaches them."
    )
    emails: list[EmailInput] | None = strawberry.field(default=UNSET, description="Replaces all email addresses (at most 20).")
    phones: list[PhoneInput] | None = strawberry.field(default=UNSET, description="Replaces all phone numbers (at most 20).")
    addresses: list[AddressInput] | None = strawberry.field(
        default=UNSET, description="Replaces all postal addresses (at most 20)."
    )
    tags: list[str] | None = strawberry.field(
        default=UNSET, description="Replaces all tags: at most 50 of at most 64 characters, lower-cased."
    )
    source: AcquisitionChannel | None = strawberry.field(default=UNSET, description="Acquisition channel.")
    lifecycle_stage: LifecycleStage | None = strawberry.field(
        default=UNSET, description="The new stage; null gives REQUIRED, as a customer always has one."
    )
    email_consent: EmailConsentInput | None = strawberry.field(
        default=UNSET, description="Consent to record; null gives REQUIRED."
    )
    birthday: date | None = strawberry.field(default=UNSET, description="Date of birth; not in the future nor before 1900.")
    gender: Gender | None = strawberry.field(default=UNSET, description="Gender, as the customer gave it.")
    locale: str | None = strawberry.field(default=UNSET, description="BCP 47 language tag, e.g. `en-GB`.")
    time_zone: str | None = strawberry.field(default=UNSET, description="IANA time zone name, e.g. `Europe/Berlin`.")
    country: str | None = strawberry.field(default=UNSET, description="ISO 3166-1 alpha-2 code.")
    region: str | None = strawberry.field(default=UNSET, description="State, province or region, at most 100 characters.")
    city: str | None = strawberry.field(default=UNSET, description="City or town, at most 100 characters.")
    custom_fields: JSON | None = strawberry.field(default=UNSET, description="Only the keys given change; null clears a value.")


@strawberry.input(description="A new custom field; a key that exists already gives DUPLICATE.")
class CreateCustomFieldDefinitionInput:
    key: str = strawberry.field(description="camelCase identifier, e.g. `incomeBand`.")
    label: str = strawberry.field(description="Name to show users; required, at most 200 characters.")
    type: CustomFieldType = strawberry.field(description="Value type; it cannot be changed later.")
    options: list[str] | None = strawberry.field(default=None, description="SELECT only: the allowed values.")
    required: bool = strawberry.field(
        default=False,
        description="Customers must carry a value: creating a customer without one, or clearing it, gives REQUIRED. "
        "Existing customers are not checked.",
    )
    description: str | None = strawberry.field(default=None, description="Free text explaining the field.")


@strawberry.input(description="Changes to a custom field. Its key and type never change; options can only be added.")
class UpdateCustomFieldDefinitionInput:
    label: str | None = strawberry.field(default=UNSET, description="Name to show users; it cannot be cleared.")
    description: str | None = strawberry.field(default=UNSET, description="Free text explaining the field; null clears it.")
    required: bool | None = strawberry.field(
        default=UNSET, description="Whether customers must carry a value; null leaves it as it is."
    )
    add_options: list[str] | None = strawberry.field(default=UNSET, description="SELECT only: options to add.")


@strawberry.type(description="The outcome of a customer mutation.")
class CustomerPayload:
    customer: Customer | None = strawberry.field(description="The customer as stored; null when there are errors.")
    errors: list[UserError]


@strawberry.type(description="The outcome of one item of a batch.")
class CustomerBatchItem:
    index: int = strawberry.field(description="Position of the item in `inputs`.")
    customer: Customer | None = strawberry.field(
        description="The created customer, or the existing one its externalRef matched; null when the item failed."
    )
    errors: list[UserError] = strawberry.field(
        description="Why the item failed; empty when it succeeded. Field paths start with `inputs.<index>`."
    )


@strawberry.type(description="The outcome of a batch import of customers.")
class CreateCustomersPayload:
    results: list[CustomerBatchItem] = strawberry.field(description="One result per item of `inputs`, in the same order.")
    created_count: int = strawberry.field(description="Items that succeeded (including ones matched by externalRef).")
    errors: list[UserError] = strawberry.field(description="Errors about the batch as a whole (e.g. too many items).")


@strawberry.type(description="The outcome of a custom field mutation.")
class CustomFieldDefinitionPayload:
    custom_field_definition: CustomFieldDefinition | None = strawberry.field(
        description="The definition as stored (for a delete, as it was); null when there are errors."
    )
    errors: list[UserError]


def _customer_data(input: Any, *, keep_null: bool) -> dict[str, Any]:
    data = to_plain(input, keep_null=keep_null)
    if data.get("organizationId") is not None:
        data["organizationId"] = decode_global_id(data["organizationId"], "Customer")[1]
    return data


def _config(info: Info) -> service.ServiceConfig:
    return service.ServiceConfig(default_phone_region=info.context.settings.default_phone_region)


def _definition_payload(result: tuple[Any, list[UserError]]) -> CustomFieldDefinitionPayload:
    model, errors = result
    return CustomFieldDefinitionPayload(
        custom_field_definition=CustomFieldDefinition.from_model(model) if model is not None else None, errors=errors
    )


def _customer_payload(result: tuple[Any, list[UserError]]) -> CustomerPayload:
    model, errors = result
    return CustomerPayload(customer=Customer.from_model(model) if model is not None else None, errors=errors)


@strawberry.type
class CustomerMutation:
    @access.mutation("customers", "create", description="Create a person or an organization.")
    async def create_customer(
        self, info: Info, input: Annotated[CreateCustomerInput, strawberry.argument(description="The new customer.")]
    ) -> CustomerPayload:
        data, actor, config = _customer_data(input, keep_null=False), info.context.actor, _config(info)
        return _customer_payload(
            await unit_of_work(info, lambda s: service.create_customer(s, actor=actor, data=data, config=config))
        )

    @access.mutation("customers", "update", description="Change a customer. With `expectedVersion`, a stale version gives VERSION_CONFLICT and changes nothing.")
    async def update_customer(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the Customer.")],
        input: Annotated[UpdateCustomerInput, strawberry.argument(description="The fields to change.")],
        expected_version: int | None = None,
    ) -> CustomerPayload:
        pk = decode_global_id(id, "Customer")[1]
        data, actor, config = _customer_data(input, keep_null=True), info.context.actor, _config(info)
        return _customer_payload(
            await unit_of_work(
                info,
                lambda s: service.update_customer(
                    s, actor=actor, customer_id=pk, data=data, expected_version=expected_version, config=config
                ),
            )
        )

    @access.mutation("customers", "delete", description="Soft-delete a customer: it leaves lists and relations until restored.")
    async def delete_customer(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the Customer.")]
    ) -> CustomerPayload:
        pk, actor = decode_global_id(id, "Customer")[1], info.context.actor
        return _customer_payload(await unit_of_work(info, lambda s: service.delete_customer(s, actor=actor, customer_id=pk)))

    # Restoring undoes a delete, so it needs what deleting needs.
    @access.mutation("customers", "delete", description="Bring back a soft-deleted customer.")
    async def restore_customer(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="Global ID of the deleted Customer. An erased customer gives INVALID_STATE; one whose "
                "email address another customer now uses gives DUPLICATE. Restoring a live customer changes nothing."
            ),
        ],
    ) -> CustomerPayload:
        pk, actor = decode_global_id(id, "Customer")[1], info.context.actor
        return _customer_payload(await unit_of_work(info, lambda s: service.restore_customer(s, actor=actor, customer_id=pk)))

    @access.mutation("customers", "create", description="Create up to 100 customers at once (an import); each item succeeds or fails on its own.")
    async def create_customers(
        self,
        info: Info,
        inputs: Annotated[
            list[CreateCustomerInput],
            strawberry.argument(description="At most 100 customers; more gives TOO_MANY and creates none."),
        ],
    ) -> CreateCustomersPayload:
        items = [_customer_data(i, keep_null=False) for i in inputs]
        actor, config = info.context.actor, _config(info)
        results, errors = await unit_of_work(
            info, lambda s: service.create_customers(s, actor=actor, items=items, config=config)
        )
        out = [
            CustomerBatchItem(
                index=r.index,
                customer=Customer.from_model(r.customer) if r.customer is not None else None,
                errors=[UserError.from_field_error(e.prefixed(f"inputs.{r.index}")) for e in r.errors],
            )
            for r in results or []
        ]
        return CreateCustomersPayload(results=out, created_count=sum(1 for r in out if r.customer), errors=errors)

    @access.mutation("custom_fields", "create", description="Define a custom field that customers can carry and lists can filter on.")
    async def create_custom_field_definition(
        self,
        info: Info,
        input: Annotated[CreateCustomFieldDefinitionInput, strawberry.argument(description="The new custom field.")],
    ) -> CustomFieldDefinitionPayload:
        data, actor = to_plain(input), info.context.actor
        return _definition_payload(await unit_of_work(
            info, lambda s: service.create_custom_field_definition(s, actor=actor, data=data)))

    @access.mutation("custom_fields", "update", description="Change a custom field's label, description or required flag, or add SELECT options.")
    async def update_custom_field_definition(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the CustomFieldDefinition.")],
        input: Annotated[UpdateCustomFieldDefinitionInput, strawberry.argument(description="The changes.")],
    ) -> CustomFieldDefinitionPayload:
        pk, data, actor = decode_global_id(id, "CustomFieldDefinition")[1], to_plain(input, keep_null=True), info.context.actor
        return _definition_payload(await unit_of_work(
            info, lambda s: service.update_custom_field_definition(s, actor=actor, definition_id=pk, data=data)))

    @access.mutation("custom_fields", "delete", description="Remove a custom field and every customer's value of it. Segments filtering on it become invalid.")
    async def delete_custom_field_definition(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the CustomFieldDefinition.")],
    ) -> CustomFieldDefinitionPayload:
        pk, actor = decode_global_id(id, "CustomFieldDefinition")[1], info.context.actor
        return _definition_payload(await unit_of_work(
            info, lambda s: service.delete_custom_field_definition(s, actor=actor, definition_id=pk)))



SCHEMA = SchemaPart(query=CustomerQuery, mutation=CustomerMutation, nodes=NODES)
