"""What the activities domain adds to customers: the ``Customer.activities`` timeline and the
``activities`` filter condition's input (registered by ``crm_graph.activities.plugin``)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from crm_graph.activities import service
from crm_graph.activities.models import Activity as ActivityModel
from crm_graph.activities.schema import Activity, ActivityConnection, ActivityFilter
from crm_graph.graphql.inputs import DateTimeFilter, IntFilter, to_plain
from crm_graph.graphql.relay import grouped_connection, page_args


@strawberry.type
class CustomerActivityFields:
    """Resolvers here read ``self.pk``, the customer's primary key."""

    @strawberry.field(description="The customer's timeline, newest first.")
    async def activities(
        self,
        info: Info,
        filter: Annotated[
            ActivityFilter | None, strawberry.argument(description="Only the customer's activities matching these conditions.")
        ] = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> ActivityConnection:
        args = page_args(first, after, last, before)
        plain = to_plain(filter)
        return await grouped_connection(
            info, ("activities", args, repr(plain)), lambda: service.activity_select(plain), ActivityModel,
            ActivityModel.customer_id, self.pk,  # type: ignore[attr-defined]
            service.TIMELINE, args, ActivityConnection, Activity.from_model,
        )


@strawberry.input(description="Conditions on the customer's timeline, optionally within the last `windowDays` days.")
class ActivitiesBehaviourFilter:
    window_days: int | None = strawberry.field(
        default=None, description="Only activities that occurred in the last this many days (1 to 36600); all when null."
    )
    count: IntFilter | None = strawberry.field(default=None, description="How many activities the customer has (in the window, if one is given).")
    last_at: DateTimeFilter | None = strawberry.field(
        default=None, description="When the customer's latest activity occurred; null for a customer without any."
    )
