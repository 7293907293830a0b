"""Queries of access: who am I, users, teams, roles, API keys and the sharing defaults."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from crm_graph.auth import service
from crm_graph.auth.models import ApiKey as ApiKeyModel
from crm_graph.auth.models import Team as TeamModel
from crm_graph.auth.models import User as UserModel
from crm_graph.auth.schema.types import (
    ApiKey,
    ApiKeyConnection,
    Role,
    SharingDefault,
    Team,
    TeamConnection,
    User,
    UserConnection,
    Viewer,
    sharing_list,
)
from crm_graph.core.pagination import paginate
from crm_graph.graphql import access
from crm_graph.graphql.context import Context
from crm_graph.graphql.relay import decode_global_id, page_args


@strawberry.type
class AccessQuery:
    @access.signed_in(description="Who is asking: your user, your key, your role and permissions.")
    async def me(self, info: Info) -> Viewer:
        ctx: Context = info.context
        actor = ctx.actor
        user = key = team = None
        # Your own user and key, whatever your role lets you read of other users and keys.
        async with ctx.base_db.reader() as session:
            if actor.user_id is not None:
                user = await session.get(UserModel, actor.user_id)
                team = await session.get(TeamModel, user.team_id) if user is not None and user.team_id else None
            if actor.key_id is not None:
                key = await session.get(ApiKeyModel, actor.key_id)
        return Viewer(
            kind=actor.kind,
            role=actor.role,
            permissions=sorted(actor.permissions),
            scopes=list(actor.scopes) if actor.scopes is not None else None,
            view_all=actor.view_all,
            user=User.from_model(user, team=Team.from_model(team) if team else None) if user is not None else None,
            api_key=ApiKey.from_model(key) if key is not None else None,
        )

    @access.query("users", description="Users, by email.")
    async def users(
        self,
        info: Info,
        role: Annotated[str | None, strawberry.argument(description="Only users of this role.")] = None,
        team_id: Annotated[strawberry.ID | None, strawberry.argument(description="Only members of this team.")] = None,
        active: Annotated[bool | None, strawberry.argument(description="Only active (true) or inactive (false) users.")] = None,
        search: Annotated[str | None, strawberry.argument(description="A part of the email or name.")] = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> UserConnection:
        ctx: Context = info.context
        args = page_args(first, after, last, before)
        team_pk = decode_global_id(team_id, "Team")[1] if team_id is not None else None
        stmt = service.user_select(role=role, team_id=team_pk, active=active, search=search)
        page = await paginate(ctx.db.reader, stmt, service.USER_ORDER, args)
        return UserConnection.from_page(page, User.from_model)

    @access.query("teams", description="Teams, by name.")
    async def teams(
        self, info: Info, first: int | None = None, after: str | None = None, last: int | None = None, before: str | None = None
    ) -> TeamConnection:
        ctx: Context = info.context
        page = await paginate(ctx.db.reader, service.team_select(), service.TEAM_ORDER, page_args(first, after, last, before))
        return TeamConnection.from_page(page, Team.from_model)

    @access.query("roles", description="Every role: the built-in ones, then custom roles by name.")
    async def roles(self, info: Info) -> list[Role]:
        async with info.context.db.reader() as session:
            found = await service.list_roles(session)
        return [Role.from_definition(r) for r in found]

    @access.query("api_keys", description="API keys, newest first. Outside administrators: your own keys only.")
    async def api_keys(
        self,
        info: Info,
        include_revoked: Annotated[bool, strawberry.argument(description="false: only keys that are not revoked.")] = True,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> ApiKeyConnection:
        ctx: Context = info.context
        stmt = service.api_key_select(include_revoked=include_revoked)
        page = await paginate(ctx.db.reader, stmt, service.KEY_ORDER, page_args(first, after, last, before))
        return ApiKeyConnection.from_page(page, ApiKey.from_model)

    # Any signed-in actor may read these: they show no record, and they explain to everyone why
    # they see what they see. Changing them needs `settings:update`.
    @access.signed_in(description="The organisation-wide sharing level of each owned object type.")
    async def sharing_defaults(self, info: Info) -> list[SharingDefault]:
        async with info.context.db.reader() as session:
            return sharing_list(await service.sharing_defaults(session))
