"""Customer rules: create, update, delete and restore customers; custom field definitions.

Inputs are plain mappings shaped like the GraphQL inputs (camelCase keys, enums by name). In an
update, a key that is present sets the value (``None`` clears it) and an absent key leaves it
alone; list fields (emails, phones, addresses, tags) are replaced whole when present.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_graph.core import errors as codes
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, NotFound, ValidationFailed, VersionConflict
from crm_graph.core.events import record_event
from crm_graph.core.filters import compile_filter
from crm_graph.core.hooks import validate_with_plugins
from crm_graph.customers import validation as v
from crm_graph.customers.filters import customer_filter_spec, search_condition
from crm_graph.customers.models import (
    AcquisitionChannel,
    ConsentStatus,
    CustomFieldDefinition,
    CustomFieldType,
    Customer,
    CustomerAddress,
    CustomerEmail,
    CustomerFieldValue,
    CustomerKind,
    CustomerPhone,
    CustomerTag,
    Gender,
    LifecycleStage,
)

MAX_BATCH = 100
MAX_CONTACT_POINTS = 20

_TEXT_LIMITS = {
    "firstName": ("first_name", 100),
    "lastName": ("last_name", 100),
    "organizationName": ("organization_name", 200),
    "jobTitle": ("job_title", 200),
    "region": ("region", 100),
    "city": ("city", 100),
}
_ENUMS: dict[str, tuple[str, Any]] = {
    "source": ("source", AcquisitionChannel),
    "lifecycleStage": ("lifecycle_stage", LifecycleStage),
    "gender": ("gender", Gender),
}


@dataclass(frozen=True)
class ServiceConfig:
    """What the customer rules need from settings."""

    default_phone_region: str = "US"


def _enum_value(enum_type: Any, value: Any) -> Any:
    if value is None or isinstance(value, enum_type):
        return value
    try:
        return enum_type[value]
    except KeyError:
        raise v.InvalidValue(f"{value!r} is not one of {', '.join(m.name for m in enum_type)}.") from None


# --- reading -------------------------------------------------------------------------------


async def get_customer(session: AsyncSession, customer_id: int, *, include_deleted: bool = False) -> Customer | None:
    customer = await session.get(Customer, customer_id)
    if customer is None or (customer.deleted_at is not None and not include_deleted):
        return None
    return customer


async def customers_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Customer]:
    rows = await session.scalars(sa.select(Customer).where(Customer.id.in_(ids), Customer.deleted_at.is_(None)))
    return {c.id: c for c in rows}


async def custom_field_definitions(session: AsyncSession) -> dict[str, CustomFieldDefinition]:
    rows = await session.scalars(sa.select(CustomFieldDefinition).order_by(CustomFieldDefinition.key))
    return {d.key: d for d in rows}


async def customer_select(
    session: AsyncSession, *, filter: Mapping[str, Any] | None = None, search: str | None = None
) -> sa.Select[tuple[Customer]]:
    """The (unordered) select of live customers matching ``filter`` and ``search``.

    Raises ``FilterError`` for a filter that cannot be compiled.
    """
    definitions = await custom_field_definitions(session) if filter and _mentions_custom_fields(filter) else {}
    stmt = sa.select(Customer).where(Customer.deleted_at.is_(None))
    if filter:
        stmt = stmt.where(compile_filter(customer_filter_spec(definitions), filter))
    if search:
        stmt = stmt.where(search_condition(search))
    return stmt


def _mentions_custom_fields(data: Any) -> bool:
    if isinstance(data, Mapping):
        return "customFields" in data or any(_mentions_custom_fields(x) for x in data.values())
    if isinstance(data, list):
        return any(_mentions_custom_fields(x) for x in data)
    return False


async def _grouped(session: AsyncSession, model: Any, ids: Sequence[int], order: Sequence[Any]) -> dict[int, list[Any]]:
    rows = await session.scalars(sa.select(model).where(model.customer_id.in_(ids)).order_by(model.customer_id, *order))
    out: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        out[row.customer_id].append(row)
    return out


async def emails_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[CustomerEmail]]:
    return await _grouped(session, CustomerEmail, ids, [CustomerEmail.position])


async def phones_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[CustomerPhone]]:
    return await _grouped(session, CustomerPhone, ids, [CustomerPhone.position])


async def addresses_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[CustomerAddress]]:
    return await _grouped(session, CustomerAddress, ids, [CustomerAddress.position])


async def tags_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[str]]:
    rows = await _grouped(session, CustomerTag, ids, [CustomerTag.tag])
    return {k: [t.tag for t in tags] for k, tags in rows.items()}


async def custom_values_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    stmt = (
        sa.select(CustomerFieldValue, CustomFieldDefinition)
        .join(CustomFieldDefinition, CustomFieldDefinition.id == CustomerFieldValue.definition_id)
        .where(CustomerFieldValue.customer_id.in_(ids))
        .order_by(CustomFieldDefinition.key)
    )
    out: dict[int, dict[str, Any]] = defaultdict(dict)
    for value, definition in (await session.execute(stmt)).all():
        out[value.customer_id][definition.key] = v.stored_custom_value(definition, value)
    return out


async def contact_counts(session: AsyncSession, ids: Sequence[int]) -> dict[int, int]:
    stmt = (
        sa.select(Customer.organization_id, sa.func.count())
        .where(Customer.organization_id.in_(ids), Customer.deleted_at.is_(None))
        .group_by(Customer.organization_id)
    )
    return {org: count for org, count in (await session.execute(stmt)).all()}


# --- writing -------------------------------------------------------------------------------


async def create_customer(
    session: AsyncSession, *, actor: Actor, data: Mapping[str, Any], config: ServiceConfig
) -> Customer:
    """Create a customer. With an ``externalRef`` that already exists, return that customer instead."""
    ref = data.get("externalRef")
    if ref:
        existing = await _by_external_ref(session, ref)
        if existing is not None:
            return existing
    errors = ErrorCollector()
    kind = data.get("kind")
    try:
        kind = _enum_value(CustomerKind, kind)
    except v.InvalidValue as exc:
        errors.add("kind", codes.INVALID_VALUE, str(exc))
    if kind is None and not errors:
        errors.add("kind", codes.REQUIRED, "Say whether the customer is a PERSON or an ORGANIZATION.")
    errors.raise_if_any()
    now = utcnow()
    customer = Customer(
        kind=kind,
        lifecycle_stage=LifecycleStage.LEAD,
        consent_status=ConsentStatus.UNKNOWN,
        display_name="",
        version=1,
        created_at=now,
        updated_at=now,
    )
    children = await _apply(session, customer, data, errors, config=config, creating=True)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="customer", data=data, actor=actor)
    session.add(customer)
    await session.flush()
    await _write_children(session, customer, children)
    record_event(
        session,
        type="customer.created",
        entity_type="Customer",
        entity_id=customer.id,
        actor=actor,
        payload=await customer_payload(session, customer),
    )
    return customer


async def update_customer(
    session: AsyncSession,
    *,
    actor: Actor,
    customer_id: int,
    data: Mapping[str, Any],
    expected_version: int | None,
    config: ServiceConfig,
) -> Customer:
    customer = await get_customer(session, customer_id)
    if customer is None:
        raise NotFound("Customer")
    if expected_version is not None and expected_version != customer.version:
        raise VersionConflict(expected_version, customer.version)
    errors = ErrorCollector()
    before = await customer_payload(session, customer)
    children = await _apply(session, customer, data, errors, config=config, creating=False)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="customer", data={**data, "id": customer_id}, actor=actor)
    customer.updated_at = utcnow()  # always an UPDATE, so the version moves even for child-only edits
    try:
        await _write_children(session, customer, children)  # flushes the customer row too
    except StaleDataError:
        fresh = await session.scalar(sa.select(Customer.version).where(Customer.id == customer_id))
        raise VersionConflict(expected_version or customer.version, fresh or 0) from None
    after = await customer_payload(session, customer)
    changed = sorted(k for k in after if after[k] != before.get(k) and k not in ("updatedAt", "version"))
    record_event(
        session,
        type="customer.updated",
        entity_type="Customer",
        entity_id=customer.id,
        actor=actor,
        payload=after,
        changes={"fields": changed, "before": {k: before.get(k) for k in changed}},
    )
    return customer


async def delete_customer(session: AsyncSession, *, actor: Actor, customer_id: int) -> Customer:
    """Soft delete: the customer leaves every list and relation until restored."""
    customer = await get_customer(session, customer_id)
    if customer is None:
        raise NotFound("Customer")
    customer.deleted_at = utcnow()
    customer.updated_at = customer.deleted_at
    await session.flush()
    record_event(session, type="customer.deleted", entity_type="Customer", entity_id=customer.id, actor=actor,
                 payload=await customer_payload(session, customer))
    return customer


async def restore_customer(session: AsyncSession, *, actor: Actor, customer_id: int) -> Customer:
    customer = await get_customer(session, customer_id, include_deleted=True)
    if customer is None:
        raise NotFound("Customer")
    if customer.deleted_at is None:
        return customer
    errors = ErrorCollector()
    emails = [e.address for e in (await emails_for(session, [customer.id])).get(customer.id, [])]
    await _check_email_duplicates(session, emails, customer.id, errors)
    if errors:
        raise ValidationFailed(
            [codes.FieldError("id", codes.DUPLICATE, "Another customer now uses this customer's email address.")]
        )
    customer.deleted_at = None
    customer.updated_at = utcnow()
    await session.flush()
    record_event(session, type="customer.restored", entity_type="Customer", entity_id=customer.id, actor=actor,
                 payload=await customer_payload(session, customer))
    return customer


@dataclass
class BatchResult:
    index: int
    customer: Customer | None
    errors: list[codes.FieldError]


async def create_customers(
    session: AsyncSession, *, actor: Actor, items: Sequence[Mapping[str, Any]], config: ServiceConfig
) -> list[BatchResult]:
    """Create up to 100 customers in one transaction; each item succeeds or fails on its own."""
    if len(items) > MAX_BATCH:
        raise ValidationFailed(
            [codes.FieldError("inputs", codes.TOO_MANY, f"At most {MAX_BATCH} customers per call; split the batch.")]
        )
    results = []
    for index, item in enumerate(items):
        try:
            async with session.begin_nested():
                customer = await create_customer(session, actor=actor, data=item, config=config)
            results.append(BatchResult(index, customer, []))
        except ValidationFailed as exc:
            results.append(BatchResult(index, None, exc.errors))
    return results


# --- validation and assignment ------------------------------------------------------------


@dataclass
class _Children:
    emails: list[dict[str, Any]] | None = None
    phones: list[dict[str, Any]] | None = None
    addresses: list[dict[str, Any]] | None = None
    tags: list[str] | None = None
    custom: dict[CustomFieldDefinition, dict[str, Any] | None] | None = None


async def _apply(
    session: AsyncSession,
    customer: Customer,
    data: Mapping[str, Any],
    errors: ErrorCollector,
    *,
    config: ServiceConfig,
    creating: bool,
) -> _Children:
    """Validate ``data`` and copy scalar fields onto ``customer``; return the child rows to write."""
    for key, (attr, limit) in _TEXT_LIMITS.items():
        if key in data:
            try:
                setattr(customer, attr, v.text(data[key], limit))
            except v.InvalidValue as exc:
                errors.add(key, codes.INVALID_VALUE, str(exc))
    for key, (attr, enum_type) in _ENUMS.items():
        if key in data:
            if data[key] is None and key == "lifecycleStage":
                errors.add(key, codes.REQUIRED, "A customer always has a lifecycle stage.")
                continue
            try:
                setattr(customer, attr, _enum_value(enum_type, data[key]))
            except v.InvalidValue as exc:
                errors.add(key, codes.INVALID_VALUE, str(exc))
    _simple(customer, data, errors, "country", "country", v.country)
    _simple(customer, data, errors, "locale", "locale", v.locale)
    _simple(customer, data, errors, "birthday", "birthday", v.birthday)
    if "emailConsent" in data:
        _consent(customer, data["emailConsent"], errors)
    if creating and data.get("externalRef"):
        ref = data["externalRef"]
        try:
            customer.external_system = v.text(ref.get("system"), 64, required=True)
            customer.external_id = v.text(ref.get("externalId"), 200, required=True)
        except v.InvalidValue as exc:
            errors.add("externalRef", codes.INVALID_VALUE, str(exc))

    _names(customer, errors)
    if "organizationId" in data:
        await _organization(session, customer, data["organizationId"], errors)

    children = _Children()
    region = customer.country or config.default_phone_region
    if "emails" in data:
        children.emails = _contact_points(data["emails"] or [], "emails", "address", v.email, codes.INVALID_EMAIL, errors)
        await _check_email_duplicates(
            session, [e["address"] for e in children.emails], customer.id, errors, field="emails"
        )
    if "phones" in data:
        children.phones = _contact_points(
            data["phones"] or [], "phones", "number", lambda n: v.phone(n, region), codes.INVALID_PHONE, errors
        )
    if "addresses" in data:
        children.addresses = _addresses(data["addresses"] or [], errors)
        primary = next((a for a in children.addresses if a["is_primary"]), None)
        if primary:  # fill geography from the primary address when not given separately
            for attr in ("country", "city", "region"):
                if attr not in data and getattr(customer, attr) is None:
                    setattr(customer, attr, primary.get(attr))
    if "tags" in data:
        try:
            children.tags = v.tags(data["tags"] or [])
        except v.InvalidValue as exc:
            errors.add("tags", codes.INVALID_VALUE, str(exc))
    if "customFields" in data or creating:
        children.custom = await _custom_fields(session, data.get("customFields") or {}, errors, creating=creating)
    return children


def _simple(customer: Customer, data: Mapping[str, Any], errors: ErrorCollector, key: str, attr: str, clean: Any) -> None:
    if key not in data:
        return
    try:
        setattr(customer, attr, None if data[key] is None else clean(data[key]))
    except v.InvalidValue as exc:
        errors.add(key, codes.INVALID_VALUE, str(exc))


def _consent(customer: Customer, consent: Mapping[str, Any] | None, errors: ErrorCollector) -> None:
    if not consent or consent.get("status") is None:
        errors.add("emailConsent.status", codes.REQUIRED, "Give the consent status.")
        return
    try:
        status = _enum_value(ConsentStatus, consent["status"])
        source = v.text(consent.get("source"), 200)
    except v.InvalidValue as exc:
        errors.add("emailConsent", codes.INVALID_VALUE, str(exc))
        return
    at = consent.get("at") or utcnow()
    if at > utcnow():
        errors.add("emailConsent.at", codes.INVALID_VALUE, "Consent cannot be given in the future.")
        return
    if status is not customer.consent_status or source != customer.consent_source:
        customer.consent_status = status
        customer.consent_source = source
        customer.consent_at = None if status is ConsentStatus.UNKNOWN else at


def _names(customer: Customer, errors: ErrorCollector) -> None:
    if customer.kind is CustomerKind.PERSON:
        if customer.organization_name is not None:
            errors.add("organizationName", codes.INVALID_VALUE, "A person has first and last names, not an organization name.")
        name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
        if not name:
            errors.add("lastName", codes.REQUIRED, "A person needs a first or a last name.")
    else:
        if customer.first_name or customer.last_name:
            errors.add("organizationName", codes.INVALID_VALUE, "An organization has an organization name, not first and last names.")
        name = customer.organization_name or ""
        if not name:
            errors.add("organizationName", codes.REQUIRED, "An organization needs a name.")
    customer.display_name = name


async def _organization(session: AsyncSession, customer: Customer, org_id: int | None, errors: ErrorCollector) -> None:
    if org_id is None:
        customer.organization_id = None
        return
    if customer.kind is not CustomerKind.PERSON:
        errors.add("organizationId", codes.INVALID_VALUE, "Only a person can belong to an organization.")
        return
    org = await get_customer(session, org_id)
    if org is None:
        errors.add("organizationId", codes.NOT_FOUND, "The organization was not found.")
    elif org.kind is not CustomerKind.ORGANIZATION:
        errors.add("organizationId", codes.INVALID_VALUE, "That customer is a person, not an organization.")
    else:
        customer.organization_id = org.id


def _contact_points(
    items: list[Mapping[str, Any]], field: str, value_key: str, clean: Any, code: str, errors: ErrorCollector
) -> list[dict[str, Any]]:
    if len(items) > MAX_CONTACT_POINTS:
        errors.add(field, codes.TOO_MANY, f"At most {MAX_CONTACT_POINTS} {field} per customer.")
        return []
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        try:
            value = clean(item.get(value_key))
        except v.InvalidValue as exc:
            missing = not item.get(value_key)
            errors.add(f"{field}.{i}.{value_key}", codes.REQUIRED if missing else code, str(exc))
            continue
        if value in seen:
            errors.add(f"{field}.{i}.{value_key}", codes.DUPLICATE, f"{value} is listed twice.")
            continue
        seen.add(value)
        try:
            label = v.text(item.get("label"), 50)
        except v.InvalidValue as exc:
            errors.add(f"{field}.{i}.label", codes.INVALID_VALUE, str(exc))
            continue
        out.append({value_key: value, "label": label, "is_primary": bool(item.get("primary")), "position": i})
    _one_primary(out, field, errors)
    return out


def _one_primary(rows: list[dict[str, Any]], field: str, errors: ErrorCollector) -> None:
    primaries = [r for r in rows if r["is_primary"]]
    if len(primaries) > 1:
        errors.add(field, codes.INVALID_VALUE, f"Only one of the {field} can be primary.")
    elif rows and not primaries:
        rows[0]["is_primary"] = True


def _addresses(items: list[Mapping[str, Any]], errors: ErrorCollector) -> list[dict[str, Any]]:
    if len(items) > MAX_CONTACT_POINTS:
        errors.add("addresses", codes.TOO_MANY, f"At most {MAX_CONTACT_POINTS} addresses per customer.")
        return []
    out = []
    for i, item in enumerate(items):
        row: dict[str, Any] = {"is_primary": bool(item.get("primary")), "position": i}
        limits = {"label": 50, "line1": 200, "line2": 200, "postalCode": 20, "city": 100, "region": 100}
        ok = True
        for key, limit in limits.items():
            try:
                row[_snake(key)] = v.text(item.get(key), limit, required=key == "line1")
            except v.InvalidValue as exc:
                errors.add(f"addresses.{i}.{key}", codes.REQUIRED if key == "line1" and not item.get(key) else codes.INVALID_VALUE, str(exc))
                ok = False
        try:
            row["country"] = v.country(item.get("country"))
        except v.InvalidValue as exc:
            errors.add(f"addresses.{i}.country", codes.REQUIRED if not item.get("country") else codes.INVALID_VALUE, str(exc))
            ok = False
        if ok:
            out.append(row)
    _one_primary(out, "addresses", errors)
    return out


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


async def _check_email_duplicates(
    session: AsyncSession, addresses: list[str], own_id: int | None, errors: ErrorCollector, field: str = "emails"
) -> None:
    if not addresses:
        return
    stmt = (
        sa.select(CustomerEmail.address, Customer.display_name)
        .join(Customer, Customer.id == CustomerEmail.customer_id)
        .where(CustomerEmail.address.in_(addresses), Customer.deleted_at.is_(None))
    )
    if own_id is not None:
        stmt = stmt.where(Customer.id != own_id)
    taken = {address: name for address, name in (await session.execute(stmt)).all()}
    for i, address in enumerate(addresses):
        if address in taken:
            errors.add(f"{field}.{i}.address", codes.DUPLICATE, f"{address} already belongs to {taken[address]}.")


async def _custom_fields(
    session: AsyncSession, values: Mapping[str, Any], errors: ErrorCollector, *, creating: bool
) -> dict[CustomFieldDefinition, dict[str, Any] | None]:
    if not isinstance(values, Mapping):
        errors.add("customFields", codes.INVALID_VALUE, "customFields is an object of key: value.")
        return {}
    definitions = await custom_field_definitions(session)
    out: dict[CustomFieldDefinition, dict[str, Any] | None] = {}
    for key, value in values.items():
        definition = definitions.get(key)
        if definition is None:
            errors.add(f"customFields.{key}", codes.INVALID_VALUE, f"No custom field is defined with key {key!r}.")
            continue
        if value is None:
            if definition.required:
                errors.add(f"customFields.{key}", codes.REQUIRED, f"{definition.label} is required.")
            out[definition] = None
            continue
        try:
            out[definition] = v.custom_value(definition, value)
        except v.InvalidValue as exc:
            errors.add(f"customFields.{key}", codes.INVALID_VALUE, str(exc))
    if creating:
        for key, definition in definitions.items():
            if definition.required and key not in values:
                errors.add(f"customFields.{key}", codes.REQUIRED, f"{definition.label} is required.")
    return out


async def _write_children(session: AsyncSession, customer: Customer, children: _Children) -> None:
    cid = customer.id
    for model, rows in ((CustomerEmail, children.emails), (CustomerPhone, children.phones), (CustomerAddress, children.addresses)):
        if rows is not None:
            await session.execute(sa.delete(model).where(model.customer_id == cid))
            session.add_all(model(customer_id=cid, **row) for row in rows)
    if children.tags is not None:
        await session.execute(sa.delete(CustomerTag).where(CustomerTag.customer_id == cid))
        session.add_all(CustomerTag(customer_id=cid, tag=t) for t in children.tags)
    for definition, columns in (children.custom or {}).items():
        await session.execute(
            sa.delete(CustomerFieldValue).where(
                CustomerFieldValue.customer_id == cid, CustomerFieldValue.definition_id == definition.id
            )
        )
        if columns is not None:
            session.add(CustomerFieldValue(customer_id=cid, definition_id=definition.id, **columns))
    await session.flush()


async def _by_external_ref(session: AsyncSession, ref: Mapping[str, Any]) -> Customer | None:
    return await session.scalar(
        sa.select(Customer).where(
            Customer.external_system == ref.get("system"), Customer.external_id == ref.get("externalId")
        )
    )


async def customer_payload(session: AsyncSession, customer: Customer) -> dict[str, Any]:
    """The customer as the API shows it, for events (and so for plugins and webhooks)."""
    cid = customer.id
    emails = (await emails_for(session, [cid])).get(cid, [])
    phones = (await phones_for(session, [cid])).get(cid, [])
    return {
        "id": cid,
        "kind": customer.kind,
        "displayName": customer.display_name,
        "firstName": customer.first_name,
        "lastName": customer.last_name,
        "organizationName": customer.organization_name,
        "jobTitle": customer.job_title,
        "organizationId": customer.organization_id,
        "emails": [{"address": e.address, "label": e.label, "primary": e.is_primary} for e in emails],
        "phones": [{"number": p.number, "label": p.label, "primary": p.is_primary} for p in phones],
        "tags": (await tags_for(session, [cid])).get(cid, []),
        "source": customer.source,
        "lifecycleStage": customer.lifecycle_stage,
        "emailConsent": {"status": customer.consent_status, "at": customer.consent_at, "source": customer.consent_source},
        "birthday": customer.birthday,
        "gender": customer.gender,
        "locale": customer.locale,
        "country": customer.country,
        "region": customer.region,
        "city": customer.city,
        "customFields": (await custom_values_for(session, [cid])).get(cid, {}),
        "createdAt": customer.created_at,
        "updatedAt": customer.updated_at,
        "deletedAt": customer.deleted_at,
        "version": customer.version,
    }


# --- custom field definitions --------------------------------------------------------------


async def create_custom_field_definition(
    session: AsyncSession, *, actor: Actor, data: Mapping[str, Any]
) -> CustomFieldDefinition:
    errors = ErrorCollector()
    try:
        key = v.field_key(data.get("key"))
    except v.InvalidValue as exc:
        errors.add("key", codes.REQUIRED if not data.get("key") else codes.INVALID_VALUE, str(exc))
        key = None
    try:
        label = v.text(data.get("label"), 200, required=True)
    except v.InvalidValue as exc:
        errors.add("label", codes.REQUIRED, str(exc))
        label = None
    try:
        kind = _enum_value(CustomFieldType, data.get("type"))
    except v.InvalidValue as exc:
        errors.add("type", codes.INVALID_VALUE, str(exc))
        kind = None
    options = data.get("options")
    if kind is CustomFieldType.SELECT:
        clean = [o.strip() for o in options or [] if isinstance(o, str) and o.strip()]
        if not clean:
            errors.add("options", codes.REQUIRED, "A SELECT field needs at least one option.")
        elif len(set(clean)) != len(clean):
            errors.add("options", codes.DUPLICATE, "Options must be distinct.")
        options = clean
    elif options:
        errors.add("options", codes.INVALID_VALUE, "Only SELECT fields have options.")
    if key and await session.scalar(sa.select(CustomFieldDefinition.id).where(CustomFieldDefinition.key == key)):
        errors.add("key", codes.DUPLICATE, f"A custom field with key {key!r} exists already.")
    errors.raise_if_any()
    definition = CustomFieldDefinition(
        key=key,
        label=label,
        type=kind,
        options=options if kind is CustomFieldType.SELECT else None,
        required=bool(data.get("required")),
        description=data.get("description"),
    )
    session.add(definition)
    await session.flush()
    record_event(
        session,
        type="custom_field.created",
        entity_type="CustomFieldDefinition",
        entity_id=definition.id,
        actor=actor,
        payload={"key": key, "label": label, "type": kind, "options": definition.options, "required": definition.required},
    )
    return definition


def age(birthday: date | None, today: date | None = None) -> int | None:
    if birthday is None:
        return None
    today = today or utcnow().date()
    return today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))
