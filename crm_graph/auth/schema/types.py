"""GraphQL types of access: users, teams, roles, API keys, the viewer and sharing defaults.

Secrets never appear: no type has a field for a password hash or a token hash, and an API key
itself is only ever in the payload of ``createApiKey``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from crm_graph.auth import service
from crm_graph.auth.models import ApiKey as ApiKeyModel
from crm_graph.auth.models import Team as TeamModel
from crm_graph.auth.models import User as UserModel
from crm_graph.auth.roles import Role as RoleDefinition
from crm_graph.core.access import Sharing
from crm_graph.core.extensions import NodeType
from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.relay import (
    Connection,
    Node,
    encode_global_id,
    grouped_connection,
    node_resolver,
    page_args,
)

SharingLevel = graphql_enum(
    Sharing,
    name="SharingLevel",
    description="Who besides a record's owner sees and changes it: PRIVATE (the owner, managers of the record's "
    "team and administrators), TEAM (also everyone in the record's team), PUBLIC_READ (everyone reads; writes as "
    "PRIVATE), PUBLIC_READ_WRITE (everyone reads and writes).",
    values={
        "PRIVATE": "The owner, managers of the record's team and administrators.",
        "TEAM": "As PRIVATE, plus everyone in the record's team, to read and write.",
        "PUBLIC_READ": "Everyone reads; writing is as PRIVATE.",
        "PUBLIC_READ_WRITE": "Everyone reads and writes.",
    },
)

_NOT_LOADED: Any = object()


async def load_team(info: Info, pk: int) -> Team | None:
    model = await info.context.loader("auth.team", service.teams_by_ids).load(pk)
    return Team.from_model(model) if model is not None else None


async def load_user(info: Info, pk: int) -> User | None:
    model = await info.context.loader("auth.user", service.users_by_ids).load(pk)
    return User.from_model(model) if model is not None else None


@strawberry.type(description="A person who signs in (with a password) or on whose behalf API keys act.")
class User(Node):
    pk: strawberry.Private[int]
    team_pk: strawberry.Private[int | None]
    preloaded_team: strawberry.Private[Any]
    email: str = strawberry.field(description="Lower-cased; what `login` takes.")
    name: str | None = strawberry.field(description="Display name; null if none was given.")
    role: str = strawberry.field(description="Name of the user's role (see `roles`).")
    active: bool = strawberry.field(description="An inactive user cannot sign in, and their keys stop working.")
    last_login_at: datetime | None = strawberry.field(
        description="When the user last signed in with `login` (UTC); null if never."
    )
    created_at: datetime = strawberry.field(description="When the user was added (UTC).")
    version: int = strawberry.field(description="Optimistic-concurrency version; pass it as `expectedVersion`.")

    @strawberry.field(description="The user's team; records they own belong to it.")
    async def team(self, info: Info) -> Team | None:
        if self.preloaded_team is not _NOT_LOADED:
            return self.preloaded_team
        return await load_team(info, self.team_pk) if self.team_pk is not None else None

    @classmethod
    def from_model(cls, m: UserModel, *, team: Team | None = _NOT_LOADED) -> User:
        return cls(
            id=encode_global_id("User", m.id),
            pk=m.id,
            team_pk=m.team_id,
            preloaded_team=team,
            email=m.email,
            name=m.name,
            role=m.role,
            active=m.active,
            last_login_at=m.last_login_at,
            created_at=m.created_at,
            version=m.version,
        )


@strawberry.type(description="A page of users.")
class UserConnection(Connection[User]):
    pass


@strawberry.type(description="A group of users. Records belong to their owner's team; sharing level TEAM opens them to it.")
class Team(Node):
    pk: strawberry.Private[int]
    name: str = strawberry.field(description="Unique name of the team.")
    description: str | None = strawberry.field(description="Free text; null if none.")
    created_at: datetime = strawberry.field(description="When the team was added (UTC).")

    @strawberry.field(description="Users of the team, by email.")
    async def members(self, info: Info, first: int | None = None, after: str | None = None) -> UserConnection:
        args = page_args(first, after, None, None)
        return await grouped_connection(
            info, ("team.members", args), service.user_select, UserModel, UserModel.team_id, self.pk,
            service.USER_ORDER, args, UserConnection, User.from_model,
        )

    @classmethod
    def from_model(cls, m: TeamModel) -> Team:
        return cls(id=encode_global_id("Team", m.id), pk=m.id, name=m.name, description=m.description, created_at=m.created_at)


@strawberry.type(description="A page of teams.")
class TeamConnection(Connection[Team]):
    pass


@strawberry.type(description="A named set of permissions. Built-in roles cannot change; `createRole` adds others.")
class Role:
    name: str = strawberry.field(description="Upper-case name, e.g. `SALES`; what `User.role` and `ApiKey.role` hold.")
    description: str = strawberry.field(description="What the role is for; empty if none was given.")
    permissions: list[str] = strawberry.field(
        description="`object:action` strings (`customers:read`), `object:*`, `*:action`, or `*` for everything."
    )
    view_all: bool = strawberry.field(description="Sees and changes every record, whatever the sharing defaults.")
    manages_team: bool = strawberry.field(description="Sees and changes the PRIVATE records of its team.")
    builtin: bool = strawberry.field(description="true: a role that comes with the server and cannot change.")

    @classmethod
    def from_definition(cls, r: RoleDefinition) -> Role:
        return cls(
            name=r.name, description=r.description, permissions=sorted(r.permissions), view_all=r.view_all,
            manages_team=r.manages_team, builtin=r.builtin,
        )


@strawberry.type(description="A key for programs: sent as `Authorization: Bearer crm_key_...`. The key itself is shown once, by `createApiKey`.")
class ApiKey(Node):
    pk: strawberry.Private[int]
    user_pk: strawberry.Private[int | None]
    name: str = strawberry.field(description="What the key is for, e.g. `shop sync`.")
    prefix: str = strawberry.field(description="The first characters of the key, to recognise it (`crm_key_AbC1`).")
    role: str = strawberry.field(description="Name of the role the key acts with.")
    scopes: list[str] | None = strawberry.field(description="What the key is limited to within its role; null: everything the role allows.")
    expires_at: datetime | None = strawberry.field(
        description="When the key stops working (UTC); null: it does not expire."
    )
    revoked_at: datetime | None = strawberry.field(description="When the key was revoked (UTC); null while it is not.")
    last_used_at: datetime | None = strawberry.field(description="Recorded at most once a minute.")
    created_at: datetime = strawberry.field(description="When the key was made (UTC).")

    @strawberry.field(description="The user the key acts as; null for an integration key of its own.")
    async def user(self, info: Info) -> User | None:
        return await load_user(info, self.user_pk) if self.user_pk is not None else None

    @classmethod
    def from_model(cls, m: ApiKeyModel) -> ApiKey:
        return cls(
            id=encode_global_id("ApiKey", m.id), pk=m.id, user_pk=m.user_id, name=m.name, prefix=m.prefix, role=m.role,
            scopes=list(m.scopes) if m.scopes is not None else None, expires_at=m.expires_at, revoked_at=m.revoked_at,
            last_used_at=m.last_used_at, created_at=m.created_at,
        )


@strawberry.type(description="A page of API keys.")
class ApiKeyConnection(Connection[ApiKey]):
    pass


@strawberry.type(description="Who is asking: the signed-in user or the API key of this request, and what it may do.")
class Viewer:
    kind: str = strawberry.field(description="`user` (a session from `login`) or `api_key`.")
    role: str | None = strawberry.field(description="Name of the role the request acts with.")
    permissions: list[str] = strawberry.field(
        description="What the request may do: the role's permissions, narrowed by a key's scopes (`*` is everything)."
    )
    scopes: list[str] | None = strawberry.field(description="A key's scopes as given; null when not limited (or not a key).")
    view_all: bool = strawberry.field(description="Sees every record, whatever the sharing defaults.")
    user: User | None = strawberry.field(description="Yourself; null for an API key that belongs to no user.")
    api_key: ApiKey | None = strawberry.field(description="The key of this request; null for a session.")


@strawberry.type(description="The sharing level of one owned object type, for the whole organisation.")
class SharingDefault:
    object: str = strawberry.field(description="`customers`, `opportunities`, `quotes`, `orders` or `tickets`.")
    level: SharingLevel = strawberry.field(  # type: ignore[valid-type]
        description="Who besides the owner sees and changes records of this type."
    )


def sharing_list(levels: dict[str, Sharing]) -> list[SharingDefault]:
    return [SharingDefault(object=obj, level=levels.get(obj, Sharing.PRIVATE)) for obj in service.OWNED_OBJECTS]


NODES = [
    NodeType("User", node_resolver("auth.user", service.users_by_ids, User.from_model), User),
    NodeType("ApiKey", node_resolver("auth.api_key", service.api_keys_by_ids, ApiKey.from_model), ApiKey),
    NodeType("Team", node_resolver("auth.team", service.teams_by_ids, Team.from_model), Team),
]
