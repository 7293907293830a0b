"""Users, teams and custom roles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.auth.models import CustomRole, Team, User
from crm_graph.auth.roles import BUILTIN_ROLES, Role, valid_permission
from crm_graph.auth.service.common import (
    LAST_ADMIN,
    UNSCOPED,
    check_role,
    check_within,
    count_admins,
    error,
    hash_password,
    is_admin,
    normalise_email,
    roles,
    text,
    validate_password,
    validate_role_name,
)
from crm_graph.core.access import AccessDenied
from crm_graph.core.actor import Actor
from crm_graph.core.errors import DUPLICATE, INVALID_VALUE, NOT_FOUND, REQUIRED, ErrorCollector, NotFound, ValidationFailed, VersionConflict
from crm_graph.core.filters import escape_like, search_text
from crm_graph.core.pagination import SortKey

# Lists: users by email, teams by name, the id breaking ties.
USER_ORDER = [SortKey(User.email, "email"), SortKey(User.id, "id", parse=int)]
TEAM_ORDER = [SortKey(Team.name, "name"), SortKey(Team.id, "id", parse=int)]


async def create_user(
    session: AsyncSession,
    *,
    actor: Actor,
    email: str,
    role: str,
    password: str | None = None,
    name: str | None = None,
    team_id: int | None = None,
) -> User:
    """A user of ``role``; without a password the user cannot sign in (only act through keys)."""
    errors = ErrorCollector()
    address = normalise_email(email)
    granted = await check_role(session, role)
    check_within(actor, granted.permissions, granted.view_all, "role", f"The role {granted.name}")
    if password is not None:
        validate_password(password)
    clean_name = text(name, 200, "name")
    if team_id is not None and await session.get(Team, team_id) is None:
        errors.add("teamId", NOT_FOUND, "Team was not found.")
    if await session.scalar(sa.select(User.id).where(User.email == address).execution_options(**UNSCOPED)):
        errors.add("email", DUPLICATE, "A user with this email exists.")
    errors.raise_if_any()
    user = User(
        email=address,
        name=clean_name,
        role=granted.name,
        team_id=team_id,
        active=True,
        password_hash=hash_password(password) if password is not None else None,
        version=1,
    )
    session.add(user)
    await session.flush()
    return user


async def update_user(
    session: AsyncSession, *, actor: Actor, user_id: int, data: Mapping[str, Any], expected_version: int | None = None
) -> User:
    """Change a user's name, role, team, active flag or password (``data`` holds the fields
    given, camelCase; None clears ``name`` and ``teamId``).

    Nobody changes their own role or deactivates themselves (``FORBIDDEN``), the last active
    administrator keeps the role (``LAST_ADMIN``), and someone who is not an administrator can
    neither change a user whose role grants more than theirs nor give a role that does.
    Deactivating a user, or a new password, ends their sessions; a new role revokes the user's
    keys that grant more than it."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("User")
    if expected_version is not None and expected_version != user.version:
        raise VersionConflict(expected_version, user.version)
    all_roles = await roles(session)
    if not is_admin(actor):
        current = all_roles.get(user.role)
        if current is not None:
            check_within(actor, current.permissions, current.view_all, None, "Changing this user")
    new_role = data.get("role")
    if "role" in data and new_role is None:
        raise ValidationFailed([error("role", REQUIRED, "Every user has a role.")])
    changes_role = new_role is not None and new_role != user.role
    deactivates = data.get("active") is False and user.active
    if (changes_role or deactivates) and actor.user_id == user.id:
        raise AccessDenied("You cannot change your own role or deactivate yourself.", "role" if changes_role else "active")
    if changes_role:
        granted = await check_role(session, new_role)
        check_within(actor, granted.permissions, granted.view_all, "role", f"The role {granted.name}")
    if (changes_role or deactivates) and user.role == "ADMIN" and user.active and await count_admins(session, excluding=user.id) == 0:
        raise ValidationFailed(
            [error("role" if changes_role else "active", LAST_ADMIN, "This is the last active administrator: make another one first.")]
        )
    if changes_role:
        from crm_graph.auth.service.keys import revoke_keys_beyond

        user.role = new_role
        await revoke_keys_beyond(session, user_id=user.id, role=granted, roles=all_roles)
    if "name" in data:
        user.name = text(data["name"], 200, "name")
    if "teamId" in data:
        if data["teamId"] is not None and await session.get(Team, data["teamId"]) is None:
            raise NotFound("Team", "teamId")
        user.team_id = data["teamId"]
    if data.get("active") is not None:
        user.active = bool(data["active"])
    if data.get("password") is not None:
        user.password_hash = hash_password(validate_password(data["password"]))
    if deactivates or data.get("password") is not None:
        from crm_graph.auth.service.signin import revoke_sessions

        await revoke_sessions(session, user_id=user.id)  # a new password signs out everywhere
    await session.flush()
    return user


async def user_by_email(session: AsyncSession, email: str) -> User:
    user = await session.scalar(sa.select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFound("User", "email")
    return user


async def create_team(session: AsyncSession, *, actor: Actor, name: str, description: str | None = None) -> Team:
    clean = text(name, 200, "name", required=True)
    clean_description = text(description, 1000, "description")
    if await session.scalar(sa.select(Team.id).where(Team.name == clean).execution_options(**UNSCOPED)):
        raise ValidationFailed([error("name", DUPLICATE, "A team with this name exists.")])
    team = Team(name=clean, description=clean_description)
    session.add(team)
    await session.flush()
    return team


async def create_role(
    session: AsyncSession,
    *,
    actor: Actor,
    name: str,
    permissions: Sequence[str],
    description: str | None = None,
    view_all: bool = False,
    manages_team: bool = False,
) -> Role:
    """A custom role: a name (``ANALYST``) and ``object:action`` permissions (``customers:read``,
    ``opportunities:*``, ``*:read``). A role grants nothing its creator does not hold."""
    errors = ErrorCollector()
    clean = validate_role_name(name)
    clean_description = text(description, 1000, "description")
    taken = clean in BUILTIN_ROLES or await session.scalar(
        sa.select(CustomRole.id).where(CustomRole.name == clean).execution_options(**UNSCOPED)
    )
    if taken:
        errors.add("name", DUPLICATE, f"A role named {clean} exists.")
    if not permissions:
        errors.add("permissions", REQUIRED, "A role needs at least one permission, such as `customers:read`.")
    for i, permission in enumerate(permissions):
        if not isinstance(permission, str) or not valid_permission(permission):
            errors.add(f"permissions.{i}", INVALID_VALUE, f"{str(permission)[:64]!r} is not a permission such as `customers:read`.")
    errors.raise_if_any()
    unique = list(dict.fromkeys(permissions))
    check_within(actor, unique, view_all, "permissions", "This role")
    session.add(
        CustomRole(name=clean, description=clean_description, permissions=unique, view_all=view_all, manages_team=manages_team)
    )
    await session.flush()
    return Role(clean, clean_description or "", frozenset(unique), view_all=view_all, manages_team=manages_team, builtin=False)


async def list_roles(session: AsyncSession) -> list[Role]:
    """Built-in roles first (in their documented order), then custom roles by name."""
    found = await roles(session)
    builtin = [found[name] for name in BUILTIN_ROLES]
    return builtin + sorted((r for r in found.values() if not r.builtin), key=lambda r: r.name)


# --- reads ---------------------------------------------------------------------------------------


def user_select(
    *, role: str | None = None, team_id: int | None = None, active: bool | None = None, search: str | None = None
) -> sa.Select[Any]:
    stmt = sa.select(User)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if team_id is not None:
        stmt = stmt.where(User.team_id == team_id)
    if active is not None:
        stmt = stmt.where(User.active.is_(active))
    if search and search.strip():
        pattern = f"%{escape_like(search_text(search.strip(), 'search').lower())}%"
        stmt = stmt.where(sa.or_(User.email.like(pattern, escape="\\"), sa.func.lower(User.name).like(pattern, escape="\\")))
    return stmt


def team_select() -> sa.Select[Any]:
    return sa.select(Team)


async def users_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, User]:
    return {u.id: u for u in await session.scalars(sa.select(User).where(User.id.in_(ids)))}


async def teams_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Team]:
    return {t.id: t for t in await session.scalars(sa.select(Team).where(Team.id.in_(ids)))}
