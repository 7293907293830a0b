"""Validating a customer input and copying it onto a customer and its child rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import errors as codes
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import (
    ErrorCollector,
)
from crm_graph.customers import validation as v
from crm_graph.customers.models import (
    AcquisitionChannel,
    ConsentStatus,
    Customer,
    CustomerAddress,
    CustomerEmail,
    CustomerFieldValue,
    CustomerKind,
    CustomerPhone,
    CustomerTag,
    CustomFieldDefinition,
    Gender,
    LifecycleStage,
)
from crm_graph.customers.service.read import custom_field_definitions, get_customer

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


def enum_value(enum_type: Any, value: Any) -> Any:
    if value is None or isinstance(value, enum_type):
        return value
    try:
        return enum_type[value]
    except KeyError:
        raise v.InvalidValue(f"{value!r} is not one of {', '.join(m.name for m in enum_type)}.") from None



# --- validation and assignment ------------------------------------------------------------


@dataclass
class Children:
    emails: list[dict[str, Any]] | None = None
    phones: list[dict[str, Any]] | None = None
    addresses: list[dict[str, Any]] | None = None
    tags: list[str] | None = None
    custom: dict[CustomFieldDefinition, dict[str, Any] | None] | None = None


async def apply_input(
    session: AsyncSession,
    customer: Customer,
    data: Mapping[str, Any],
    errors: ErrorCollector,
    *,
    config: ServiceConfig,
    creating: bool,
    known: EmailOwners | None = None,
) -> Children:
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
                setattr(customer, attr, enum_value(enum_type, data[key]))
            except v.InvalidValue as exc:
                errors.add(key, codes.INVALID_VALUE, str(exc))
    _simple(customer, data, errors, "country", "country", v.country)
    _simple(customer, data, errors, "locale", "locale", v.locale)
    _simple(customer, data, errors, "timeZone", "time_zone", v.time_zone)
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

    children = Children()
    if "emails" in data:
        children.emails = _contact_points(data["emails"] or [], "emails", "address", v.email, codes.INVALID_EMAIL, errors)
        await check_email_duplicates(
            session, [e["address"] for e in children.emails], customer.id, errors, field="emails", known=known
        )
    if "addresses" in data:
        children.addresses = _addresses(data["addresses"] or [], errors)
        primary = next((a for a in children.addresses if a["is_primary"]), None)
        if primary:  # fill geography from the primary address when not given separately
            for attr in ("country", "city", "region"):
                if attr not in data and getattr(customer, attr) is None:
                    setattr(customer, attr, primary.get(attr))
    if "phones" in data:
        # A number written without its +country code is read in the customer's country (from
        # the input, else the primary address, else what is stored): 13812345678 of a customer
        # in CN is +8613812345678. Only a customer with no country at all gets the setting.
        region = customer.country or config.default_phone_region
        children.phones = _contact_points(
            data["phones"] or [], "phones", "number", lambda n: v.phone(n, region), codes.INVALID_PHONE, errors
        )
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
        status = enum_value(ConsentStatus, consent["status"])
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
        name = person_display_name(customer.first_name, customer.last_name)
        if not name:
            errors.add("lastName", codes.REQUIRED, "A person needs a first or a last name.")
    else:
        if customer.first_name or customer.last_name:
            errors.add("organizationName", codes.INVALID_VALUE, "An organization has an organization name, not first and last names.")
        name = customer.organization_name or ""
        if not name:
            errors.add("organizationName", codes.REQUIRED, "An organization needs a name.")
    customer.display_name = name


# Scripts whose personal names are written family name first and without a space: Han
# (Chinese, Japanese kanji), Hiragana and Katakana (Japanese), Hangul (Korean).
_CJK = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]"
)
# Letters of any other script (Latin, Cyrillic, ...): a name that has them is not written CJK-style.
_OTHER_LETTER = re.compile(r"[^\W\d_]")


def is_cjk_name(*parts: str | None) -> bool:
    """Whether the name parts are written in Chinese, Japanese or Korean script only (spaces,
    punctuation and digits aside): at least one CJK character and no letter of another script."""
    text = "".join(p for p in parts if p)
    return bool(_CJK.search(text)) and not _OTHER_LETTER.search(_CJK.sub("", text))


def person_display_name(first: str | None, last: str | None) -> str:
    """How a person's name is shown: ``First Last`` (Ada Lovelace), but family name first and
    without a space for CJK names: 张 + 伟 is 张伟, 太郎 + 山田 is 山田太郎, 민준 + 김 is 김민준.
    A part that holds both names with a space (``山田 太郎`` as the last name) loses the space."""
    parts = [p for p in (first, last) if p]
    if is_cjk_name(*parts):
        return "".join("".join(p.split()) for p in (last, first) if p)
    return " ".join(parts)


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
        limits = {"label": 50, "line1": 200, "line2": 200, "postalCode": 20, "city": 100, "district": 100, "region": 100}
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


# First key of the advisory locks on email addresses (the second is the address's hash).
EMAIL_LOCK_SPACE = 4_107


async def check_email_duplicates(
    session: AsyncSession, addresses: list[str], own_id: int | None, errors: ErrorCollector, field: str = "emails",
    known: EmailOwners | None = None,
) -> None:
    """An error for each address a live customer other than ``own_id`` already has. ``known``:
    the owners found for a whole batch at once (``email_owners``), used instead of a lookup."""
    if not addresses:
        return
    if known is not None and known.covers(addresses):
        taken = {a: known.owners[a] for a in addresses if a in known.owners}
    else:
        await _lock_addresses(session, addresses)
        taken = await _owners(session, addresses, own_id)
    for i, address in enumerate(addresses):
        if address in taken:
            errors.add(f"{field}.{i}.address", codes.DUPLICATE, f"{address} already belongs to {taken[address]}.")


@dataclass
class EmailOwners:
    """The live owners of a batch's addresses, found in one statement before the batch is
    written; the batch adds its own customers' addresses as it writes them, so a later item
    with an earlier item's address is a duplicate too."""

    checked: set[str]
    owners: dict[str, str]  # address -> the owner's display name

    def covers(self, addresses: list[str]) -> bool:
        return all(a in self.checked for a in addresses)

    def add(self, addresses: list[str], owner: str) -> None:
        self.checked.update(addresses)
        self.owners.update((a, owner) for a in addresses)


async def email_owners(session: AsyncSession, addresses: list[str]) -> EmailOwners:
    """``EmailOwners`` of ``addresses`` (already normalised), locked as one write would lock them."""
    wanted = sorted(set(addresses))
    if not wanted:
        return EmailOwners(set(), {})
    await _lock_addresses(session, wanted)
    return EmailOwners(set(wanted), await _owners(session, wanted, None))


async def _lock_addresses(session: AsyncSession, addresses: list[str]) -> None:
    if session.bind.dialect.name != "postgresql":
        return
    # Two transactions adding the same address must not both find it free: each takes a lock on
    # the address until it commits, so the second sees the first's row; always in sorted order,
    # so two writers never wait for each other in a circle. (SQLite serialises writers already:
    # they begin with BEGIN IMMEDIATE.)
    wanted = sorted(set(addresses))
    if len(wanted) == 1:
        await session.execute(sa.select(sa.func.pg_advisory_xact_lock(EMAIL_LOCK_SPACE, sa.func.hashtext(wanted[0]))))
        return
    await session.execute(
        sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(a)) FROM "
                "(SELECT a FROM unnest(CAST(:addresses AS text[])) AS a ORDER BY a) AS sorted"),
        {"space": EMAIL_LOCK_SPACE, "addresses": wanted},
    )


async def _owners(session: AsyncSession, addresses: list[str], own_id: int | None) -> dict[str, str]:
    stmt = (
        sa.select(CustomerEmail.address, Customer.display_name)
        .join(Customer, Customer.id == CustomerEmail.customer_id)
        .where(CustomerEmail.address.in_(addresses), Customer.deleted_at.is_(None))
    )
    if own_id is not None:
        stmt = stmt.where(Customer.id != own_id)
    return {address: name for address, name in (await session.execute(stmt)).all()}


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


async def write_children(session: AsyncSession, customer: Customer, children: Children, *, fresh: bool = False) -> Written:
    """Replace the child rows ``children`` gives (None: leave them) and flush. ``fresh``: the
    customer was just inserted, so it has no rows to replace. Returns the rows written."""
    return (await write_children_of(session, [(customer, children)], fresh=fresh))[0]


async def write_children_of(
    session: AsyncSession, customers: list[tuple[Customer, Children]], *, fresh: bool = False
) -> list[Written]:
    """``write_children`` for several customers with one flush.

    ``fresh`` (customers inserted in this transaction, so checked for access as they were
    written): the rows of each table go in one INSERT of many rows. Flushed as objects they
    would take one INSERT each on SQLite, which cannot hand back the ids of a multi-row insert
    in order, and nothing needs those ids; the search index picks the rows up through their new
    customer. Otherwise each customer's rows are replaced as objects, so the access and index
    hooks see every change."""
    out = []
    rows_of: dict[type, list[dict[str, Any]]] = {}

    def add(model: type, row: dict[str, Any]) -> Any:
        if fresh:
            rows_of.setdefault(model, []).append(row)
            return model(**row)  # what the payload shows; not added to the session
        obj = model(**row)
        session.add(obj)
        return obj

    for customer, children in customers:
        cid = customer.id
        written = Written()
        for model, rows, attr in ((CustomerEmail, children.emails, "emails"), (CustomerPhone, children.phones, "phones"),
                                  (CustomerAddress, children.addresses, None)):
            if rows is not None:
                if not fresh:
                    await session.execute(sa.delete(model).where(model.customer_id == cid))
                objects = [add(model, {"customer_id": cid, **row}) for row in rows]
                if attr:
                    setattr(written, attr, sorted(objects, key=lambda o: o.position))
        if children.tags is not None:
            if not fresh:
                await session.execute(sa.delete(CustomerTag).where(CustomerTag.customer_id == cid))
            for tag in children.tags:
                add(CustomerTag, {"customer_id": cid, "tag": tag})
            written.tags = sorted(children.tags)
        for definition, columns in (children.custom or {}).items():
            if not fresh:
                await session.execute(
                    sa.delete(CustomerFieldValue).where(
                        CustomerFieldValue.customer_id == cid, CustomerFieldValue.definition_id == definition.id
                    )
                )
            if columns is not None:
                value = add(CustomerFieldValue, {"customer_id": cid, "definition_id": definition.id, **columns})
                written.custom.append((definition, value))
        out.append(written)
    await session.flush()
    for model, rows in rows_of.items():
        await session.execute(sa.insert(model), rows)
    return out


@dataclass
class Written:
    """The child rows ``write_children`` wrote, as a just-created customer's payload shows them."""

    emails: list[CustomerEmail] = dataclass_field(default_factory=list)
    phones: list[CustomerPhone] = dataclass_field(default_factory=list)
    tags: list[str] = dataclass_field(default_factory=list)
    custom: list[tuple[CustomFieldDefinition, CustomerFieldValue]] = dataclass_field(default_factory=list)


async def by_external_ref(session: AsyncSession, ref: Mapping[str, Any]) -> Customer | None:
    return await session.scalar(
        sa.select(Customer).where(
            Customer.external_system == ref.get("system"), Customer.external_id == ref.get("externalId")
        )
    )


def ref_key(ref: Any) -> tuple[Any, Any] | None:
    """An ``externalRef`` input as the (system, externalId) pair it is looked up by."""
    if not isinstance(ref, Mapping) or not ref:
        return None
    return (ref.get("system"), ref.get("externalId"))


async def by_external_refs(session: AsyncSession, keys: list[tuple[Any, Any]]) -> dict[tuple[Any, Any], Customer]:
    """The customers of several external references, in one statement."""
    wanted = sorted({k for k in keys if isinstance(k[0], str) and isinstance(k[1], str)})
    if not wanted:
        return {}
    rows = await session.scalars(
        sa.select(Customer).where(sa.tuple_(Customer.external_system, Customer.external_id).in_(wanted))
    )
    return {(c.external_system, c.external_id): c for c in rows}



# --- showing an address ---------------------------------------------------------------------

# Countries whose addresses are written largest part first: country, province, city, district,
# then the street lines (中国 广东省 深圳市 南山区 科技园路1号).
LARGEST_FIRST = frozenset({"CN", "TW", "HK", "MO", "JP", "KR"})


def format_address(
    *, line1: str, line2: str | None, postal_code: str | None, city: str | None, district: str | None,
    region: str | None, country: str,
) -> str:
    """The address as one line of text, in its country's order, parts separated by ", " (or by a
    space for the largest-first countries, where that is how an address is written in one line).

    ``CN``: ``CN 518057 广东省 深圳市 南山区 科技园路1号 A栋``; elsewhere:
    ``Hauptstraße 1, Hinterhaus, Mitte, 10115 Berlin, Berlin, DE``.
    """
    if country in LARGEST_FIRST:
        return " ".join(p for p in (country, postal_code, region, city, district, line1, line2) if p)
    place = " ".join(p for p in (postal_code, city) if p)
    return ", ".join(p for p in (line1, line2, district, place, region, country) if p)
