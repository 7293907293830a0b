"""Fields the support domain adds to the `Customer` type, and the input of its `tickets` filter
condition (both registered by ``crm_graph.support.plugin``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from crm_graph.graphql.inputs import IntFilter

if TYPE_CHECKING:
    from crm_graph.support.schema import TicketConnection, TicketFilter, TicketOrder

_SCHEMA = "crm_graph.support.schema"


@strawberry.type
class CustomerSupportFields:
    """Resolvers here read `self.pk`, the customer's primary key."""

    @strawberry.field(description="The customer's tickets, newest first unless `orderBy` says otherwise.")
    async def tickets(
        self,
        info: Info,
        filter: Annotated[
            Annotated[TicketFilter, strawberry.lazy(_SCHEMA)] | None,
            strawberry.argument(description="Only tickets that match."),
        ] = None,
        order_by: list[Annotated[TicketOrder, strawberry.lazy(_SCHEMA)]] | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Annotated[TicketConnection, strawberry.lazy(_SCHEMA)]:
        from crm_graph.core.clock import utcnow
        from crm_graph.graphql.inputs import to_plain
        from crm_graph.graphql.relay import grouped_connection, page_args
        from crm_graph.support import filters, service
        from crm_graph.support.models import Ticket as TicketModel
        from crm_graph.support.schema import (
            Ticket,
            TicketConnection,
            decode_filter,
        )

        args = page_args(first, after, last, before)
        plain, order = decode_filter(to_plain(filter)), to_plain(order_by)
        keys = filters.sort_keys(order)
        return await grouped_connection(
            info, ("support.customer_tickets", args, repr(plain), repr(order)),
            lambda: service.ticket_select(plain, now=utcnow()), TicketModel,
            TicketModel.customer_id, self.pk, keys, args, TicketConnection, Ticket.from_model,
        )


@strawberry.input(description="Conditions on the customer's support tickets.")
class TicketsBehaviourFilter:
    count: IntFilter | None = strawberry.field(default=None, description="The number of the customer's tickets, in any status.")
    open_count: IntFilter | None = strawberry.field(default=None, description="Tickets that are NEW, OPEN or PENDING.")
