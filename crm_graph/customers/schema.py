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

strawberry.enum(CustomerKind, description="A customer is a PERSON or an ORGANIZATION (which lists its contact people).")
strawberry.enum(AcquisitionChannel, description="The channel a customer first came from.")
strawberry.enum(
    LifecycleStage,
    description="Stage of the relationship: a LEAD, then EXPLORATION (trial orders), FORMATION (volume grows), "
    "STABILITY (highest volume, lowest cost), DECLINE (volume falls), CHURNED.",
)
strawberry.enum(ConsentStatus, description="Whether the customer agreed to receive marketing email.")
strawberry.enum(Gender)
strawberry.enum(CustomFieldType, description="Value type of a custom field.")


@strawberry.type(description="An email address of a customer.")
class EmailAddress:
    address: str = strawberry.field(description="Validated and lower-cased.")
    label: str | None = strawberry.field(description="Free text such as `work` or `home`.")
    primary: bool


@strawberry.type(description="A phone number of a customer, in E.164 form (`+4930123456`).")
class PhoneNumber:
    number: str
    label: str | None
    primary: bool


@strawberry.type(description="A postal address.")
class PostalAddress:
    label: str | None
    line1: str
    line2: str | None
    postal_code: str | None
    city: str | None
    region: str | None
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code.")
    primary: bool


@strawberry.type(description="Email-marketing consent: the status, when and how it was given or withdrawn.")
class EmailConsent:
    status: ConsentStatus
    at: datetime | None
    source: str | None = strawberry.field(description="How consent was collected, e.g. `signup form`.")


@strawberry.type(description="The record of this entity in another system.")
class ExternalRef:
    system: str
    external_id: str


@strawberry.type(description="A typed custom field that customers may carry (e.g. `industry`, `incomeBand`).")
class CustomFieldDefinition(Node):
    key: str = strawberry.field(description="Key used in `customFields` and filters.")
    label: str
    type: CustomFieldType
    options: list[str] | None = strawberry.field(description="Allowed values of a SELECT field.")
    required: bool
    description: str | None

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
    kind: CustomerKind
    display_name: str = strawberry.field(description="First and last name of a person; the name of an organization.")
    first_name: str | None
    last_name: str | None
    organization_name: str | None
    job_title: str | None
    source: AcquisitionChannel | None = strawberry.field(description="Acquisition channel.")
    lifecycle_stage: LifecycleStage
    email_consent: EmailConsent
    birthday: date | None
    gender: Gender | None
    locale: str | None = strawberry.field(description="BCP 47 language tag, e.g. `en-GB`.")
    time_zone: str | None = strawberry.field(
        description="IANA time zone name, e.g. `Europe/Berlin`: the customer's local time for automation flows."
    )
    country: str | None = strawberry.field(description="ISO 3166-1 alpha-2 code.")
    region: str | None
    city: str | None
    external_ref: ExternalRef | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = strawberry.field(description="Set while the customer is deleted (soft delete).")
    version: int = strawberry.field(description="Optimistic-concurrency version; pass it as `expectedVersion`.")

    @strawberry.field(description="Age in whole years, from the birthday.")
    def age(self) -> int | None:
        return service.age(self.birthday)

    @strawberry.field
    async def emails(self, info: Info) -> list[EmailAddress]:
        rows = await _loader(info, "customer.emails", service.emails_for).load(self.pk)
        return [EmailAddress(address=r.address, label=r.label, primary=r.is_primary) for r in rows]

    @strawberry.field(description="The primary email address.")
    async def primary_email(self, info: Info) -> str | None:
        rows = await _loader(info, "customer.emails", service.emails_for).load(self.pk)
        return next((r.address for r in rows if r.is_primary), None)

    @strawberry.field
    async def phones(self, info: Info) -> list[PhoneNumber]:
        rows = await _loader(info, "customer.phones", service.phones_for).load(self.pk)
        return [PhoneNumber(number=r.number, label=r.label, primary=r.is_primary) for r in rows]

    @strawberry.field(description="The primary phone number (E.164).")
    async def primary_phone(self, info: Info) -> str | None:
        rows = await _loader(info, "customer.phones", service.phones_for).load(self.pk)
        return next((r.number for r in rows if r.is_primary), None)

    @strawberry.field
    async def addresses(self, info: Info) -> list[PostalAddress]:
        rows = await _loader(info, "customer.addresses", service.addresses_for).load(self.pk)
        return [
            PostalAddress(
                label=r.label, line1=r.line1, line2=r.line2, postal_code=r.postal_code, city=r.city,
                region=r.region, country=r.country, primary=r.is_primary,
            )
            for r in rows
        ]

    @strawberry.field(description="Tags, lower-case.")
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


async def load_customer(info: Info, pk: int) -> Customer | None:
    model = await _loader(info, "customer", service.customers_by_ids, lambda: None).load(pk)
    return Customer.from_model(model) if model is not None else None


async def _load_definitions(info: Info, pks: list[int]) -> list[CustomFieldDefinition | None]:
    async with info.context.db.reader() as session:
        by_key = await service.custom_field_definitions(session)
    by_id = {d.id: d for d in by_key.values()}
    return [CustomFieldDefinition.from_model(by_id[pk]) if pk in by_id else None for pk in pks]


NODES = [
    NodeType("Customer", node_resolver("customer", service.customers_by_ids, Customer.from_model), Customer),
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
    key: str
    eq: JSON | None = None
    neq: JSON | None = None
    in_: list[JSON] | None = strawberry.field(default=None, name="in")
    contains: str | None = strawberry.field(default=None, description="TEXT and SELECT only; ignores case.")
    starts_with: str | None = strawberry.field(default=None, description="TEXT and SELECT only; ignores case.")
    gt: JSON | None = None
    gte: JSON | None = None
    lt: JSON | None = None
    lte: JSON | None = None
    is_null: bool | None = strawberry.field(default=None, description="true: the customer has no value for this field.")


@strawberry.input(
    description="Conditions on customers; fields combine with AND, and `and`/`or`/`not` nest. The same language "
    "defines dynamic segments; see docs/api.md and docs/segments.md."
)
class CustomerFilter:
    and_: list[CustomerFilter] | None = strawberry.field(default=None, name="and")
    or_: list[CustomerFilter] | None = strawberry.field(default=None, name="or")
    not_: CustomerFilter | None = strawberry.field(default=None, name="not")
    display_name: StringFilter | None = None
    first_name: StringFilter | None = None
    last_name: StringFilter | None = None
    job_title: StringFilter | None = None
    email: StringFilter | None = strawberry.field(default=None, description="Matches if any of the customer's emails matches.")
    phone: StringFilter | None = strawberry.field(default=None, description="Matches if any phone (E.164) matches.")
    tags: TagsFilter | None = None
    kind: CustomerKindFilter | None = None  # type: ignore[valid-type]
    lifecycle_stage: LifecycleStageFilter | None = None  # type: ignore[valid-type]
    source: AcquisitionChannelFilter | None = None  # type: ignore[valid-type]
    consent_status: ConsentStatusFilter | None = None  # type: ignore[valid-type]
    gender: GenderFilter | None = None  # type: ignore[valid-type]
    locale: StringFilter | None = None
    country: StringFilter | None = None
    region: StringFilter | None = None
    city: StringFilter | None = None
    birthday: DateFilter | None = None
    created_at: DateTimeFilter | None = None
    updated_at: DateTimeFilter | None = None
    custom_fields: list[CustomFieldFilter] | None = strawberry.field(default=None, description="All must hold.")
    age: IntFilter | None = strawberry.field(default=None, description="Age in whole years, from the birthday.")


# Resolvers receive the filter as plain data; other domains and plugins add conditions to it
# (``crm_register_filters``: orders, tickets, rfm, segment...).
plain_filter(CustomerFilter)


@strawberry.enum(description="Fields customers can be sorted by.")
class CustomerOrderField(enum.Enum):
    DISPLAY_NAME = "DISPLAY_NAME"
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"


CustomerOrder = order_input(CustomerOrderField, "CustomerOrder")


# --- queries ---------------------------------------------------------------------------------


@strawberry.type
class CustomerQuery:
    @access.query("customers", description="One customer by ID; null if unknown or deleted.")
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        return await load_customer(info, decode_global_id(id, "Customer")[1])

    @access.query("customers", description="Customers, newest first unless `orderBy` says otherwise.")
    async def customers(
        self,
        info: Info,
        filter: CustomerFilter | None = None,
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


@strawberry.input
class EmailInput:
    address: str
    label: str | None = None
    primary: bool = False


@strawberry.input(description="A phone number; without a +country prefix it is read in the customer's country (or the server's default region).")
class PhoneInput:
    number: str
    label: str | None = None
    primary: bool = False


@strawberry.input
class AddressInput:
    line1: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code.")
    line2: str | None = None
    postal_code: str | None = None
    city: str | None = None
    region: str | None = None
    label: str | None = None
    primary: bool = False


@strawberry.input
class EmailConsentInput:
    status: ConsentStatus
    source: str | None = strawberry.field(default=None, description="How consent was collected, e.g. `signup form`.")
    at: datetime | None = strawberry.field(default=None, description="When; defaults to now.")


@strawberry.input(description="The customer's ID in another system. Creating twice with the same reference returns the first.")
class ExternalRefInput:
    system: str
    external_id: str


@strawberry.input
class CreateCustomerInput:
    kind: CustomerKind
    first_name: str | None = None
    last_name: str | None = None
    organization_name: str | None = None
    job_title: str | None = None
    organization_id: strawberry.ID | None = strawberry.field(default=None, description="For a person: the organization they belong to.")
    emails: list[EmailInput] | None = None
    phones: list[PhoneInput] | None = None
    addresses: list[AddressInput] | None = None
    tags: list[str] | None = None
    source: AcquisitionChannel | None = None
    lifecycle_stage: LifecycleStage | None = strawberry.field(default=None, description="Defaults to LEAD.")
    email_consent: EmailConsentInput | None = None
    birthday: date | None = None
    gender: Gender | None = None
    locale: str | None = None
    time_zone: str | None = strawberry.field(default=None, description="IANA time zone name, e.g. `Europe/Berlin`.")
    country: str | None = strawberry.field(default=None, description="ISO 3166-1 alpha-2; taken from the primary address when omitted.")
    region: str | None = None
    city: str | None = None
    custom_fields: JSON | None = strawberry.field(default=None, description="Values by custom field key.")
    external_ref: ExternalRefInput | None = None


@strawberry.input(description="Fields to change. Omitted fields stay as they are; null clears a field; lists are replaced whole.")
class UpdateCustomerInput:
    first_name: str | None = UNSET
    last_name: str | None = UNSET
    organization_name: str | None = UNSET
    job_title: str | None = UNSET
    organization_id: strawberry.ID | None = UNSET
    emails: list[EmailInput] | None = UNSET
    phones: list[PhoneInput] | None = UNSET
    addresses: list[AddressInput] | None = UNSET
    tags: list[str] | None = UNSET
    source: AcquisitionChannel | None = UNSET
    lifecycle_stage: LifecycleStage | None = UNSET
    email_consent: EmailConsentInput | None = UNSET
    birthday: date | None = UNSET
    gender: Gender | None = UNSET
    locale: str | None = UNSET
    time_zone: str | None = UNSET
    country: str | None = UNSET
    region: str | None = UNSET
    city: str | None = UNSET
    custom_fields: JSON | None = strawberry.field(default=UNSET, description="Only the keys given change; null clears a value.")


@strawberry.input
class CreateCustomFieldDefinitionInput:
    key: str = strawberry.field(description="camelCase identifier, e.g. `incomeBand`.")
    label: str
    type: CustomFieldType
    options: list[str] | None = strawberry.field(default=None, description="SELECT only: the allowed values.")
    required: bool = False
    description: str | None = None


@strawberry.input(description="Changes to a custom field. Its key and type never change; options can only be added.")
class UpdateCustomFieldDefinitionInput:
    label: str | None = UNSET
    description: str | None = UNSET
    required: bool | None = UNSET
    add_options: list[str] | None = strawberry.field(default=UNSET, description="SELECT only: options to add.")


@strawberry.type
class CustomerPayload:
    customer: Customer | None
    errors: list[UserError]


@strawberry.type(description="The outcome of one item of a batch.")
class CustomerBatchItem:
    index: int = strawberry.field(description="Position of the item in `inputs`.")
    customer: Customer | None
    errors: list[UserError]


@strawberry.type
class CreateCustomersPayload:
    results: list[CustomerBatchItem]
    created_count: int = strawberry.field(description="Items that succeeded (including ones matched by externalRef).")
    errors: list[UserError] = strawberry.field(description="Errors about the batch as a whole (e.g. too many items).")


@strawberry.type
class CustomFieldDefinitionPayload:
    custom_field_definition: CustomFieldDefinition | None
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
    async def create_customer(self, info: Info, input: CreateCustomerInput) -> CustomerPayload:
        data, actor, config = _customer_data(input, keep_null=False), info.context.actor, _config(info)
        return _customer_payload(
            await unit_of_work(info, lambda s: service.create_customer(s, actor=actor, data=data, config=config))
        )

    @access.mutation("customers", "update", description="Change a customer. With `expectedVersion`, a stale version gives VERSION_CONFLICT and changes nothing.")
    async def update_customer(
        self, info: Info, id: strawberry.ID, input: UpdateCustomerInput, expected_version: int | None = None
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
    async def delete_customer(self, info: Info, id: strawberry.ID) -> CustomerPayload:
        pk, actor = decode_global_id(id, "Customer")[1], info.context.actor
        return _customer_payload(await unit_of_work(info, lambda s: service.delete_customer(s, actor=actor, customer_id=pk)))

    # Restoring undoes a delete, so it needs what deleting needs.
    @access.mutation("customers", "delete", description="Bring back a soft-deleted customer.")
    async def restore_customer(self, info: Info, id: strawberry.ID) -> CustomerPayload:
        pk, actor = decode_global_id(id, "Customer")[1], info.context.actor
        return _customer_payload(await unit_of_work(info, lambda s: service.restore_customer(s, actor=actor, customer_id=pk)))

    @access.mutation("customers", "create", description="Create up to 100 customers at once (an import); each item succeeds or fails on its own.")
    async def create_customers(self, info: Info, inputs: list[CreateCustomerInput]) -> CreateCustomersPayload:
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
        self, info: Info, input: CreateCustomFieldDefinitionInput
    ) -> CustomFieldDefinitionPayload:
        data, actor = to_plain(input), info.context.actor
        return _definition_payload(await unit_of_work(
            info, lambda s: service.create_custom_field_definition(s, actor=actor, data=data)))

    @access.mutation("custom_fields", "update", description="Change a custom field's label, description or required flag, or add SELECT options.")
    async def update_custom_field_definition(
        self, info: Info, id: strawberry.ID, input: UpdateCustomFieldDefinitionInput
    ) -> CustomFieldDefinitionPayload:
        pk, data, actor = decode_global_id(id, "CustomFieldDefinition")[1], to_plain(input, keep_null=True), info.context.actor
        return _definition_payload(await unit_of_work(
            info, lambda s: service.update_custom_field_definition(s, actor=actor, definition_id=pk, data=data)))

    @access.mutation("custom_fields", "delete", description="Remove a custom field and every customer's value of it. Segments filtering on it become invalid.")
    async def delete_custom_field_definition(self, info: Info, id: strawberry.ID) -> CustomFieldDefinitionPayload:
        pk, actor = decode_global_id(id, "CustomFieldDefinition")[1], info.context.actor
        return _definition_payload(await unit_of_work(
            info, lambda s: service.delete_custom_field_definition(s, actor=actor, definition_id=pk)))



SCHEMA = SchemaPart(query=CustomerQuery, mutation=CustomerMutation, nodes=NODES)
