"""Merging customers into one: plan, apply, explain, undo.

``merge_customers`` moves every row that references a merged customer to the survivor. Which
rows those are is read from the SQLAlchemy metadata, not listed by hand: every column of the
core's tables (and of the plugins' tables, through ``crm_register_migrations``' MetaData) with a
foreign key to ``customers.id`` (timeline, opportunities, quotes, orders, tickets and their
contacts, segment memberships, custom field values, tags, emails, phones, addresses, loyalty
accounts, entries and coupons, automation enrolments, analysis results, people of a merged
organization...). A new table with such a key is covered without touching this module.

A row whose move would break a unique key (the same tag, segment membership or custom field on
both; a second loyalty account) is removed instead: the survivor keeps its own. Emails, phones
and addresses the survivor has already are removed the same way, and moved ones are never
primary when the survivor has a primary one. Rows a plugin keeps without a foreign key are
moved by its ``crm_merge_customers`` implementation.

Every change is recorded in ``customer_merges``: each moved row (table, primary key, column,
old and new value) and each removed row with all its values, so ``undo_merge`` can put exactly
those rows back within ``UNDO_DAYS``. A dry run builds the same plan and writes nothing.
"""

from __future__ import annotations

import enum
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import errors as codes
from crm_graph.core.access import SKIP_OPTION, AccessDenied
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import FieldError, NotFound, ValidationFailed, VersionConflict
from crm_graph.core.events import jsonable, record_event
from crm_graph.core.hooks import call_each, describe, timeout_of
from crm_graph.customers.models import ConsentStatus, Customer, CustomerKind
from crm_graph.customers.service.assign import person_display_name
from crm_graph.dedupe import events as _events  # noqa: F401  (customer.merge_undone)
from crm_graph.dedupe import service as dedupe
from crm_graph.dedupe.models import DEDUPE_TABLES, CustomerMerge, DuplicateCandidate, DuplicateKey, MergedCustomer

log = logging.getLogger("crm_graph.dedupe")

HOOK = "crm_merge_customers"
PLUGIN_FAILED = "PLUGIN_FAILED"
UNDO_DAYS = 30
MAX_MERGED = 10
_UNSCOPED = {SKIP_OPTION: True}

# The survivor's fields a merge may take from another customer: GraphQL name -> model attributes.
FIELDS: dict[str, tuple[str, ...]] = {
    "displayName": ("first_name", "last_name", "organization_name"),  # the whole name, shown as displayName
    "firstName": ("first_name",),
    "lastName": ("last_name",),
    "organizationName": ("organization_name",),
    "jobTitle": ("job_title",),
    "organization": ("organization_id",),
    "owner": ("owner_id", "team_id"),
    "source": ("source",),
    "lifecycleStage": ("lifecycle_stage",),
    "emailConsent": ("consent_status", "consent_at", "consent_source"),
    "birthday": ("birthday",),
    "gender": ("gender",),
    "locale": ("locale",),
    "timeZone": ("time_zone",),
    "country": ("country",),
    "region": ("region",),
    "city": ("city",),
    "externalRef": ("external_system", "external_id"),
}
# Taken from a merged customer only when chosen: changing the owner needs `customers:assign`,
# and consent is never upgraded silently (an opt-out always wins, see _consent).
_EXPLICIT_ONLY = {"owner", "emailConsent", "displayName"}

# Rows that are one thing twice although no unique key says so: the survivor keeps its own.
_SAME: dict[str, tuple[str, ...]] = {
    "customer_emails": ("address",),
    "customer_phones": ("number",),
    "customer_addresses": ("line1", "line2", "postal_code", "city", "country"),
}


@dataclass
class Plan:
    """What a merge does (or did): the survivor's fields, each row moved or removed, counts by
    table, and what the plugins reported."""

    survivor_id: int
    merged_ids: list[int]
    fields: dict[str, Any] = field(default_factory=dict)  # {"before": {...}, "after": {...}}
    changes: list[dict[str, Any]] = field(default_factory=list)  # {table, row, column, from, to}
    removed: list[dict[str, Any]] = field(default_factory=list)  # {table, row, values}
    plugins: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False

    def counts(self) -> list[tuple[str, int, int]]:
        """(table, rows moved, rows removed), by table name."""
        moved: dict[str, set[str]] = defaultdict(set)
        removed: dict[str, int] = defaultdict(int)
        for change in self.changes:
            if change.get("kind", "move") == "move":
                moved[change["table"]].add(repr(sorted(change["row"].items())))
        for row in self.removed:
            removed[row["table"]] += 1
        return [(t, len(moved.get(t, ())), removed.get(t, 0)) for t in sorted({*moved, *removed})]


@dataclass(frozen=True)
class _Reference:
    table: sa.Table
    column: sa.Column[Any]

    @property
    def pk(self) -> list[sa.Column[Any]]:
        return list(self.table.primary_key.columns)

    def unique_sets(self) -> list[tuple[str, ...]]:
        """The unique keys a move to another customer could break: those holding the column."""
        sets: list[tuple[str, ...]] = []
        name = self.column.name
        for constraint in self.table.constraints:
            if isinstance(constraint, (sa.PrimaryKeyConstraint, sa.UniqueConstraint)):
                cols = tuple(c.name for c in constraint.columns)
                if name in cols:
                    sets.append(cols)
        for index in self.table.indexes:
            cols = tuple(c.name for c in index.columns)
            if index.unique and name in cols:
                sets.append(cols)
        if self.table.name in _SAME and name == "customer_id":
            sets.append(("customer_id", *_SAME[self.table.name]))
        return [s for s in sets if len(s) > 1 or s == (name,)]


def _metadatas(plugins: Any) -> list[sa.MetaData]:
    from crm_graph.db.metadata import target_metadata

    out = [target_metadata()]
    if plugins is not None:
        from crm_graph.plugins import migrations

        try:
            out.extend(m.metadata for _, m in migrations(plugins) if m.metadata is not None)
        except Exception as exc:  # noqa: BLE001 - a plugin's broken registration must not hide the core's tables
            log.error("crm_merge_customers: the plugins' tables could not be listed: %s", describe(exc))
    return out


def references(plugins: Any = None) -> list[_Reference]:
    """Every column with a foreign key to ``customers.id``, but the merge's own bookkeeping."""
    found: dict[tuple[str, str], _Reference] = {}
    for metadata in _metadatas(plugins):
        for table in metadata.sorted_tables:
            if table.name in DEDUPE_TABLES:
                continue
            for fk in table.foreign_keys:
                if fk.target_fullname == "customers.id":
                    found.setdefault((table.name, fk.parent.name), _Reference(table, fk.parent))
    return [found[k] for k in sorted(found)]


# --- checks ----------------------------------------------------------------------------------------


def _fail(field_name: str | None, code: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field_name, code, message)])


async def _load(session: AsyncSession, survivor_id: int, merged_ids: Sequence[int]) -> tuple[Customer, list[Customer]]:
    """The customers, locked (PostgreSQL: ``FOR UPDATE``, in id order so two merges cannot
    deadlock; SQLite writers take turns), read fresh through the caller's scope."""
    wanted = sorted({survivor_id, *merged_ids})
    stmt = (
        sa.select(Customer).where(Customer.id.in_(wanted)).order_by(Customer.id)
        .with_for_update().execution_options(populate_existing=True)
    )
    found = {c.id: c for c in (await session.scalars(stmt)).all()}
    if survivor_id not in found:
        raise NotFound("Customer", "survivorId")
    merged = []
    for index, pk in enumerate(merged_ids):
        if pk not in found:
            raise NotFound("Customer", f"mergedIds.{index}")
        merged.append(found[pk])
    return found[survivor_id], merged


async def _check(session: AsyncSession, survivor: Customer, merged: list[Customer]) -> None:
    pointers = await dedupe.survivors_of(session, [survivor.id, *(c.id for c in merged)])
    for path, customer in (("survivorId", survivor), *((f"mergedIds.{i}", c) for i, c in enumerate(merged))):
        if customer.id in pointers:
            raise _fail(path, codes.INVALID_STATE, "This customer was merged into another already; merge that one instead.")
        if customer.erased_at is not None:
            raise _fail(path, codes.INVALID_STATE, "This customer was erased (a privacy request) and cannot be merged.")
        if customer.deleted_at is not None:
            raise _fail(path, codes.INVALID_STATE, "This customer is deleted; restore it before merging.")
    for index, customer in enumerate(merged):
        if customer.kind is not survivor.kind:
            raise _fail(
                f"mergedIds.{index}", codes.INVALID_VALUE,
                f"A {customer.kind.value.lower()} cannot be merged with a {survivor.kind.value.lower()}.",
            )


# --- the survivor's fields ------------------------------------------------------------------------------


def _empty(values: tuple[Any, ...]) -> bool:
    return all(v is None or v == "" for v in values)


def _values(customer: Customer, attrs: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(customer, a) for a in attrs)


def _field_values(
    survivor: Customer, merged: list[Customer], choices: Mapping[str, int]
) -> dict[str, Any]:
    """The survivor's attributes after the merge: each field from the chosen customer, else the
    survivor's, else (for most fields) the first merged customer's that has one."""
    by_id = {c.id: c for c in (survivor, *merged)}
    out: dict[str, Any] = {}
    for name, attrs in FIELDS.items():
        source = by_id[choices[name]] if name in choices else survivor
        values = _values(source, attrs)
        if name not in choices and _empty(values) and name not in _EXPLICIT_ONLY:
            donor = next((c for c in merged if not _empty(_values(c, attrs))), None)
            if donor is not None:
                values = _values(donor, attrs)
        if name == "displayName" and name not in choices:
            continue  # the name fields decide it
        for attr, value in zip(attrs, values, strict=True):
            out[attr] = value
    if "displayName" in choices:
        for attr in FIELDS["displayName"]:
            out[attr] = getattr(by_id[choices["displayName"]], attr)
    _consent(out, survivor, merged, choices)
    if survivor.kind is CustomerKind.PERSON:
        out["organization_name"] = None
        out["display_name"] = person_display_name(out["first_name"], out["last_name"]) or survivor.display_name
    else:
        out["first_name"] = out["last_name"] = out["organization_id"] = None
        out["display_name"] = out["organization_name"] or survivor.display_name
    return out


def _consent(out: dict[str, Any], survivor: Customer, merged: list[Customer], choices: Mapping[str, int]) -> None:
    """An opt-out of any of the customers wins (the most recent one): a merge never makes a
    customer who said no receive marketing mail. Choosing another customer's consent then is
    refused; without an opt-out, the chosen (default: the survivor's) consent is kept."""
    everyone = [survivor, *merged]
    opted_out = [c for c in everyone if c.consent_status is ConsentStatus.OPTED_OUT]
    if not opted_out:
        return
    chosen = choices.get("emailConsent")
    if chosen is not None and chosen not in {c.id for c in opted_out}:
        raise _fail(
            "fieldChoices", codes.INVALID_VALUE,
            "Another of these customers opted out of marketing email; an opt-out always wins in a merge.",
        )
    latest = max(opted_out, key=lambda c: c.consent_at or datetime.min.replace(tzinfo=utcnow().tzinfo))
    if chosen is not None:
        latest = next(c for c in opted_out if c.id == chosen)
    out["consent_status"], out["consent_at"], out["consent_source"] = (
        ConsentStatus.OPTED_OUT, latest.consent_at, latest.consent_source,
    )


# --- rows ------------------------------------------------------------------------------------------------


def _key(row: Mapping[str, Any], cols: Sequence[str], moved_col: str) -> tuple[Any, ...] | None:
    """A row's values on a unique key, the moved column aside; None when a value is null (nulls
    never collide) ."""
    values = []
    for c in cols:
        if c == moved_col:
            continue
        v = row[c]
        if v is None:
            return None
        values.append(v.casefold() if isinstance(v, str) else v)
    return tuple(values)


async def _plan_rows(session: AsyncSession, plan: Plan, refs: list[_Reference]) -> None:
    survivor, merged = plan.survivor_id, plan.merged_ids
    for ref in refs:
        col = ref.column.name
        table = ref.table
        rows = (await session.execute(
            sa.select(table).where(ref.column.in_(merged)).order_by(ref.column, *ref.pk).execution_options(**_UNSCOPED)
        )).mappings().all()
        if table.name == "customers":
            rows = [r for r in rows if r["id"] not in (survivor, *merged)]
        if not rows:
            continue
        sets = ref.unique_sets()
        claimed: dict[tuple[str, ...], set[tuple[Any, ...]]] = defaultdict(set)
        survivor_rows = []
        if sets or table.name in _SAME:
            survivor_rows = (await session.execute(
                sa.select(table).where(ref.column == survivor).execution_options(**_UNSCOPED)
            )).mappings().all()
            for cols in sets:
                for row in survivor_rows:
                    if (k := _key(row, cols, col)) is not None:
                        claimed[cols].add(k)
        contact = table.name in _SAME and col == "customer_id"
        survivor_primary = contact and any(r.get("is_primary") for r in survivor_rows)
        position = max((r.get("position") or 0 for r in survivor_rows), default=-1) + 1
        for row in rows:
            pk = {c.name: row[c.name] for c in ref.pk}
            keys = {cols: _key(row, cols, col) for cols in sets}
            if any(k is not None and k in claimed[cols] for cols, k in keys.items()):
                plan.removed.append({"table": table.name, "row": jsonable(pk), "values": jsonable(dict(row)), "by": col})
                continue
            for cols, k in keys.items():
                if k is not None:
                    claimed[cols].add(k)
            plan.changes.append({"table": table.name, "row": jsonable(pk), "column": col, "from": row[col], "to": survivor})
            if contact:
                after = {**pk, col: survivor} if col in pk else pk
                if row.get("is_primary") and survivor_primary:
                    plan.changes.append({"table": table.name, "row": jsonable(after), "column": "is_primary",
                                         "from": True, "to": False, "kind": "adjust"})
                survivor_primary = survivor_primary or bool(row.get("is_primary"))
                if row.get("position") != position:
                    plan.changes.append({"table": table.name, "row": jsonable(after), "column": "position",
                                         "from": row.get("position"), "to": position, "kind": "adjust"})
                position += 1


def _tables(refs: list[_Reference]) -> dict[str, sa.Table]:
    return {r.table.name: r.table for r in refs}


def _where_pk(table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> sa.ColumnElement[bool]:
    cols = list(table.primary_key.columns)
    if len(cols) == 1:
        return cols[0].in_([_typed(cols[0], r[cols[0].name]) for r in rows])
    return sa.tuple_(*cols).in_([tuple(_typed(c, r[c.name]) for c in cols) for r in rows])


def _typed(column: sa.Column[Any], value: Any) -> Any:
    """A JSON value back in the column's Python type (ISO text to datetimes, strings to decimals
    and enums)."""
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, sa.Enum) and kind.enum_class is not None and isinstance(value, str):
        return kind.enum_class[value]
    if isinstance(kind, sa.types.TypeDecorator):
        kind = kind.impl_instance
    try:
        python_type = kind.python_type
    except NotImplementedError:
        return value
    if python_type is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    if python_type is date and isinstance(value, str):
        return date.fromisoformat(value)
    if python_type is Decimal and not isinstance(value, Decimal):
        return Decimal(str(value))
    if issubclass(python_type, enum.Enum) and isinstance(value, str):
        return python_type[value]
    return value


async def _apply_rows(session: AsyncSession, plan: Plan, tables: Mapping[str, sa.Table], now: datetime) -> None:
    for row in plan.removed:
        table = tables[row["table"]]
        await session.execute(
            sa.delete(table).where(_where_pk(table, [row["row"]])).execution_options(**_UNSCOPED)
        )
    grouped: dict[tuple[str, str, Any, Any], list[dict[str, Any]]] = defaultdict(list)
    for change in plan.changes:
        grouped[(change["table"], change["column"], change["from"], change["to"])].append(change["row"])
    for (name, column, old, new), rows in grouped.items():
        table = tables[name]
        values: dict[str, Any] = {column: new}
        if "version" in table.c and column != "version":
            values["version"] = table.c.version + 1
        if "updated_at" in table.c:
            values["updated_at"] = now
        for chunk in range(0, len(rows), 500):
            part = rows[chunk : chunk + 500]
            await session.execute(
                sa.update(table).where(_where_pk(table, part), table.c[column] == _typed(table.c[column], old))
                .values(**values).execution_options(**_UNSCOPED)
            )


# --- plugins -----------------------------------------------------------------------------------------------


async def _plugins(session: AsyncSession, plan: Plan, *, dry_run: bool) -> dict[str, Any]:
    plugins = session.info.get("plugins")
    if plugins is None:
        return {}
    out: dict[str, Any] = {}
    for outcome in await call_each(
        plugins, HOOK, timeout_of(plugins), session=session, survivor_id=plan.survivor_id,
        merged_ids=list(plan.merged_ids), dry_run=dry_run,
    ):
        if not outcome.ok:
            log.error("plugin %s: %s failed, the merge is refused: %s", outcome.plugin, HOOK, describe(outcome.error))
            raise _fail(
                None, PLUGIN_FAILED,
                f"Plugin {outcome.plugin!r} could not move its data, so nothing was merged. The server log says why.",
            )
        if outcome.value is not None:
            out[outcome.plugin] = jsonable(outcome.value)
    return out


# --- merging ------------------------------------------------------------------------------------------------


async def merge_customers(
    session: AsyncSession,
    *,
    actor: Actor,
    survivor_id: int,
    merged_ids: Sequence[int],
    field_choices: Mapping[str, int] | None = None,
    dry_run: bool = False,
) -> tuple[Customer, Plan, CustomerMerge | None]:
    """Merge ``merged_ids`` into ``survivor_id`` (see the module docstring). ``field_choices``
    maps field names of ``FIELDS`` to the customer whose value the survivor keeps. Returns the
    survivor, the plan and, unless ``dry_run``, the stored merge record."""
    if not (actor.can("customers", "update") and actor.can("customers", "delete")):
        raise AccessDenied("Merging customers needs `customers:update` and `customers:delete`.")
    merged_ids = list(dict.fromkeys(merged_ids))
    if not merged_ids:
        raise _fail("mergedIds", codes.REQUIRED, "Name at least one customer to merge into the survivor.")
    if len(merged_ids) > MAX_MERGED:
        raise _fail("mergedIds", codes.TOO_MANY, f"Merge at most {MAX_MERGED} customers at once.")
    if survivor_id in merged_ids:
        raise _fail(f"mergedIds.{merged_ids.index(survivor_id)}", codes.INVALID_VALUE, "A customer cannot be merged into itself.")
    choices = dict(field_choices or {})
    for index, (name, pk) in enumerate(choices.items()):
        if name not in FIELDS:
            raise _fail(f"fieldChoices.{index}.field", codes.INVALID_VALUE, f"{name!r} is not a field a merge can choose.")
        if pk not in (survivor_id, *merged_ids):
            raise _fail(f"fieldChoices.{index}.customerId", codes.INVALID_VALUE,
                        "Choose the survivor or one of the merged customers.")

    survivor, merged = await _load(session, survivor_id, merged_ids)
    await _check(session, survivor, merged)
    after = _field_values(survivor, merged, choices)
    before = {attr: getattr(survivor, attr) for attr in after}
    plan = Plan(survivor.id, [c.id for c in merged], dry_run=dry_run)
    plan.fields = {"before": jsonable(before), "after": jsonable(after)}
    plugins = session.info.get("plugins")
    refs = references(plugins)
    await _plan_rows(session, plan, refs)
    # The merged customers lose their external references, so the survivor may take one.
    for customer in merged:
        if customer.external_system is not None:
            plan.fields.setdefault("cleared", {})[str(customer.id)] = {
                "external_system": customer.external_system, "external_id": customer.external_id,
            }
    if dry_run:
        plan.plugins = await _plugins(session, plan, dry_run=True)
        return survivor, plan, None

    now = utcnow()
    version = survivor.version
    try:
        for customer in merged:
            customer.external_system = customer.external_id = None
            customer.deleted_at = now
            customer.updated_at = now
        await session.flush()
        await _apply_rows(session, plan, _tables(refs), now)
        for attr, value in after.items():
            setattr(survivor, attr, value)
        survivor.updated_at = now
        await session.flush()
    except sa.orm.exc.StaleDataError:
        raise VersionConflict(version, version + 1) from None
    plan.plugins = await _plugins(session, plan, dry_run=False)
    await _after_move(session, survivor.id, now, actor)

    record = CustomerMerge(
        survivor_id=survivor.id, merged_ids=plan.merged_ids, field_choices=jsonable(choices), fields=plan.fields,
        changes=jsonable(plan.changes), removed=plan.removed, plugins=plan.plugins, created_at=now,
        created_by=actor.principal, undo_until=now + timedelta(days=UNDO_DAYS), undone_at=None,
    )
    session.add(record)
    await session.flush()
    # Pointers: the merged customers, and anything merged into them before, lead to the survivor.
    await session.execute(
        sa.update(MergedCustomer).where(MergedCustomer.survivor_id.in_(plan.merged_ids))
        .values(survivor_id=survivor.id).execution_options(**_UNSCOPED)
    )
    session.add_all(MergedCustomer(customer_id=pk, survivor_id=survivor.id, merge_id=record.id) for pk in plan.merged_ids)
    await session.execute(
        sa.delete(DuplicateCandidate).where(sa.or_(
            DuplicateCandidate.customer_a_id.in_(plan.merged_ids), DuplicateCandidate.customer_b_id.in_(plan.merged_ids),
        )).execution_options(**_UNSCOPED)
    )
    await session.execute(sa.delete(DuplicateKey).where(DuplicateKey.customer_id.in_(plan.merged_ids)).execution_options(**_UNSCOPED))
    await session.flush()
    await dedupe.refresh_customers(session, [survivor.id])
    record_event(
        session, type="customer.merged", entity_type="Customer", entity_id=survivor.id, actor=actor,
        payload={
            "id": survivor.id, "survivorId": survivor.id, "mergedIds": plan.merged_ids, "mergeId": record.id,
            "displayName": survivor.display_name,
            "moved": {t: n for t, n, _ in plan.counts() if n}, "removed": {t: n for t, _, n in plan.counts() if n},
            "plugins": sorted(plan.plugins),
        },
    )
    return survivor, plan, record


async def _after_move(session: AsyncSession, survivor_id: int, now: datetime, actor: Actor) -> None:
    """What derives from the moved rows and is stored: the loyalty tier (balances are sums of
    the moved lots; RFM and dynamic segments are computed from the orders, which moved)."""
    from crm_graph.loyalty.models import LoyaltyAccount
    from crm_graph.loyalty.service import review_tier

    has_account = await session.scalar(
        sa.select(LoyaltyAccount.customer_id).where(LoyaltyAccount.customer_id == survivor_id).execution_options(**_UNSCOPED)
    )
    if has_account is not None:
        await review_tier(session, survivor_id, now=now, actor=actor)


# --- undo ------------------------------------------------------------------------------------------------------


async def get_merge(session: AsyncSession, merge_id: int) -> CustomerMerge | None:
    """A merge record, if the caller can read its survivor."""
    record = await session.get(CustomerMerge, merge_id)
    if record is None:
        return None
    visible = await session.scalar(sa.select(Customer.id).where(Customer.id == record.survivor_id))
    return record if visible is not None else None


async def merges_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, CustomerMerge]:
    readable = sa.select(Customer.id)
    rows = await session.scalars(sa.select(CustomerMerge).where(CustomerMerge.id.in_(ids), CustomerMerge.survivor_id.in_(readable)))
    return {r.id: r for r in rows}


def plan_of(record: CustomerMerge) -> Plan:
    return Plan(record.survivor_id, list(record.merged_ids), fields=record.fields or {}, changes=list(record.changes or []),
                removed=list(record.removed or []), plugins=record.plugins or {})


async def undo_merge(session: AsyncSession, *, actor: Actor, merge_id: int) -> CustomerMerge:
    """Put back exactly what the merge changed: removed rows are inserted again, moved rows go
    back to their customer (a row changed again since keeps its new value), the merged customers
    are live again and the survivor's fields that still hold the merged values return to what
    they were. Only within ``UNDO_DAYS``, once, and while the survivor was not merged itself."""
    if not (actor.can("customers", "update") and actor.can("customers", "delete")):
        raise AccessDenied("Undoing a merge needs `customers:update` and `customers:delete`.")
    record = await get_merge(session, merge_id)
    if record is None:
        raise NotFound("CustomerMerge")
    now = utcnow()
    if record.undone_at is not None:
        raise _fail("id", codes.INVALID_STATE, "This merge was undone already.")
    if record.undo_until is not None and now > record.undo_until:
        raise _fail("id", codes.INVALID_STATE, f"A merge can be undone for {UNDO_DAYS} days; this one is older.")
    survivor, merged = await _load(session, record.survivor_id, list(record.merged_ids))
    if survivor.deleted_at is not None:
        raise _fail("id", codes.INVALID_STATE, "The survivor was deleted or merged since; undo that first.")
    tables: dict[str, sa.Table] = {}
    for metadata in _metadatas(session.info.get("plugins")):
        for table in metadata.sorted_tables:
            tables.setdefault(table.name, table)
    plan = plan_of(record)
    # Moved rows back, newest change first.
    for change in reversed(plan.changes):
        table = tables.get(change["table"])
        if table is None:
            continue
        row = dict(change["row"])
        if change["column"] in row:
            row[change["column"]] = change["to"]
        values: dict[str, Any] = {change["column"]: _typed(table.c[change["column"]], change["from"])}
        if "version" in table.c and change["column"] != "version":
            values["version"] = table.c.version + 1
        await session.execute(
            sa.update(table).where(_where_pk(table, [row]), table.c[change["column"]] == _typed(table.c[change["column"]], change["to"]))
            .values(**values).execution_options(**_UNSCOPED)
        )
    for row in plan.removed:
        table = tables.get(row["table"])
        if table is None:
            continue
        values = {c.name: _typed(c, row["values"].get(c.name)) for c in table.columns if c.name in row["values"]}
        await session.execute(sa.insert(table).values(**values).execution_options(**_UNSCOPED))
    # The customers.
    cleared = (plan.fields or {}).get("cleared", {})
    for customer in merged:
        customer.deleted_at = None
        customer.updated_at = now
        ref = cleared.get(str(customer.id))
        if ref:
            customer.external_system, customer.external_id = ref["external_system"], ref["external_id"]
    before, after = plan.fields.get("before", {}), plan.fields.get("after", {})
    if any(ref and survivor.external_system == ref["external_system"] and survivor.external_id == ref["external_id"]
           for ref in cleared.values()):
        survivor.external_system = survivor.external_id = None
        await session.flush()
    for attr, old in before.items():
        column = Customer.__table__.c[attr]
        if jsonable(getattr(survivor, attr)) == after.get(attr):
            setattr(survivor, attr, _typed(column, old))
    survivor.updated_at = now
    try:
        await session.flush()
    except sa.orm.exc.StaleDataError:
        raise VersionConflict(survivor.version, survivor.version + 1) from None
    await session.execute(sa.delete(MergedCustomer).where(MergedCustomer.merge_id == record.id).execution_options(**_UNSCOPED))
    record.undone_at = now
    await session.flush()
    await dedupe.refresh_customers(session, [survivor.id, *record.merged_ids])
    record_event(
        session, type="customer.merge_undone", entity_type="Customer", entity_id=survivor.id, actor=actor,
        payload={"id": survivor.id, "survivorId": survivor.id, "mergedIds": list(record.merged_ids), "mergeId": record.id},
    )
    return record
