"""Running flows: enrolling customers, and carrying each enrolment through its steps.

Enrolments are durable rows. A round (``run_due``) claims the enrolments whose step is due
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of workers share them; SQLite
serialises writers), under a lease: a worker that dies lets its claims lapse and another takes
them over. Each step is one short transaction that records the step in the log and moves the
enrolment on, so a worker killed between steps resumes at the step it had reached.

Actions are done once per (enrolment, step) (``AutomationActionRun``): a database action in the
transaction that moves the enrolment on; an outside action (a mail, a webhook) is marked started
in a transaction of its own first, and a mark found on a later visit means a worker died in the
middle: the step is recorded as done with its outcome unknown, never repeated. A step that fails
is tried again with backoff, ``max_attempts`` times, after which the enrolment is FAILED (the
dead letter; ``redriveAutomationEnrolment`` puts it back).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.automation import definition as d
from crm_graph.automation.config import AutomationSettings, automation_settings
from crm_graph.automation.models import (
    OPEN_STATUSES,
    ActionRunStatus,
    AutomationActionRun,
    AutomationEnrolment,
    AutomationFlow,
    AutomationFlowVersion,
    AutomationStepRun,
    EnrolmentStatus,
    FlowStatus,
    StepOutcome,
)
from crm_graph.core.actor import SYSTEM
from crm_graph.core.automation import ActionContext, ActionError, AutomationAction
from crm_graph.core.clock import utcnow
from crm_graph.core.dispatch import backoff
from crm_graph.core.events import Event, customers_of, record_event
from crm_graph.core.filters import FilterError

log = logging.getLogger("crm_graph.automation")


def actions_of(plugins: Any) -> dict[str, AutomationAction]:
    from crm_graph.plugins import collect_by_key

    return collect_by_key(plugins, "crm_automation_actions", protocol=AutomationAction, key=lambda a: a.name,
                          what=lambda name: f"automation action {name!r}")


@dataclass
class Version:
    id: int
    flow_id: int
    number: int
    definition: Mapping[str, Any]
    steps: dict[str, Mapping[str, Any]]

    @property
    def first(self) -> str | None:
        steps = self.definition.get("steps") or []
        return steps[0]["key"] if steps else None

    @property
    def trigger(self) -> Mapping[str, Any]:
        return self.definition.get("trigger") or {}

    @property
    def rule(self) -> Mapping[str, Any]:
        return self.definition.get("enrolmentRule") or {}

    @property
    def goal(self) -> Mapping[str, Any] | None:
        return self.definition.get("goal")


@dataclass
class RoundResult:
    claimed: int = 0
    steps: int = 0
    finished: int = 0
    failed: int = 0


@dataclass
class Runtime:
    """What running flows needs, made once per plugin manager."""

    settings: Any
    plugins: Any
    config: AutomationSettings
    actions: dict[str, AutomationAction]
    versions: dict[int, Version] = field(default_factory=dict)  # published versions never change

    async def version(self, session: AsyncSession, version_id: int) -> Version:
        found = self.versions.get(version_id)
        if found is None:
            row = await session.get(AutomationFlowVersion, version_id)
            assert row is not None
            found = Version(row.id, row.flow_id, row.number, row.definition,
                            {s["key"]: s for s in row.definition.get("steps") or []})
            self.versions[version_id] = found
        return found


def runtime_of(settings: Any, plugins: Any) -> Runtime:
    runtime = getattr(plugins, "_crm_automation_runtime", None)
    if runtime is None or runtime.settings is not settings:
        runtime = Runtime(settings, plugins, automation_settings(), actions_of(plugins))
        plugins._crm_automation_runtime = runtime
    return runtime


# --- the customer --------------------------------------------------------------------------


async def customer_view(session: AsyncSession, customer: Any) -> dict[str, Any]:
    """The customer as actions and templates see it: the event payload, plus ``email`` (the
    primary address, else the first) and ``timeZone``."""
    from crm_graph.core.events import jsonable
    from crm_graph.customers import service as customers

    view = jsonable(await customers.customer_payload(session, customer))
    emails = view.get("emails") or []
    primary = next((e for e in emails if e.get("primary")), emails[0] if emails else None)
    view["email"] = primary["address"] if primary else None
    view["ownerId"], view["teamId"] = customer.owner_id, customer.team_id
    return view


def customer_zone(customer: Any, runtime: Runtime, fallback: str | None = None) -> Any:
    return d.zone(getattr(customer, "time_zone", None) or fallback, runtime.config.default_time_zone)


async def matches_filter(session: AsyncSession, customer_id: int, filter: Mapping[str, Any] | None) -> bool:
    """Whether the live customer matches a CustomerFilter now (no filter: yes). A filter that no
    longer compiles (its segment or custom field is gone) matches nobody."""
    from crm_graph.customers.filters import build_condition
    from crm_graph.customers.models import Customer

    if not filter:
        return True
    try:
        condition = await build_condition(session, filter)
    except FilterError:
        return False
    found = await session.scalar(sa.select(Customer.id).where(Customer.id == customer_id, Customer.deleted_at.is_(None), condition))
    return found is not None


async def _suppressed(session: AsyncSession, customer_id: int, rule: Mapping[str, Any]) -> bool:
    from crm_graph.core import ids

    segment_ids = rule.get("suppressionSegmentIds") or []
    if not segment_ids:
        return False
    return not await matches_filter(session, customer_id, {"segment": {"notIn": [ids.encode("Segment", s) for s in segment_ids]}})


# --- enrolling -----------------------------------------------------------------------------


def _log(session: AsyncSession, e: AutomationEnrolment, step: str | None, outcome: StepOutcome, detail: str | None = None,
         now: datetime | None = None) -> None:
    session.add(AutomationStepRun(enrolment_id=e.id, flow_id=e.flow_id, step_key=step or "-", outcome=outcome,
                                  detail=(detail or None) and detail[:1000], at=now or utcnow()))


async def enrol(session: AsyncSession, runtime: Runtime, flow: AutomationFlow, customer_id: int, *,
                trigger_key: str, trigger: Mapping[str, Any] | None = None, now: datetime | None = None,
                check_audience: bool = True) -> AutomationEnrolment | None:
    """Enrol the customer in the ACTIVE ``flow`` when its enrolment rule allows it; None when it
    does not (or this trigger enrolled them already)."""
    from crm_graph.customers.models import Customer

    now = now or utcnow()
    if flow.status is not FlowStatus.ACTIVE or flow.current_version_id is None:
        return None
    version = await runtime.version(session, flow.current_version_id)
    rule = version.rule
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.deleted_at is not None:
        return None
    again = rule.get("reenrolAfterDays")
    key = "once" if again is None else trigger_key
    previous = await session.execute(
        sa.select(AutomationEnrolment.status, AutomationEnrolment.enrolled_at)
        .where(AutomationEnrolment.flow_id == flow.id, AutomationEnrolment.customer_id == customer_id)
        .order_by(AutomationEnrolment.enrolled_at.desc()).limit(1))
    last = previous.first()
    if last is not None and (last.status in OPEN_STATUSES or (again is not None and last.enrolled_at > now - timedelta(days=again))):
        return None
    if await _suppressed(session, customer_id, rule):
        return None
    if check_audience and not await matches_filter(session, customer_id, version.trigger.get("audience")):
        return None
    if not await matches_filter(session, customer_id, rule.get("stayWhile")):
        return None
    enrolment = AutomationEnrolment(
        flow_id=flow.id, version_id=version.id, customer_id=customer_id, status=EnrolmentStatus.ACTIVE,
        trigger_key=key[:200], step_key=version.first, next_run_at=now, attempts=0,
        context={"trigger": dict(trigger or {}), "results": {}}, enrolled_at=now)
    try:
        async with session.begin_nested():
            session.add(enrolment)
            await session.flush()
    except IntegrityError:
        return None  # this trigger enrolled them already (a replayed event, a second scan)
    _log(session, enrolment, version.first, StepOutcome.ENTERED, f"enrolled by {key}", now)
    record_event(session, type="automation.enrolled", entity_type="Customer", entity_id=customer_id, actor=SYSTEM,
                 payload={"flowId": flow.id, "flowName": flow.name, "version": version.number,
                          "enrolmentId": enrolment.id, "trigger": key})
    return enrolment


def _finish(session: AsyncSession, e: AutomationEnrolment, status: EnrolmentStatus, outcome: StepOutcome,
            detail: str, now: datetime) -> None:
    _log(session, e, e.step_key, outcome, detail, now)
    e.status, e.finished_at, e.next_run_at, e.waiting_for = status, now, None, None
    e.claim_token = e.claimed_until = None
    if status in (EnrolmentStatus.CONVERTED, EnrolmentStatus.FAILED):
        record_event(session, type=f"automation.{status.value.lower()}", entity_type="Customer", entity_id=e.customer_id,
                     actor=SYSTEM, payload={"flowId": e.flow_id, "enrolmentId": e.id, "step": e.step_key, "detail": detail})


def _advance(session: AsyncSession, e: AutomationEnrolment, target: str | None, now: datetime) -> None:
    e.attempts, e.last_error, e.wait_step, e.waiting_for = 0, None, None, None
    e.status = EnrolmentStatus.ACTIVE
    if target is None:
        e.step_key = None
        e.status, e.finished_at, e.next_run_at = EnrolmentStatus.COMPLETED, now, None
        e.claim_token = e.claimed_until = None
        return
    e.step_key, e.next_run_at = target, now
    _log(session, e, target, StepOutcome.ENTERED, None, now)


def _release(e: AutomationEnrolment) -> None:
    e.claim_token = e.claimed_until = None


def _fail_attempt(session: AsyncSession, runtime: Runtime, e: AutomationEnrolment, error: str, now: datetime,
                  *, final: bool = False) -> None:
    e.attempts += 1
    e.last_error = error[:1000]
    _log(session, e, e.step_key, StepOutcome.FAILED, f"attempt {e.attempts}: {error}", now)
    if final or e.attempts >= runtime.config.max_attempts:
        e.status, e.next_run_at = EnrolmentStatus.FAILED, None
        record_event(session, type="automation.failed", entity_type="Customer", entity_id=e.customer_id, actor=SYSTEM,
                     payload={"flowId": e.flow_id, "enrolmentId": e.id, "step": e.step_key, "error": e.last_error})
    else:
        e.next_run_at = now + timedelta(seconds=backoff(e.attempts, base=runtime.config.retry_base, cap=runtime.config.retry_cap))
    _release(e)


# --- events: triggers, goals and waits -----------------------------------------------------


async def active_flows(session: AsyncSession, runtime: Runtime) -> list[tuple[AutomationFlow, Version]]:
    flows = list(await session.scalars(sa.select(AutomationFlow).where(AutomationFlow.status == FlowStatus.ACTIVE)
                                       .order_by(AutomationFlow.id)))
    return [(f, await runtime.version(session, f.current_version_id)) for f in flows if f.current_version_id]


def trigger_fits(version: Version, event: Event) -> bool:
    t = version.trigger
    kind = t.get("kind")
    if kind == "EVENT":
        return d.event_matches(t, event.type, event.data, event.changes)
    if kind in ("SEGMENT_ENTERED", "SEGMENT_LEFT"):
        wanted = "segment.member_added" if kind == "SEGMENT_ENTERED" else "segment.member_removed"
        return event.type == wanted and (event.data or {}).get("segmentId") == t.get("segmentId")
    return False


async def handle_event(db: Any, runtime: Runtime, event: Event) -> int:
    """Apply one outbox event: convert enrolments whose goal it is, resume those waiting for it,
    and enrol customers in flows it triggers. Safe to run twice for the same event."""
    if event.type.startswith("automation."):
        return 0
    customer_ids = customers_of(event)
    if not customer_ids:
        return 0
    enrolled = 0
    now = utcnow()
    async with db.writer() as session, session.begin():
        flows = await active_flows(session, runtime)
        for cid in customer_ids:
            await _goals_and_waits(session, runtime, event, cid, now)
            for flow, version in flows:
                if trigger_fits(version, event):
                    found = await enrol(session, runtime, flow, cid, trigger_key=f"event:{event.id}", now=now,
                                        trigger={"id": event.id, "type": event.type, "data": dict(event.data or {})})
                    enrolled += found is not None
    return enrolled


async def _goals_and_waits(session: AsyncSession, runtime: Runtime, event: Event, customer_id: int, now: datetime) -> None:
    stmt = sa.select(AutomationEnrolment).where(AutomationEnrolment.customer_id == customer_id,
                                                AutomationEnrolment.status.in_(OPEN_STATUSES))
    if session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    for e in await session.scalars(stmt):
        version = await runtime.version(session, e.version_id)
        if e.context.get("trigger", {}).get("id") == event.id:
            continue  # the event that enrolled them is not also their goal or the event they wait for
        goal = version.goal
        if goal and d.event_matches(goal, event.type, event.data, event.changes):
            _finish(session, e, EnrolmentStatus.CONVERTED, StepOutcome.CONVERTED, f"goal reached: {event.type} {event.id}", now)
            continue
        if e.status is EnrolmentStatus.WAITING and e.step_key:
            step = version.steps.get(e.step_key) or {}
            if step.get("type") == "WAIT_FOR_EVENT" and d.event_matches(step, event.type, event.data, event.changes):
                _log(session, e, e.step_key, StepOutcome.COMPLETED, f"{event.type} happened ({event.id})", now)
                _advance(session, e, step.get("next"), now)


# --- running due steps ---------------------------------------------------------------------


async def claim_due(db: Any, runtime: Runtime, now: datetime, limit: int | None = None) -> list[tuple[int, str]]:
    limit = limit or runtime.config.batch_size
    token = secrets.token_hex(8)
    E = AutomationEnrolment
    async with db.writer() as session, session.begin():
        stmt = (sa.select(E.id).join(AutomationFlow, AutomationFlow.id == E.flow_id)
                .where(AutomationFlow.status == FlowStatus.ACTIVE, E.status.in_(OPEN_STATUSES), E.next_run_at <= now,
                       sa.or_(E.claimed_until.is_(None), E.claimed_until < now))
                .order_by(E.next_run_at, E.id).limit(limit))
        if db.dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=E)
        ids = list(await session.scalars(stmt))
        if ids:
            await session.execute(sa.update(E).where(E.id.in_(ids))
                                  .values(claim_token=token, claimed_until=now + timedelta(seconds=runtime.config.lease)))
    return [(i, token) for i in ids]


async def run_due(db: Any, runtime: Runtime, *, limit: int | None = None) -> RoundResult:
    """One round: claim due enrolments and run each as far as it goes now."""
    result = RoundResult()
    claims = await claim_due(db, runtime, utcnow(), limit)
    result.claimed = len(claims)
    # SQLite has one writer: enrolments side by side would only queue on its lock (and time out
    # on it under load), so there they run one after another.
    gate = asyncio.Semaphore(1 if db.dialect == "sqlite" else runtime.config.concurrency)

    async def one(claim: tuple[int, str]) -> None:
        async with gate:
            try:
                steps, status = await run_enrolment(db, runtime, *claim)
            except Exception:  # noqa: BLE001 - one enrolment's bug is that enrolment's (its claim lapses)
                log.exception("automation: enrolment %s failed to run", claim[0])
                return
            result.steps += steps
            result.finished += status in (EnrolmentStatus.COMPLETED, EnrolmentStatus.CONVERTED, EnrolmentStatus.UNENROLLED)
            result.failed += status is EnrolmentStatus.FAILED

    await asyncio.gather(*(one(c) for c in claims))
    return result


async def drain(db: Any, runtime: Runtime, max_rounds: int = 1000) -> RoundResult:
    """Run rounds until nothing is due now (tests, `crm-graph automation run`)."""
    total = RoundResult()
    for _ in range(max_rounds):
        r = await run_due(db, runtime)
        if not r.claimed:
            break
        total.claimed += r.claimed
        total.steps += r.steps
        total.finished += r.finished
        total.failed += r.failed
    return total


@dataclass
class _Pending:
    """An outside action marked started, to be carried out after its transaction committed."""

    action: AutomationAction
    ctx: ActionContext


async def run_enrolment(db: Any, runtime: Runtime, enrolment_id: int, token: str) -> tuple[int, EnrolmentStatus | None]:
    steps = 0
    status: EnrolmentStatus | None = None
    for _ in range(runtime.config.steps_per_claim):
        pending: _Pending | None = None
        async with db.writer() as session, session.begin():
            e = await session.get(AutomationEnrolment, enrolment_id,
                                  with_for_update=db.dialect == "postgresql", populate_existing=True)
            if e is None or e.claim_token != token:
                return steps, status
            status = e.status
            if e.status not in OPEN_STATUSES:
                _release(e)
                return steps, status
            outcome = await _step(session, db, runtime, e)
            steps += 1
            status = e.status
            if isinstance(outcome, _Pending):
                pending = outcome
            elif outcome is False:
                if e.claim_token == token:
                    _release(e)
                return steps, status
        if pending is not None:
            status = await _outside(db, runtime, enrolment_id, pending)
            if status not in OPEN_STATUSES:
                return steps, status
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(AutomationEnrolment).where(AutomationEnrolment.id == enrolment_id,
                                                                    AutomationEnrolment.claim_token == token)
                              .values(claim_token=None, claimed_until=None))
    return steps, status


def _due_time(step: Mapping[str, Any], now: datetime, tz: Any) -> datetime:
    due = now + d.duration(step.get("wait"))
    day, at = step.get("untilWeekday"), step.get("untilTime")
    if not day and not at:
        return due
    local = due.astimezone(tz)
    wanted = d.parse_time(at or "09:00")
    for offset in range(0, 8):
        candidate_day = (local + timedelta(days=offset)).date()
        if day and d.WEEKDAYS[candidate_day.weekday()] != day:
            continue
        candidate = datetime.combine(candidate_day, wanted, tzinfo=tz)
        if candidate >= local:
            return candidate.astimezone(due.tzinfo)
    return due


def _quiet_until(rule: Mapping[str, Any], now: datetime, tz: Any) -> datetime | None:
    """The end of the quiet hours ``now`` is in, or None when it is in none."""
    start, end = rule.get("quietHoursStart"), rule.get("quietHoursEnd")
    if not start or not end:
        return None
    local = now.astimezone(tz)
    s, t = d.parse_time(start), d.parse_time(end)
    clock = local.timetz().replace(tzinfo=None)
    inside = (s <= clock < t) if s < t else (clock >= s or clock < t)
    if not inside:
        return None
    end_day = local.date() if clock < t else local.date() + timedelta(days=1)
    return datetime.combine(end_day, t, tzinfo=tz).astimezone(now.tzinfo)


async def _message_cap_reached(session: AsyncSession, customer_id: int, rule: Mapping[str, Any], now: datetime) -> bool:
    cap = rule.get("messageCap")
    if cap is None:
        return False
    sent = await session.scalar(sa.select(sa.func.count()).select_from(AutomationActionRun).where(
        AutomationActionRun.customer_id == customer_id, AutomationActionRun.message.is_(True),
        AutomationActionRun.started_at > now - timedelta(days=rule.get("messageCapDays") or 1)))
    return int(sent or 0) >= cap


async def _step(session: AsyncSession, db: Any, runtime: Runtime, e: AutomationEnrolment) -> bool | _Pending:
    """Carry out the enrolment's current step. True: go on with the next step now; False: stop
    (waiting, finished, failed); a ``_Pending``: an outside action to do after this commit."""
    from crm_graph.customers.models import Customer

    now = utcnow()
    version = await runtime.version(session, e.version_id)
    rule = version.rule
    if e.step_key is None:
        _advance(session, e, None, now)
        return False
    step = version.steps[e.step_key]
    customer = await session.get(Customer, e.customer_id)
    if customer is None or customer.deleted_at is not None:
        _finish(session, e, EnrolmentStatus.UNENROLLED, StepOutcome.EXITED, "the customer was deleted", now)
        return False
    if await _suppressed(session, e.customer_id, rule):
        _finish(session, e, EnrolmentStatus.UNENROLLED, StepOutcome.EXITED, "the customer is in a suppression segment", now)
        return False
    if rule.get("stayWhile") and not await matches_filter(session, e.customer_id, rule["stayWhile"]):
        _finish(session, e, EnrolmentStatus.UNENROLLED, StepOutcome.EXITED, "the enrolment condition no longer holds", now)
        return False
    kind = step["type"]
    tz = customer_zone(customer, runtime, rule.get("timeZone"))
    if kind == "EXIT":
        _log(session, e, e.step_key, StepOutcome.EXITED, "exit step", now)
        _advance(session, e, None, now)
        return False
    if kind == "CONDITION":
        holds = await matches_filter(session, e.customer_id, step.get("condition"))
        _log(session, e, e.step_key, StepOutcome.COMPLETED, "the condition holds" if holds else "the condition does not hold", now)
        _advance(session, e, step.get("yes") if holds else step.get("no"), now)
        return e.status in OPEN_STATUSES
    if kind == "WAIT":
        if e.wait_step != e.step_key:
            due = _due_time(step, now, tz)
            e.wait_step, e.next_run_at = e.step_key, due
            _log(session, e, e.step_key, StepOutcome.WAITING, f"until {due.isoformat()}", now)
            return False
        _log(session, e, e.step_key, StepOutcome.COMPLETED, "waited", now)
        _advance(session, e, step.get("next"), now)
        return e.status in OPEN_STATUSES
    if kind == "WAIT_FOR_EVENT":
        if e.status is EnrolmentStatus.ACTIVE:
            e.status, e.waiting_for, e.wait_step = EnrolmentStatus.WAITING, step["eventType"], e.step_key
            e.next_run_at = now + d.duration(step.get("timeout"))
            _log(session, e, e.step_key, StepOutcome.WAITING, f"for {step['eventType']} until {e.next_run_at.isoformat()}", now)
            return False
        _log(session, e, e.step_key, StepOutcome.COMPLETED, f"{step['eventType']} did not happen in time", now)
        _advance(session, e, step.get("timedOut"), now)
        return e.status in OPEN_STATUSES
    return await _action_step(session, db, runtime, e, step, customer, tz, now)


async def _action_step(session: AsyncSession, db: Any, runtime: Runtime, e: AutomationEnrolment, step: Mapping[str, Any],
                       customer: Any, tz: Any, now: datetime) -> bool | _Pending:
    action = runtime.actions.get(step["action"])
    if action is None:
        _fail_attempt(session, runtime, e, f"the action {step['action']!r} is not loaded (its plugin is blocked?)", now)
        return False
    run = await session.scalar(sa.select(AutomationActionRun).where(
        AutomationActionRun.enrolment_id == e.id, AutomationActionRun.step_key == e.step_key))
    if run is not None:
        if run.status is ActionRunStatus.STARTED:  # its worker died while doing it: never twice
            run.status, run.done_at, run.result = ActionRunStatus.DONE, now, {"outcomeUnknown": True}
            detail = "started before but its outcome is unknown (the worker stopped): not repeated"
        else:
            detail = "done before"
        _log(session, e, e.step_key, StepOutcome.COMPLETED, detail, now)
        _advance(session, e, step.get("next"), now)
        return e.status in OPEN_STATUSES
    if action.message:
        rule = (await runtime.version(session, e.version_id)).rule
        quiet = _quiet_until(rule, now, tz)
        if quiet is not None:
            e.next_run_at = quiet
            _log(session, e, e.step_key, StepOutcome.WAITING, f"quiet hours, until {quiet.isoformat()}", now)
            return False
        if await _message_cap_reached(session, e.customer_id, rule, now):
            _log(session, e, e.step_key, StepOutcome.SKIPPED, "the customer's message cap is reached", now)
            _advance(session, e, step.get("next"), now)
            return e.status in OPEN_STATUSES
    ctx = ActionContext(
        params=step.get("params") or {}, customer_id=e.customer_id, customer=await customer_view(session, customer),
        flow_id=e.flow_id, enrolment_id=e.id, step_key=e.step_key or "", idempotency_key=f"automation:{e.id}:{e.step_key}",
        now=now, db=db, settings=runtime.settings, plugins=runtime.plugins, trigger=e.context.get("trigger") or {},
        results=e.context.get("results") or {})
    run = AutomationActionRun(enrolment_id=e.id, step_key=e.step_key, customer_id=e.customer_id, action=action.name,
                              message=action.message, status=ActionRunStatus.STARTED, started_at=now)
    if action.external:
        session.add(run)
        return _Pending(action, ctx)
    ctx.session = session
    try:
        async with session.begin_nested():
            result = await action.run(ctx)
            run.status, run.done_at, run.result = ActionRunStatus.DONE, now, dict(result or {})
            session.add(run)
            await session.flush()
    except ActionError as exc:
        return _action_failed(session, runtime, e, step, exc, now)
    except Exception as exc:  # noqa: BLE001 - a bug or an outage: retried with backoff
        log.exception("automation: action %s of enrolment %s failed", action.name, e.id)
        _fail_attempt(session, runtime, e, f"{type(exc).__name__}: {exc}", now)
        return False
    _completed(session, e, step, run.result, now)
    return e.status in OPEN_STATUSES


def _completed(session: AsyncSession, e: AutomationEnrolment, step: Mapping[str, Any], result: Mapping[str, Any] | None,
               now: datetime) -> None:
    if result:
        context = dict(e.context)
        context["results"] = {**(context.get("results") or {}), e.step_key: dict(result)}
        e.context = context
    _log(session, e, e.step_key, StepOutcome.COMPLETED, f"{step['action']} done", now)
    _advance(session, e, step.get("next"), now)


def _action_failed(session: AsyncSession, runtime: Runtime, e: AutomationEnrolment, step: Mapping[str, Any],
                   exc: ActionError, now: datetime) -> bool:
    if exc.skip:
        _log(session, e, e.step_key, StepOutcome.SKIPPED, exc.message, now)
        _advance(session, e, step.get("next"), now)
        return e.status in OPEN_STATUSES
    _fail_attempt(session, runtime, e, exc.message, now, final=not exc.retry)
    return False


async def _outside(db: Any, runtime: Runtime, enrolment_id: int, pending: _Pending) -> EnrolmentStatus | None:
    """Carry out an outside action marked started, then record what became of it."""
    error: ActionError | None = None
    result: Mapping[str, Any] | None = None
    crashed: Exception | None = None
    try:
        result = await pending.action.run(pending.ctx)
    except ActionError as exc:
        error = exc
    except Exception as exc:  # noqa: BLE001 - whether it did anything is not known: the mark stays
        log.exception("automation: action %s of enrolment %s failed", pending.action.name, enrolment_id)
        crashed = exc
    now = utcnow()
    async with db.writer() as session, session.begin():
        e = await session.get(AutomationEnrolment, enrolment_id, with_for_update=db.dialect == "postgresql",
                              populate_existing=True)
        if e is None:
            return None
        version = await runtime.version(session, e.version_id)
        step = version.steps[pending.ctx.step_key]
        run = await session.scalar(sa.select(AutomationActionRun).where(
            AutomationActionRun.enrolment_id == e.id, AutomationActionRun.step_key == pending.ctx.step_key))
        if e.step_key != pending.ctx.step_key or e.status not in OPEN_STATUSES:
            if run is not None and result is not None:  # converted or unenrolled meanwhile: keep what was done
                run.status, run.done_at, run.result = ActionRunStatus.DONE, now, dict(result)
            return e.status
        if crashed is not None:
            _fail_attempt(session, runtime, e, f"{type(crashed).__name__}: {crashed}", now)
        elif error is not None:
            if run is not None and error.retry:
                await session.delete(run)  # certainly not done: the retry may do it
            elif run is not None:
                run.status, run.done_at, run.result = ActionRunStatus.DONE, now, {"error": error.message}
            _action_failed(session, runtime, e, step, error, now)
        else:
            if run is not None:
                run.status, run.done_at, run.result = ActionRunStatus.DONE, now, dict(result or {})
            _completed(session, e, step, result, now)
        return e.status


async def redrive(session: AsyncSession, enrolment_id: int) -> AutomationEnrolment | None:
    """Put a FAILED enrolment back at its failed step, due now, with its attempts reset."""
    e = await session.get(AutomationEnrolment, enrolment_id)
    if e is None or e.status is not EnrolmentStatus.FAILED:
        return e
    now = utcnow()
    e.status, e.attempts, e.next_run_at, e.finished_at = EnrolmentStatus.ACTIVE, 0, now, None
    _log(session, e, e.step_key, StepOutcome.ENTERED, "redriven", now)
    return e


async def unenrol_all(session: AsyncSession, flow_id: int, detail: str) -> int:
    now = utcnow()
    count = 0
    for e in await session.scalars(sa.select(AutomationEnrolment).where(
            AutomationEnrolment.flow_id == flow_id, AutomationEnrolment.status.in_(OPEN_STATUSES))):
        _finish(session, e, EnrolmentStatus.UNENROLLED, StepOutcome.EXITED, detail, now)
        count += 1
    return count

