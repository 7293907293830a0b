"""Automation flows: creating and changing them, activating (publishing a version), pausing,
archiving; what they did (stats) and what they would do (simulate)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.automation import definition as d
from crm_graph.automation import engine
from crm_graph.automation.models import (
    OPEN_STATUSES,
    AutomationEnrolment,
    AutomationFlow,
    AutomationFlowVersion,
    AutomationStepRun,
    EnrolmentStatus,
    FlowStatus,
    StepOutcome,
)
from crm_graph.automation.templates import TEMPLATES
from crm_graph.core import errors as codes
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, FieldError, NotFound, ValidationFailed, VersionConflict
from crm_graph.core.events import record_event

FLOW_EVENTS = ("created", "updated", "activated", "paused", "archived")


def _payload(flow: AutomationFlow) -> dict[str, Any]:
    return {"id": flow.id, "name": flow.name, "status": flow.status, "templateKey": flow.template_key,
            "currentVersionId": flow.current_version_id, "version": flow.version}


async def get_flow(session: AsyncSession, flow_id: int, *, lock: bool = False) -> AutomationFlow | None:
    stmt = sa.select(AutomationFlow).where(AutomationFlow.id == flow_id)
    if lock and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def _require(session: AsyncSession, flow_id: int) -> AutomationFlow:
    flow = await get_flow(session, flow_id, lock=True)
    if flow is None:
        raise NotFound("Automation flow")
    return flow


def _name(data: Mapping[str, Any], errors: ErrorCollector) -> str | None:
    name = (data.get("name") or "").strip()
    if not name:
        errors.add("name", codes.REQUIRED, "A flow needs a name.")
    elif len(name) > 200:
        errors.add("name", codes.INVALID_VALUE, "At most 200 characters.")
    return name or None


async def create_flow(session: AsyncSession, *, actor: Actor, runtime: engine.Runtime, data: Mapping[str, Any],
                      template_key: str | None = None) -> AutomationFlow:
    errors = ErrorCollector()
    name = _name(data, errors)
    description = data.get("description")
    if description is not None and len(description) > 5000:
        errors.add("description", codes.INVALID_VALUE, "At most 5,000 characters.")
    definition = await d.check_definition(session, data, runtime.actions, errors)
    errors.raise_if_any()
    now = utcnow()
    flow = AutomationFlow(name=name, description=description, status=FlowStatus.DRAFT, definition=definition,
                          template_key=template_key, version=1, created_at=now, updated_at=now)
    session.add(flow)
    await session.flush()
    record_event(session, type="automation_flow.created", entity_type="AutomationFlow", entity_id=flow.id, actor=actor,
                 payload=_payload(flow))
    return flow


async def create_from_template(session: AsyncSession, *, actor: Actor, runtime: engine.Runtime, key: str,
                               name: str | None = None, activate: bool = False) -> AutomationFlow:
    template = TEMPLATES.get(key)
    if template is None:
        raise ValidationFailed([FieldError("key", codes.NOT_FOUND,
                                           f"No template {key!r}; the templates are {', '.join(TEMPLATES)}.")])
    flow = await create_flow(session, actor=actor, runtime=runtime, template_key=key,
                             data={**template.definition, "name": name or template.name, "description": template.description})
    if activate:
        flow = await activate_flow(session, actor=actor, runtime=runtime, flow_id=flow.id)
    return flow


async def update_flow(session: AsyncSession, *, actor: Actor, runtime: engine.Runtime, flow_id: int,
                      data: Mapping[str, Any], expected_version: int | None = None) -> AutomationFlow:
    """Change the working definition (and name, description). An ACTIVE flow keeps running its
    published version until it is activated again; an ARCHIVED flow cannot change."""
    flow = await _require(session, flow_id)
    if expected_version is not None and expected_version != flow.version:
        raise VersionConflict(expected_version, flow.version)
    if flow.status is FlowStatus.ARCHIVED:
        raise ValidationFailed([FieldError("id", codes.INVALID_STATE, "An archived flow cannot change.")])
    errors = ErrorCollector()
    if "name" in data:
        flow.name = _name(data, errors) or flow.name
    if "description" in data:
        flow.description = data.get("description")
    if any(k in data for k in ("trigger", "steps", "enrolmentRule", "goal")):
        merged = {**flow.definition, **{k: data[k] for k in ("trigger", "steps", "enrolmentRule", "goal") if k in data}}
        definition = await d.check_definition(session, merged, runtime.actions, errors)
        if not errors:
            flow.definition = definition
    errors.raise_if_any()
    flow.updated_at = utcnow()
    await session.flush()
    record_event(session, type="automation_flow.updated", entity_type="AutomationFlow", entity_id=flow.id, actor=actor,
                 payload=_payload(flow))
    return flow


async def activate_flow(session: AsyncSession, *, actor: Actor, runtime: engine.Runtime, flow_id: int) -> AutomationFlow:
    """Publish the working definition as a new version when it differs from the newest one, and
    make the flow ACTIVE. Running enrolments stay on the version they started on."""
    flow = await _require(session, flow_id)
    if flow.status is FlowStatus.ARCHIVED:
        raise ValidationFailed([FieldError("id", codes.INVALID_STATE, "An archived flow cannot be activated.")])
    errors = ErrorCollector()
    # Checked again: a segment, a custom field or an action it names may have gone since it was saved.
    definition = await d.check_definition(session, flow.definition, runtime.actions, errors)
    errors.raise_if_any()
    now = utcnow()
    newest = await session.scalar(sa.select(AutomationFlowVersion).where(AutomationFlowVersion.flow_id == flow.id)
                                  .order_by(AutomationFlowVersion.number.desc()).limit(1))
    if newest is None or newest.definition != definition:
        newest = AutomationFlowVersion(flow_id=flow.id, number=(newest.number + 1) if newest else 1,
                                       definition=definition, published_at=now)
        session.add(newest)
        await session.flush()
    was = flow.status
    flow.current_version_id, flow.status, flow.updated_at = newest.id, FlowStatus.ACTIVE, now
    if was is not FlowStatus.ACTIVE:
        flow.activated_at = now
        if definition["trigger"].get("kind") == "SCHEDULE":
            flow.schedule_cursor = now  # occurrences from now on, not the ones missed while inactive
    await session.flush()
    record_event(session, type="automation_flow.activated", entity_type="AutomationFlow", entity_id=flow.id, actor=actor,
                 payload={**_payload(flow), "versionNumber": newest.number})
    return flow


async def pause_flow(session: AsyncSession, *, actor: Actor, flow_id: int) -> AutomationFlow:
    """Stop enrolling and stop running steps; enrolments wait where they are until it is
    activated again (steps that fell due meanwhile then run)."""
    flow = await _require(session, flow_id)
    if flow.status is not FlowStatus.ACTIVE:
        raise ValidationFailed([FieldError("id", codes.INVALID_STATE, f"The flow is {flow.status.name}, not ACTIVE.")])
    flow.status, flow.updated_at = FlowStatus.PAUSED, utcnow()
    await session.flush()
    record_event(session, type="automation_flow.paused", entity_type="AutomationFlow", entity_id=flow.id, actor=actor,
                 payload=_payload(flow))
    return flow


async def archive_flow(session: AsyncSession, *, actor: Actor, flow_id: int) -> AutomationFlow:
    """End the flow: its running enrolments are UNENROLLED; it keeps its history and stats."""
    flow = await _require(session, flow_id)
    if flow.status is FlowStatus.ARCHIVED:
        return flow
    flow.status, flow.updated_at = FlowStatus.ARCHIVED, utcnow()
    await engine.unenrol_all(session, flow.id, "the flow was archived")
    await session.flush()
    record_event(session, type="automation_flow.archived", entity_type="AutomationFlow", entity_id=flow.id, actor=actor,
                 payload=_payload(flow))
    return flow


async def redrive_enrolment(session: AsyncSession, *, actor: Actor, enrolment_id: int) -> AutomationEnrolment:
    e = await engine.redrive(session, enrolment_id)
    if e is None:
        raise NotFound("Enrolment")
    if e.status is not EnrolmentStatus.ACTIVE:
        raise ValidationFailed([FieldError("id", codes.INVALID_STATE, f"The enrolment is {e.status.name}, not FAILED.")])
    await session.flush()
    return e


async def redrive_failed(session: AsyncSession, *, actor: Actor, flow_id: int) -> int:
    await _require(session, flow_id)
    ids = list(await session.scalars(sa.select(AutomationEnrolment.id).where(
        AutomationEnrolment.flow_id == flow_id, AutomationEnrolment.status == EnrolmentStatus.FAILED)))
    for enrolment_id in ids:
        await engine.redrive(session, enrolment_id)
    await session.flush()
    return len(ids)


# --- reading -----------------------------------------------------------------------------


def flow_select(filter: Mapping[str, Any] | None = None) -> sa.Select[tuple[AutomationFlow]]:
    """Flows matching ``filter`` (``name``, ``status`` in the filter language); raises
    ``FilterError`` for a filter that cannot be compiled."""
    from crm_graph.core import filters as f

    stmt = sa.select(AutomationFlow)
    if filter:
        spec = {"name": f.column_string(AutomationFlow.name), "status": f.column_enum(AutomationFlow.status, FlowStatus.__members__)}
        stmt = stmt.where(f.compile_filter(spec, filter))
    return stmt


async def flows_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, AutomationFlow]:
    rows = await session.scalars(sa.select(AutomationFlow).where(AutomationFlow.id.in_(list(ids))))
    return {f.id: f for f in rows}


async def enrolments_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, AutomationEnrolment]:
    rows = await session.scalars(sa.select(AutomationEnrolment).where(AutomationEnrolment.id.in_(list(ids))))
    return {e.id: e for e in rows}


async def versions_of(session: AsyncSession, flow_ids: Sequence[int]) -> dict[int, list[AutomationFlowVersion]]:
    out: dict[int, list[AutomationFlowVersion]] = defaultdict(list)
    for v in await session.scalars(sa.select(AutomationFlowVersion).where(AutomationFlowVersion.flow_id.in_(list(flow_ids)))
                                   .order_by(AutomationFlowVersion.number)):
        out[v.flow_id].append(v)
    return out


async def step_log(session: AsyncSession, enrolment_ids: Sequence[int]) -> dict[int, list[AutomationStepRun]]:
    out: dict[int, list[AutomationStepRun]] = defaultdict(list)
    for r in await session.scalars(sa.select(AutomationStepRun).where(AutomationStepRun.enrolment_id.in_(list(enrolment_ids)))
                                   .order_by(AutomationStepRun.id)):
        out[r.enrolment_id].append(r)
    return out


@dataclass
class StepStats:
    key: str
    entered: int = 0
    waiting: int = 0
    completed: int = 0
    skipped: int = 0
    failed: int = 0
    converted: int = 0


@dataclass
class FlowStats:
    enrolled: int = 0
    active: int = 0
    completed: int = 0
    converted: int = 0
    unenrolled: int = 0
    failed: int = 0
    steps: list[StepStats] = field(default_factory=list)

    @property
    def conversion_rate(self) -> float | None:
        return self.converted / self.enrolled if self.enrolled else None


async def flow_stats(session: AsyncSession, flow_ids: Sequence[int]) -> dict[int, FlowStats]:
    """Per flow: enrolments by status, and per step: entered (arrivals), waiting (there now),
    completed, skipped, failed (enrolments FAILED there now) and converted (goal reached there)."""
    out = {fid: FlowStats() for fid in flow_ids}
    E = AutomationEnrolment
    for fid, status, count in (await session.execute(
            sa.select(E.flow_id, E.status, sa.func.count()).where(E.flow_id.in_(list(flow_ids))).group_by(E.flow_id, E.status))).all():
        s = out[fid]
        s.enrolled += count
        name = {"ACTIVE": "active", "WAITING": "active", "COMPLETED": "completed", "CONVERTED": "converted",
                "UNENROLLED": "unenrolled", "FAILED": "failed"}[status.value]
        setattr(s, name, getattr(s, name) + count)
    steps: dict[tuple[int, str], StepStats] = {}

    def at(fid: int, key: str) -> StepStats:
        return steps.setdefault((fid, key), StepStats(key))

    R = AutomationStepRun
    counted = {StepOutcome.ENTERED: "entered", StepOutcome.COMPLETED: "completed", StepOutcome.SKIPPED: "skipped",
               StepOutcome.CONVERTED: "converted"}
    for fid, key, outcome, count in (await session.execute(
            sa.select(R.flow_id, R.step_key, R.outcome, sa.func.count(sa.distinct(R.enrolment_id)))
            .where(R.flow_id.in_(list(flow_ids)), R.outcome.in_(list(counted)))
            .group_by(R.flow_id, R.step_key, R.outcome))).all():
        setattr(at(fid, key), counted[outcome], count)
    waiting = sa.or_(E.status == EnrolmentStatus.WAITING, E.wait_step == E.step_key)
    for fid, key, status, count in (await session.execute(
            sa.select(E.flow_id, E.step_key, E.status, sa.func.count())
            .where(E.flow_id.in_(list(flow_ids)), E.step_key.is_not(None),
                   sa.or_(E.status == EnrolmentStatus.FAILED, sa.and_(E.status.in_(OPEN_STATUSES), waiting)))
            .group_by(E.flow_id, E.step_key, E.status))).all():
        if status is EnrolmentStatus.FAILED:
            at(fid, key).failed += count
        else:
            at(fid, key).waiting += count
    flows = await flows_by_ids(session, flow_ids)
    for fid, s in out.items():
        flow = flows.get(fid)
        order = [st["key"] for st in (flow.definition.get("steps") or [])] if flow else []
        keys = order + sorted({k for (f, k) in steps if f == fid and k not in order})
        s.steps = [steps.get((fid, k), StepStats(k)) for k in keys]
    return out


# --- simulating --------------------------------------------------------------------------


@dataclass
class SimulatedStep:
    key: str
    type: str
    outcome: str  # WOULD_RUN, WOULD_WAIT, YES, NO, WOULD_SKIP, END
    explanation: str


@dataclass
class Simulation:
    would_enrol: bool
    reason: str
    version: int | None
    steps: list[SimulatedStep]


def _wait_words(step: Mapping[str, Any]) -> str:
    parts = []
    if step.get("wait"):
        w = step["wait"]
        parts.append(", ".join(f"{w[k]} {k}" for k in ("days", "hours", "minutes") if w.get(k)))
    if step.get("untilWeekday") or step.get("untilTime"):
        parts.append(f"then until {(step.get('untilWeekday') or 'the next').lower()} {step.get('untilTime') or '09:00'} local time")
    return " ".join(parts)


async def simulate(session: AsyncSession, runtime: engine.Runtime, flow: AutomationFlow, customer_id: int,
                   now: datetime | None = None) -> Simulation:
    """What the flow would do for the customer now, step by step and why, changing nothing.
    Conditions are read as the customer is now; a wait for an event follows the branch taken
    when the event does not come (both are named)."""
    from crm_graph.customers.models import Customer

    now = now or utcnow()
    if flow.status is FlowStatus.ACTIVE and flow.current_version_id:
        version = await runtime.version(session, flow.current_version_id)
        definition, number = version.definition, version.number
    else:
        definition, number = flow.definition, None
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.deleted_at is not None:
        raise ValidationFailed([FieldError("customerId", codes.NOT_FOUND, "The customer was not found.")])
    rule, trigger = definition.get("enrolmentRule") or {}, definition.get("trigger") or {}
    reason = "the customer meets the enrolment rule"
    would = True
    last = await session.execute(sa.select(AutomationEnrolment.status, AutomationEnrolment.enrolled_at).where(
        AutomationEnrolment.flow_id == flow.id, AutomationEnrolment.customer_id == customer_id)
        .order_by(AutomationEnrolment.enrolled_at.desc()).limit(1))
    previous = last.first()
    if flow.status is not FlowStatus.ACTIVE:
        would, reason = False, f"the flow is {flow.status.name}: it enrols nobody until it is activated"
    elif previous is not None and previous.status in OPEN_STATUSES:
        would, reason = False, "the customer is in this flow now"
    elif previous is not None and rule.get("reenrolAfterDays") is None:
        would, reason = False, "the flow enrols a customer once, and this one was enrolled before"
    elif previous is not None and (now - previous.enrolled_at).days < rule["reenrolAfterDays"]:
        would, reason = False, f"enrolled {(now - previous.enrolled_at).days} days ago; again after {rule['reenrolAfterDays']}"
    elif await engine._suppressed(session, customer_id, rule):
        would, reason = False, "the customer is in a suppression segment"
    elif not await engine.matches_filter(session, customer_id, trigger.get("audience")):
        would, reason = False, "the customer is not in the trigger's audience"
    elif not await engine.matches_filter(session, customer_id, rule.get("stayWhile")):
        would, reason = False, "the enrolment condition (stayWhile) does not hold"
    view = await engine.customer_view(session, customer)
    steps = {s["key"]: s for s in definition.get("steps") or []}
    out: list[SimulatedStep] = []
    key = (definition.get("steps") or [{}])[0].get("key")
    while key is not None and len(out) < len(steps) + 1:
        step = steps[key]
        kind = step["type"]
        if kind == "ACTION":
            action = runtime.actions.get(step["action"])
            words = action.describe(step.get("params") or {}, view) if action else f"the action {step['action']!r} is not loaded"
            skip = words.startswith("would skip")
            out.append(SimulatedStep(key, kind, "WOULD_SKIP" if skip else "WOULD_RUN", words))
            key = step.get("next")
        elif kind == "CONDITION":
            holds = await engine.matches_filter(session, customer_id, step.get("condition"))
            out.append(SimulatedStep(key, kind, "YES" if holds else "NO",
                                     f"the condition {'holds' if holds else 'does not hold'} for the customer now"))
            key = step.get("yes") if holds else step.get("no")
        elif kind == "WAIT":
            out.append(SimulatedStep(key, kind, "WOULD_WAIT", f"would wait {_wait_words(step)}"))
            key = step.get("next")
        elif kind == "WAIT_FOR_EVENT":
            t = step.get("timeout") or {}
            out.append(SimulatedStep(key, kind, "WOULD_WAIT",
                                     f"would wait up to {', '.join(f'{t[k]} {k}' for k in ('days', 'hours', 'minutes') if t.get(k))} "
                                     f"for {step['eventType']}: if it comes, on to {step.get('next') or 'the end'}; "
                                     f"if not, on to {step.get('timedOut') or 'the end'} (followed here)"))
            key = step.get("timedOut")
        else:
            out.append(SimulatedStep(key, kind, "END", "the flow ends here"))
            key = None
    goal = definition.get("goal")
    if goal:
        out.append(SimulatedStep("goal", "GOAL", "END", f"at any point, {goal['eventType']} for the customer ends the flow as a conversion"))
    return Simulation(would, reason, number, out)
