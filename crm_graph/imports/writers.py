"""Writing one batch of rows: look up what exists by key in a few statements, then insert and
update with Core executemany statements (a few per batch, never one per row).

Each entity has a writer ``async def write(ctx, rows) -> None`` that sets every row's outcome
(``created``, ``updated``, ``unchanged``, or errors). A dry run runs the same lookups and
checks and stops before the first write. Rows of one batch that share a key are one record:
the first creates it, the next ones update it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.auth.models import User
from crm_graph.core import errors as codes
from crm_graph.core import money
from crm_graph.core import access
from crm_graph.core.access import FORBIDDEN
from crm_graph.core.actor import Actor
from crm_graph.core.errors import ErrorCollector
from crm_graph.customers.models import (
    AcquisitionChannel,
    ConsentStatus,
    Customer,
    CustomerEmail,
    CustomerKind,
    CustomerPhone,
    CustomerTag,
    LifecycleStage,
)
from crm_graph.customers.service import assign
from crm_graph.imports.mapping import RowError
from crm_graph.imports.models import ImportEntity, ImportKey, ImportMode
from crm_graph.sales.models import (
    Order,
    OrderExternalRef,
    OrderLineItem,
    OrderStatus,
    PaymentStatus,
    OrderOrigin,
    Product,
    ProductTag,
)
from crm_graph.sales.service import common as sales
from crm_graph.sales.service.orders import NUMBER_PREFIX

CUSTOMERS = Customer.__table__
EMAILS = CustomerEmail.__table__
PHONES = CustomerPhone.__table__
TAGS = CustomerTag.__table__
PRODUCTS = Product.__table__
PRODUCT_TAGS = ProductTag.__table__
ORDERS = Order.__table__
LINES = OrderLineItem.__table__
ORDER_REFS = OrderExternalRef.__table__

# Parameters per IN (...) list: SQLite allows 32766 bound values, PostgreSQL 32767.
CHUNK = 5_000


@dataclass
class Row:
    number: int  # the row's line in the file (the header is line 1)
    raw: list[Any]
    values: dict[str, Any]
    errors: list[RowError] = field(default_factory=list)
    outcome: str | None = None  # created / updated / unchanged

    def fail(self, field: str | None, code: str, message: str, column: str | None = None) -> None:
        self.errors.append(RowError(column, field, code, message))


@dataclass
class WriteContext:
    session: AsyncSession
    actor: Actor
    entity: ImportEntity
    mode: ImportMode
    key: ImportKey | None
    dry_run: bool
    options: dict[str, Any]
    columns: dict[str, str | None]  # target -> source column name, for error reports
    now: datetime
    touched: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))  # "customer"/"product" -> ids

    @property
    def system(self) -> str:
        return str(self.options.get("externalSystem") or "import")

    def fail(self, row: Row, field: str | None, code: str, message: str) -> None:
        row.fail(field, code, message, self.columns.get(field or ""))


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def _select_in(session: AsyncSession, stmt_for: Any, values: Iterable[Any]) -> list[Any]:
    values = list(dict.fromkeys(values))
    out: list[Any] = []
    for part in _chunks(values):
        out.extend((await session.execute(stmt_for(part))).all())
    return out


async def _insert(session: AsyncSession, table: sa.Table, rows: list[dict[str, Any]], returning: bool = False) -> list[int]:
    if not rows:
        return []
    keys = set().union(*rows)
    if any(len(r) != len(keys) for r in rows):  # one executemany needs the same columns in every row
        rows = [{k: r.get(k) for k in keys} for r in rows]
    ids: list[int] = []
    if returning:
        # The new rows' ids are drawn first, so one executemany inserts them all (an INSERT ...
        # RETURNING whose rows must come back in order runs row by row on SQLite).
        ids = await _allocate_ids(session, table, len(rows))
        rows = [{**r, "id": i} for r, i in zip(rows, ids)]
    await session.execute(sa.insert(table), rows)
    return ids


async def _allocate_ids(session: AsyncSession, table: sa.Table, n: int) -> list[int]:
    """``n`` fresh ids of ``table``: from its sequence on PostgreSQL; on SQLite, after the
    largest one (writers hold the database's write lock from BEGIN IMMEDIATE to commit)."""
    if session.get_bind().dialect.name == "postgresql":
        seq = sa.func.pg_get_serial_sequence(table.name, "id")
        result = await session.execute(sa.select(sa.func.nextval(seq)).select_from(sa.func.generate_series(1, n)))
        return sorted(int(i) for i in result.scalars())
    top = await session.scalar(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0)))
    return list(range(int(top) + 1, int(top) + 1 + n))


async def _update(session: AsyncSession, table: sa.Table, rows: list[dict[str, Any]], now: datetime, versioned: bool = True) -> None:
    """``rows`` are ``{"id": ..., column: value}``; rows with the same columns share one executemany."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(sorted(k for k in row if k != "id"))].append(row)
    for columns, items in groups.items():
        values: dict[str, Any] = {c: sa.bindparam(f"v_{c}") for c in columns}
        values["updated_at"] = now
        if versioned:
            values["version"] = table.c.version + 1
        stmt = sa.update(table).where(table.c.id == sa.bindparam("v_id")).values(values)
        await session.execute(stmt, [{f"v_{k}": val for k, val in item.items()} for item in items],
                              execution_options={"synchronize_session": False})


async def users_by_email(session: AsyncSession, emails: Iterable[str]) -> dict[str, tuple[int, int | None]]:
    rows = await _select_in(session, lambda part: sa.select(User.email, User.id, User.team_id).where(
        sa.func.lower(User.email).in_(part), User.active.is_(True)), {e.lower() for e in emails})
    return {email.lower(): (uid, team) for email, uid, team in rows}


# --- customers and organizations -----------------------------------------------------------

# Target fields that are columns of ``customers``.
_CUSTOMER_COLUMNS = {
    "firstName": "first_name", "lastName": "last_name", "jobTitle": "job_title", "country": "country",
    "region": "region", "city": "city", "birthday": "birthday", "gender": "gender", "locale": "locale",
    "source": "source", "lifecycleStage": "lifecycle_stage", "name": "organization_name",
}
_LOADED = ("id", "kind", "first_name", "last_name", "organization_name", "display_name", "job_title", "country", "region",
           "city", "birthday", "gender", "locale", "source", "lifecycle_stage", "organization_id", "owner_id", "team_id",
           "external_system", "external_id")


@dataclass
class Want:
    """One customer record a row asks for."""

    row: Row
    kind: CustomerKind
    columns: dict[str, Any]
    email: str | None = None
    phone: str | None = None
    tags: list[str] = field(default_factory=list)
    external_id: str | None = None
    owner: str | None = None  # user email
    key: tuple[Any, ...] | None = None
    # Results
    id: int | None = None
    existing: dict[str, Any] | None = None


def _display_name(kind: CustomerKind, columns: dict[str, Any]) -> tuple[str, list[codes.FieldError]]:
    """The display name the API would compute (assign._names), and its errors."""
    probe = Customer(kind=kind, first_name=columns.get("first_name"), last_name=columns.get("last_name"),
                     organization_name=columns.get("organization_name"))
    errors = ErrorCollector()
    assign._names(probe, errors)
    return probe.display_name, errors.errors


async def _existing_by_key(ctx: WriteContext, kind: str, values: list[Any]) -> dict[Any, dict[str, Any]]:
    """Existing, non-deleted customers by key value: external id, email, phone, or (org, name)."""
    session = ctx.session
    cols = [CUSTOMERS.c[c] for c in _LOADED]
    live = CUSTOMERS.c.deleted_at.is_(None)
    if kind == "ext":
        rows = await _select_in(session, lambda part: sa.select(CUSTOMERS.c.external_id, *cols).where(
            CUSTOMERS.c.external_system == ctx.system, CUSTOMERS.c.external_id.in_(part), live), values)
    elif kind == "email":
        rows = await _select_in(session, lambda part: sa.select(EMAILS.c.address, *cols).join(
            CUSTOMERS, CUSTOMERS.c.id == EMAILS.c.customer_id).where(EMAILS.c.address.in_(part), live).order_by(CUSTOMERS.c.id), values)
    elif kind == "phone":
        rows = await _select_in(session, lambda part: sa.select(PHONES.c.number, *cols).join(
            CUSTOMERS, CUSTOMERS.c.id == PHONES.c.customer_id).where(PHONES.c.number.in_(part), live).order_by(CUSTOMERS.c.id), values)
    elif kind == "orgname":
        rows = await _select_in(session, lambda part: sa.select(CUSTOMERS.c.organization_name, *cols).where(
            CUSTOMERS.c.kind == CustomerKind.ORGANIZATION.name, CUSTOMERS.c.organization_name.in_(part), live
        ).order_by(CUSTOMERS.c.id), values)
    elif kind == "contact":  # (organization id, display name) of persons
        org_ids = {org for org, _ in values}
        rows = await _select_in(session, lambda part: sa.select(
            sa.tuple_(CUSTOMERS.c.organization_id, CUSTOMERS.c.display_name), *cols).where(
            CUSTOMERS.c.organization_id.in_(part), CUSTOMERS.c.kind == CustomerKind.PERSON.name, live
        ).order_by(CUSTOMERS.c.id), org_ids)
        out: dict[Any, dict[str, Any]] = {}
        for row in rows:
            data = dict(zip(_LOADED, row[1:]))
            out.setdefault((data["organization_id"], data["display_name"]), data)
        return out
    else:  # pragma: no cover
        raise AssertionError(kind)
    out = {}
    for row in rows:
        out.setdefault(row[0], dict(zip(_LOADED, row[1:])))  # the oldest customer wins a shared key
    return out


async def _allowed(ctx: WriteContext, model: Any, ids: Iterable[int], mode: str) -> set[int]:
    """Which of the existing records ``ids`` the job's actor may read (``mode`` "read") or change
    ("write") under the record rules (owner, team, sharing defaults). The job writes with Core
    statements, which the ORM's scope checks do not see, so the writers ask here: a row whose key
    matches a record its starter may not change fails instead of changing it."""
    wanted = set(ids)
    if not wanted or ctx.actor.view_all:
        return wanted
    scope = access.Scope(ctx.actor, sharing=await access.sharing_defaults(ctx.session))
    condition = scope.condition(model, mode)
    if condition is None:
        return wanted
    rows = await _select_in(ctx.session, lambda part: sa.select(model.id).where(model.id.in_(part), condition), wanted)
    return {row[0] for row in rows}


def _enum_name(value: Any) -> Any:
    return value.name if hasattr(value, "name") and not isinstance(value, str) else value


async def upsert_customers(ctx: WriteContext, wants: list[Want], *, count: bool = True) -> None:
    """Create or update the customers ``wants`` ask for; sets ``want.id`` (and the row's
    outcome when ``count``). A want whose row already failed is skipped."""
    session = ctx.session
    wants = [w for w in wants if not w.row.errors]
    # Existing records, by each want's key.
    by_kind: dict[str, list[Any]] = defaultdict(list)
    for w in wants:
        if w.key is not None:
            by_kind[w.key[0]].append(w.key[1])
    found = {kind: await _existing_by_key(ctx, kind, values) for kind, values in by_kind.items()}
    owners = await users_by_email(session, {w.owner for w in wants if w.owner})
    existing_ids = [data["id"] for kinds in found.values() for data in kinds.values()]
    changeable = await _allowed(ctx, Customer, existing_ids, "write")
    emails_of, phones_of, tags_of = await _children(session, existing_ids)
    # Addresses already used by a customer: an email belongs to one customer only.
    new_emails = {w.email for w in wants if w.email}
    taken = dict((await _select_in(session, lambda part: sa.select(EMAILS.c.address, EMAILS.c.customer_id).join(
        CUSTOMERS, CUSTOMERS.c.id == EMAILS.c.customer_id).where(EMAILS.c.address.in_(part), CUSTOMERS.c.deleted_at.is_(None)),
        new_emails)) or [])
    can_assign = ctx.actor.can("customers", "assign")

    pending: dict[tuple[Any, ...], Want] = {}  # records this batch creates, by key
    batch_emails: dict[str, Want] = {}
    inserts: list[Want] = []
    updates: dict[int, dict[str, Any]] = {}
    add_emails: list[dict[str, Any]] = []
    add_phones: list[dict[str, Any]] = []
    add_tags: list[dict[str, Any]] = []
    for w in wants:
        row = w.row
        if w.owner is not None and w.owner.lower() not in owners:
            ctx.fail(row, "owner", codes.NOT_FOUND, f"No active user has the email {w.owner}.")
            continue
        current = found.get(w.key[0], {}).get(w.key[1]) if w.key is not None else None
        twin = pending.get(w.key) if w.key is not None else None
        if ctx.mode is ImportMode.CREATE and (current is not None or twin is not None):
            ctx.fail(row, _key_field(w), codes.DUPLICATE, "A customer with this key exists already (import with mode UPSERT to update it).")
            continue
        if current is not None and current["id"] not in changeable:
            ctx.fail(row, _key_field(w), FORBIDDEN, "A customer with this key exists that you may not change.")
            continue
        if current is not None and CustomerKind[_enum_name(current["kind"])] is not w.kind:
            ctx.fail(row, _key_field(w), codes.INVALID_VALUE,
                     f"The customer with this key is an {_enum_name(current['kind']).lower()}, not a {w.kind.name.lower()}.")
            continue
        if w.email:
            holder = taken.get(w.email)
            own_id = current["id"] if current is not None else None
            other = batch_emails.get(w.email)
            if (holder is not None and holder != own_id) or (other is not None and other is not twin and other.key != w.key):
                ctx.fail(row, "email", codes.DUPLICATE, f"{w.email} already belongs to another customer.")
                continue
        if twin is not None:  # a later row of a record this batch creates: fold it in
            twin.columns.update(w.columns)
            twin.tags += [t for t in w.tags if t not in twin.tags]
            twin.email, twin.phone = twin.email or w.email, twin.phone or w.phone
            name, errors = _display_name(w.kind, twin.columns)
            if errors:
                for e in errors:
                    ctx.fail(row, e.field, e.code, e.message)
                continue
            twin.columns["display_name"] = name
            w.id = twin  # type: ignore[assignment]  # resolved after the insert
            if count:
                row.outcome = "updated"
            continue
        if current is None:
            columns = {
                "kind": w.kind.name, "lifecycle_stage": LifecycleStage.LEAD.name, "consent_status": ConsentStatus.UNKNOWN.name,
                "source": AcquisitionChannel.IMPORT.name, "version": 1, "created_at": ctx.now, "updated_at": ctx.now,
                "owner_id": ctx.actor.user_id, "team_id": ctx.actor.team_id,
                "external_system": ctx.system if w.external_id else None, "external_id": w.external_id,
                "first_name": None, "last_name": None, "organization_name": None,
            }
            columns.update({k: _enum_name(val) for k, val in w.columns.items()})
            if w.owner:
                columns["owner_id"], columns["team_id"] = owners[w.owner.lower()]
            name, errors = _display_name(w.kind, columns)
            if errors:
                for e in errors:
                    ctx.fail(row, e.field, e.code, e.message)
                continue
            columns["display_name"] = name
            w.columns = columns
            inserts.append(w)
            if w.key is not None:
                pending[w.key] = w
            if w.email:
                batch_emails[w.email] = w
            if count:
                row.outcome = "created"
            continue
        # An existing record: change only what differs.
        cid = current["id"]
        w.id = cid
        change = dict(updates.get(cid, {}))
        merged = {**current, **change}
        for key, val in w.columns.items():
            val = _enum_name(val)
            if _enum_name(merged.get(key)) != val:
                change[key] = val
        if w.external_id and merged.get("external_id") is None:
            change["external_system"], change["external_id"] = ctx.system, w.external_id
        if w.owner:
            owner_id, team_id = owners[w.owner.lower()]
            if merged.get("owner_id") != owner_id:
                if not can_assign:
                    ctx.fail(row, "owner", FORBIDDEN,
                             "Changing a customer's owner needs the customers:assign permission.")
                    continue
                change["owner_id"], change["team_id"] = owner_id, team_id
        if any(k in change for k in ("first_name", "last_name", "organization_name")):
            name, errors = _display_name(w.kind, {**merged, **change})
            if errors:
                for e in errors:
                    ctx.fail(row, e.field, e.code, e.message)
                continue
            if name != merged.get("display_name"):
                change["display_name"] = name
        changed_children = False
        if w.email and w.email not in emails_of[cid]:
            add_emails.append({"customer_id": cid, "address": w.email, "label": None,
                               "is_primary": not emails_of[cid], "position": len(emails_of[cid])})
            emails_of[cid].append(w.email)
            batch_emails[w.email] = w
            changed_children = True
        if w.phone and w.phone not in phones_of[cid]:
            add_phones.append({"customer_id": cid, "number": w.phone, "label": None,
                               "is_primary": not phones_of[cid], "position": len(phones_of[cid])})
            phones_of[cid].append(w.phone)
            changed_children = True
        for tag in w.tags:
            if tag not in tags_of[cid]:
                add_tags.append({"customer_id": cid, "tag": tag})
                tags_of[cid].append(tag)
                changed_children = True
        if change or changed_children:
            updates[cid] = change
            current.update(change)
            if count:
                row.outcome = "updated" if row.outcome != "created" else "created"
        elif count:
            row.outcome = "unchanged"
    if ctx.dry_run:
        for w in wants:
            if isinstance(w.id, Want):
                w.id = None  # would be created
        return
    ids = await _insert(session, CUSTOMERS, [w.columns for w in inserts], returning=True)
    for w, new_id in zip(inserts, ids):
        w.id = new_id
        if w.email:
            add_emails.append({"customer_id": new_id, "address": w.email, "label": None, "is_primary": True, "position": 0})
        if w.phone:
            add_phones.append({"customer_id": new_id, "number": w.phone, "label": None, "is_primary": True, "position": 0})
        add_tags.extend({"customer_id": new_id, "tag": t} for t in w.tags)
    for w in wants:
        if isinstance(w.id, Want):
            w.id = w.id.id
    await _update(session, CUSTOMERS, [{"id": cid, **change} for cid, change in updates.items()], ctx.now)
    await _insert(session, EMAILS, add_emails)
    await _insert(session, PHONES, add_phones)
    await _insert(session, TAGS, add_tags)
    ctx.touched["customer"].update(ids)
    ctx.touched["customer"].update(updates)


def _upserting(ctx: WriteContext) -> WriteContext:
    """The same context in UPSERT mode (it shares ``touched``)."""
    return ctx if ctx.mode is ImportMode.UPSERT else WriteContext(**{**ctx.__dict__, "mode": ImportMode.UPSERT})


def _key_field(w: Want) -> str:
    if w.key is None:
        return "externalId"
    return {"ext": "externalId", "email": "email", "phone": "phone", "orgname": "name", "contact": "contactFullName"}[w.key[0]]


async def _children(session: AsyncSession, ids: list[int]) -> tuple[dict[int, list[str]], dict[int, list[str]], dict[int, list[str]]]:
    emails: dict[int, list[str]] = defaultdict(list)
    phones: dict[int, list[str]] = defaultdict(list)
    tags: dict[int, list[str]] = defaultdict(list)
    if ids:
        for cid, address in await _select_in(session, lambda p: sa.select(EMAILS.c.customer_id, EMAILS.c.address).where(
                EMAILS.c.customer_id.in_(p)).order_by(EMAILS.c.customer_id, EMAILS.c.position), ids):
            emails[cid].append(address)
        for cid, number in await _select_in(session, lambda p: sa.select(PHONES.c.customer_id, PHONES.c.number).where(
                PHONES.c.customer_id.in_(p)).order_by(PHONES.c.customer_id, PHONES.c.position), ids):
            phones[cid].append(number)
        for cid, tag in await _select_in(session, lambda p: sa.select(TAGS.c.customer_id, TAGS.c.tag).where(
                TAGS.c.customer_id.in_(p)), ids):
            tags[cid].append(tag)
    return emails, phones, tags


def _customer_key(ctx: WriteContext, w: Want, fields: tuple[str, str, str]) -> None:
    """The want's key from the job's key; a missing key value is the row's error."""
    key = ctx.key
    ext, email, phone = fields
    if key is None:
        w.key = ("ext", w.external_id) if w.external_id else None
        return
    value, name = {
        ImportKey.EXTERNAL_REF: (w.external_id, ext), ImportKey.EMAIL: (w.email, email), ImportKey.PHONE: (w.phone, phone),
    }.get(key, (None, None))
    if name is None:
        ctx.fail(w.row, None, codes.INVALID_VALUE, f"{key.name} is not a key of {ctx.entity.name}.")
        return
    if value is None:
        ctx.fail(w.row, name, codes.REQUIRED, f"The key {name} is empty, so the row cannot be matched.")
        return
    w.key = ({"externalId": "ext", "email": "email", "phone": "phone"}[name], value)


def _want_of(ctx: WriteContext, row: Row, kind: CustomerKind) -> Want:
    vals = row.values
    columns = {col: vals[t] for t, col in _CUSTOMER_COLUMNS.items() if t in vals}
    if kind is CustomerKind.ORGANIZATION:
        columns.pop("first_name", None)
        columns.pop("last_name", None)
    else:
        columns.pop("organization_name", None)
    return Want(row, kind, columns, email=vals.get("email"), phone=vals.get("phone"), tags=vals.get("tags") or [],
                external_id=vals.get("externalId"), owner=vals.get("owner"))


async def write_customers(ctx: WriteContext, rows: list[Row]) -> None:
    wants = []
    for row in rows:
        w = _want_of(ctx, row, CustomerKind.PERSON)
        _customer_key(ctx, w, ("externalId", "email", "phone"))
        wants.append(w)
    # Organizations: by external ID (must exist) or by name (created when missing).
    live = [w for w in wants if not w.row.errors]
    by_ref = {w.row.values["organizationExternalId"] for w in live if w.row.values.get("organizationExternalId")}
    orgs_by_ref = await _existing_by_key(ctx, "ext", list(by_ref)) if by_ref else {}
    names = {w.row.values["organization"] for w in live if w.row.values.get("organization") and not w.row.values.get("organizationExternalId")}
    org_wants: dict[str, Want] = {}
    for name in names:
        org_wants[name] = Want(Row(0, [], {}), CustomerKind.ORGANIZATION, {"organization_name": name}, key=("orgname", name))
    # Found or created whatever the mode: CREATE is about the rows' own records.
    await upsert_customers(_upserting(ctx), list(org_wants.values()), count=False)
    for w in live:
        ref, name = w.row.values.get("organizationExternalId"), w.row.values.get("organization")
        if ref:
            org = orgs_by_ref.get(ref)
            if org is None or _enum_name(org["kind"]) != CustomerKind.ORGANIZATION.name:
                ctx.fail(w.row, "organizationExternalId", codes.NOT_FOUND, f"No organization has the external ID {ref}.")
                continue
            w.columns["organization_id"] = org["id"]
        elif name:
            org_want = org_wants[name]
            if org_want.row.errors:
                e = org_want.row.errors[0]
                ctx.fail(w.row, "organization", e.code, e.message)
                continue
            w.columns["organization_id"] = org_want.id
    await upsert_customers(ctx, wants)


async def write_organizations(ctx: WriteContext, rows: list[Row]) -> None:
    wants = []
    for row in rows:
        w = _want_of(ctx, row, CustomerKind.ORGANIZATION)
        if ctx.key in (None, ImportKey.NAME) and row.values.get("name"):
            w.key = ("ext", w.external_id) if w.external_id else ("orgname", row.values["name"])
        else:
            _customer_key(ctx, w, ("externalId", "email", "phone"))
        if "organization_name" not in w.columns and not row.errors:
            ctx.fail(row, "name", codes.REQUIRED, "An organization needs a name.")
        wants.append(w)
    await upsert_customers(ctx, wants)
    # Contacts: persons of the organization, matched by email, else by name within it.
    contacts = []
    for w in wants:
        vals = w.row.values
        if w.row.errors or not any(k in vals for k in ("contactFirstName", "contactLastName", "contactEmail", "contactPhone")):
            continue
        columns = {"first_name": vals.get("contactFirstName"), "last_name": vals.get("contactLastName"),
                   "job_title": vals.get("contactJobTitle"), "organization_id": w.id or 0}
        columns = {k: val for k, val in columns.items() if val is not None}
        if "job_title" not in columns:
            columns.pop("job_title", None)
        contact = Want(Row(w.row.number, w.row.raw, {}), CustomerKind.PERSON, columns,
                       email=vals.get("contactEmail"), phone=vals.get("contactPhone"), owner=vals.get("owner"))
        display, _ = _display_name(CustomerKind.PERSON, columns)
        contact.key = ("email", contact.email) if contact.email else ("contact", (w.id or 0, display))
        contacts.append((w, contact))
    await upsert_customers(_upserting(ctx), [c for _, c in contacts], count=False)
    for w, contact in contacts:
        for e in contact.row.errors:
            field = {"email": "contactEmail", "phone": "contactPhone", "lastName": "contactLastName"}.get(e.field or "", e.field)
            ctx.fail(w.row, field, e.code, e.message)
        if contact.row.errors:
            w.row.outcome = None


# --- products ----------------------------------------------------------------------------


async def write_products(ctx: WriteContext, rows: list[Row]) -> None:
    session = ctx.session
    if ctx.key not in (None, ImportKey.SKU):
        for row in rows:
            ctx.fail(row, None, codes.INVALID_VALUE, "Products are matched by SKU.")
        return
    for row in rows:
        vals = row.values
        try:
            vals["sku"] = _sku(vals.get("sku"))
        except sales.Invalid as exc:
            ctx.fail(row, "sku", exc.code, str(exc))
    live = [r for r in rows if not r.errors]
    names = ("id", "name", "description", "unit_price", "currency", "active")
    found = {row[0]: dict(zip(names, row[1:])) for row in await _select_in(
        session, lambda p: sa.select(PRODUCTS.c.sku, *(PRODUCTS.c[n] for n in names)).where(PRODUCTS.c.sku.in_(p)),
        [r.values["sku"] for r in live])}
    tags_of: dict[int, list[str]] = defaultdict(list)
    for pid, tag in await _select_in(session, lambda p: sa.select(PRODUCT_TAGS.c.product_id, PRODUCT_TAGS.c.tag).where(
            PRODUCT_TAGS.c.product_id.in_(p)), [d["id"] for d in found.values()]):
        tags_of[pid].append(tag)
    pending: dict[str, dict[str, Any]] = {}
    inserts: list[dict[str, Any]] = []
    insert_tags: list[list[str]] = []
    updates: dict[int, dict[str, Any]] = {}
    add_tags: list[dict[str, Any]] = []
    for row in live:
        vals = row.values
        sku = vals["sku"]
        current = found.get(sku)
        if ctx.mode is ImportMode.CREATE and (current is not None or sku in pending):
            ctx.fail(row, "sku", codes.DUPLICATE, f"Another product has SKU {sku}.")
            continue
        columns: dict[str, Any] = {}
        for target, col in (("name", "name"), ("description", "description"), ("active", "active")):
            if target in vals:
                columns[col] = vals[target]
        code = vals.get("currency") or ctx.options.get("currency") or (current or {}).get("currency")
        if "unitPrice" in vals:
            if code is None:
                ctx.fail(row, "currency", codes.REQUIRED, "Give the price's currency (a column or the currency option).")
                continue
            try:
                code = sales.currency(code)
                columns["unit_price"] = sales.amount(vals["unitPrice"], places=money.minor_units(code))
                columns["currency"] = code
            except sales.Invalid as exc:
                ctx.fail(row, "currency" if exc.code == sales.codes.INVALID_CURRENCY else "unitPrice", exc.code, str(exc))
                continue
        if current is None and sku not in pending:
            if not columns.get("name"):
                ctx.fail(row, "name", codes.REQUIRED, "A product name is required.")
            if "unit_price" not in columns:
                ctx.fail(row, "unitPrice", codes.REQUIRED, "A new product needs a unit price.")
            if row.errors:
                continue
            new = {"sku": sku, "description": None, "active": True, "version": 1, "created_at": ctx.now, "updated_at": ctx.now, **columns}
            pending[sku] = new
            inserts.append(new)
            insert_tags.append(list(vals.get("tags") or []))
            row.outcome = "created"
            continue
        if current is None:  # a later row of a product this batch creates
            pending[sku].update(columns)
            tags = insert_tags[inserts.index(pending[sku])]
            tags += [t for t in vals.get("tags") or [] if t not in tags]
            row.outcome = "updated"
            continue
        pid = current["id"]
        change = {k: val for k, val in columns.items() if current.get(k) != val}
        new_tags = [t for t in vals.get("tags") or [] if t not in tags_of[pid]]
        tags_of[pid] += new_tags
        add_tags.extend({"product_id": pid, "tag": t} for t in new_tags)
        if change or new_tags:
            updates[pid] = {**updates.get(pid, {}), **change}
            current.update(change)
            row.outcome = "updated"
        else:
            row.outcome = "unchanged"
    if ctx.dry_run:
        return
    ids = await _insert(session, PRODUCTS, inserts, returning=True)
    for pid, tags in zip(ids, insert_tags):
        add_tags.extend({"product_id": pid, "tag": t} for t in tags)
    await _update(session, PRODUCTS, [{"id": pid, **c} for pid, c in updates.items()], ctx.now)
    await _insert(session, PRODUCT_TAGS, add_tags)
    ctx.touched["product"].update(ids)
    ctx.touched["product"].update(updates)


def _sku(value: Any) -> str:
    from crm_graph.sales.service.products import _sku as clean

    return clean(value)


# --- orders ------------------------------------------------------------------------------


async def write_orders(ctx: WriteContext, rows: list[Row]) -> None:
    """Rows with the same ``externalId`` are the lines of one order (consecutive rows; the job
    never splits them between batches). An order is written whole or not at all."""
    session = ctx.session
    if ctx.key not in (None, ImportKey.EXTERNAL_REF):
        for row in rows:
            ctx.fail(row, None, codes.INVALID_VALUE, "Orders are matched by EXTERNAL_REF (their number in the source system).")
        return
    groups: dict[str, list[Row]] = {}
    for row in rows:
        ref = row.values.get("externalId")
        if not ref:
            ctx.fail(row, "externalId", codes.REQUIRED, "Give the order's number (externalId): its lines share it.")
            continue
        groups.setdefault(ref, []).append(row)
    # Customers, by external ID or email; products by SKU.
    cust_refs = {r.values["customerExternalId"] for r in rows if r.values.get("customerExternalId")}
    cust_emails = {r.values["customerEmail"] for r in rows if r.values.get("customerEmail")}
    by_ref = await _existing_by_key(ctx, "ext", list(cust_refs)) if cust_refs else {}
    by_email = await _existing_by_key(ctx, "email", list(cust_emails)) if cust_emails else {}
    # A customer the starter may not read is missing to them, as everywhere else.
    visible = await _allowed(ctx, Customer, [c["id"] for c in (*by_ref.values(), *by_email.values())], "read")
    by_ref = {k: c for k, c in by_ref.items() if c["id"] in visible}
    by_email = {k: c for k, c in by_email.items() if c["id"] in visible}
    skus = {r.values["sku"] for r in rows if r.values.get("sku")}
    products = {sku: (pid, name, price, cur) for sku, pid, name, price, cur in await _select_in(
        session, lambda p: sa.select(PRODUCTS.c.sku, PRODUCTS.c.id, PRODUCTS.c.name, PRODUCTS.c.unit_price, PRODUCTS.c.currency)
        .where(PRODUCTS.c.sku.in_(p)), skus)}
    existing = {ext: oid for ext, oid in await _select_in(session, lambda p: sa.select(
        ORDER_REFS.c.external_id, ORDER_REFS.c.order_id).where(ORDER_REFS.c.system == ctx.system, ORDER_REFS.c.external_id.in_(p)),
        list(groups))}
    current = await _orders_now(session, list(existing.values()))
    changeable = await _allowed(ctx, Order, existing.values(), "write")
    new_orders: list[tuple[str, dict[str, Any], list[sales.PricedLine]]] = []
    replaced: list[tuple[int, dict[str, Any], list[sales.PricedLine]]] = []
    for ref, group in groups.items():
        head = group[0].values
        customer = None
        if head.get("customerExternalId"):
            customer = by_ref.get(head["customerExternalId"])
            if customer is None:
                ctx.fail(group[0], "customerExternalId", codes.NOT_FOUND, f"No customer has the external ID {head['customerExternalId']}.")
        elif head.get("customerEmail"):
            customer = by_email.get(head["customerEmail"])
            if customer is None:
                ctx.fail(group[0], "customerEmail", codes.NOT_FOUND, f"No customer has the email {head['customerEmail']}.")
        else:
            ctx.fail(group[0], "customerExternalId", codes.REQUIRED, "An order belongs to a customer: map customerExternalId or customerEmail.")
        currency = head.get("currency") or ctx.options.get("currency")
        lines: list[sales.PricedLine] = []
        for row in group:
            line = _line(ctx, row, products, currency)
            if line is not None:
                currency = currency or line[1]
                lines.append(line[0])
        if currency is None and not any(r.errors for r in group):
            ctx.fail(group[0], "currency", codes.REQUIRED, "Give the order's currency (a column or the currency option).")
        else:
            try:
                currency = sales.currency(currency) if currency else None
            except sales.Invalid as exc:
                ctx.fail(group[0], "currency", exc.code, str(exc))
        try:
            tax_rate = sales.percent(head["taxRate"]) if head.get("taxRate") is not None else Decimal(0)
        except sales.Invalid as exc:
            ctx.fail(group[0], "taxRate", exc.code, str(exc))
        if any(r.errors for r in group):
            for r in group:
                if not r.errors:
                    ctx.fail(r, "externalId", codes.INVALID_VALUE, "Another line of this order has errors; the order was not imported.")
            continue
        assert customer is not None and currency is not None
        priced = [line.priced(currency) for line in lines]
        summed = sales.totals(priced, tax_rate, currency)
        status = head.get("status") or OrderStatus.FULFILLED
        columns = {"customer_id": customer["id"], "status": _enum_name(status), "currency": currency,
                   "ordered_at": head.get("orderedAt") or ctx.now, **summed.columns()}
        oid = existing.get(ref)
        if oid is None:
            new_orders.append((ref, columns, priced))
            outcome = "created"
        elif ctx.mode is ImportMode.CREATE:
            for r in group:
                ctx.fail(r, "externalId", codes.DUPLICATE, f"Order {ref} exists already (import with mode UPSERT to update it).")
            continue
        elif oid not in changeable:
            for r in group:
                ctx.fail(r, "externalId", FORBIDDEN, f"Order {ref} exists and you may not change it.")
            continue
        else:
            before = current.get(oid)
            if before is not None and _same_order(before, columns, priced):
                outcome = "unchanged"
            else:
                replaced.append((oid, columns, priced))
                outcome = "updated"
        for r in group:
            r.outcome = outcome
    if ctx.dry_run:
        return
    for ref, columns, priced in new_orders:
        order_row = {**columns, "number": await sales.next_number(session, "order", NUMBER_PREFIX, 6),
                     "payment_status": PaymentStatus.UNPAID.name, "paid_amount": Decimal(0), "origin": OrderOrigin.EXTERNAL.name,
                     "version": 1, "created_at": ctx.now, "updated_at": ctx.now, "owner_id": ctx.actor.user_id, "team_id": ctx.actor.team_id}
        [oid] = await _insert(session, ORDERS, [order_row], returning=True)
        existing[ref] = oid
    lines_rows = []
    for ref, _, priced in new_orders:
        lines_rows.extend({"order_id": existing[ref], "position": i, **line.columns()} for i, line in enumerate(priced))
    await _insert(session, ORDER_REFS, [{"order_id": existing[ref], "system": ctx.system, "external_id": ref} for ref, _, _ in new_orders])
    if replaced:
        await session.execute(sa.delete(LINES).where(LINES.c.order_id.in_([oid for oid, _, _ in replaced])))
        for oid, _, priced in replaced:
            lines_rows.extend({"order_id": oid, "position": i, **line.columns()} for i, line in enumerate(priced))
        await _update(session, ORDERS, [{"id": oid, **columns} for oid, columns, _ in replaced], ctx.now)
    await _insert(session, LINES, lines_rows)


def _line(ctx: WriteContext, row: Row, products: dict[str, Any], currency: str | None) -> tuple[sales.PricedLine, str] | None:
    vals = row.values
    product = None
    if vals.get("sku"):
        product = products.get(vals["sku"])
        if product is None:
            ctx.fail(row, "sku", codes.NOT_FOUND, f"No product has SKU {vals['sku']}.")
            return None
    try:
        quantity = sales.quantity(vals["quantity"]) if vals.get("quantity") is not None else Decimal(1)
        discount = sales.percent(vals["discountPercent"]) if vals.get("discountPercent") is not None else Decimal(0)
        if vals.get("unitPrice") is not None:
            price = sales.amount(vals["unitPrice"])
            line_currency = currency or (product[3] if product else None)
        elif product is not None:
            price, line_currency = product[2], product[3]
            if currency is not None and line_currency != currency:
                ctx.fail(row, "unitPrice", sales.codes.CURRENCY_MISMATCH,
                         f"{product[1]} is priced in {line_currency}; give a unitPrice in {currency}.")
                return None
        else:
            ctx.fail(row, "unitPrice", codes.REQUIRED, "A line without a product needs a unit price.")
            return None
    except sales.Invalid as exc:
        ctx.fail(row, "quantity", exc.code, str(exc))
        return None
    description = vals.get("description") or (product[1] if product else None)
    if not description:
        ctx.fail(row, "description", codes.REQUIRED, "A line without a product needs a description.")
        return None
    return sales.PricedLine(product[0] if product else None, vals.get("sku"), description, quantity, price, discount), line_currency


async def _orders_now(session: AsyncSession, ids: list[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    if not ids:
        return out
    for row in await _select_in(session, lambda p: sa.select(ORDERS).where(ORDERS.c.id.in_(p)), ids):
        out[row.id] = {**row._mapping, "lines": []}
    for row in await _select_in(session, lambda p: sa.select(LINES).where(LINES.c.order_id.in_(p)).order_by(LINES.c.order_id, LINES.c.position), ids):
        out[row.order_id]["lines"].append(sales.PricedLine.from_row(row).comparable())
    return out


def _same_order(before: dict[str, Any], columns: dict[str, Any], lines: list[sales.PricedLine]) -> bool:
    for key, val in columns.items():
        old = before.get(key)
        if _enum_name(old) != _enum_name(val):
            return False
    return before["lines"] == [line.comparable() for line in lines]


WRITERS = {
    ImportEntity.CUSTOMER: write_customers,
    ImportEntity.ORGANIZATION: write_organizations,
    ImportEntity.PRODUCT: write_products,
    ImportEntity.ORDER: write_orders,
}
