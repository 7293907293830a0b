"""GraphQL API of activities: the customer timeline, tasks, and logging communication."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from crm_graph.activities import service
from crm_graph.activities.models import Activity as ActivityModel
from crm_graph.activities.models import ActivityType, Direction
from crm_graph.domains import SchemaPart
from crm_graph.core.pagination import paginate
from crm_graph.graphql import access
from crm_graph.graphql.context import Context
from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.errors import UserError
from crm_graph.graphql.inputs import DateTimeFilter, StringFilter, enum_filter, to_plain
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.core.extensions import NodeType
from crm_graph.graphql.relay import Connection, Node, decode_global_id, encode_global_id, page_args, node_resolver

if TYPE_CHECKING:
    from crm_graph.customers.schema import Customer

graphql_enum(
    ActivityType,
    "What kind of interaction an activity records.",
    {
        "NOTE": "A note written by a user.",
        "CALL": "A phone call.",
        "MEETING": "A meeting.",
        "EMAIL": "An email.",
        "TASK": "Something to do, with an optional due time and assignee; open until completed.",
        "TICKET": "Written by the support desk when a ticket is opened or resolved; cannot be logged by hand.",
    },
)
graphql_enum(
    Direction,
    "Who started a call or email: the customer (INBOUND) or the business (OUTBOUND).",
    {"INBOUND": "Started by the customer.", "OUTBOUND": "Started by the business."},
)


@strawberry.type(description="One entry of a customer's timeline: a note, call, meeting, email or task.")
class Activity(Node):
    pk: strawberry.Private[int]
    customer_pk: strawberry.Private[int]
    type: ActivityType = strawberry.field(description="What kind of interaction it records.")
    subject: str = strawberry.field(description="One-line summary.")
    body: str | None = strawberry.field(description="Free text with the details; null if none.")
    occurred_at: datetime = strawberry.field(description="When it happened (or, for a task, when it was created).")
    direction: Direction | None = strawberry.field(description="Calls and emails only: who started it; null if not given.")
    duration_minutes: int | None = strawberry.field(description="Length in minutes (0 to 1440); null if not given.")
    due_at: datetime | None = strawberry.field(description="Tasks only: when the task is due.")
    assignee: str | None = strawberry.field(description="Tasks only: who should do it.")
    completed_at: datetime | None = strawberry.field(description="Tasks only: when it was completed; null while open.")
    created_at: datetime = strawberry.field(description="When it was recorded (UTC).")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC), e.g. when a task was completed.")
    version: int = strawberry.field(description="Optimistic-concurrency version; it grows with every change.")

    @strawberry.field(description="True for a task that is not completed yet.")
    def is_open_task(self) -> bool:
        return self.type is ActivityType.TASK and self.completed_at is None

    @strawberry.field(description="True for an open task whose due time has passed.")
    def is_overdue(self) -> bool:
        from crm_graph.core.clock import utcnow

        return self.is_open_task() and self.due_at is not None and self.due_at < utcnow()

    @strawberry.field(description="The customer whose timeline this is.")
    async def customer(self, info: Info) -> Annotated["Customer", strawberry.lazy("crm_graph.customers.schema")] | None:
        from crm_graph.customers.schema import load_customer

        return await load_customer(info, self.customer_pk)

    @classmethod
    def from_model(cls, m: ActivityModel) -> Activity:
        return cls(
            id=encode_global_id("Activity", m.id),
            pk=m.id,
            customer_pk=m.customer_id,
            type=m.type,
            subject=m.subject,
            body=m.body,
            occurred_at=m.occurred_at,
            direction=m.direction,
            duration_minutes=m.duration_minutes,
            due_at=m.due_at,
            assignee=m.assignee,
            completed_at=m.completed_at,
            created_at=m.created_at,
            updated_at=m.updated_at,
            version=m.version,
        )


@strawberry.type(description="A page of activities.")
class ActivityConnection(Connection[Activity]):
    pass


ActivityTypeFilter = enum_filter(ActivityType, "ActivityTypeFilter")


@strawberry.input(description="Conditions on activities; combine with and/or/not.")
class ActivityFilter:
    and_: list[ActivityFilter] | None = strawberry.field(
        default=None, name="and", description="Every one of these filters holds."
    )
    or_: list[ActivityFilter] | None = strawberry.field(
        default=None, name="or", description="At least one of these filters holds."
    )
    not_: ActivityFilter | None = strawberry.field(default=None, name="not", description="This filter does not hold.")
    type: ActivityTypeFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="The kind of activity."
    )
    subject: StringFilter | None = strawberry.field(default=None, description="The one-line summary.")
    assignee: StringFilter | None = strawberry.field(default=None, description="Who a task is assigned to.")
    occurred_at: DateTimeFilter | None = strawberry.field(default=None, description="When it happened.")
    due_at: DateTimeFilter | None = strawberry.field(default=None, description="When a task is due.")
    completed_at: DateTimeFilter | None = strawberry.field(
        default=None, description="`completedAt: {isNull: true}` with `type: {eq: TASK}` lists open tasks."
    )


_load_activities = node_resolver("activity", service.activities_by_ids, Activity.from_model)
NODES = [
    NodeType("Activity", _load_activities, Activity),
]


@strawberry.type
class ActivityQuery:
    @access.query("activities", description="One activity by ID; null if unknown or deleted.")
    async def activity(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of an Activity.")]
    ) -> Activity | None:
        return (await _load_activities(info, [decode_global_id(id, "Activity")[1]]))[0]

    @access.query("activities", description="Activities across all customers, newest first (e.g. open tasks of an assignee).")
    async def activities(
        self,
        info: Info,
        filter: Annotated[
            ActivityFilter | None,
            strawberry.argument(description="Only activities matching these conditions; deleted customers' are never listed."),
        ] = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> ActivityConnection:
        ctx: Context = info.context
        page = await paginate(
            ctx.db.reader, service.activity_select(to_plain(filter)), service.TIMELINE, page_args(first, after, last, before)
        )
        return ActivityConnection.from_page(page, Activity.from_model)


@strawberry.input(description="A communication to record on a customer's timeline.")
class LogActivityInput:
    customer_id: strawberry.ID = strawberry.field(description="Global ID of the Customer; NOT_FOUND if unknown or deleted.")
    type: ActivityType = strawberry.field(description="Any type but TICKET, which only the support desk writes.")
    subject: str = strawberry.field(description="One-line summary; required, trimmed, at most 300 characters.")
    body: str | None = strawberry.field(default=None, description="Details, at most 100,000 characters.")
    occurred_at: datetime | None = strawberry.field(default=None, description="Defaults to now.")
    direction: Direction | None = strawberry.field(
        default=None, description="CALL and EMAIL only: who started it; other types give INVALID_VALUE."
    )
    duration_minutes: int | None = strawberry.field(default=None, description="Length in minutes, 0 to 1440.")
    due_at: datetime | None = strawberry.field(default=None, description="Tasks only.")
    assignee: str | None = strawberry.field(default=None, description="Tasks only.")


@strawberry.type(description="The outcome of an activity mutation.")
class ActivityPayload:
    activity: Activity | None = strawberry.field(description="The activity as stored; null when there are errors.")
    errors: list[UserError]


def _payload(result: tuple[Any, list[UserError]]) -> ActivityPayload:
    model, errors = result
    return ActivityPayload(activity=Activity.from_model(model) if model is not None else None, errors=errors)


@strawberry.type
class ActivityMutation:
    @access.mutation("activities", "create", description="Record a note, call, meeting, email or task on a customer's timeline.")
    async def log_activity(
        self, info: Info, input: Annotated[LogActivityInput, strawberry.argument(description="The activity to record.")]
    ) -> ActivityPayload:
        ctx: Context = info.context
        data = to_plain(input)
        data["customerId"] = decode_global_id(input.customer_id, "Customer")[1]
        return _payload(
            await unit_of_work(info, lambda s: service.log_activity(s, actor=ctx.actor, data=data))
        )

    @access.mutation("activities", "update", description="Mark a task done. Completing a completed task changes nothing.")
    async def complete_task(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(description="Global ID of an Activity of type TASK; other types give INVALID_STATE."),
        ],
    ) -> ActivityPayload:
        ctx: Context = info.context
        pk = decode_global_id(id, "Activity")[1]
        return _payload(await unit_of_work(info, lambda s: service.complete_task(s, actor=ctx.actor, activity_id=pk)))


SCHEMA = SchemaPart(query=ActivityQuery, mutation=ActivityMutation, nodes=NODES)
