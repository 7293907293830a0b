"""GraphQL API of automation flows: templates, flows and their versions, enrolments and their
step log, stats, simulation, and the mutations that create, change, activate, pause and archive
flows.

Definitions travel in the input's field names (the stored JSON of ``definition.py``). The IDs in
them are global IDs in the API and primary keys in the store: ``trigger.segmentId``,
``enrolmentRule.suppressionSegmentIds`` and the ID parameters of actions (``segmentId``, ``teamId``,
``pipelineId``, ``customerId``) are decoded here before the service checks the definition, and
encoded again when a flow is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry.types.unset import UNSET

from crm_graph.automation import engine, service
from crm_graph.automation.models import AutomationEnrolment as EnrolmentModel
from crm_graph.automation.models import AutomationFlow as FlowModel
from crm_graph.automation.models import EnrolmentStatus, FlowStatus, StepOutcome
from crm_graph.automation.templates import TEMPLATES
from crm_graph.core import errors as codes
from crm_graph.core import ids
from crm_graph.core.errors import FieldError, ValidationFailed
from crm_graph.core.extensions import NodeType
from crm_graph.core.pagination import SortKey, paginate
from crm_graph.customers.schema import Customer, CustomerFilter, load_customer
from crm_graph.domains import SchemaPart
from crm_graph.graphql import access
from crm_graph.graphql.context import Context
from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.errors import UserError
from crm_graph.graphql.inputs import StringFilter, enum_filter, to_plain
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.graphql.relay import (
    Connection,
    Node,
    decode_global_id,
    encode_global_id,
    grouped_connection,
    node_resolver,
    page_args,
)

graphql_enum(
    FlowStatus,
    "DRAFT: being built, enrols nobody. ACTIVE: enrols and runs its published version. "
    "PAUSED: enrols nobody and runs no step; enrolments wait where they are. ARCHIVED: ended for good, "
    "its running enrolments were unenrolled; history and stats stay.",
    {
        "DRAFT": "Being built: enrols nobody until `activateAutomationFlow`.",
        "ACTIVE": "Enrols customers and runs their steps, on the newest published version.",
        "PAUSED": "Enrols nobody and runs no step; enrolments wait where they are until it is activated again.",
        "ARCHIVED": "Ended for good: cannot change or be activated; its history and stats stay.",
    },
    name="AutomationFlowStatus",
)
graphql_enum(
    EnrolmentStatus,
    "ACTIVE: its current step is due at `nextRunAt`. WAITING: waiting for an event until `nextRunAt`. "
    "COMPLETED: reached an exit or the end. CONVERTED: reached the flow's goal. UNENROLLED: left early "
    "(a condition stopped holding, a suppression segment, the flow was archived). FAILED: a step failed every "
    "attempt (the dead letter; `redriveAutomationEnrolment` puts it back).",
    {
        "ACTIVE": "Running: its current step is due at `nextRunAt` (a failed attempt is retried then).",
        "WAITING": "Waiting for the event `waitingFor` until `nextRunAt`, when the wait times out.",
        "COMPLETED": "Finished: reached an EXIT step or the end of the flow.",
        "CONVERTED": "Finished: the flow's goal event happened.",
        "UNENROLLED": "Left early: `stayWhile` stopped holding, a suppression segment, the customer was deleted "
        "or the flow archived.",
        "FAILED": "A step failed every attempt (the dead letter); `redriveAutomationEnrolment` puts it back.",
    },
    name="AutomationEnrolmentStatus",
)
graphql_enum(
    StepOutcome,
    "What one enrolment did at one step.",
    {
        "ENTERED": "Arrived at the step (enrolled, moved on from the step before, or redriven).",
        "WAITING": "Started waiting: a WAIT, a WAIT_FOR_EVENT, or quiet hours before a message.",
        "COMPLETED": "Done with the step: the action ran, the condition was read, the wait ended.",
        "SKIPPED": "Passed over: no address, opted out, the message cap reached; the enrolment moved on.",
        "FAILED": "An attempt failed (`detail` says why); after the last one the enrolment is FAILED.",
        "CONVERTED": "The goal event happened here: the enrolment ended as a conversion.",
        "EXITED": "Left the flow here: an EXIT step, or unenrolled.",
    },
    name="AutomationStepOutcome",
)

FLOW_ORDER = [SortKey(FlowModel.id, "id", descending=True)]
ENROLMENT_ORDER = [SortKey(EnrolmentModel.id, "id", descending=True)]

# Parameters of actions that name records: global IDs in the API, primary keys when stored.
PARAM_IDS = {"segmentId": "Segment", "teamId": "Team", "pipelineId": "Pipeline", "customerId": "Customer"}


# --- global IDs inside definitions -----------------------------------------------------------


def _decoded(value: Any, type_name: str) -> Any:
    """The primary key of a global ID of ``type_name``; anything else unchanged (the service's
    check then says the record was not found)."""
    if isinstance(value, str):
        try:
            found, pk = ids.decode(value)
        except ValueError:
            return value
        return pk if found == type_name else value
    return value


def _encoded(value: Any, type_name: str) -> Any:
    return ids.encode(type_name, value) if isinstance(value, int) and not isinstance(value, bool) else value


def _map_ids(data: Mapping[str, Any], convert: Any) -> dict[str, Any]:
    out = dict(data)
    if isinstance(out.get("trigger"), Mapping) and "segmentId" in out["trigger"]:
        out["trigger"] = {**out["trigger"], "segmentId": convert(out["trigger"]["segmentId"], "Segment")}
    rule = out.get("enrolmentRule")
    if isinstance(rule, Mapping) and isinstance(rule.get("suppressionSegmentIds"), list):
        out["enrolmentRule"] = {**rule, "suppressionSegmentIds": [convert(s, "Segment") for s in rule["suppressionSegmentIds"]]}
    if isinstance(out.get("steps"), list):
        steps = []
        for step in out["steps"]:
            params = step.get("params") if isinstance(step, Mapping) else None
            if isinstance(params, Mapping):
                step = {**step, "params": {k: convert(v, PARAM_IDS[k]) if k in PARAM_IDS else v for k, v in params.items()}}
            steps.append(step)
        out["steps"] = steps
    return out


def definition_in(data: Mapping[str, Any]) -> dict[str, Any]:
    """A definition as the API sent it, with primary keys for the global IDs in it."""
    return _map_ids(data, _decoded)


def definition_out(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A stored definition as the API shows it, with global IDs."""
    return _map_ids(definition, _encoded)


# --- types -----------------------------------------------------------------------------------


@strawberry.type(description="A flow shipped ready to use; `createAutomationFlowFromTemplate(key)` makes a DRAFT of it.")
class AutomationTemplate:
    key: str = strawberry.field(description="What `createAutomationFlowFromTemplate(key:)` takes, e.g. `welcome`.")
    name: str = strawberry.field(description="The name a flow made from it gets unless another is given.")
    description: str = strawberry.field(description="What the flow does, in words.")
    definition: JSON = strawberry.field(description="Its trigger, steps, enrolment rule and goal, as `createAutomationFlow` takes them.")


@strawberry.type(description="The counts of one step: arrivals and what became of them.")
class AutomationStepStats:
    key: str = strawberry.field(description="The step's key.")
    entered: int = strawberry.field(description="Enrolments that arrived at the step.")
    waiting: int = strawberry.field(description="Enrolments waiting there now (a wait, a wait for an event).")
    completed: int = strawberry.field(description="Enrolments that completed the step.")
    skipped: int = strawberry.field(description="Skipped: no address, opted out, the message cap reached.")
    failed: int = strawberry.field(description="Enrolments FAILED there now (the dead letter).")
    converted: int = strawberry.field(description="Enrolments that reached the goal while at the step.")


@strawberry.type(description="What a flow did: its enrolments by status, and per step.")
class AutomationFlowStats:
    enrolled: int = strawberry.field(description="Enrolments ever made.")
    active: int = strawberry.field(description="Enrolments running now (ACTIVE or WAITING).")
    completed: int = strawberry.field(description="Enrolments COMPLETED.")
    converted: int = strawberry.field(description="Enrolments CONVERTED (the goal was reached).")
    unenrolled: int = strawberry.field(description="Enrolments UNENROLLED (left early).")
    failed: int = strawberry.field(description="Enrolments FAILED now (the dead letter).")
    conversion_rate: float | None = strawberry.field(description="converted / enrolled; null before the first enrolment.")
    steps: list[AutomationStepStats] = strawberry.field(description="In the order of the working definition's steps.")

    @classmethod
    def of(cls, s: service.FlowStats) -> AutomationFlowStats:
        return cls(enrolled=s.enrolled, active=s.active, completed=s.completed, converted=s.converted,
                   unenrolled=s.unenrolled, failed=s.failed, conversion_rate=s.conversion_rate,
                   steps=[AutomationStepStats(key=t.key, entered=t.entered, waiting=t.waiting, completed=t.completed,
                                              skipped=t.skipped, failed=t.failed, converted=t.converted) for t in s.steps])


@strawberry.type(description="A published, immutable definition of a flow; enrolments run the version they started on.")
class AutomationFlowVersion:
    number: int = strawberry.field(description="1 for the first version, counting up per flow.")
    published_at: datetime = strawberry.field(description="When the activation that published it happened.")
    definition: JSON = strawberry.field(description="Its trigger, steps, enrolmentRule and goal, with global IDs.")

    @classmethod
    def from_model(cls, m: Any) -> AutomationFlowVersion:
        return cls(number=m.number, published_at=m.published_at, definition=definition_out(m.definition))


@strawberry.type(description="One line of an enrolment's step log.")
class AutomationStepRun:
    step_key: str = strawberry.field(description="The key of the step (`-` when the enrolment was at none).")
    outcome: StepOutcome = strawberry.field(description="What happened there.")
    detail: str | None = strawberry.field(description="Why, in words.")
    at: datetime = strawberry.field(description="When it happened.")


@strawberry.type(description="One customer's way through one flow, started by one trigger.")
class AutomationEnrolment(Node):
    pk: strawberry.Private[int]
    flow_pk: strawberry.Private[int]
    customer_pk: strawberry.Private[int]
    status: EnrolmentStatus = strawberry.field(description="Where the enrolment stands.")
    step_key: str | None = strawberry.field(description="The step it is at (null once finished at the end).")
    waiting_for: str | None = strawberry.field(description="The event type a WAITING enrolment waits for.")
    next_run_at: datetime | None = strawberry.field(description="When its current step is due (or its wait times out).")
    attempts: int = strawberry.field(description="Failed attempts of the current step.")
    last_error: str | None = strawberry.field(description="The error of the last failed attempt; null after a step succeeds.")
    trigger_key: str = strawberry.field(description="What enrolled the customer (`event:<id>`, `date:<day>`, `once`...).")
    enrolled_at: datetime = strawberry.field(description="When the customer was enrolled.")
    finished_at: datetime | None = strawberry.field(description="When it finished (COMPLETED, CONVERTED, UNENROLLED); "
                                                    "null while it runs or is FAILED.")

    @strawberry.field(description="The flow it belongs to.")
    async def flow(self, info: Info) -> AutomationFlow | None:
        return (await _load_flows(info, [self.flow_pk]))[0]

    @strawberry.field(description="The customer; null when it is hidden from you or deleted.")
    async def customer(self, info: Info) -> Customer | None:
        return await load_customer(info, self.customer_pk)

    @strawberry.field(description="What it did at each step, oldest first.")
    async def log(self, info: Info) -> list[AutomationStepRun]:
        rows = await info.context.loader("automation.log", service.step_log, list).load(self.pk)
        return [AutomationStepRun(step_key=r.step_key, outcome=r.outcome, detail=r.detail, at=r.at) for r in rows]

    @classmethod
    def from_model(cls, m: EnrolmentModel) -> AutomationEnrolment:
        return cls(
            id=encode_global_id("AutomationEnrolment", m.id), pk=m.id, flow_pk=m.flow_id, customer_pk=m.customer_id,
            status=m.status, step_key=m.step_key, waiting_for=m.waiting_for, next_run_at=m.next_run_at,
            attempts=m.attempts, last_error=m.last_error, trigger_key=m.trigger_key, enrolled_at=m.enrolled_at,
            finished_at=m.finished_at,
        )


@strawberry.type(description="A page of enrolments.")
class AutomationEnrolmentConnection(Connection[AutomationEnrolment]):
    pass


@strawberry.type(description="A marketing automation flow: a trigger enrols customers, who then go through its steps.")
class AutomationFlow(Node):
    pk: strawberry.Private[int]
    definition: strawberry.Private[dict[str, Any]]
    name: str = strawberry.field(description="At most 200 characters.")
    description: str | None = strawberry.field(description="What the flow is for, in words (at most 5,000 characters).")
    status: FlowStatus = strawberry.field(description="Whether it enrols and runs (ACTIVE), and how it can change.")
    template_key: str | None = strawberry.field(description="The template it was made from.")
    activated_at: datetime | None = strawberry.field(description="When it last became ACTIVE.")
    created_at: datetime = strawberry.field(description="When the flow was created.")
    updated_at: datetime = strawberry.field(description="When it last changed (updated, activated, paused, archived).")
    version: int = strawberry.field(description="Optimistic-concurrency version; pass it as `expectedVersion`.")

    @strawberry.field(description="The working definition's trigger: `kind` (EVENT, SEGMENT_ENTERED, SEGMENT_LEFT, DATE, INACTIVITY, SCHEDULE) and its fields.")
    def trigger(self) -> JSON:
        return self.definition.get("trigger") or {}

    @strawberry.field(description="The working definition's steps, normalised: every `next`, `yes`, `no` and `timedOut` "
                      "spelt out (null: the flow ends there).")
    def steps(self) -> JSON:
        return self.definition.get("steps") or []

    @strawberry.field(description="The enrolment rule: re-enrolment, stayWhile, suppression segments, message cap, quiet hours.")
    def enrolment_rule(self) -> JSON:
        return self.definition.get("enrolmentRule") or {}

    @strawberry.field(description="The goal event that ends an enrolment as a conversion, or null.")
    def goal(self) -> JSON | None:
        return self.definition.get("goal")

    @strawberry.field(description="Published versions, oldest first.")
    async def versions(self, info: Info) -> list[AutomationFlowVersion]:
        rows = await info.context.loader("automation.versions", service.versions_of, list).load(self.pk)
        return [AutomationFlowVersion.from_model(v) for v in rows]

    @strawberry.field(description="The version new enrolments get (the newest published); null before the first activation.")
    async def current_version(self, info: Info) -> AutomationFlowVersion | None:
        rows = await info.context.loader("automation.versions", service.versions_of, list).load(self.pk)
        return AutomationFlowVersion.from_model(rows[-1]) if rows else None

    @strawberry.field(description="Enrolments by status, per step, and the conversion rate.")
    async def stats(self, info: Info) -> AutomationFlowStats:
        found = await info.context.loader("automation.stats", service.flow_stats).load(self.pk)
        return AutomationFlowStats.of(found or service.FlowStats())

    @strawberry.field(description="Its enrolments, newest first; `status` narrows them (e.g. [FAILED]: the dead letter).")
    async def enrolments(self, info: Info, status: Annotated[list[EnrolmentStatus] | None, strawberry.argument(
                             description="Only enrolments in one of these statuses; null or empty: all.")] = None,
                         first: int | None = None,
                         after: str | None = None) -> AutomationEnrolmentConnection:
        statuses = tuple(status or ())

        def select() -> Any:
            stmt = sa.select(EnrolmentModel)
            return stmt.where(EnrolmentModel.status.in_(statuses)) if statuses else stmt

        return await grouped_connection(
            info, ("automation.enrolments", statuses, first, after), select, EnrolmentModel, EnrolmentModel.flow_id,
            self.pk, ENROLMENT_ORDER, page_args(first, after, None, None), AutomationEnrolmentConnection,
            AutomationEnrolment.from_model,
        )

    @classmethod
    def from_model(cls, m: FlowModel) -> AutomationFlow:
        return cls(
            id=encode_global_id("AutomationFlow", m.id), pk=m.id, definition=definition_out(m.definition or {}),
            name=m.name, description=m.description, status=m.status, template_key=m.template_key,
            activated_at=m.activated_at, created_at=m.created_at, updated_at=m.updated_at, version=m.version,
        )


@strawberry.type(description="A page of automation flows.")
class AutomationFlowConnection(Connection[AutomationFlow]):
    pass


@strawberry.type(description="One step of a simulation: what the flow would do there, in words.")
class AutomationSimulatedStep:
    key: str = strawberry.field(description="The step's key (`goal` for the goal).")
    type: str = strawberry.field(description="The step's type (ACTION, CONDITION, WAIT, WAIT_FOR_EVENT, EXIT; GOAL for the goal).")
    outcome: str = strawberry.field(description="WOULD_RUN, WOULD_SKIP, WOULD_WAIT, YES, NO or END.")
    explanation: str = strawberry.field(description="What it would do and why, in words.")


@strawberry.type(description="What a flow would do for one customer now, changing nothing.")
class AutomationSimulation:
    would_enrol: bool = strawberry.field(description="Whether the customer would be enrolled if the trigger fired now.")
    reason: str = strawberry.field(description="Why (or why not), in words.")
    version: int | None = strawberry.field(description="The version simulated; null: the working definition of a flow not ACTIVE.")
    steps: list[AutomationSimulatedStep] = strawberry.field(description="The path through the steps, in order.")

    @classmethod
    def of(cls, s: service.Simulation) -> AutomationSimulation:
        return cls(would_enrol=s.would_enrol, reason=s.reason, version=s.version,
                   steps=[AutomationSimulatedStep(key=t.key, type=t.type, outcome=t.outcome, explanation=t.explanation)
                          for t in s.steps])


_load_flows = node_resolver("automation.flow", service.flows_by_ids, AutomationFlow.from_model)
_load_enrolments = node_resolver("automation.enrolment", service.enrolments_by_ids, AutomationEnrolment.from_model)
NODES = [
    NodeType("AutomationFlow", _load_flows, AutomationFlow),
    NodeType("AutomationEnrolment", _load_enrolments, AutomationEnrolment),
]

FlowStatusFilter = enum_filter(FlowStatus, "AutomationFlowStatusFilter")


@strawberry.input(description="Conditions on flows; fields combine with AND.")
class AutomationFlowFilter:
    name: StringFilter | None = strawberry.field(default=None, description="The flow's name.")
    status: FlowStatusFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="The flow's status.")


# --- queries ---------------------------------------------------------------------------------


@strawberry.type(description="An action ACTION steps can run (the built-in ones and those plugins add).")
class AutomationActionInfo:
    name: str = strawberry.field(description="What an ACTION step's `action` names, e.g. `send_email`.")
    description: str = strawberry.field(description="What it does and the `params` it takes.")
    sends_message: bool = strawberry.field(description="Counts toward the message cap and waits out quiet hours.")


@strawberry.type(description="What simulateFlow answers: the simulation, or why there is none.")
class AutomationSimulationResult:
    simulation: AutomationSimulation | None = strawberry.field(description="Null when there are errors.")
    errors: list[UserError] = strawberry.field(
        description="Why there is no simulation (NOT_FOUND on `flowId` or `customerId`); empty when there is one.")


def _runtime(info: Info) -> engine.Runtime:
    ctx: Context = info.context
    return engine.runtime_of(ctx.settings, ctx.plugins)


@strawberry.type
class AutomationQuery:
    @access.query("automation", description="The flows shipped ready to use.")
    def automation_templates(self) -> list[AutomationTemplate]:
        return [AutomationTemplate(key=t.key, name=t.name, description=t.description, definition=definition_out(t.definition))
                for t in TEMPLATES.values()]

    @access.query("automation", description="The actions ACTION steps can name (`action`), with what their `params` are.")
    def automation_actions(self, info: Info) -> list[AutomationActionInfo]:
        return [AutomationActionInfo(name=a.name, description=a.description, sends_message=bool(a.message))
                for a in sorted(_runtime(info).actions.values(), key=lambda a: a.name)]

    @access.query("automation", description="Automation flows, newest first.")
    async def automation_flows(self, info: Info, filter: Annotated[AutomationFlowFilter | None, strawberry.argument(
                                   description="Only the flows that match; null: all.")] = None, first: int | None = None,
                               after: str | None = None, last: int | None = None,
                               before: str | None = None) -> AutomationFlowConnection:
        page = await paginate(info.context.db.reader, service.flow_select(to_plain(filter)), FLOW_ORDER,
                              page_args(first, after, last, before))
        return AutomationFlowConnection.from_page(page, AutomationFlow.from_model)

    @access.query("automation", description="One flow by ID; null if unknown.")
    async def automation_flow(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(
            description="The flow's global ID.")]) -> AutomationFlow | None:
        return (await _load_flows(info, [decode_global_id(id, "AutomationFlow")[1]]))[0]

    @access.query("automation", description="What the flow would do for the customer now, step by step and why, changing "
                  "nothing: whether they would be enrolled, each condition as it holds now, each action in words. An ACTIVE "
                  "flow is simulated on its published version, any other on its working definition.")
    async def simulate_flow(
        self, info: Info,
        flow_id: Annotated[strawberry.ID, strawberry.argument(
            description="The flow's global ID; an unknown one is the error NOT_FOUND on `flowId`.")],
        customer_id: Annotated[strawberry.ID, strawberry.argument(
            description="The customer's global ID; an unknown or deleted one is the error NOT_FOUND on `customerId`.")],
    ) -> AutomationSimulationResult:
        flow_pk = decode_global_id(flow_id, "AutomationFlow")[1]
        customer_pk = decode_global_id(customer_id, "Customer")[1]
        runtime = _runtime(info)
        try:
            async with info.context.db.reader() as session:
                flow = await service.get_flow(session, flow_pk)
                if flow is None:
                    raise ValidationFailed([FieldError("flowId", codes.NOT_FOUND, "The automation flow was not found.")])
                found = await service.simulate(session, runtime, flow, customer_pk)
        except ValidationFailed as exc:
            return AutomationSimulationResult(simulation=None, errors=[UserError.from_field_error(e) for e in exc.errors])
        return AutomationSimulationResult(simulation=AutomationSimulation.of(found), errors=[])


# --- inputs ----------------------------------------------------------------------------------


@strawberry.input(description="A span of time; the parts add up.")
class AutomationDurationInput:
    days: int | None = strawberry.field(default=None, description="Whole days, 0 to 3660.")
    hours: int | None = strawberry.field(default=None, description="Whole hours, 0 or more.")
    minutes: int | None = strawberry.field(
        default=None, description="Whole minutes, 0 or more. The parts may not add up to zero.")


@strawberry.input(description="A condition on the event's data: `path` (dotted; `changes.<field>` reads what changed), "
                  "`op` (EQ, NE, GT, GTE, LT, LTE, IN, EXISTS) and `value`.")
class AutomationEventConditionInput:
    path: str = strawberry.field(description="A dotted path into the event's data, e.g. total.amount; `changes.<field>` "
                                 "reads what changed.")
    op: str = strawberry.field(description="EQ, NE, GT, GTE, LT, LTE, IN or EXISTS. Numbers compare as numbers.")
    value: JSON | None = strawberry.field(
        default=None, description="What to compare with; a list for IN; for EXISTS, true (the path is there) or false "
        "(it is not).")


@strawberry.input(description="What enrols customers. `kind` is EVENT (`eventType`, `conditions`), SEGMENT_ENTERED or "
                  "SEGMENT_LEFT (`segmentId`), DATE (`dateField`: birthday or a custom DATE field, `offsetDays`, `atTime` "
                  "in the customer's time zone), INACTIVITY (`inactiveDays` without a counted order) or SCHEDULE "
                  "(`schedule`, an RFC 5545 RRULE in `timeZone`). `audience` narrows who may be enrolled.")
class AutomationTriggerInput:
    kind: str = strawberry.field(description="EVENT, SEGMENT_ENTERED, SEGMENT_LEFT, DATE, INACTIVITY or SCHEDULE.")
    event_type: str | None = strawberry.field(default=None, description="An event type or pattern, e.g. order.paid or ticket.*.")
    conditions: list[AutomationEventConditionInput] | None = strawberry.field(
        default=None, description="EVENT: conditions on the event's data, all of which must hold.")
    segment_id: strawberry.ID | None = strawberry.field(
        default=None, description="SEGMENT_ENTERED, SEGMENT_LEFT: the global ID of the segment.")
    date_field: str | None = strawberry.field(
        default=None, description="DATE: `birthday` (the default) or the key of a custom field of type DATE.")
    offset_days: int | None = strawberry.field(default=None, description="Days after (negative: before) the date.")
    at_time: str | None = strawberry.field(default=None, description="HH:MM, local time; default 09:00.")
    inactive_days: int | None = strawberry.field(
        default=None, description="INACTIVITY: days without a counted order, 1 to 3650.")
    schedule: str | None = strawberry.field(default=None, description="E.g. FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0.")
    time_zone: str | None = strawberry.field(default=None, description="IANA zone of the schedule, and of customers without one.")
    audience: CustomerFilter | None = strawberry.field(
        default=None, description="Only customers who match are enrolled; null: anyone.")


@strawberry.input(description="One step. `type` is ACTION (`action`, `params`), CONDITION (`condition`, then `yes` or `no`), "
                  "WAIT (`wait`, and/or `untilWeekday`/`untilTime`), WAIT_FOR_EVENT (`eventType`, `conditions`, "
                  "`timeout`, then `next` or `timedOut`) or EXIT. A target names another step's key, or END (or null) to "
                  "end the flow; left out, `next` and `yes` go to the following step, `no` and `timedOut` end it.")
class AutomationStepInput:
    key: str = strawberry.field(description="Unique within the flow: letters, digits, - and _, starting with a letter.")
    type: str = strawberry.field(description="ACTION, CONDITION, WAIT, WAIT_FOR_EVENT or EXIT.")
    action: str | None = strawberry.field(default=UNSET, description="ACTION: the action's name (see `automationActions`).")
    params: JSON | None = strawberry.field(default=UNSET, description="The action's parameters (see `automationActions`).")
    next: str | None = strawberry.field(
        default=UNSET, description="ACTION, WAIT, WAIT_FOR_EVENT (the event came): the step after; omitted, the following one.")
    condition: CustomerFilter | None = strawberry.field(
        default=UNSET, description="CONDITION: the customer filter to test, as the customer is when the step runs.")
    yes: str | None = strawberry.field(
        default=UNSET, description="CONDITION: the step when it holds; omitted, the following one.")
    no: str | None = strawberry.field(default=UNSET, description="CONDITION: the step when it does not hold; omitted, the end.")
    wait: AutomationDurationInput | None = strawberry.field(default=UNSET, description="WAIT: how long to wait.")
    until_weekday: str | None = strawberry.field(default=UNSET, description="MONDAY .. SUNDAY, in the customer's time zone.")
    until_time: str | None = strawberry.field(default=UNSET, description="HH:MM, in the customer's time zone.")
    event_type: str | None = strawberry.field(
        default=UNSET, description="WAIT_FOR_EVENT: the event type or pattern to wait for, e.g. order.paid.")
    conditions: list[AutomationEventConditionInput] | None = strawberry.field(
        default=UNSET, description="WAIT_FOR_EVENT: conditions on the event's data, all of which must hold.")
    timeout: AutomationDurationInput | None = strawberry.field(
        default=UNSET, description="WAIT_FOR_EVENT: how long to wait for the event (required).")
    timed_out: str | None = strawberry.field(
        default=UNSET, description="WAIT_FOR_EVENT: the step when the event did not come in time; omitted, the end.")


@strawberry.input(description="Who is enrolled, how often, and how much they are sent.")
class AutomationEnrolmentInput:
    reenrol_after_days: int | None = strawberry.field(default=None, description="null: once per customer ever.")
    stay_while: CustomerFilter | None = strawberry.field(default=None, description="Enrolled customers leave when they stop matching.")
    suppression_segment_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Members are never enrolled, and leave.")
    message_cap: int | None = strawberry.field(default=None, description="Messages per customer in `messageCapDays`, over all flows.")
    message_cap_days: int | None = strawberry.field(
        default=None, description="The period of `messageCap` in days, 1 to 365; required with it.")
    quiet_hours_start: str | None = strawberry.field(default=None, description="HH:MM: messages wait from then ...")
    quiet_hours_end: str | None = strawberry.field(default=None, description="... until then, in the customer's time zone.")
    time_zone: str | None = strawberry.field(default=None, description="The zone of customers without one of their own.")


@strawberry.input(description="The event that ends an enrolment as a conversion.")
class AutomationGoalInput:
    event_type: str = strawberry.field(description="An event type or pattern about the customer, e.g. order.paid.")
    conditions: list[AutomationEventConditionInput] | None = strawberry.field(
        default=None, description="Conditions on the event's data, all of which must hold.")


@strawberry.input(description="A new flow: its name and its definition.")
class CreateAutomationFlowInput:
    name: str = strawberry.field(description="Required, at most 200 characters.")
    description: str | None = strawberry.field(default=None, description="At most 5,000 characters.")
    trigger: AutomationTriggerInput = strawberry.field(description="What enrols customers.")
    steps: list[AutomationStepInput] = strawberry.field(description="1 to 100 steps; the first is where enrolments start. "
                                                        "The steps may not loop.")
    enrolment_rule: AutomationEnrolmentInput | None = strawberry.field(
        default=None, description="Who is enrolled and how often; null: each customer once ever, no cap.")
    goal: AutomationGoalInput | None = strawberry.field(default=None, description="Null: the flow has no goal.")


@strawberry.input(description="Fields to change; omitted fields stay as they are. An ACTIVE flow runs the change once activated again.")
class UpdateAutomationFlowInput:
    name: str | None = strawberry.field(
        default=UNSET, description="At most 200 characters; empty or null is the error REQUIRED.")
    description: str | None = strawberry.field(default=UNSET, description="Null removes it.")
    trigger: AutomationTriggerInput | None = strawberry.field(default=UNSET, description="Replaces the trigger.")
    steps: list[AutomationStepInput] | None = strawberry.field(default=UNSET, description="Replaces all the steps.")
    enrolment_rule: AutomationEnrolmentInput | None = strawberry.field(
        default=UNSET, description="Replaces the enrolment rule; null: each customer once ever, no cap.")
    goal: AutomationGoalInput | None = strawberry.field(default=UNSET, description="null removes the goal.")


def _plain(input: Any) -> dict[str, Any]:
    """The input as the service reads it: steps keep an explicit null target (the flow ends
    there); IDs in the definition become primary keys."""
    data = to_plain(input, keep_null=True)
    if isinstance(input.steps, list):
        data["steps"] = [to_plain(s, keep_null=True) for s in input.steps]
    return definition_in(data)


# --- mutations -------------------------------------------------------------------------------


@strawberry.type(description="What a mutation of an automation flow answers: the flow, or why not.")
class AutomationFlowPayload:
    automation_flow: AutomationFlow | None = strawberry.field(description="The flow as it is now; null when there are errors.")
    errors: list[UserError]


@strawberry.type(description="What a mutation of an enrolment answers: the enrolment, or why not.")
class AutomationEnrolmentPayload:
    automation_enrolment: AutomationEnrolment | None = strawberry.field(
        description="The enrolment as it is now; null when there are errors.")
    errors: list[UserError]


def _flow_payload(result: tuple[Any, list[UserError]]) -> AutomationFlowPayload:
    model, errors = result
    return AutomationFlowPayload(automation_flow=AutomationFlow.from_model(model) if model is not None else None, errors=errors)


def _flow_pk(id: strawberry.ID) -> int:
    return decode_global_id(id, "AutomationFlow")[1]


@strawberry.type
class AutomationMutation:
    @access.mutation("automation", "create", description="Create a DRAFT flow. Every problem of the definition is an error "
                     "with its path (`steps.2.next`); a DRAFT enrols nobody until `activateAutomationFlow`.")
    async def create_automation_flow(self, info: Info, input: Annotated[CreateAutomationFlowInput, strawberry.argument(
            description="The flow's name and definition.")]) -> AutomationFlowPayload:
        data, actor, runtime = _plain(input), info.context.actor, _runtime(info)
        data = {k: v for k, v in data.items() if v is not None}
        return _flow_payload(await unit_of_work(info, lambda s: service.create_flow(s, actor=actor, runtime=runtime, data=data)))

    @access.mutation("automation", "create", description="Create a DRAFT flow from a template (`automationTemplates`); "
                     "`activate: true` activates it at once.")
    async def create_automation_flow_from_template(
        self, info: Info,
        key: Annotated[str, strawberry.argument(
            description="The template's key (`automationTemplates`); an unknown one is the error NOT_FOUND.")],
        name: Annotated[str | None, strawberry.argument(description="The flow's name; null: the template's name.")] = None,
        activate: Annotated[bool, strawberry.argument(
            description="Activate the flow at once; needs `automation:update` (else the error FORBIDDEN).")] = False,
    ) -> AutomationFlowPayload:
        actor, runtime = info.context.actor, _runtime(info)
        if activate and not actor.can("automation", "update"):
            return AutomationFlowPayload(automation_flow=None, errors=[UserError(
                field="activate", code="FORBIDDEN", message="Activating a flow needs the `automation:update` permission.")])
        return _flow_payload(await unit_of_work(info, lambda s: service.create_from_template(
            s, actor=actor, runtime=runtime, key=key, name=name, activate=activate)))

    @access.mutation("automation", "update", description="Change a flow's name, description or working definition. "
                     "An ACTIVE flow keeps running its published version until it is activated again.")
    async def update_automation_flow(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(
            description="The flow's global ID; an ARCHIVED flow is the error INVALID_STATE.")],
        input: Annotated[UpdateAutomationFlowInput, strawberry.argument(description="What to change.")],
        expected_version: int | None = None,
    ) -> AutomationFlowPayload:
        pk, data, actor, runtime = _flow_pk(id), _plain(input), info.context.actor, _runtime(info)
        return _flow_payload(await unit_of_work(info, lambda s: service.update_flow(
            s, actor=actor, runtime=runtime, flow_id=pk, data=data, expected_version=expected_version)))

    @access.mutation("automation", "update", description="Publish the working definition (a new version when it changed) "
                     "and start enrolling. Running enrolments stay on the version they started on.")
    async def activate_automation_flow(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(
            description="The flow's global ID; an ARCHIVED flow is the error INVALID_STATE.")]) -> AutomationFlowPayload:
        pk, actor, runtime = _flow_pk(id), info.context.actor, _runtime(info)
        return _flow_payload(await unit_of_work(info, lambda s: service.activate_flow(s, actor=actor, runtime=runtime, flow_id=pk)))

    @access.mutation("automation", "update", description="Stop enrolling and running steps; enrolments wait where they are.")
    async def pause_automation_flow(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(
            description="The global ID of an ACTIVE flow; any other status is the error INVALID_STATE.")],
    ) -> AutomationFlowPayload:
        pk, actor = _flow_pk(id), info.context.actor
        return _flow_payload(await unit_of_work(info, lambda s: service.pause_flow(s, actor=actor, flow_id=pk)))

    @access.mutation("automation", "delete", description="End a flow for good: its running enrolments are unenrolled; "
                     "its history and stats stay.")
    async def archive_automation_flow(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(
            description="The flow's global ID; archiving an ARCHIVED flow changes nothing.")]) -> AutomationFlowPayload:
        pk, actor = _flow_pk(id), info.context.actor
        return _flow_payload(await unit_of_work(info, lambda s: service.archive_flow(s, actor=actor, flow_id=pk)))

    @access.mutation("automation", "update", description="Put a FAILED enrolment back at its failed step, due now, with "
                     "fresh attempts.")
    async def redrive_automation_enrolment(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(
            description="The global ID of a FAILED enrolment; any other status is the error INVALID_STATE.")],
    ) -> AutomationEnrolmentPayload:
        pk, actor = decode_global_id(id, "AutomationEnrolment")[1], info.context.actor
        model, errors = await unit_of_work(info, lambda s: service.redrive_enrolment(s, actor=actor, enrolment_id=pk))
        return AutomationEnrolmentPayload(
            automation_enrolment=AutomationEnrolment.from_model(model) if model is not None else None, errors=errors)


SCHEMA = SchemaPart(query=AutomationQuery, mutation=AutomationMutation, nodes=NODES)
