"""GraphQL API of ownership: ``ownedBy`` and ``team`` on every owned record, and
``reassignOwner``.

``OwnedFields`` is mixed into the types of owned records (Customer, Opportunity, Quote, Order,
Ticket); they fill ``owner_pk`` and ``team_pk`` from the model's ``owner_id`` and ``team_id``.
Owners and teams come through the request's loaders, so a page of records costs one query for
their owners whatever its size. An owner the caller may not read (no ``users:read``) is null.
"""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from crm_graph.auth.schema import Team, User, load_team, load_user
from crm_graph.domains import SchemaPart
from crm_graph.graphql import access
from crm_graph.graphql.errors import UserError
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.graphql.relay import Node, decode_global_id, encode_global_id
from crm_graph.ownership import service


@strawberry.type
class OwnedFields:
    owner_pk: strawberry.Private[int | None]
    team_pk: strawberry.Private[int | None]

    @strawberry.field(description="The user who owns the record: record-level sharing is decided by them and their team.")
    async def owned_by(self, info: Info) -> User | None:
        return await load_user(info, self.owner_pk) if self.owner_pk is not None else None

    @strawberry.field(description="The team the record belongs to (its owner's, unless reassigned otherwise).")
    async def team(self, info: Info) -> Team | None:
        return await load_team(info, self.team_pk) if self.team_pk is not None else None


def owned(model: Any) -> dict[str, Any]:
    """The ``owner_pk``/``team_pk`` arguments of a type's constructor, from its model."""
    return {"owner_pk": model.owner_id, "team_pk": model.team_id}


@strawberry.input(description="Give records to another owner. Needs the `assign` permission of each record's type.")
class ReassignOwnerInput:
    ids: list[strawberry.ID] = strawberry.field(description="Customers, opportunities, quotes, orders or tickets (at most 100).")
    owner_id: strawberry.ID = strawberry.field(description="The new owner, an active user.")
    team_id: strawberry.ID | None = strawberry.field(default=None, description="Their team unless given.")


@strawberry.type(description="A record whose owner changed.")
class Reassigned:
    record: Node | None = strawberry.field(description="The record, as the caller now sees it.")
    id: strawberry.ID = strawberry.field(description="Global ID of the record.")
    owner_id: strawberry.ID = strawberry.field(description="Global ID of its new owner (a User).")
    team_id: strawberry.ID | None = strawberry.field(description="Global ID of its Team now; null if it has none.")


@strawberry.type(description="The outcome of `reassignOwner`.")
class ReassignOwnerPayload:
    records: list[Reassigned] = strawberry.field(
        description="Every record of `ids`, in that order, with its owner and team now; empty when there are errors."
    )
    errors: list[UserError]


@strawberry.type
class OwnershipMutation:
    @access.signed_in(
        "mutation",
        description="Give records to another owner (and team); raises `<entity>.owner_changed`. All or nothing: "
        "a record the caller may not reassign (no `assign` permission, not writable, not visible) fails the whole call.",
    )
    async def reassign_owner(
        self,
        info: Info,
        input: Annotated[ReassignOwnerInput, strawberry.argument(description="The records and their new owner.")],
    ) -> ReassignOwnerPayload:
        from crm_graph.graphql.relay import resolve_nodes

        records = [decode_global_id(i) for i in input.ids]
        owner = decode_global_id(input.owner_id, "User")[1]
        team = decode_global_id(input.team_id, "Team")[1] if input.team_id is not None else None
        actor = info.context.actor
        done, errors = await unit_of_work(
            info, lambda s: service.reassign(s, actor=actor, records=records, owner_id=owner, team_id=team)
        )
        if done is None:
            return ReassignOwnerPayload(records=[], errors=errors)
        ids = [encode_global_id(type(r).__name__, r.id) for r in done]
        nodes = await resolve_nodes(info, ids)
        return ReassignOwnerPayload(
            records=[
                Reassigned(record=n, id=i, owner_id=encode_global_id("User", r.owner_id),
                           team_id=encode_global_id("Team", r.team_id) if r.team_id else None)
                for n, i, r in zip(nodes, ids, done, strict=True)
            ],
            errors=[],
        )


SCHEMA = SchemaPart(mutation=OwnershipMutation)
