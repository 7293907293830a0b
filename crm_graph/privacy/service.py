"""Privacy requests about one customer: export everything held on them, or erase their personal data.

Both run in the request's unit of work, on its scoped session: a customer the actor cannot see is
NOT_FOUND, like anywhere else.

Export reads through that scope, as every read does. An actor who sees every record (an
administrator, an integration key) gets everything; anyone else gets what they may see, and the
export says so (``complete: false``). Run data subject access requests as an administrator.

Erasure needs the right to change the customer itself (checked when the customer row is written:
FORBIDDEN otherwise). Once that is established, the customer's records everywhere are cleaned,
whoever owns them: an erasure that skipped the tickets of another team would not be one. It
removes names, contact points, tags, custom field values, birthday, gender, job title, place,
external references and free text (activity subjects and bodies, ticket subjects, descriptions,
comments and rating comments, quote names and addresses, opportunity titles), deletes segment
memberships and RFM scores, and blanks the payloads of the outbox events about those records.
It keeps what the books need: orders with their amounts, dates, lines and payments, now
belonging to "Erased customer". The customer is soft-deleted and marked ``erased_at``; it cannot
be restored. Plugins erase their own data through ``crm_erase_customer_data`` in the same
transaction; if one fails, nothing is erased (PLUGIN_FAILED) and the request can be repeated.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.activities.models import Activity
from crm_graph.core.access import SKIP_OPTION, scope_of
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import FieldError, NotFound, ValidationFailed
from crm_graph.core.events import OutboxEvent, global_id, jsonable, record_event
from crm_graph.core.hooks import call_each, describe, timeout_of, validate_with_plugins
from crm_graph.customers.models import (
    ConsentStatus,
    Customer,
    CustomerAddress,
    CustomerEmail,
    CustomerFieldValue,
    CustomerPhone,
    CustomerTag,
)
from crm_graph.customers.service import custom_values_for, get_customer
from crm_graph.sales.models import (
    Opportunity,
    OpportunityLineItem,
    Order,
    OrderExternalRef,
    OrderLineItem,
    Payment,
    Quote,
    QuoteLineItem,
    StageHistory,
)
from crm_graph.segments.models import RfmRun, RfmScore, Segment, SegmentMember
from crm_graph.support.models import (
    Ticket,
    TicketAuthorKind,
    TicketComment,
    TicketExternalRef,
    TicketRating,
    TicketTag,
)

PLUGIN_FAILED = "PLUGIN_FAILED"
ERASED_NAME = "Erased customer"
ERASED_TEXT = "[erased]"
EXPORT_HOOK = "crm_export_customer_data"
ERASE_HOOK = "crm_erase_customer_data"

_UNSCOPED = {SKIP_OPTION: True}

log = logging.getLogger("crm_graph.privacy")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _row(obj: Any, node: str | None = None, *, skip: Iterable[str] = ()) -> dict[str, Any]:
    """Every column of ``obj`` (camelCase keys, JSON-safe values); ``id`` as a global ID for nodes."""
    skipped = set(skip)
    out: dict[str, Any] = {}
    for attr in sa.inspect(type(obj)).column_attrs:
        if attr.key in skipped:
            continue
        out[_camel(attr.key)] = jsonable(getattr(obj, attr.key))
    if node is not None:
        out["id"] = global_id(node, obj.id)
    return out


async def _rows(session: AsyncSession, stmt: Any) -> list[Any]:
    return list((await session.scalars(stmt)).all())


async def _children(
    session: AsyncSession, model: Any, key: str, parents: Sequence[int], order: Sequence[Any] = (), *, skip: Iterable[str] = ()
) -> dict[int, list[dict[str, Any]]]:
    """Rows of ``model`` whose ``key`` is one of ``parents``, as JSON, grouped by parent."""
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not parents:
        return out
    column = getattr(model, key)
    for row in await _rows(session, sa.select(model).where(column.in_(parents)).order_by(column, *order)):
        out[getattr(row, key)].append(_row(row, skip=(key, *skip)))
    return out


# --- export --------------------------------------------------------------------------------------


async def export_customer_data(session: AsyncSession, *, actor: Actor, customer_id: int) -> dict[str, Any]:
    """Everything held on the customer that ``session``'s scope shows, as one JSON document."""
    customer = await get_customer(session, customer_id, include_deleted=True)
    if customer is None:
        raise NotFound("Customer")
    cid = customer.id
    contact = {
        name: (await _children(session, model, "customer_id", [cid], [model.position])).get(cid, [])
        for name, model in (("emails", CustomerEmail), ("phones", CustomerPhone), ("addresses", CustomerAddress))
    }
    tags = [t.tag for t in await _rows(session, sa.select(CustomerTag).where(CustomerTag.customer_id == cid).order_by(CustomerTag.tag))]
    data: dict[str, Any] = {
        "customer": {
            **_row(customer, "Customer"),
            **contact,
            "tags": tags,
            "customFields": jsonable((await custom_values_for(session, [cid])).get(cid, {})),
        },
    }

    activities = await _rows(session, sa.select(Activity).where(Activity.customer_id == cid).order_by(Activity.occurred_at, Activity.id))
    data["activities"] = [_row(a, "Activity", skip=("customer_id",)) for a in activities]

    opportunities = await _rows(session, sa.select(Opportunity).where(Opportunity.customer_id == cid).order_by(Opportunity.id))
    ids = [o.id for o in opportunities]
    lines = await _children(session, OpportunityLineItem, "opportunity_id", ids, [OpportunityLineItem.position])
    stages = await _children(session, StageHistory, "opportunity_id", ids, [StageHistory.entered_at, StageHistory.id])
    data["opportunities"] = [
        {**_row(o, "Opportunity", skip=("customer_id",)), "lineItems": lines.get(o.id, []), "stageHistory": stages.get(o.id, [])}
        for o in opportunities
    ]

    quotes = await _rows(session, sa.select(Quote).where(Quote.customer_id == cid).order_by(Quote.id))
    lines = await _children(session, QuoteLineItem, "quote_id", [q.id for q in quotes], [QuoteLineItem.position])
    data["quotes"] = [{**_row(q, "Quote", skip=("customer_id",)), "lineItems": lines.get(q.id, [])} for q in quotes]

    orders = await _rows(session, sa.select(Order).where(Order.customer_id == cid).order_by(Order.ordered_at, Order.id))
    ids = [o.id for o in orders]
    lines = await _children(session, OrderLineItem, "order_id", ids, [OrderLineItem.position])
    payments = await _children(session, Payment, "order_id", ids, [Payment.paid_at, Payment.id])
    refs = await _children(session, OrderExternalRef, "order_id", ids, [OrderExternalRef.system])
    data["orders"] = [
        {**_row(o, "Order", skip=("customer_id",)), "lineItems": lines.get(o.id, []), "payments": payments.get(o.id, []),
         "externalRefs": refs.get(o.id, [])}
        for o in orders
    ]

    tickets = await _rows(
        session,
        sa.select(Ticket).where(sa.or_(Ticket.customer_id == cid, Ticket.contact_id == cid)).order_by(Ticket.created_at, Ticket.id),
    )
    ids = [t.id for t in tickets]
    ticket_tags = await _children(session, TicketTag, "ticket_id", ids, [TicketTag.tag])
    comments = await _children(session, TicketComment, "ticket_id", ids, [TicketComment.created_at, TicketComment.id])
    ratings = await _children(session, TicketRating, "ticket_id", ids, [TicketRating.rated_at, TicketRating.id])
    ticket_refs = await _children(session, TicketExternalRef, "ticket_id", ids, [TicketExternalRef.system])
    data["tickets"] = [
        {**_row(t, "Ticket"), "number": t.number, "tags": [x["tag"] for x in ticket_tags.get(t.id, [])],
         "comments": comments.get(t.id, []), "ratings": ratings.get(t.id, []), "externalRefs": ticket_refs.get(t.id, [])}
        for t in tickets
    ]

    members = (await session.execute(
        sa.select(SegmentMember, Segment).join(Segment, Segment.id == SegmentMember.segment_id)
        .where(SegmentMember.customer_id == cid).order_by(SegmentMember.added_at, Segment.id)
    )).all()
    data["segments"] = [
        {"segmentId": global_id("Segment", s.id), "name": s.name, "kind": jsonable(s.kind), "addedAt": jsonable(m.added_at)}
        for m, s in members
    ]
    scores = (await session.execute(
        sa.select(RfmScore, RfmRun).join(RfmRun, RfmRun.id == RfmScore.run_id)
        .where(RfmScore.customer_id == cid).order_by(RfmRun.as_of, RfmRun.id)
    )).all()
    data["rfmScores"] = [
        {**_row(score, skip=("customer_id", "run_id")), "asOf": jsonable(run.as_of), "windowDays": run.window_days,
         "currency": run.currency}
        for score, run in scores
    ]

    entity_ids = [data["customer"]["id"], *(item["id"] for key in ("activities", "opportunities", "quotes", "orders", "tickets") for item in data[key])]
    data["plugins"] = await _plugins_export(session, cid, entity_ids)
    scope = scope_of(session.sync_session)
    data["complete"] = scope is None or scope.unrestricted
    data["exportedAt"] = jsonable(utcnow())
    data["exportedBy"] = actor.label
    return data


async def _plugins_export(session: AsyncSession, customer_id: int, entity_ids: list[str]) -> dict[str, Any]:
    plugins = session.info.get("plugins")
    if plugins is None:
        return {}
    out: dict[str, Any] = {}
    for outcome in await call_each(
        plugins, EXPORT_HOOK, timeout_of(plugins), customer_id=customer_id, session=session, entity_ids=entity_ids
    ):
        if not outcome.ok:
            _plugin_failed(outcome.plugin, EXPORT_HOOK, describe(outcome.error))
        if outcome.value is None:
            continue
        if not isinstance(outcome.value, Mapping):
            _plugin_failed(outcome.plugin, EXPORT_HOOK, f"returned {type(outcome.value).__name__}, not a dict")
        try:
            value = json.loads(json.dumps(jsonable(dict(outcome.value))))
        except (TypeError, ValueError) as exc:
            _plugin_failed(outcome.plugin, EXPORT_HOOK, f"returned data that is not JSON: {exc}")
        if value:
            out[outcome.plugin] = value
    return out


def _plugin_failed(plugin: str, hook: str, why: str) -> None:
    """Fail the request, naming the plugin; the detail (which may hold SQL or paths) goes to the log only."""
    log.error("plugin %s: %s failed, the privacy request is refused: %s", plugin, hook, why)
    raise ValidationFailed([
        FieldError(
            "id", PLUGIN_FAILED,
            f"Plugin {plugin!r} could not {'export' if hook == EXPORT_HOOK else 'erase'} its data, so nothing was done. "
            "The server log says why; ask again once the plugin works.",
        )
    ])


# --- erasure -------------------------------------------------------------------------------------


async def erase_customer(session: AsyncSession, *, actor: Actor, customer_id: int) -> Customer:
    """Remove the customer's personal data for good (see the module docstring). Erasing an erased
    customer again changes nothing."""
    customer = await get_customer(session, customer_id, include_deleted=True)
    if customer is None:
        raise NotFound("Customer")
    if customer.erased_at is not None:
        return customer
    await validate_with_plugins(session, entity="customer", data={"id": customer_id, "erase": True}, actor=actor)
    now = utcnow()
    _anonymise(customer, now)
    await session.flush()  # the write rule of the customer is checked here (FORBIDDEN if read-only)

    cid = customer.id
    records = await _records_of(session, cid)
    await _erase_records(session, cid, records, now)
    record_event(
        session, type="customer.erased", entity_type="Customer", entity_id=cid, actor=actor,
        payload={"id": cid, "erasedAt": now},
    )
    plugins = session.info.get("plugins")
    if plugins is not None:
        entity_ids = [global_id(kind, pk) for kind, pks in (("Customer", [cid]), *records.items()) for pk in pks]
        for outcome in await call_each(
            plugins, ERASE_HOOK, timeout_of(plugins), customer_id=cid, session=session, entity_ids=entity_ids
        ):
            if not outcome.ok:
                _plugin_failed(outcome.plugin, ERASE_HOOK, describe(outcome.error))
    return customer


def _anonymise(customer: Customer, now: datetime) -> None:
    for attr in (
        "first_name", "last_name", "organization_name", "job_title", "birthday", "gender", "locale", "time_zone", "region",
        "city", "external_system", "external_id", "organization_id",
    ):
        setattr(customer, attr, None)
    customer.display_name = ERASED_NAME
    # Kept: kind, country, source and lifecycle stage (not identifying; reports and the books use them).
    customer.consent_status = ConsentStatus.OPTED_OUT  # never contacted again
    customer.consent_at = now
    customer.consent_source = "erasure"
    customer.deleted_at = customer.deleted_at or now
    customer.erased_at = now
    customer.updated_at = now


async def _records_of(session: AsyncSession, customer_id: int) -> dict[str, list[int]]:
    """The ids of the customer's records of each kind, whoever owns them."""
    out = {}
    for kind, model in (("Activity", Activity), ("Opportunity", Opportunity), ("Quote", Quote), ("Order", Order), ("Ticket", Ticket)):
        stmt = sa.select(model.id).where(model.customer_id == customer_id).order_by(model.id).execution_options(**_UNSCOPED)
        out[kind] = list((await session.scalars(stmt)).all())
    return out


async def _execute(session: AsyncSession, statement: Any) -> None:
    await session.execute(statement.execution_options(**_UNSCOPED, synchronize_session=False))


async def _erase_records(session: AsyncSession, cid: int, records: Mapping[str, list[int]], now: datetime) -> None:
    for model in (CustomerEmail, CustomerPhone, CustomerAddress, CustomerTag, CustomerFieldValue, SegmentMember, RfmScore):
        await _execute(session, sa.delete(model).where(model.customer_id == cid))
    touched = {"updated_at": now}
    await _execute(session, sa.update(Activity).where(Activity.customer_id == cid).values(
        subject=ERASED_TEXT, body=None, version=Activity.version + 1, **touched))
    await _execute(session, sa.update(Opportunity).where(Opportunity.customer_id == cid).values(
        title=ERASED_TEXT, lost_reason=None, version=Opportunity.version + 1, **touched))
    await _execute(session, sa.update(Quote).where(Quote.customer_id == cid).values(
        customer_name=ERASED_NAME, billing_address=None, rejection_reason=None, version=Quote.version + 1, **touched))
    await _execute(session, sa.update(Ticket).where(Ticket.customer_id == cid).values(
        subject=ERASED_TEXT, description=None, rating_comment=None, version=Ticket.version + 1, **touched))
    # On other customers' tickets the person was the contact: the link goes, the ticket stays.
    await _execute(session, sa.update(Ticket).where(Ticket.contact_id == cid, Ticket.customer_id != cid).values(
        contact_id=None, version=Ticket.version + 1, **touched))
    tickets = records["Ticket"]
    if tickets:
        await _execute(session, sa.update(TicketComment).where(TicketComment.ticket_id.in_(tickets)).values(
            body=ERASED_TEXT,
            author=sa.case((TicketComment.author_kind == TicketAuthorKind.CUSTOMER, ERASED_NAME), else_=TicketComment.author),
        ))
        await _execute(session, sa.update(TicketRating).where(TicketRating.ticket_id.in_(tickets)).values(comment=None))
    # Events already raised carry the records as they were: keep that they happened, not what they said.
    scrubbed = {"data": {"erased": True}}
    for kind in ("Customer", "Activity", "Opportunity", "Quote", "Ticket"):
        pks = [cid] if kind == "Customer" else records[kind]
        for chunk in _chunks([str(pk) for pk in pks], 500):
            await _execute(session, sa.update(OutboxEvent).where(
                OutboxEvent.entity_type == kind, OutboxEvent.entity_id.in_(chunk)).values(payload=scrubbed))


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
