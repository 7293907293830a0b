"""Mutations of access: signing in and out, users, teams, roles, API keys, sharing defaults.

After a change that alters what an actor may do, the server's ``Authenticator`` forgets the
actors it cached, so the change holds for the very next request to this process (other
processes notice within ``CRM_AUTH_CACHE_SECONDS``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import strawberry
from strawberry.types import Info
from strawberry.types.unset import UNSET

from crm_graph.auth import service
from crm_graph.auth.schema.types import ApiKey, Role, SharingDefault, SharingLevel, Team, User, sharing_list
from crm_graph.core.errors import INVALID_STATE, DomainError
from crm_graph.graphql import access
from crm_graph.graphql.context import Context
from crm_graph.graphql.errors import UserError, user_errors
from crm_graph.graphql.inputs import to_plain
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.graphql.relay import decode_global_id


def _auth(info: Info) -> Any:
    """The server's ``Authenticator`` (None when the schema runs without the app)."""
    request = info.context.request
    return getattr(getattr(getattr(request, "app", None), "state", None), "auth", None)


def _forget(info: Info, **who: Any) -> None:
    auth = _auth(info)
    if auth is None:
        return
    if who:
        auth.forget(**who)
    else:
        auth.forget_all()


# --- inputs and payloads -------------------------------------------------------------------------


@strawberry.input(description="A new user. A role that grants more than your own gives FORBIDDEN.")
class CreateUserInput:
    email: str = strawberry.field(
        description="Stored lower-cased; INVALID_EMAIL if malformed, DUPLICATE if a user has it already."
    )
    role: str = strawberry.field(description="A role name, built-in (`SALES`) or custom.")
    name: str | None = strawberry.field(default=None, description="Display name, at most 200 characters.")
    team_id: strawberry.ID | None = strawberry.field(
        default=None, description="Global ID of the user's Team (NOT_FOUND if unknown)."
    )
    password: str | None = strawberry.field(
        default=None, description=f"At least {service.MIN_PASSWORD} characters; without one the user cannot sign in."
    )


@strawberry.input(description="Fields to change; omitted fields stay as they are. null clears `name` and `teamId`.")
class UpdateUserInput:
    name: str | None = strawberry.field(default=UNSET, description="Display name, at most 200 characters.")
    role: str | None = strawberry.field(default=UNSET, description="Nobody changes their own role.")
    team_id: strawberry.ID | None = strawberry.field(default=UNSET, description="Global ID of the user's Team.")
    active: bool | None = strawberry.field(default=UNSET, description="false: the user cannot sign in and is signed out.")
    password: str | None = strawberry.field(default=UNSET, description="A new password; signs the user out everywhere.")


@strawberry.input(description="A new team.")
class CreateTeamInput:
    name: str = strawberry.field(description="Required, at most 200 characters; a name in use gives DUPLICATE.")
    description: str | None = strawberry.field(default=None, description="Free text, at most 1000 characters.")


@strawberry.input(description="A custom role. It cannot grant a permission you do not have (FORBIDDEN).")
class CreateRoleInput:
    name: str = strawberry.field(description="Upper-case letters, digits and underscores, e.g. `ANALYST`.")
    permissions: list[str] = strawberry.field(description="`object:action` strings such as `customers:read` or `opportunities:*`.")
    description: str | None = strawberry.field(default=None, description="What the role is for, at most 1000 characters.")
    view_all: bool = strawberry.field(default=False, description="Sees and changes every record, whatever the sharing defaults.")
    manages_team: bool = strawberry.field(default=False, description="Sees and changes the PRIVATE records of its team.")


@strawberry.input(description="A new API key acting as you.")
class CreateApiKeyInput:
    name: str = strawberry.field(description="What the key is for, e.g. `shop sync`.")
    role: str | None = strawberry.field(default=None, description="Defaults to your own role; only administrators choose another.")
    scopes: list[str] | None = strawberry.field(
        default=None, description="Limit the key to these permissions (`customers:read`); null: everything the role allows."
    )
    expires_at: datetime | None = strawberry.field(
        default=None, description="Null: the key does not expire. Otherwise a future time with its time zone."
    )


@strawberry.type(description="The outcome of `login`.")
class LoginPayload:
    token: str | None = strawberry.field(description="Send it as `Authorization: Bearer <token>`; shown only here.")
    expires_at: datetime | None = strawberry.field(description="When the session ends (UTC); null when sign-in failed.")
    user: User | None = strawberry.field(description="The signed-in user; null when sign-in failed.")
    errors: list[UserError]


@strawberry.type(description="The outcome of `logout`.")
class LogoutPayload:
    ok: bool = strawberry.field(description="true: the session token no longer works.")
    errors: list[UserError]


@strawberry.type(description="The outcome of a user mutation.")
class UserPayload:
    user: User | None = strawberry.field(description="The user as stored; null when there are errors.")
    errors: list[UserError]


@strawberry.type(description="The outcome of `createTeam`.")
class TeamPayload:
    team: Team | None = strawberry.field(description="The new team; null when there are errors.")
    errors: list[UserError]


@strawberry.type(description="The outcome of `createRole`.")
class RolePayload:
    role: Role | None = strawberry.field(description="The new role; null when there are errors.")
    errors: list[UserError]


@strawberry.type(description="The outcome of `createApiKey`.")
class CreateApiKeyPayload:
    key: str | None = strawberry.field(description="The key itself. It is shown only here: store it now.")
    api_key: ApiKey | None = strawberry.field(description="The key's record; null when there are errors.")
    errors: list[UserError]


@strawberry.type(description="The outcome of `revokeApiKey`.")
class ApiKeyPayload:
    api_key: ApiKey | None = strawberry.field(description="The revoked key; null when there are errors.")
    errors: list[UserError]


@strawberry.type(description="The outcome of `setSharingDefault`.")
class SharingDefaultsPayload:
    sharing_defaults: list[SharingDefault] | None = strawberry.field(
        description="Every owned object type's level after the change; null when there are errors."
    )
    errors: list[UserError]


def _team_pk(value: Any) -> int | None:
    return decode_global_id(value, "Team")[1] if value is not None else None


def _user_payload(result: tuple[Any, list[UserError]]) -> UserPayload:
    model, errors = result
    return UserPayload(user=User.from_model(model) if model is not None else None, errors=errors)


# --- mutations -----------------------------------------------------------------------------------


@strawberry.type
class AccessMutation:
    @access.public(
        "mutation",
        description="Sign in with an email and a password; returns a session token. After "
        "CRM_LOGIN_MAX_FAILURES failures within CRM_LOGIN_LOCKOUT_MINUTES the account is LOCKED for that time.",
    )
    async def login(
        self,
        info: Info,
        email: Annotated[str, strawberry.argument(description="The user's email address, in any case.")],
        password: Annotated[
            str,
            strawberry.argument(
                description="The user's password. A wrong one, an unknown email and an inactive user all give "
                "INVALID_CREDENTIALS."
            ),
        ],
    ) -> LoginPayload:
        ctx: Context = info.context
        settings, request = ctx.settings, ctx.request
        client = getattr(request, "client", None)
        try:
            # Unscoped: an anonymous actor's scope sees no users.
            signed = await service.sign_in(
                ctx.base_db.writer,
                email=email,
                password=password,
                address=client.host if client else None,
                user_agent=request.headers.get("user-agent") if request is not None else None,
                hash_key=settings.hash_key(),
                hours=settings.session_hours,
                max_failures=settings.login_max_failures,
                lockout=timedelta(minutes=settings.login_lockout_minutes),
            )
        except DomainError as exc:
            return LoginPayload(token=None, expires_at=None, user=None, errors=user_errors(exc))
        team = Team.from_model(signed.team) if signed.team is not None else None
        return LoginPayload(
            token=signed.token, expires_at=signed.session.expires_at, user=User.from_model(signed.user, team=team), errors=[]
        )

    @access.signed_in("mutation", description="End this session: its token stops working at once.")
    async def logout(self, info: Info) -> LogoutPayload:
        session_id = info.context.actor.session_id
        if session_id is None:
            error = UserError(
                field=None, code=INVALID_STATE,
                message="This request is not signed in with a session token; an API key ends with `revokeApiKey`.",
            )
            return LogoutPayload(ok=False, errors=[error])
        _, errors = await unit_of_work(info, lambda s: service.logout(s, session_id=session_id))
        if not errors:
            _forget(info, session_id=session_id)
        return LogoutPayload(ok=not errors, errors=errors)

    @access.mutation("users", "create", description="Add a user. Nobody gives a role that grants more than their own.")
    async def create_user(
        self, info: Info, input: Annotated[CreateUserInput, strawberry.argument(description="The new user.")]
    ) -> UserPayload:
        actor, team_pk = info.context.actor, _team_pk(input.team_id)
        return _user_payload(await unit_of_work(info, lambda s: service.create_user(
            s, actor=actor, email=input.email, role=input.role, password=input.password, name=input.name, team_id=team_pk,
        )))

    @access.mutation(
        "users", "update",
        description="Change a user. Changing your own role gives FORBIDDEN; demoting or deactivating the last "
        "administrator gives LAST_ADMIN. A new role revokes the user's keys that grant more than it; deactivating "
        "or a new password signs the user out.",
    )
    async def update_user(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the User.")],
        input: Annotated[UpdateUserInput, strawberry.argument(description="The fields to change.")],
        expected_version: int | None = None,
    ) -> UserPayload:
        pk, actor = decode_global_id(id, "User")[1], info.context.actor
        data = to_plain(input, keep_null=True)
        if "teamId" in data:
            data["teamId"] = _team_pk(data["teamId"])
        result = await unit_of_work(
            info, lambda s: service.update_user(s, actor=actor, user_id=pk, data=data, expected_version=expected_version)
        )
        if not result[1]:
            _forget(info, user_id=pk)
        return _user_payload(result)

    @access.mutation("teams", "create", description="Add a team.")
    async def create_team(
        self, info: Info, input: Annotated[CreateTeamInput, strawberry.argument(description="The new team.")]
    ) -> TeamPayload:
        actor = info.context.actor
        model, errors = await unit_of_work(
            info, lambda s: service.create_team(s, actor=actor, name=input.name, description=input.description)
        )
        return TeamPayload(team=Team.from_model(model) if model is not None else None, errors=errors)

    @access.mutation("roles", "create", description="Define a custom role. Names of built-in roles are taken (DUPLICATE).")
    async def create_role(
        self, info: Info, input: Annotated[CreateRoleInput, strawberry.argument(description="The new role.")]
    ) -> RolePayload:
        actor = info.context.actor
        role, errors = await unit_of_work(info, lambda s: service.create_role(
            s, actor=actor, name=input.name, permissions=input.permissions, description=input.description,
            view_all=input.view_all, manages_team=input.manages_team,
        ))
        if not errors:
            _forget(info)  # the role table is cached with the actors
        return RolePayload(role=Role.from_definition(role) if role is not None else None, errors=errors)

    @access.mutation("api_keys", "create", description="Make an API key acting as you. The key is in this payload only.")
    async def create_api_key(
        self, info: Info, input: Annotated[CreateApiKeyInput, strawberry.argument(description="The new key.")]
    ) -> CreateApiKeyPayload:
        ctx: Context = info.context
        actor, hash_key = ctx.actor, ctx.settings.hash_key()
        result, errors = await unit_of_work(info, lambda s: service.create_api_key(
            s, actor=actor, name=input.name, role=input.role, scopes=input.scopes, expires_at=input.expires_at,
            hash_key=hash_key,
        ))
        if result is None:
            return CreateApiKeyPayload(key=None, api_key=None, errors=errors)
        token, model = result
        return CreateApiKeyPayload(key=token, api_key=ApiKey.from_model(model), errors=[])

    @access.mutation("api_keys", "delete", description="Revoke an API key: it stops working at once.")
    async def revoke_api_key(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the ApiKey.")]
    ) -> ApiKeyPayload:
        pk, actor = decode_global_id(id, "ApiKey")[1], info.context.actor
        model, errors = await unit_of_work(info, lambda s: service.revoke_api_key(s, actor=actor, key_id=pk))
        if not errors:
            _forget(info, key_id=pk)
        return ApiKeyPayload(api_key=ApiKey.from_model(model) if model is not None else None, errors=errors)

    @access.mutation(
        "settings", "update",
        description="Set who sees and changes records of one owned object type (`customers`, `opportunities`, "
        "`quotes`, `orders`, `tickets`) besides their owner. Applies to every list, count and node at once.",
    )
    async def set_sharing_default(
        self,
        info: Info,
        object: Annotated[
            str,
            strawberry.argument(description="`customers`, `opportunities`, `quotes`, `orders` or `tickets`; else INVALID_VALUE."),
        ],
        level: Annotated[SharingLevel, strawberry.argument(description="The new level.")],  # type: ignore[valid-type]
    ) -> SharingDefaultsPayload:
        actor = info.context.actor
        levels, errors = await unit_of_work(
            info, lambda s: service.set_sharing_default(s, actor=actor, object=object, level=level)
        )
        if not errors:
            _forget(info)  # cached scopes carry the old levels
        return SharingDefaultsPayload(sharing_defaults=sharing_list(levels) if levels is not None else None, errors=errors)
