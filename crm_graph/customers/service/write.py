"""Creating, changing, deleting and restoring customers; batch import."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_graph.core import errors as codes
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import (
    ErrorCollector,
    NotFound,
    ValidationFailed,
    VersionConflict,
)
from crm_graph.core.events import record_event, write_events
from crm_graph.core.hooks import validate_with_plugins
from crm_graph.customers import validation as v
from crm_graph.customers.models import (
    ConsentStatus,
    Customer,
    CustomerKind,
    LifecycleStage,
)
from crm_graph.customers.service.assign import (
    ServiceConfig,
    apply_input,
    EmailOwners,
    Children,
    by_external_ref,
    by_external_refs,
    check_email_duplicates,
    email_owners,
    enum_value,
    ref_key,
    write_children,
    write_children_of,
)
from crm_graph.customers.service.read import customer_payload, emails_for, get_customer

MAX_BATCH = 100


# --- writing -------------------------------------------------------------------------------


async def create_customer(
    session: AsyncSession, *, actor: Actor, data: Mapping[str, Any], config: ServiceConfig,
    known: EmailOwners | None = None,
) -> Customer:
    """Create a customer. With an ``externalRef`` that already exists, return that customer instead.
    ``known``: the email owners of a batch this customer is part of (``create_customers``)."""
    ref = data.get("externalRef")
    if ref:
        existing = await by_external_ref(session, ref)
        if existing is not None:
            return existing
    customer, children = await _prepare(session, actor=actor, data=data, config=config, known=known)
    try:
        # Only an external reference can collide with another transaction's row here (emails
        # were checked under a lock): without one, no savepoint is needed to answer the winner.
        async with session.begin_nested() if ref else contextlib.nullcontext():
            session.add(customer)
            await session.flush()
    except IntegrityError:
        # Another transaction stored the same external reference a moment ago (PostgreSQL; SQLite
        # writers take turns): answer with the winner, as a retry would.
        winner = await by_external_ref(session, ref) if ref else None
        if winner is None:
            raise
        if customer in session:
            session.expunge(customer)
        return winner
    if known is not None:
        known.add([e["address"] for e in children.emails or []], customer.display_name)
    await _finish(session, actor, [(customer, children)])
    return customer


async def _prepare(
    session: AsyncSession, *, actor: Actor, data: Mapping[str, Any], config: ServiceConfig,
    known: EmailOwners | None,
) -> tuple[Customer, Children]:
    """A new customer from ``data``, validated (plugins too) but not yet added to the session,
    and the child rows to write once it has an id; ``ValidationFailed`` when the input is wrong."""
    errors = ErrorCollector()
    kind = data.get("kind")
    try:
        kind = enum_value(CustomerKind, kind)
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
    children = await apply_input(session, customer, data, errors, config=config, creating=True, known=known)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="customer", data=data, actor=actor)
    return customer, children


async def _finish(session: AsyncSession, actor: Actor, created: list[tuple[Customer, Children]]) -> None:
    """Write the child rows of customers just inserted (together) and record their events."""
    written = await write_children_of(session, created, fresh=True)
    events = [
        record_event(
            session,
            type="customer.created",
            entity_type="Customer",
            entity_id=customer.id,
            actor=actor,
            payload=await customer_payload(session, customer, rows),
        )
        for (customer, _), rows in zip(created, written)
    ]
    if len(events) > 1:
        await write_events(session, events)


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
    children = await apply_input(session, customer, data, errors, config=config, creating=False)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="customer", data={**data, "id": customer_id}, actor=actor)
    customer.updated_at = utcnow()  # always an UPDATE, so the version moves even for child-only edits
    try:
        await write_children(session, customer, children)  # flushes the customer row too
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
    await validate_with_plugins(session, entity="customer", data={"id": customer_id, "delete": True}, actor=actor)
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
    if customer.erased_at is not None:
        raise ValidationFailed(
            [codes.FieldError("id", codes.INVALID_STATE, "This customer was erased (a privacy request) and cannot be restored.")]
        )
    errors = ErrorCollector()
    emails = [e.address for e in (await emails_for(session, [customer.id])).get(customer.id, [])]
    await check_email_duplicates(session, emails, customer.id, errors)
    if errors:
        raise ValidationFailed(
            [codes.FieldError("id", codes.DUPLICATE, "Another customer now uses this customer's email address.")]
        )
    await validate_with_plugins(session, entity="customer", data={"id": customer_id, "restore": True}, actor=actor)
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
    """Create up to 100 customers in one transaction; each item succeeds or fails on its own.

    Set-based: every item is validated first (nothing is written for one that fails), then the
    valid ones are inserted together, a statement per table rather than per customer. An item
    whose external reference exists is answered with that customer; a later item repeating an
    earlier item's reference is answered as a retry would be, once the earlier one is written."""
    if len(items) > MAX_BATCH:
        raise ValidationFailed(
            [codes.FieldError("inputs", codes.TOO_MANY, f"At most {MAX_BATCH} customers per call; split the batch.")]
        )
    # The owners of every address in the batch, looked up (and on PostgreSQL locked) at once
    # rather than customer by customer; malformed ones are left to each item's validation.
    addresses = _batch_addresses(items)
    known = await email_owners(session, addresses)
    keys = [ref_key(item.get("externalRef")) for item in items]
    existing = await by_external_refs(session, [k for k in keys if k is not None])
    results: dict[int, BatchResult] = {}
    valid: list[tuple[int, Customer, Children]] = []
    repeated: list[int] = []  # items repeating an earlier item's reference: after the others
    seen: set[tuple[Any, Any]] = set()
    for index, (item, key) in enumerate(zip(items, keys)):
        if key in existing:
            results[index] = BatchResult(index, existing[key], [])
            continue
        if key is not None and key in seen:
            repeated.append(index)
            continue
        try:
            customer, children = await _prepare(session, actor=actor, data=item, config=config, known=known)
        except ValidationFailed as exc:
            results[index] = BatchResult(index, None, exc.errors)
            continue
        if key is not None:
            seen.add(key)
        # a later item with one of these addresses is a duplicate of this one
        known.add([e["address"] for e in children.emails or []], customer.display_name)
        valid.append((index, customer, children))
    if valid:
        try:
            # An external reference can collide with another transaction's row stored since the
            # lookup (PostgreSQL): then the items are written one by one, each answered alone.
            async with session.begin_nested() if seen else contextlib.nullcontext():
                session.add_all(customer for _, customer, _ in valid)
                await session.flush()
        except IntegrityError:
            if not seen:
                raise
            repeated = sorted(repeated + [index for index, _, _ in valid])
            known = await email_owners(session, addresses)
        else:
            await _finish(session, actor, [(customer, children) for _, customer, children in valid])
            results.update((index, BatchResult(index, customer, [])) for index, customer, _ in valid)
    for index in repeated:
        try:
            async with session.begin_nested():
                customer = await create_customer(session, actor=actor, data=items[index], config=config, known=known)
            results[index] = BatchResult(index, customer, [])
        except ValidationFailed as exc:
            results[index] = BatchResult(index, None, exc.errors)
    return [results[index] for index in range(len(items))]


def _batch_addresses(items: Sequence[Mapping[str, Any]]) -> list[str]:
    addresses = []
    for item in items:
        for email in item.get("emails") or []:
            try:
                addresses.append(v.email(email.get("address")))
            except (v.InvalidValue, AttributeError):
                pass
    return addresses
