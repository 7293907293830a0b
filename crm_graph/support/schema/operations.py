"""Queries and mutations of the support domain. Thin: the rules live in crm_graph/support/service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from crm_graph.core.clock import utcnow
from crm_graph.core.pagination import paginate
from crm_graph.graphql import access
from crm_graph.graphql.context import Context
from crm_graph.graphql.errors import ClientError, UserError
from crm_graph.graphql.inputs import to_plain
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.graphql.relay import decode_global_id, page_args, try_decode_global_id
from crm_graph.support import filters, service
from crm_graph.support.models import TicketStatus
from crm_graph.support.schema.inputs import (
    CreateSlaPolicyInput,
    CreateTicketInput,
    RateTicketInput,
    ReplyToTicketInput,
    TicketFilter,
    TicketOrder,
    UpdateSlaPolicyInput,
    UpdateTicketInput,
    decode_filter,
)
from crm_graph.support.schema.types import (
    SlaPolicy,
    SlaPolicyConnection,
    SupportStats,
    Ticket,
    TicketComment,
    TicketConnection,
    load_policy,
    load_ticket,
)

MAX_STATS_RANGE_DAYS = 3660


@strawberry.type
class SupportQuery:
    @access.query("tickets", description="One ticket by ID; null if unknown (or its customer was deleted).")
    async def ticket(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A Ticket ID.")],
    ) -> Ticket | None:
        return await load_ticket(info, decode_global_id(id, "Ticket")[1])

    @access.query("tickets", description="Tickets, newest first unless `orderBy` says otherwise.")
    async def tickets(
        self,
        info: Info,
        filter: Annotated[TicketFilter | None, strawberry.argument(description="Only tickets that match.")] = None,
        order_by: list[TicketOrder] | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> TicketConnection:
        ctx: Context = info.context
        args = page_args(first, after, last, before)
        stmt = service.ticket_select(decode_filter(to_plain(filter)), now=utcnow())
        page = await paginate(ctx.db.reader, stmt, filters.sort_keys(to_plain(order_by)), args)
        return TicketConnection.from_page(page, Ticket.from_model)

    @access.query("sla_policies", description="One SLA policy by ID.")
    async def sla_policy(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="An SlaPolicy ID.")],
    ) -> SlaPolicy | None:
        return await load_policy(info, decode_global_id(id, "SlaPolicy")[1])

    @access.query("sla_policies", description="SLA policies in matching order (rank, then age).")
    async def sla_policies(
        self, info: Info, first: int | None = None, after: str | None = None, last: int | None = None,
        before: str | None = None,
    ) -> SlaPolicyConnection:
        ctx: Context = info.context
        page = await paginate(ctx.db.reader, service.policy_select(), service.POLICY_ORDER, page_args(first, after, last, before))
        return SlaPolicyConnection.from_page(page, SlaPolicy.from_model)

    @access.query("tickets", description="Service figures for the period `from <= t < to` (see docs/support.md).")
    async def support_stats(
        self,
        info: Info,
        from_: Annotated[datetime, strawberry.argument(name="from", description="Start, inclusive.")],
        to: Annotated[datetime, strawberry.argument(description="End, exclusive.")],
    ) -> SupportStats:
        if from_.tzinfo is None or to.tzinfo is None:
            raise ClientError("`from` and `to` need a time zone (e.g. 2026-01-01T00:00:00Z).")
        if to <= from_:
            raise ClientError("`to` must be after `from`.")
        if (to - from_).days > MAX_STATS_RANGE_DAYS:
            raise ClientError(f"A period spans at most {MAX_STATS_RANGE_DAYS} days.")
        ctx: Context = info.context
        async with ctx.db.reader() as session:
            stats = await service.support_stats(session, start=from_, end=to, now=utcnow())
        return SupportStats.of(stats)


# --- mutations ----------------------------------------------------------------------------------


@strawberry.type(description="Result of the mutations that change one ticket.")
class TicketPayload:
    ticket: Ticket | None = strawberry.field(description="The ticket after the change; null when there are errors.")
    errors: list[UserError]


@strawberry.type(description="Result of replyToTicket.")
class ReplyToTicketPayload:
    ticket: Ticket | None = strawberry.field(
        description="The ticket, its status moved by the reply where that applies; null when there are errors."
    )
    comment: TicketComment | None = strawberry.field(description="The comment just added.")
    errors: list[UserError]


@strawberry.type(description="Result of createSlaPolicy and updateSlaPolicy.")
class SlaPolicyPayload:
    sla_policy: SlaPolicy | None = strawberry.field(description="The policy as saved; null when there are errors.")
    errors: list[UserError]


def _customer_pk(value: Any) -> int:
    """A customer reference from an input; 0 (never an id) when malformed, so it reads NOT_FOUND."""
    return try_decode_global_id(value, "Customer") or 0


async def _ticket(info: Info, work: Callable[[AsyncSession], Awaitable[Any]]) -> TicketPayload:
    model, errors = await unit_of_work(info, work)
    return TicketPayload(ticket=Ticket.from_model(model) if model is not None else None, errors=errors)


async def _policy(info: Info, work: Callable[[AsyncSession], Awaitable[Any]]) -> SlaPolicyPayload:
    model, errors = await unit_of_work(info, work)
    return SlaPolicyPayload(sla_policy=SlaPolicy.from_model(model) if model is not None else None, errors=errors)


@strawberry.type
class SupportMutation:
    @access.mutation("tickets", "create", description="Open a ticket; the matching SLA policy sets its due times.")
    async def create_ticket(
        self,
        info: Info,
        input: Annotated[CreateTicketInput, strawberry.argument(description="The ticket to open.")],
    ) -> TicketPayload:
        data = to_plain(input)
        data["customerId"] = _customer_pk(input.customer_id)
        if input.contact_id is not None:
            data["contactId"] = _customer_pk(input.contact_id)
        actor = info.context.actor
        return await _ticket(info, lambda s: service.create_ticket(s, actor=actor, data=data))

    @access.mutation("tickets", "update", description="Edit a ticket. With `expectedVersion`, a stale version gives VERSION_CONFLICT.")
    async def update_ticket(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The ticket to edit (Ticket ID); a CLOSED one is TICKET_CLOSED.")
        ],
        input: Annotated[UpdateTicketInput, strawberry.argument(description="What to change.")],
        expected_version: int | None = None,
    ) -> TicketPayload:
        pk, actor = decode_global_id(id, "Ticket")[1], info.context.actor
        data = to_plain(input, keep_null=True)
        if data.get("contactId") is not None:
            data["contactId"] = _customer_pk(data["contactId"])
        return await _ticket(
            info,
            lambda s: service.update_ticket(s, actor=actor, ticket_id=pk, data=data, expected_version=expected_version),
        )

    @access.mutation(
        "tickets", "update",
        description="Add a public reply or an internal note. The first public agent reply opens a NEW ticket; "
        "a customer reply re-opens a PENDING or RESOLVED one; a CLOSED ticket takes none (TICKET_CLOSED)."
    )
    async def reply_to_ticket(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The ticket (Ticket ID).")],
        input: Annotated[ReplyToTicketInput, strawberry.argument(description="The reply or note.")],
        expected_version: int | None = None,
    ) -> ReplyToTicketPayload:
        pk, actor, data = decode_global_id(id, "Ticket")[1], info.context.actor, to_plain(input)
        result, errors = await unit_of_work(
            info,
            lambda s: service.reply_to_ticket(s, actor=actor, ticket_id=pk, data=data, expected_version=expected_version),
        )
        if result is None:
            return ReplyToTicketPayload(ticket=None, comment=None, errors=errors)
        ticket, comment = result
        return ReplyToTicketPayload(ticket=Ticket.from_model(ticket), comment=TicketComment.from_model(comment), errors=[])

    # The assignee is a name on the ticket, not its owner (`tickets:assign` is for changing owners).
    @access.mutation("tickets", "update", description="Give the ticket to someone; null or blank unassigns it.")
    async def assign_ticket(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The ticket (Ticket ID); a CLOSED one is TICKET_CLOSED.")],
        assignee: Annotated[
            str | None,
            strawberry.argument(
                description="Who works on it (free text, at most 200 characters); null or blank: nobody."
            ),
        ] = None,
        expected_version: int | None = None,
    ) -> TicketPayload:
        pk, actor = decode_global_id(id, "Ticket")[1], info.context.actor
        return await _ticket(
            info,
            lambda s: service.assign_ticket(s, actor=actor, ticket_id=pk, assignee=assignee, expected_version=expected_version),
        )

    @access.mutation(
        "tickets", "update",
        description="Move the ticket through its status machine; a move it does not allow is INVALID_TRANSITION."
    )
    async def change_ticket_status(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The ticket (Ticket ID).")],
        status: Annotated[
            TicketStatus, strawberry.argument(description="The new status; asking for the one it has changes nothing.")
        ],
        expected_version: int | None = None,
    ) -> TicketPayload:
        pk, actor = decode_global_id(id, "Ticket")[1], info.context.actor
        return await _ticket(
            info,
            lambda s: service.change_ticket_status(s, actor=actor, ticket_id=pk, status=status.name, expected_version=expected_version),
        )

    @access.mutation(
        "tickets", "update",
        description="Record the customer's satisfaction with a RESOLVED or CLOSED ticket; a later rating replaces "
        "the earlier one, which stays in `satisfactionHistory`."
    )
    async def rate_ticket(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="The RESOLVED or CLOSED ticket (Ticket ID); any other is TICKET_NOT_RESOLVED."
            ),
        ],
        input: Annotated[RateTicketInput, strawberry.argument(description="The rating.")],
    ) -> TicketPayload:
        pk, actor, data = decode_global_id(id, "Ticket")[1], info.context.actor, to_plain(input)
        return await _ticket(info, lambda s: service.rate_ticket(s, actor=actor, ticket_id=pk, data=data))

    @access.mutation("sla_policies", "create", description="Define service-level targets for some or all tickets.")
    async def create_sla_policy(
        self,
        info: Info,
        input: Annotated[CreateSlaPolicyInput, strawberry.argument(description="The policy to define.")],
    ) -> SlaPolicyPayload:
        data, actor = to_plain(input), info.context.actor
        return await _policy(info, lambda s: service.create_sla_policy(s, actor=actor, data=data))

    @access.mutation("sla_policies", "update", description="Change an SLA policy. Tickets keep the due times they already have.")
    async def update_sla_policy(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The policy to change (SlaPolicy ID).")],
        input: Annotated[UpdateSlaPolicyInput, strawberry.argument(description="What to change.")],
        expected_version: int | None = None,
    ) -> SlaPolicyPayload:
        pk, actor = decode_global_id(id, "SlaPolicy")[1], info.context.actor
        data = to_plain(input, keep_null=True)
        return await _policy(
            info,
            lambda s: service.update_sla_policy(s, actor=actor, policy_id=pk, data=data, expected_version=expected_version),
        )
