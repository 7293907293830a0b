"""The support domain's live updates: ``subscription { ticket(id) { ... } }``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry
from strawberry.types import Info

from crm_graph.graphql import access
from crm_graph.graphql.subscriptions import follow
from crm_graph.support.schema.types import Ticket


@strawberry.type
class SupportSubscription:
    @access.subscription(
        "tickets",
        description="The ticket, read again each time an event about it commits; null once it is gone or "
        "no longer visible to you.",
    )
    async def ticket(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A Ticket ID.")],
    ) -> AsyncGenerator[Ticket | None, None]:
        async with contextlib.aclosing(follow(info, id, "Ticket")) as found:
            async for ticket in found:
                yield ticket
