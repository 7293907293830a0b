"""Pipelines and their ordered stages.

A pipeline has at least one OPEN stage, exactly one WON and exactly one LOST stage (winning and
losing move an opportunity there). ``updatePipeline`` takes the whole ordered list of stages:
listed stages with an ``id`` are kept (renamed, re-weighted, re-ordered), stages without one are
added, and live stages left out are removed. A stage that opportunities are in cannot be removed
unless ``moveOpportunities`` says where they go. Removed stages keep their row, so the stage
history of old opportunities still names them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, NotFound
from crm_graph.core.events import record_event
from crm_graph.core.hooks import validate_with_plugins
from crm_graph.sales import codes
from crm_graph.sales.models import (
    Opportunity,
    Pipeline,
    PipelineStage,
    StageHistory,
    StageKind,
)
from crm_graph.sales.service.common import (
    check,
    check_version,
    enum_value,
    fail,
    probability,
    text,
)

MAX_STAGES = 30


async def get_pipeline(session: AsyncSession, pipeline_id: int, *, lock: bool = False) -> Pipeline | None:
    """One pipeline; ``lock`` takes a row lock (PostgreSQL) so concurrent updates run one at a time."""
    stmt = sa.select(Pipeline).where(Pipeline.id == pipeline_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(stmt)


async def pipelines_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Pipeline]:
    rows = await session.scalars(sa.select(Pipeline).where(Pipeline.id.in_(ids)))
    return {p.id: p for p in rows}


async def default_pipeline(session: AsyncSession) -> Pipeline | None:
    return await session.scalar(sa.select(Pipeline).where(Pipeline.is_default.is_(True)).order_by(Pipeline.id).limit(1))


def pipeline_select() -> sa.Select[tuple[Pipeline]]:
    return sa.select(Pipeline)


async def stages_for(session: AsyncSession, pipeline_ids: Sequence[int]) -> dict[int, list[PipelineStage]]:
    """The live stages of each pipeline, in order."""
    rows = await session.scalars(
        sa.select(PipelineStage)
        .where(PipelineStage.pipeline_id.in_(pipeline_ids), PipelineStage.removed_at.is_(None))
        .order_by(PipelineStage.pipeline_id, PipelineStage.position, PipelineStage.id)
    )
    out: dict[int, list[PipelineStage]] = defaultdict(list)
    for stage in rows:
        out[stage.pipeline_id].append(stage)
    return out


async def stages_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, PipelineStage]:
    """Stages by id, removed ones included (history refers to them)."""
    rows = await session.scalars(sa.select(PipelineStage).where(PipelineStage.id.in_(ids)))
    return {s.id: s for s in rows}


async def live_stage(session: AsyncSession, stage_id: int) -> PipelineStage | None:
    stage = await session.get(PipelineStage, stage_id)
    return stage if stage is not None and stage.removed_at is None else None


async def closing_stage(session: AsyncSession, pipeline_id: int, kind: StageKind) -> PipelineStage:
    stage = await session.scalar(
        sa.select(PipelineStage).where(
            PipelineStage.pipeline_id == pipeline_id, PipelineStage.kind == kind, PipelineStage.removed_at.is_(None)
        )
    )
    assert stage is not None, "every pipeline has one WON and one LOST stage"
    return stage


async def pipeline_payload(session: AsyncSession, pipeline: Pipeline) -> dict[str, Any]:
    stages = (await stages_for(session, [pipeline.id])).get(pipeline.id, [])
    return {
        "id": pipeline.id,
        "name": pipeline.name,
        "isDefault": pipeline.is_default,
        "stages": [
            {"id": s.id, "name": s.name, "kind": s.kind, "probability": s.probability, "position": s.position}
            for s in stages
        ],
        "version": pipeline.version,
    }


# --- writing ------------------------------------------------------------------------------


async def create_pipeline(session: AsyncSession, *, actor: Actor, data: Mapping[str, Any]) -> Pipeline:
    errors = ErrorCollector()
    name = await _name(session, data.get("name"), None, errors)
    specs = _stage_specs(data.get("stages"), errors, {})
    is_default = data.get("isDefault") is True
    errors.raise_if_any()
    await validate_with_plugins(session, entity="pipeline", data=data, actor=actor)
    now = utcnow()
    if is_default or await default_pipeline(session) is None:
        await _clear_default(session)
        is_default = True
    pipeline = Pipeline(name=name, is_default=is_default, version=1, created_at=now, updated_at=now)
    session.add(pipeline)
    await _flush_unique_name(session, name)
    session.add_all(
        PipelineStage(pipeline_id=pipeline.id, position=i, name=s["name"], kind=s["kind"], probability=s["probability"])
        for i, s in enumerate(specs)
    )
    await session.flush()
    record_event(session, type="pipeline.created", entity_type="Pipeline", entity_id=pipeline.id, actor=actor,
                 payload=await pipeline_payload(session, pipeline))
    return pipeline


async def update_pipeline(
    session: AsyncSession, *, actor: Actor, pipeline_id: int, data: Mapping[str, Any], expected_version: int | None
) -> Pipeline:
    pipeline = await get_pipeline(session, pipeline_id, lock=True)
    if pipeline is None:
        raise NotFound("Pipeline")
    check_version(expected_version, pipeline.version)
    before = await pipeline_payload(session, pipeline)
    errors = ErrorCollector()
    name = await _name(session, data["name"], pipeline.id, errors) if "name" in data else pipeline.name
    make_default = False
    if "isDefault" in data and data["isDefault"] is not None:
        if data["isDefault"] is True:
            make_default = not pipeline.is_default
        elif pipeline.is_default:
            errors.add("isDefault", codes.INVALID_VALUE, "Make another pipeline the default instead; one always is.")
    existing = {s.id: s for s in (await stages_for(session, [pipeline.id])).get(pipeline.id, [])}
    specs: list[dict[str, Any]] | None = None
    moves: dict[int, int] = {}
    removed: list[PipelineStage] = []
    if "stages" in data:
        specs = _stage_specs(data["stages"], errors, existing)
        if not errors:
            removed, moves = await _plan_removals(session, specs, existing, data.get("moveOpportunities") or [], errors)
    elif data.get("moveOpportunities"):
        errors.add("moveOpportunities", codes.INVALID_VALUE, "Moving opportunities goes with a new list of stages.")
    errors.raise_if_any()
    await validate_with_plugins(session, entity="pipeline", data={**data, "id": pipeline_id}, actor=actor)

    now = utcnow()
    if make_default:
        await _clear_default(session)
        pipeline.is_default = True
    pipeline.name = name
    pipeline.updated_at = now  # one UPDATE, so the version moves once
    await _flush_unique_name(session, name)
    if specs is not None:
        for position, spec in enumerate(specs):
            stage = existing.get(spec["id"]) if spec["id"] else None
            if stage is None:
                session.add(PipelineStage(pipeline_id=pipeline.id, position=position, name=spec["name"],
                                          kind=spec["kind"], probability=spec["probability"]))
            else:
                stage.position, stage.name, stage.kind, stage.probability = position, spec["name"], spec["kind"], spec["probability"]
        for stage in removed:
            stage.removed_at = now
        await session.flush()
        for source, target in moves.items():
            await _move_all(session, actor, source, target, now)
    await session.flush()
    after = await pipeline_payload(session, pipeline)
    changed = sorted(k for k in after if after[k] != before.get(k) and k != "version")
    record_event(session, type="pipeline.updated", entity_type="Pipeline", entity_id=pipeline.id, actor=actor,
                 payload=after, changes={"fields": changed, "before": {k: before[k] for k in changed}})
    return pipeline


async def _name(session: AsyncSession, value: Any, own_id: int | None, errors: ErrorCollector) -> str:
    name = check(errors, "name", text, value, 100, required=True, what="A pipeline name")
    if name is None:
        return ""
    stmt = sa.select(Pipeline.id).where(sa.func.lower(Pipeline.name) == name.lower())
    if own_id is not None:
        stmt = stmt.where(Pipeline.id != own_id)
    if await session.scalar(stmt) is not None:
        errors.add("name", codes.DUPLICATE, f"A pipeline named {name!r} exists already.")
    return name


async def _flush_unique_name(session: AsyncSession, name: str) -> None:
    """Flush; a concurrent request that took the name first makes this a DUPLICATE, not a crash."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise fail("name", codes.DUPLICATE, f"A pipeline named {name!r} exists already.") from None


async def _clear_default(session: AsyncSession) -> None:
    others = sa.select(Pipeline).where(Pipeline.is_default.is_(True)).with_for_update()
    for other in await session.scalars(others.execution_options(populate_existing=True)):
        other.is_default = False
        other.updated_at = utcnow()
    await session.flush()


def _stage_specs(items: Any, errors: ErrorCollector, existing: Mapping[int, PipelineStage]) -> list[dict[str, Any]]:
    """Validate the ordered stage list; ``existing`` are the pipeline's live stages (for ids)."""
    if not isinstance(items, list) or not items:
        errors.add("stages", codes.REQUIRED, "A pipeline needs stages: at least one OPEN, one WON and one LOST.")
        return []
    if len(items) > MAX_STAGES:
        errors.add("stages", codes.TOO_MANY, f"At most {MAX_STAGES} stages.")
        return []
    specs: list[dict[str, Any]] = []
    names: set[str] = set()
    ids: set[int] = set()
    for i, item in enumerate(items):
        here = f"stages.{i}"
        if not isinstance(item, Mapping):
            errors.add(here, codes.INVALID_VALUE, "A stage is an object.")
            continue
        stage_id = item.get("id")
        if stage_id is not None:
            if stage_id not in existing:
                errors.add(f"{here}.id", codes.NOT_FOUND, "This pipeline has no such stage.")
            elif stage_id in ids:
                errors.add(f"{here}.id", codes.DUPLICATE, "A stage is listed twice.")
            ids.add(stage_id)
        name = check(errors, f"{here}.name", text, item.get("name"), 100, required=True, what="A stage name")
        if name is not None:
            if name.lower() in names:
                errors.add(f"{here}.name", codes.DUPLICATE, f"Two stages are named {name!r}.")
            names.add(name.lower())
        kind = check(errors, f"{here}.kind", enum_value, StageKind, item.get("kind") or StageKind.OPEN.name)
        chance = item.get("probability")
        if chance is None:
            if kind is StageKind.OPEN and stage_id in existing and existing[stage_id].kind is StageKind.OPEN:
                chance = existing[stage_id].probability  # a kept stage keeps its probability
            elif kind is StageKind.WON:
                chance = 100
            elif kind is StageKind.LOST:
                chance = 0
            else:
                errors.add(f"{here}.probability", codes.REQUIRED, "An OPEN stage needs a win probability (0-100).")
        else:
            chance = check(errors, f"{here}.probability", probability, chance)
            if kind is StageKind.WON and chance not in (None, 100):
                errors.add(f"{here}.probability", codes.OUT_OF_RANGE, "The WON stage has probability 100.")
            elif kind is StageKind.LOST and chance not in (None, 0):
                errors.add(f"{here}.probability", codes.OUT_OF_RANGE, "The LOST stage has probability 0.")
        specs.append({"id": stage_id, "name": name, "kind": kind, "probability": chance, "index": i})
    kinds = [s["kind"] for s in specs]
    if kinds.count(StageKind.WON) != 1 or kinds.count(StageKind.LOST) != 1 or StageKind.OPEN not in kinds:
        errors.add("stages", codes.INVALID_VALUE, "A pipeline has at least one OPEN stage, exactly one WON and exactly one LOST stage.")
    return specs


async def _plan_removals(
    session: AsyncSession,
    specs: list[dict[str, Any]],
    existing: Mapping[int, PipelineStage],
    move_items: list[Mapping[str, Any]],
    errors: ErrorCollector,
) -> tuple[list[PipelineStage], dict[int, int]]:
    kept = {s["id"]: s for s in specs if s["id"]}
    removed = [stage for sid, stage in existing.items() if sid not in kept]
    changed_kind = [s for s in specs if s["id"] and s["kind"] is not existing[s["id"]].kind]
    watched = [s.id for s in removed] + [s["id"] for s in changed_kind]
    occupied: dict[int, int] = {}
    if watched:
        # Deleted opportunities count too: they may be restored, and must land in a live stage.
        rows = await session.execute(
            sa.select(Opportunity.stage_id, sa.func.count()).where(Opportunity.stage_id.in_(watched)).group_by(Opportunity.stage_id)
        )
        occupied = {sid: n for sid, n in rows.all()}
    moves: dict[int, int] = {}
    mentioned: set[int] = set()
    removed_ids = {s.id for s in removed}
    for i, item in enumerate(move_items):
        here = f"moveOpportunities.{i}"
        source, target = item.get("fromStageId"), item.get("toStageId")
        mentioned.add(source)
        if source not in removed_ids:
            errors.add(f"{here}.fromStageId", codes.INVALID_VALUE, "Only a stage that is being removed can be emptied.")
            continue
        if target not in kept:
            errors.add(f"{here}.toStageId", codes.INVALID_VALUE, "Move opportunities to a stage the pipeline keeps.")
            continue
        if kept[target]["kind"] is not existing[source].kind:
            errors.add(f"{here}.toStageId", codes.INVALID_VALUE,
                       f"Opportunities of a {existing[source].kind.name} stage move to another {existing[source].kind.name} stage.")
            continue
        moves[source] = target
    for stage in removed:
        if occupied.get(stage.id) and stage.id not in mentioned:
            errors.add("stages", codes.STAGE_IN_USE,
                       f"Stage {stage.name!r} holds {occupied[stage.id]} opportunities: keep it, or move them with moveOpportunities.")
    for spec in changed_kind:
        if occupied.get(spec["id"]):
            errors.add(f"stages.{spec['index']}.kind", codes.STAGE_IN_USE,
                       "Opportunities are in this stage; its kind cannot change.")
    return removed, moves


async def _move_all(session: AsyncSession, actor: Actor, source: int, target: int, now: Any) -> None:
    """Move every opportunity (deleted ones too) from ``source`` to ``target``, with history and events."""
    ids = list(await session.scalars(sa.select(Opportunity.id).where(Opportunity.stage_id == source)))
    if not ids:
        return
    await session.execute(
        sa.update(Opportunity)
        .where(Opportunity.id.in_(ids))
        .values(stage_id=target, stage_entered_at=now, updated_at=now, version=Opportunity.version + 1)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        sa.update(StageHistory)
        .where(StageHistory.opportunity_id.in_(ids), StageHistory.left_at.is_(None))
        .values(left_at=now)
        .execution_options(synchronize_session=False)
    )
    session.add_all(
        StageHistory(opportunity_id=oid, stage_id=target, entered_at=now, moved_by=actor.label) for oid in ids
    )
    for oid in ids:
        record_event(session, type="opportunity.stage_changed", entity_type="Opportunity", entity_id=oid, actor=actor,
                     payload={"id": oid, "stageId": target}, changes={"fromStageId": source, "reason": "stage removed"})
    await session.flush()
