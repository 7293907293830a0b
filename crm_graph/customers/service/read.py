"""Reading customers: lookups, the filtered list, and batch loaders of related rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from crm_graph.core.clock import utcnow
from crm_graph.customers import validation as v
from crm_graph.customers.filters import build_condition, search_condition
from crm_graph.customers.models import (
    Customer,
    CustomerAddress,
    CustomerEmail,
    CustomerFieldValue,
    CustomerPhone,
    CustomerTag,
    CustomFieldDefinition,
)

if TYPE_CHECKING:
    from crm_graph.customers.service.assign import Written


async def get_customer(session: AsyncSession, customer_id: int, *, include_deleted: bool = False) -> Customer | None:
    customer = await session.get(Customer, customer_id)
    if customer is None or (customer.deleted_at is not None and not include_deleted):
        return None
    return customer


async def customers_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Customer]:
    rows = await session.scalars(sa.select(Customer).where(Customer.id.in_(ids), Customer.deleted_at.is_(None)))
    return {c.id: c for c in rows}


_DEFINITIONS = "crm_custom_field_definitions"


async def custom_field_definitions(session: AsyncSession) -> dict[str, CustomFieldDefinition]:
    """The custom field definitions by key, read once per transaction (a batch of 100 creates
    checks them 100 times); a flush that writes a definition, and the transaction's end, forget them."""
    cached = session.info.get(_DEFINITIONS)
    if cached is None:
        rows = await session.scalars(sa.select(CustomFieldDefinition).order_by(CustomFieldDefinition.key))
        cached = session.info[_DEFINITIONS] = {d.key: d for d in rows}
    return dict(cached)


@event.listens_for(Session, "after_flush")
def _forget_changed_definitions(session: Session, _context: Any) -> None:
    if _DEFINITIONS in session.info and any(
        isinstance(o, CustomFieldDefinition) for o in (*session.new, *session.dirty, *session.deleted)
    ):
        del session.info[_DEFINITIONS]


@event.listens_for(Session, "after_soft_rollback")
def _forget_definitions_on_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_DEFINITIONS, None)  # a rolled-back savepoint may have expired them


@event.listens_for(Session, "after_transaction_end")
def _forget_definitions(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_DEFINITIONS, None)


async def customer_select(
    session: AsyncSession, *, filter: Mapping[str, Any] | None = None, search: str | None = None
) -> sa.Select[tuple[Customer]]:
    """The (unordered) select of live customers matching ``filter`` and ``search``.

    Raises ``FilterError`` for a filter that cannot be compiled.
    """
    stmt = sa.select(Customer).where(Customer.deleted_at.is_(None))
    if filter:
        stmt = stmt.where(await build_condition(session, filter))
    if search:
        stmt = stmt.where(search_condition(search))
    return stmt


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


async def customer_payload(session: AsyncSession, customer: Customer, written: Written | None = None) -> dict[str, Any]:
    """The customer as the API shows it, for events (and so for plugins and webhooks).
    ``written``: the customer was just created with these child rows (nothing to read back)."""
    cid = customer.id
    if written is not None:
        emails, phones, tags = written.emails, written.phones, written.tags
        custom = {d.key: v.stored_custom_value(d, value) for d, value in sorted(written.custom, key=lambda dv: dv[0].key)}
    else:
        emails = (await emails_for(session, [cid])).get(cid, [])
        phones = (await phones_for(session, [cid])).get(cid, [])
        tags = (await tags_for(session, [cid])).get(cid, [])
        custom = (await custom_values_for(session, [cid])).get(cid, {})
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
        "tags": tags,
        "source": customer.source,
        "lifecycleStage": customer.lifecycle_stage,
        "emailConsent": {"status": customer.consent_status, "at": customer.consent_at, "source": customer.consent_source},
        "birthday": customer.birthday,
        "gender": customer.gender,
        "locale": customer.locale,
        "timeZone": customer.time_zone,
        "country": customer.country,
        "region": customer.region,
        "city": customer.city,
        "customFields": custom,
        "createdAt": customer.created_at,
        "updatedAt": customer.updated_at,
        "deletedAt": customer.deleted_at,
        "version": customer.version,
    }



def age(birthday: date | None, today: date | None = None) -> int | None:
    if birthday is None:
        return None
    today = today or utcnow().date()
    return today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))

