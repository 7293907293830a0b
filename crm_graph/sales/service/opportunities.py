"""Opportunities: deals moving through a pipeline's stages until won (an order) or lost.

State: ``status`` OPEN while the opportunity sits in an OPEN stage; ``winOpportunity`` moves it to
the pipeline's WON stage (status WON, and an order is created from its line items);
``loseOpportunity`` moves it to the LOST stage (status LOST, with a reason). A lost opportunity
can be revived by moving it to an OPEN stage; a won one stays won. Every stage change closes the
current stage-history row and opens a new one, so time in each stage can be read back.

Amount: with line items it is the sum of their totals; without, the amount given by hand (0 if
none). Probability: the stage's unless set by hand; WON is 100 and LOST 0 whatever was set.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import money
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, NotFound
from crm_graph.core.events import record_event
from crm_graph.core.filters import compile_filter
from crm_graph.core.hooks import validate_with_plugins
from crm_graph.customers import service as customers
from crm_graph.customers.models import AcquisitionChannel, Customer
from crm_graph.sales import codes
from crm_graph.sales.filters import OPPORTUNITY_FILTER
from crm_graph.sales.models import (
    Opportunity,
    OpportunityLineItem,
    OpportunityStatus,
    Order,
    OrderOrigin,
    PipelineStage,
    StageHistory,
    StageKind,
)
from crm_graph.sales.service import orders as order_service
from crm_graph.sales.service import pipelines as pipeline_service
from crm_graph.sales.service.common import (
    PricedLine,
    check,
    check_version,
    currency,
    enum_value,
    fail,
    line_items,
    money_input,
    probability,
    text,
)

# --- reading ------------------------------------------------------------------------------


async def get_opportunity(
    session: AsyncSession, opportunity_id: int, *, include_deleted: bool = False, lock: bool = False
) -> Opportunity | None:
    """One opportunity; ``lock`` takes a row lock (PostgreSQL) so state changes run one at a time."""
    stmt = sa.select(Opportunity).where(Opportunity.id == opportunity_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    opportunity = await session.scalar(stmt)
    if opportunity is None or (opportunity.deleted_at is not None and not include_deleted):
        return None
    return opportunity


async def require(session: AsyncSession, opportunity_id: int, *, lock: bool = False) -> Opportunity:
    opportunity = await get_opportunity(session, opportunity_id, lock=lock)
    if opportunity is None:
        raise NotFound("Opportunity")
    return opportunity


async def opportunities_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Opportunity]:
    rows = await session.scalars(sa.select(Opportunity).where(Opportunity.id.in_(ids), Opportunity.deleted_at.is_(None)))
    return {o.id: o for o in rows}


def opportunity_select(filter: Mapping[str, Any] | None = None) -> sa.Select[tuple[Opportunity]]:
    """Live opportunities of live customers matching ``filter``."""
    stmt = (
        sa.select(Opportunity)
        .join(Customer, Customer.id == Opportunity.customer_id)
        .where(Opportunity.deleted_at.is_(None), Customer.deleted_at.is_(None))
    )
    if filter:
        stmt = stmt.where(compile_filter(OPPORTUNITY_FILTER, filter))
    return stmt


async def lines_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[OpportunityLineItem]]:
    rows = await session.scalars(
        sa.select(OpportunityLineItem)
        .where(OpportunityLineItem.opportunity_id.in_(ids))
        .order_by(OpportunityLineItem.opportunity_id, OpportunityLineItem.position)
    )
    out: dict[int, list[OpportunityLineItem]] = defaultdict(list)
    for row in rows:
        out[row.opportunity_id].append(row)
    return out


async def history_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[StageHistory]]:
    rows = await session.scalars(
        sa.select(StageHistory)
        .where(StageHistory.opportunity_id.in_(ids))
        .order_by(StageHistory.opportunity_id, StageHistory.entered_at, StageHistory.id)
    )
    out: dict[int, list[StageHistory]] = defaultdict(list)
    for row in rows:
        out[row.opportunity_id].append(row)
    return out


async def orders_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, Order]:
    """The order each won opportunity produced (directly, or through an accepted quote)."""
    rows = await session.scalars(
        sa.select(Order).where(Order.opportunity_id.in_(ids)).order_by(Order.opportunity_id, Order.id)
    )
    out: dict[int, Order] = {}
    for order in rows:
        out.setdefault(order.opportunity_id, order)  # type: ignore[arg-type]
    return out


def effective_probability(status: OpportunityStatus, override: int | None, stage_probability: int) -> int:
    """The same rule as the SQL of the pipeline summary (``reports._probability``)."""
    if status is OpportunityStatus.WON:
        return 100
    if status is OpportunityStatus.LOST:
        return 0
    return override if override is not None else stage_probability


def weighted_amount(amount: Decimal, chance: int, currency_code: str) -> Decimal:
    return money.round_amount(amount * chance / 100, currency_code)


async def opportunity_payload(session: AsyncSession, opportunity: Opportunity) -> dict[str, Any]:
    lines = (await lines_for(session, [opportunity.id])).get(opportunity.id, [])
    return {
        "id": opportunity.id,
        "title": opportunity.title,
        "customerId": opportunity.customer_id,
        "pipelineId": opportunity.pipeline_id,
        "stageId": opportunity.stage_id,
        "owner": opportunity.owner,
        "amount": {"amount": opportunity.amount, "currency": opportunity.currency},
        "probabilityOverride": opportunity.probability_override,
        "expectedCloseDate": opportunity.expected_close_date,
        "source": opportunity.source,
        "status": opportunity.status,
        "lostReason": opportunity.lost_reason,
        "closedAt": opportunity.closed_at,
        "lineItems": [
            {"productId": li.product_id, "description": li.description, "quantity": li.quantity,
             "unitPrice": li.unit_price, "discountPercent": li.discount_percent, "total": li.total}
            for li in lines
        ],
        "deletedAt": opportunity.deleted_at,
        "version": opportunity.version,
    }


# --- writing ------------------------------------------------------------------------------


async def create_opportunity(session: AsyncSession, *, actor: Actor, data: Mapping[str, Any]) -> Opportunity:
    errors = ErrorCollector()
    now = utcnow()
    opportunity = Opportunity(
        status=OpportunityStatus.OPEN, version=1, created_at=now, updated_at=now, stage_entered_at=now,
        amount=Decimal(0),
    )
    opportunity.title = check(errors, "title", text, data.get("title"), 300, required=True, what="A title")
    await _customer(session, opportunity, data.get("customerId"), errors)
    stage = await _initial_stage(session, data, errors)
    _details(opportunity, data, errors)
    lines = await _money(session, opportunity, data, errors, current_lines=[])
    errors.raise_if_any()
    await validate_with_plugins(session, entity="opportunity", data=data, actor=actor)
    assert stage is not None
    opportunity.pipeline_id = stage.pipeline_id
    opportunity.stage_id = stage.id
    session.add(opportunity)
    await session.flush()
    await _write_lines(session, opportunity, lines or [])
    session.add(StageHistory(opportunity_id=opportunity.id, stage_id=stage.id, entered_at=now, moved_by=actor.label))
    await session.flush()
    record_event(session, type="opportunity.created", entity_type="Opportunity", entity_id=opportunity.id, actor=actor,
                 payload=await opportunity_payload(session, opportunity))
    return opportunity


async def update_opportunity(
    session: AsyncSession, *, actor: Actor, opportunity_id: int, data: Mapping[str, Any], expected_version: int | None
) -> Opportunity:
    opportunity = await require(session, opportunity_id, lock=True)
    check_version(expected_version, opportunity.version)
    before = await opportunity_payload(session, opportunity)
    errors = ErrorCollector()
    if "title" in data:
        title = check(errors, "title", text, data["title"], 300, required=True, what="A title")
        if title is not None:
            opportunity.title = title
    if "customerId" in data:
        await _customer(session, opportunity, data["customerId"], errors)
    _details(opportunity, data, errors)
    current = (await lines_for(session, [opportunity.id])).get(opportunity.id, [])
    lines = await _money(session, opportunity, data, errors, current_lines=current)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="opportunity", data={**data, "id": opportunity_id}, actor=actor)
    opportunity.updated_at = utcnow()  # always one UPDATE, so the version moves once
    if lines is not None:
        await session.execute(sa.delete(OpportunityLineItem).where(OpportunityLineItem.opportunity_id == opportunity.id))
        await _write_lines(session, opportunity, lines)
    await session.flush()
    after = await opportunity_payload(session, opportunity)
    changed = sorted(k for k in after if after[k] != before.get(k) and k != "version")
    record_event(session, type="opportunity.updated", entity_type="Opportunity", entity_id=opportunity.id, actor=actor,
                 payload=after, changes={"fields": changed, "before": {k: before[k] for k in changed}})
    return opportunity


async def move_opportunity(
    session: AsyncSession, *, actor: Actor, opportunity_id: int, stage_id: int | None, expected_version: int | None
) -> Opportunity:
    opportunity = await require(session, opportunity_id, lock=True)
    check_version(expected_version, opportunity.version)
    stage = await pipeline_service.live_stage(session, stage_id) if stage_id is not None else None
    if stage is None:
        raise fail("stageId", codes.NOT_FOUND, "The stage was not found.")
    if stage.pipeline_id != opportunity.pipeline_id:
        raise fail("stageId", codes.WRONG_PIPELINE, "That stage belongs to another pipeline than the opportunity's.")
    if stage.kind is not StageKind.OPEN:
        raise fail("stageId", codes.CLOSED_STAGE,
                   f"{stage.name!r} is a {stage.kind.name} stage: use winOpportunity or loseOpportunity.")
    if opportunity.status is OpportunityStatus.WON:
        raise fail("id", codes.INVALID_STATE, "A won opportunity stays won; its order exists already.")
    if opportunity.stage_id == stage.id:
        return opportunity
    await validate_with_plugins(session, entity="opportunity", data={"id": opportunity_id, "stageId": stage.id}, actor=actor)
    previous = opportunity.stage_id
    reopened = opportunity.status is OpportunityStatus.LOST
    now = utcnow()
    await _enter_stage(session, opportunity, stage, actor, now)
    if reopened:
        opportunity.status, opportunity.lost_reason, opportunity.closed_at = OpportunityStatus.OPEN, None, None
    await session.flush()
    record_event(session, type="opportunity.stage_changed", entity_type="Opportunity", entity_id=opportunity.id,
                 actor=actor, payload=await opportunity_payload(session, opportunity),
                 changes={"fromStageId": previous, "toStageId": stage.id, "reopened": reopened})
    return opportunity


async def win_opportunity(
    session: AsyncSession, *, actor: Actor, opportunity_id: int, expected_version: int | None = None
) -> tuple[Opportunity, Order | None]:
    """Close as won and create the order. Winning a won opportunity returns it and its order."""
    opportunity = await require(session, opportunity_id, lock=True)
    if opportunity.status is OpportunityStatus.WON:
        return opportunity, (await orders_for(session, [opportunity.id])).get(opportunity.id)
    check_version(expected_version, opportunity.version)
    if opportunity.status is OpportunityStatus.LOST:
        raise fail("id", codes.INVALID_STATE, "This opportunity was lost; move it to an open stage before winning it.")
    customer = await customers.get_customer(session, opportunity.customer_id)
    if customer is None:
        raise fail("id", codes.INVALID_STATE, "The opportunity's customer was deleted.")
    await validate_with_plugins(session, entity="opportunity", data={"id": opportunity_id, "status": "WON"}, actor=actor)
    lines = [PricedLine.from_row(r) for r in (await lines_for(session, [opportunity.id])).get(opportunity.id, [])]
    if not lines and opportunity.amount > 0:
        lines = [PricedLine(None, None, opportunity.title[:300], Decimal(1), opportunity.amount, Decimal(0)).priced(opportunity.currency)]
    await close(session, actor, opportunity, won=True)
    created = None
    if lines:
        created = await order_service.create_order_record(
            session, actor=actor, customer_id=opportunity.customer_id, currency=opportunity.currency, lines=lines,
            tax_rate=Decimal(0), origin=OrderOrigin.OPPORTUNITY, opportunity_id=opportunity.id,
        )
    record_event(session, type="opportunity.won", entity_type="Opportunity", entity_id=opportunity.id, actor=actor,
                 payload={**await opportunity_payload(session, opportunity), "orderId": created.id if created else None})
    return opportunity, created


async def lose_opportunity(
    session: AsyncSession, *, actor: Actor, opportunity_id: int, reason: Any, expected_version: int | None = None
) -> Opportunity:
    opportunity = await require(session, opportunity_id, lock=True)
    if opportunity.status is OpportunityStatus.LOST:
        return opportunity
    check_version(expected_version, opportunity.version)
    if opportunity.status is OpportunityStatus.WON:
        raise fail("id", codes.INVALID_STATE, "A won opportunity cannot be lost; cancel or refund its order instead.")
    errors = ErrorCollector()
    why = check(errors, "reason", text, reason, 500)
    errors.raise_if_any()
    await validate_with_plugins(session, entity="opportunity", data={"id": opportunity_id, "status": "LOST", "reason": why}, actor=actor)
    opportunity.lost_reason = why
    await close(session, actor, opportunity, won=False)
    record_event(session, type="opportunity.lost", entity_type="Opportunity", entity_id=opportunity.id, actor=actor,
                 payload=await opportunity_payload(session, opportunity))
    return opportunity


async def close(session: AsyncSession, actor: Actor, opportunity: Opportunity, *, won: bool) -> PipelineStage:
    """Move to the WON or LOST stage and set the status (the caller records won/lost)."""
    stage = await pipeline_service.closing_stage(session, opportunity.pipeline_id, StageKind.WON if won else StageKind.LOST)
    previous = opportunity.stage_id
    now = utcnow()
    await _enter_stage(session, opportunity, stage, actor, now)
    opportunity.status = OpportunityStatus.WON if won else OpportunityStatus.LOST
    opportunity.closed_at = now
    await session.flush()
    record_event(session, type="opportunity.stage_changed", entity_type="Opportunity", entity_id=opportunity.id,
                 actor=actor, payload=await opportunity_payload(session, opportunity),
                 changes={"fromStageId": previous, "toStageId": stage.id, "reopened": False})
    return stage


async def delete_opportunity(session: AsyncSession, *, actor: Actor, opportunity_id: int) -> Opportunity:
    opportunity = await require(session, opportunity_id, lock=True)
    await validate_with_plugins(session, entity="opportunity", data={"id": opportunity_id, "delete": True}, actor=actor)
    opportunity.deleted_at = utcnow()
    opportunity.updated_at = opportunity.deleted_at
    await session.flush()
    record_event(session, type="opportunity.deleted", entity_type="Opportunity", entity_id=opportunity.id, actor=actor,
                 payload=await opportunity_payload(session, opportunity))
    return opportunity


async def restore_opportunity(session: AsyncSession, *, actor: Actor, opportunity_id: int) -> Opportunity:
    opportunity = await get_opportunity(session, opportunity_id, include_deleted=True, lock=True)
    if opportunity is None:
        raise NotFound("Opportunity")
    if opportunity.deleted_at is None:
        return opportunity
    await validate_with_plugins(session, entity="opportunity", data={"id": opportunity_id, "restore": True}, actor=actor)
    opportunity.deleted_at = None
    opportunity.updated_at = utcnow()
    await session.flush()
    record_event(session, type="opportunity.restored", entity_type="Opportunity", entity_id=opportunity.id, actor=actor,
                 payload=await opportunity_payload(session, opportunity))
    return opportunity


# --- helpers ------------------------------------------------------------------------------


async def _enter_stage(session: AsyncSession, opportunity: Opportunity, stage: PipelineStage, actor: Actor, now: datetime) -> None:
    await session.execute(
        sa.update(StageHistory)
        .where(StageHistory.opportunity_id == opportunity.id, StageHistory.left_at.is_(None))
        .values(left_at=now)
        .execution_options(synchronize_session=False)
    )
    session.add(StageHistory(opportunity_id=opportunity.id, stage_id=stage.id, entered_at=now, moved_by=actor.label))
    opportunity.stage_id = stage.id
    opportunity.stage_entered_at = now
    opportunity.updated_at = now


async def _customer(session: AsyncSession, opportunity: Opportunity, customer_id: Any, errors: ErrorCollector) -> None:
    if customer_id is None:
        errors.add("customerId", codes.REQUIRED, "An opportunity belongs to a customer.")
        return
    if await customers.get_customer(session, customer_id) is None:
        errors.add("customerId", codes.NOT_FOUND, "The customer was not found.")
        return
    opportunity.customer_id = customer_id


async def _initial_stage(session: AsyncSession, data: Mapping[str, Any], errors: ErrorCollector) -> PipelineStage | None:
    """The stage a new opportunity starts in: ``stageId``, else the first open stage of the
    pipeline (``pipelineId``, else the default pipeline)."""
    pipeline = None
    if data.get("pipelineId") is not None:
        pipeline = await pipeline_service.get_pipeline(session, data["pipelineId"])
        if pipeline is None:
            errors.add("pipelineId", codes.NOT_FOUND, "The pipeline was not found.")
            return None
    if data.get("stageId") is not None:
        stage = await pipeline_service.live_stage(session, data["stageId"])
        if stage is None:
            errors.add("stageId", codes.NOT_FOUND, "The stage was not found.")
        elif pipeline is not None and stage.pipeline_id != pipeline.id:
            errors.add("stageId", codes.WRONG_PIPELINE, f"That stage belongs to another pipeline than {pipeline.name!r}.")
        elif stage.kind is not StageKind.OPEN:
            errors.add("stageId", codes.CLOSED_STAGE, "A new opportunity starts in an OPEN stage.")
        else:
            return stage
        return None
    if pipeline is None:
        pipeline = await pipeline_service.default_pipeline(session)
        if pipeline is None:
            errors.add("pipelineId", codes.REQUIRED, "There is no default pipeline; say which pipeline to use.")
            return None
    stages = (await pipeline_service.stages_for(session, [pipeline.id])).get(pipeline.id, [])
    return next(s for s in stages if s.kind is StageKind.OPEN)


def _details(opportunity: Opportunity, data: Mapping[str, Any], errors: ErrorCollector) -> None:
    if "owner" in data:
        opportunity.owner = check(errors, "owner", text, data["owner"], 200)
    if "expectedCloseDate" in data:
        value = data["expectedCloseDate"]
        if value is not None and not isinstance(value, date):
            errors.add("expectedCloseDate", codes.INVALID_VALUE, "Expected a date (YYYY-MM-DD).")
        else:
            opportunity.expected_close_date = value
    if "source" in data:
        opportunity.source = None if data["source"] is None else check(errors, "source", enum_value, AcquisitionChannel, data["source"])
    if "probability" in data:
        opportunity.probability_override = None if data["probability"] is None else check(errors, "probability", probability, data["probability"])


async def _money(
    session: AsyncSession,
    opportunity: Opportunity,
    data: Mapping[str, Any],
    errors: ErrorCollector,
    *,
    current_lines: list[OpportunityLineItem],
) -> list[PricedLine] | None:
    """Currency, amount and line items. Returns the new lines (None: unchanged)."""
    code = None
    if data.get("currency") is not None:
        code = check(errors, "currency", currency, data["currency"])
        if code is None:
            return None
    manual = None
    if data.get("amount") is not None:
        manual = money_input(data["amount"], "amount", errors, places=money.SCALE)
    if code is None and manual is not None:
        code = manual.currency
    if code is None and opportunity.currency is not None:
        code = opportunity.currency
    lines: list[PricedLine] | None = None
    if "lineItems" in data:
        allowed = frozenset(li.product_id for li in current_lines)
        lines, code = await line_items(
            session, data["lineItems"] or [], errors, currency=code, require_product=True,
            check_active=True, allow_inactive=allowed,
        )
    if code is None:
        if not errors:
            errors.add("currency", codes.REQUIRED, "Give a currency, an amount or line items with prices.")
        return None
    if manual is not None and manual.currency != code:
        errors.add("amount.currency", codes.CURRENCY_MISMATCH, f"The opportunity is in {code}.")
    kept = [PricedLine.from_row(li) for li in current_lines] if lines is None else lines
    if kept and code != opportunity.currency and lines is None:
        errors.add("currency", codes.CURRENCY_MISMATCH, "The line items are priced in another currency; send them again in the new one.")
    if kept and manual is not None:
        errors.add("amount", codes.INVALID_VALUE, "With line items the amount is their sum; change the lines instead.")
    if errors:
        return None
    opportunity.currency = code
    if kept:
        opportunity.amount = sum((line.total for line in kept), Decimal(0))
    elif manual is not None:
        opportunity.amount = manual.amount
    elif lines is not None or ("amount" in data and data["amount"] is None):
        opportunity.amount = Decimal(0)  # no lines and no amount any more
    return lines


async def _write_lines(session: AsyncSession, opportunity: Opportunity, lines: list[PricedLine]) -> None:
    session.add_all(
        OpportunityLineItem(
            opportunity_id=opportunity.id,
            position=i,
            product_id=line.product_id,
            description=line.description,
            quantity=line.quantity,
            unit_price=line.unit_price,
            discount_percent=line.discount_percent,
            subtotal=line.subtotal,
            discount=line.discount,
            total=line.total,
        )
        for i, line in enumerate(lines)
    )
    await session.flush()
