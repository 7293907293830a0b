"""GraphQL types of the support domain: tickets, their thread and SLA, policies, statistics."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from crm_graph.ownership.schema import OwnedFields, owned
from crm_graph.core.clock import utcnow
from crm_graph.customers.schema import Customer, ExternalRef, load_customer
from crm_graph.graphql.context import Context
from crm_graph.core.extensions import NodeType
from crm_graph.graphql.relay import (
    Connection,
    Node,
    encode_global_id,
    grouped_connection,
    page_args,
    node_resolver,
)
from crm_graph.support import service, sla
from crm_graph.support.models import SlaPolicy as PolicyModel
from crm_graph.support.models import (
    SlaStatus,
    TicketAuthorKind,
    TicketChannel,
    TicketPriority,
    TicketRating,
    TicketStatus,
    Weekday,
)
from crm_graph.support.models import Ticket as TicketModel
from crm_graph.support.models import TicketComment as CommentModel
from crm_graph.support.schema import enums  # noqa: F401  (the GraphQL enums, registered once)
from crm_graph.support.service.stats import Durations
from crm_graph.support.service.stats import SupportStats as StatsResult


def _loader(info: Info, name: Any, batch: Any, default: Any = list) -> Any:
    ctx: Context = info.context
    return ctx.loader(name, batch, default)


# --- SLA policies -------------------------------------------------------------------------------


@strawberry.type(description="When the SLA clock runs: local opening hours on some weekdays, in one time zone.")
class BusinessHours:
    time_zone: str = strawberry.field(description="IANA time zone name, e.g. `Europe/Berlin`.")
    weekdays: list[Weekday] = strawberry.field(description="The days the clock runs on, Monday first.")
    start_time: time = strawberry.field(description="Local opening time.")
    end_time: time = strawberry.field(description="Local closing time (same day).")


@strawberry.type(description="Service-level targets for the tickets it applies to.")
class SlaPolicy(Node):
    pk: strawberry.Private[int]
    name: str = strawberry.field(description="Unique name (ignoring case), at most 200 characters.")
    description: str | None = strawberry.field(description="What the policy is for; null if none.")
    rank: int = strawberry.field(
        description="Matching order: a new ticket gets the active matching policy with the lowest rank (ties: the older one)."
    )
    active: bool = strawberry.field(description="Inactive policies are not given to new tickets.")
    priorities: list[TicketPriority] = strawberry.field(description="Priorities it applies to; empty means any.")
    channels: list[TicketChannel] = strawberry.field(description="Channels it applies to; empty means any.")
    tags: list[str] = strawberry.field(description="Applies to tickets with at least one of these tags; empty means any.")
    first_response_minutes: int = strawberry.field(description="Target for the first public reply, in business minutes.")
    resolution_minutes: int = strawberry.field(
        description="Target for resolving, in business minutes; time spent PENDING does not count."
    )
    business_hours: BusinessHours | None = strawberry.field(description="Null: targets count around the clock.")
    created_at: datetime = strawberry.field(description="When the policy was created (UTC).")
    updated_at: datetime = strawberry.field(description="When the policy last changed (UTC).")
    version: int = strawberry.field(
        description="Optimistic-concurrency version; pass it as `expectedVersion` to updateSlaPolicy."
    )

    @classmethod
    def from_model(cls, m: PolicyModel) -> SlaPolicy:
        hours = sla.business_hours_of(m)
        return cls(
            id=encode_global_id("SlaPolicy", m.id),
            pk=m.id,
            name=m.name,
            description=m.description,
            rank=m.rank,
            active=m.active,
            priorities=[TicketPriority[p] for p in m.priorities],
            channels=[TicketChannel[c] for c in m.channels],
            tags=list(m.tags),
            first_response_minutes=m.first_response_minutes,
            resolution_minutes=m.resolution_minutes,
            business_hours=None
            if hours is None
            else BusinessHours(
                time_zone=hours.time_zone,
                weekdays=[w for w in Weekday if w.value in hours.weekdays],
                start_time=hours.start,
                end_time=hours.end,
            ),
            created_at=m.created_at,
            updated_at=m.updated_at,
            version=m.version,
        )


@strawberry.type(description="A page of SLA policies, in matching order.")
class SlaPolicyConnection(Connection[SlaPolicy]):
    pass


async def load_policy(info: Info, pk: int) -> SlaPolicy | None:
    model = await _loader(info, "support.policy", service.policies_by_ids, lambda: None).load(pk)
    return SlaPolicy.from_model(model) if model is not None else None


# --- tickets ------------------------------------------------------------------------------------


@strawberry.type(
    description="The ticket's service-level targets and how they stand now. Statuses are judged at the time of "
    "the request: a target whose due time passed shows BREACHED at once."
)
class TicketSla:
    model: strawberry.Private[TicketModel]
    first_response_due_at: datetime | None = strawberry.field(description="Null without a policy.")
    resolution_due_at: datetime | None = strawberry.field(
        description="Null without a policy. Moves later by the business time the ticket spends PENDING (or RESOLVED "
        "before being re-opened), once the clock runs again."
    )
    first_responded_at: datetime | None = strawberry.field(
        description="The first public agent reply (or the resolution, if the ticket was resolved without one)."
    )
    resolved_at: datetime | None = strawberry.field(
        description="When the ticket was (last) resolved; null while unresolved (re-opening clears it)."
    )
    resolution_paused_at: datetime | None = strawberry.field(
        description="Since when the resolution clock stands still (PENDING, RESOLVED, CLOSED); null while it runs."
    )

    @strawberry.field(description="The policy that set the targets; null when none matched at opening.")
    async def policy(self, info: Info) -> SlaPolicy | None:
        pk = self.model.sla_policy_id
        return await load_policy(info, pk) if pk is not None else None

    @strawberry.field(description="Null without a policy.")
    def first_response_status(self) -> SlaStatus | None:
        return sla.first_response_status(self.model, utcnow())

    @strawberry.field(description="Null without a policy.")
    def resolution_status(self) -> SlaStatus | None:
        return sla.resolution_status(self.model, utcnow())

    @strawberry.field(description="True when either target is BREACHED.")
    def breached(self) -> bool:
        now = utcnow()
        return SlaStatus.BREACHED in (sla.first_response_status(self.model, now), sla.resolution_status(self.model, now))


@strawberry.type(description="A customer's satisfaction rating of a resolved ticket.")
class TicketSatisfaction:
    rating: int = strawberry.field(description="Perceived quality, 1 (very poor) to 5 (excellent).")
    expectation: int | None = strawberry.field(description="What the customer expected, 1 to 5.")
    index: float | None = strawberry.field(
        description="rating / expectation (c = b / a): about 1 satisfied, below 1 dissatisfied, above 1 delighted. "
        "Null without an expectation."
    )
    comment: str | None = strawberry.field(description="What the customer said; null if nothing.")
    rated_at: datetime = strawberry.field(description="When the rating was given (UTC).")

    @classmethod
    def of(cls, rating: int, expectation: int | None, comment: str | None, rated_at: datetime) -> TicketSatisfaction:
        return cls(rating=rating, expectation=expectation, index=service.satisfaction_index(rating, expectation),
                   comment=comment, rated_at=rated_at)


@strawberry.type(description="One entry of a ticket's thread: a public reply or an internal note.")
class TicketComment(Node):
    pk: strawberry.Private[int]
    ticket_pk: strawberry.Private[int]
    body: str = strawberry.field(description="The text, at most 100,000 characters.")
    public: bool = strawberry.field(description="True: a reply the customer sees; false: an internal note.")
    author_kind: TicketAuthorKind = strawberry.field(description="Whether an agent or the customer wrote it.")
    author: str = strawberry.field(
        description="Name shown with the comment: as given, else the signed-in user (agent) or the customer's name."
    )
    created_at: datetime = strawberry.field(description="When it was written (UTC).")

    @strawberry.field(description="The ticket the comment belongs to; null if the ticket's customer was deleted.")
    async def ticket(self, info: Info) -> Ticket | None:
        return await load_ticket(info, self.ticket_pk)

    @classmethod
    def from_model(cls, m: CommentModel) -> TicketComment:
        return cls(
            id=encode_global_id("TicketComment", m.id),
            pk=m.id,
            ticket_pk=m.ticket_id,
            body=m.body,
            public=m.public,
            author_kind=m.author_kind,
            author=m.author,
            created_at=m.created_at,
        )


@strawberry.type(description="A page of a ticket's thread, oldest first.")
class TicketCommentConnection(Connection[TicketComment]):
    pass


@strawberry.type(description="A customer's request to the service team.")
class Ticket(OwnedFields, Node):
    pk: strawberry.Private[int]
    model: strawberry.Private[TicketModel]
    number: str = strawberry.field(description="Human-friendly number, e.g. `T-000123`.")
    subject: str = strawberry.field(description="Short summary, at most 300 characters.")
    description: str | None = strawberry.field(description="The request in full, at most 100,000 characters; null if none.")
    channel: TicketChannel = strawberry.field(description="How the customer got in touch.")
    priority: TicketPriority = strawberry.field(
        description="How urgent it is; changing it later keeps the SLA targets set at opening."
    )
    status: TicketStatus = strawberry.field(description="Where it stands; changeTicketStatus moves it, and replies may too.")
    assignee: str | None = strawberry.field(description="Who works on it (free text).")
    created_at: datetime = strawberry.field(description="When the ticket was opened (UTC); the SLA clocks start here.")
    updated_at: datetime = strawberry.field(description="When the ticket last changed, replies and ratings included (UTC).")
    resolved_at: datetime | None = strawberry.field(description="When it was (last) resolved; cleared when re-opened.")
    closed_at: datetime | None = strawberry.field(description="When it was closed (UTC); null until CLOSED.")
    version: int = strawberry.field(description="Optimistic-concurrency version; pass it as `expectedVersion`.")

    @strawberry.field(description="The customer who asked; null if the customer was deleted meanwhile.")
    async def customer(self, info: Info) -> Customer | None:
        return await load_customer(info, self.model.customer_id)

    @strawberry.field(description="For an organization's ticket: the person who asked on its behalf.")
    async def contact(self, info: Info) -> Customer | None:
        pk = self.model.contact_id
        return await load_customer(info, pk) if pk is not None else None

    @strawberry.field(description="Tags, lower-case.")
    async def tags(self, info: Info) -> list[str]:
        return await _loader(info, "support.tags", service.tags_for).load(self.pk)

    @strawberry.field(description="The ticket's records in other systems (one per system).")
    async def external_refs(self, info: Info) -> list[ExternalRef]:
        refs = await _loader(info, "support.refs", service.external_refs_for).load(self.pk)
        return [ExternalRef(system=r.system, external_id=r.external_id) for r in refs]

    @strawberry.field(description="Service-level targets and their state.")
    def sla(self) -> TicketSla:
        m = self.model
        return TicketSla(
            model=m,
            first_response_due_at=m.first_response_due_at,
            resolution_due_at=m.resolution_due_at,
            first_responded_at=m.first_responded_at,
            resolved_at=m.resolved_at,
            resolution_paused_at=m.clock_stopped_at,
        )

    @strawberry.field(description="The customer's current rating; null until rated.")
    def satisfaction(self) -> TicketSatisfaction | None:
        m = self.model
        if m.rating is None or m.rated_at is None:
            return None
        return TicketSatisfaction.of(m.rating, m.rating_expectation, m.rating_comment, m.rated_at)

    @strawberry.field(description="Every rating the ticket received, oldest first (the last one is current).")
    async def satisfaction_history(self, info: Info) -> list[TicketSatisfaction]:
        rows: list[TicketRating] = await _loader(info, "support.ratings", service.ratings_for).load(self.pk)
        return [TicketSatisfaction.of(r.rating, r.expectation, r.comment, r.rated_at) for r in rows]

    @strawberry.field(description="The thread: public replies and internal notes, oldest first.")
    async def comments(
        self,
        info: Info,
        public: Annotated[
            bool | None, strawberry.argument(description="true: replies only; false: internal notes only.")
        ] = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> TicketCommentConnection:
        args = page_args(first, after, last, before)
        return await grouped_connection(
            info, ("support.comments", args, public), lambda: service.comment_select(public), CommentModel,
            CommentModel.ticket_id, self.pk, service.THREAD_ORDER, args, TicketCommentConnection,
            TicketComment.from_model,
        )

    @classmethod
    def from_model(cls, m: TicketModel) -> Ticket:
        return cls(
            **owned(m),
            id=encode_global_id("Ticket", m.id),
            pk=m.id,
            model=m,
            number=m.number,
            subject=m.subject,
            description=m.description,
            channel=m.channel,
            priority=m.priority,
            status=m.status,
            assignee=m.assignee,
            created_at=m.created_at,
            updated_at=m.updated_at,
            resolved_at=m.resolved_at,
            closed_at=m.closed_at,
            version=m.version,
        )


@strawberry.type(description="A page of tickets.")
class TicketConnection(Connection[Ticket]):
    pass


async def load_ticket(info: Info, pk: int) -> Ticket | None:
    model = await _loader(info, "support.ticket", service.tickets_by_ids, lambda: None).load(pk)
    return Ticket.from_model(model) if model is not None else None


NODES = [
    NodeType("Ticket", node_resolver("support.ticket", service.tickets_by_ids, Ticket.from_model), Ticket),
    NodeType("SlaPolicy", node_resolver("support.policy", service.policies_by_ids, SlaPolicy.from_model), SlaPolicy),
    NodeType("TicketComment", node_resolver("support.comment", service.comments_by_ids, TicketComment.from_model), TicketComment),
]


# --- statistics ---------------------------------------------------------------------------------


@strawberry.type(description="Number of open tickets of one priority.")
class TicketPriorityCount:
    priority: TicketPriority = strawberry.field(description="The priority counted.")
    count: int = strawberry.field(description="Tickets of this priority that are NEW, OPEN or PENDING.")


@strawberry.type(description="SLA targets decided in the period.")
class SupportTargetCounts:
    met: int = strawberry.field(description="Targets met in the period (counted when they were met).")
    breached: int = strawberry.field(description="Targets breached in the period (counted at their due time).")
    compliance: float | None = strawberry.field(description="met / (met + breached) x 100; null when none was decided.")


@strawberry.type(description="Distribution of a duration, in elapsed minutes.")
class SupportDurations:
    count: int = strawberry.field(description="How many tickets the figures cover.")
    median_minutes: float | None = strawberry.field(description="The median; null when `count` is 0.")
    p90_minutes: float | None = strawberry.field(description="90th percentile (linear interpolation, as percentile_cont).")

    @classmethod
    def of(cls, d: Durations) -> SupportDurations:
        return cls(count=d.count, median_minutes=d.median_minutes, p90_minutes=d.p90_minutes)


@strawberry.type(description="Service figures for a period `from <= t < to`; definitions in docs/support.md.")
class SupportStats:
    from_: datetime = strawberry.field(name="from", description="Start of the period, inclusive.")
    to: datetime = strawberry.field(description="End of the period, exclusive.")
    opened: int = strawberry.field(description="Tickets created in the period.")
    resolved: int = strawberry.field(description="Tickets whose latest resolution falls in the period.")
    open_backlog: list[TicketPriorityCount] = strawberry.field(
        description="Tickets NEW, OPEN or PENDING at the time of the request, by priority (LOW to URGENT)."
    )
    first_response_compliance: float | None = strawberry.field(description="% of first-response targets met.")
    resolution_compliance: float | None = strawberry.field(description="% of resolution targets met.")
    first_response_targets: SupportTargetCounts = strawberry.field(description="First-response targets decided in the period.")
    resolution_targets: SupportTargetCounts = strawberry.field(description="Resolution targets decided in the period.")
    first_response_time: SupportDurations = strawberry.field(
        description="Opening to first response, for tickets first answered in the period."
    )
    resolution_time: SupportDurations = strawberry.field(description="Opening to resolution, for tickets resolved in the period.")
    ratings: int = strawberry.field(description="Ratings given in the period (each ticket's current one).")
    csat: float | None = strawberry.field(description="% of those ratings that are 4 or 5.")
    average_rating: float | None = strawberry.field(description="Mean of those ratings (1 to 5); null without ratings.")
    satisfaction_index: float | None = strawberry.field(
        description="Mean of rating / expectation over ratings that state an expectation."
    )

    @classmethod
    def of(cls, s: StatsResult) -> SupportStats:
        return cls(
            from_=s.start,
            to=s.end,
            opened=s.opened,
            resolved=s.resolved,
            open_backlog=[TicketPriorityCount(priority=TicketPriority[p], count=n) for p, n in s.backlog.items()],
            first_response_compliance=s.first_response_compliance,
            resolution_compliance=s.resolution_compliance,
            first_response_targets=SupportTargetCounts(
                met=s.first_response_met, breached=s.first_response_breached, compliance=s.first_response_compliance
            ),
            resolution_targets=SupportTargetCounts(
                met=s.resolution_met, breached=s.resolution_breached, compliance=s.resolution_compliance
            ),
            first_response_time=SupportDurations.of(s.first_response_time),
            resolution_time=SupportDurations.of(s.resolution_time),
            ratings=s.ratings,
            csat=s.csat,
            average_rating=s.average_rating,
            satisfaction_index=s.satisfaction_index,
        )
