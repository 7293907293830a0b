"""Rules of access: users, teams, API keys, sign-in and sign-out.

Services take a session and an actor, keyword-only, like every other domain. Functions that
must work before anyone is signed in (``login``) run on an unscoped session.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.auth import tokens
from crm_graph.auth.models import ApiKey, AuthSession, LoginFailure, Team, User
from crm_graph.auth.roles import BUILTIN_ROLES, valid_permission
from crm_graph.core.access import AccessDenied
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import (
    DUPLICATE,
    INVALID_VALUE,
    REQUIRED,
    ErrorCollector,
    NotFound,
    ValidationFailed,
)
from crm_graph.customers import validation as v

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
MIN_PASSWORD = 10
# A hash of a random password: verifying against it when the account does not exist makes an
# unknown email take as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-password-of-anyone")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def normalise_email(value: Any, field: str = "email") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed([_error(field, REQUIRED, "An email address is required.")])
    try:
        return v.email(value)
    except v.InvalidValue as exc:
        raise ValidationFailed([_error(field, "INVALID_EMAIL", str(exc))]) from exc


def _text(value: Any, limit: int, field: str, *, required: bool = False) -> str | None:
    try:
        return v.text(value, limit, required=required)
    except v.InvalidValue as exc:
        raise ValidationFailed([_error(field, REQUIRED if value is None or not str(value).strip() else INVALID_VALUE, str(exc))]) from exc


def _error(field: str | None, code: str, message: str) -> Any:
    from crm_graph.core.errors import FieldError

    return FieldError(field, code, message)


def validate_password(password: Any, field: str = "password") -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ValidationFailed([_error(field, INVALID_VALUE, f"A password needs at least {MIN_PASSWORD} characters.")])
    if len(password) > 1000:
        raise ValidationFailed([_error(field, INVALID_VALUE, "A password may have at most 1000 characters.")])
    return password


async def role_names(session: AsyncSession) -> set[str]:
    from crm_graph.auth.models import CustomRole

    custom = await session.scalars(sa.select(CustomRole.name).execution_options(crm_skip_scope=True))
    return set(BUILTIN_ROLES) | set(custom)


async def check_role(session: AsyncSession, role: Any, field: str = "role") -> str:
    if not isinstance(role, str) or role not in await role_names(session):
        raise ValidationFailed([_error(field, INVALID_VALUE, f"Unknown role {str(role)[:64]!r}.")])
    return role


async def count_admins(session: AsyncSession, *, excluding: int | None = None) -> int:
    stmt = sa.select(sa.func.count()).select_from(User).where(User.role == "ADMIN", User.active.is_(True))
    if excluding is not None:
        stmt = stmt.where(User.id != excluding)
    return int(await session.scalar(stmt.execution_options(crm_skip_scope=True)) or 0)


# --- users and teams -----------------------------------------------------------------------------


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
    errors = ErrorCollector()
    address = normalise_email(email)
    await check_role(session, role)
    if password is not None:
        validate_password(password)
    if team_id is not None and await session.get(Team, team_id) is None:
        errors.add("teamId", "NOT_FOUND", "Team was not found.")
    if await session.scalar(sa.select(User.id).where(User.email == address).execution_options(crm_skip_scope=True)):
        errors.add("email", DUPLICATE, "A user with this email exists.")
    if errors:
        raise ValidationFailed(errors.errors)
    user = User(
        email=address,
        name=_text(name, 200, "name"),
        role=role,
        team_id=team_id,
        active=True,
        password_hash=hash_password(password) if password is not None else None,
        version=1,
    )
    session.add(user)
    await session.flush()
    return user


async def update_user(session: AsyncSession, *, actor: Actor, user_id: int, data: dict[str, Any]) -> User:
    """Change a user's name, role, team or active flag. Nobody changes their own role or
    deactivates themselves, and the last active administrator cannot be demoted."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("User")
    demotes = ("role" in data and data["role"] != user.role) or data.get("active") is False
    if demotes and actor.user_id == user.id:
        raise AccessDenied("You cannot change your own role or deactivate yourself.", "role" if "role" in data else "active")
    if demotes and user.role == "ADMIN" and user.active and await count_admins(session, excluding=user.id) == 0:
        raise ValidationFailed([_error("role" if "role" in data else "active", "LAST_ADMIN", "This is the last active administrator.")])
    if "role" in data:
        user.role = await check_role(session, data["role"])
    if "name" in data:
        user.name = _text(data["name"], 200, "name")
    if "teamId" in data:
        if data["teamId"] is not None and await session.get(Team, data["teamId"]) is None:
            raise NotFound("Team", "teamId")
        user.team_id = data["teamId"]
    if "active" in data and data["active"] is not None:
        user.active = bool(data["active"])
        if not user.active:
            await revoke_sessions(session, user_id=user.id)
    if data.get("password") is not None:
        user.password_hash = hash_password(validate_password(data["password"]))
    await session.flush()
    return user


async def create_team(session: AsyncSession, *, actor: Actor, name: str, description: str | None = None) -> Team:
    clean = _text(name, 200, "name", required=True)
    if await session.scalar(sa.select(Team.id).where(Team.name == clean).execution_options(crm_skip_scope=True)):
        raise ValidationFailed([_error("name", DUPLICATE, "A team with this name exists.")])
    team = Team(name=clean, description=_text(description, 1000, "description"))
    session.add(team)
    await session.flush()
    return team


# --- API keys --------------------------------------------------------------------------------------


async def create_api_key(
    session: AsyncSession,
    *,
    actor: Actor,
    name: str,
    role: str,
    scopes: Sequence[str] | None = None,
    expires_at: datetime | None = None,
    user_id: int | None = None,
    hash_key: bytes,
) -> tuple[str, ApiKey]:
    """Make a key; returns ``(the key, its row)``. The key itself is never stored or shown again.

    A key's role may not exceed its creator's: only administrators make keys of another role
    than their own or with more than their own permissions."""
    errors = ErrorCollector()
    clean_name = _text(name, 200, "name", required=True)
    await check_role(session, role)
    if scopes is not None:
        bad = [s for s in scopes if not isinstance(s, str) or not valid_permission(s)]
        for i, s in enumerate(scopes):
            if s in bad:
                errors.add(f"scopes.{i}", INVALID_VALUE, f"{str(s)[:64]!r} is not a scope such as `customers:read`.")
    if expires_at is not None and expires_at <= utcnow():
        errors.add("expiresAt", INVALID_VALUE, "The expiry must be in the future.")
    if errors:
        raise ValidationFailed(errors.errors)
    if not actor.can("*", "*") and role != actor.role:
        raise AccessDenied("Only administrators create keys with another role than their own.", "role")
    token = tokens.new_token("key")
    key = ApiKey(
        name=clean_name,
        prefix=tokens.prefix_of(token),
        token_hash=tokens.token_hash(token, hash_key),
        role=role,
        scopes=list(dict.fromkeys(scopes)) if scopes is not None else None,
        user_id=user_id if user_id is not None else actor.user_id,
        created_by=actor.label,
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    return token, key


async def revoke_api_key(session: AsyncSession, *, actor: Actor, key_id: int) -> ApiKey:
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise NotFound("API key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
    return key


# --- sign-in ---------------------------------------------------------------------------------------


class LoginRefused(ValidationFailed):
    pass


async def recent_failures(session: AsyncSession, *, email: str, address: str | None, window: timedelta) -> int:
    since = utcnow() - window
    by_account = await session.scalar(
        sa.select(sa.func.count()).select_from(LoginFailure).where(LoginFailure.email == email, LoginFailure.at >= since)
    )
    by_address = 0
    if address:
        by_address = await session.scalar(
            sa.select(sa.func.count()).select_from(LoginFailure).where(LoginFailure.address == address, LoginFailure.at >= since)
        )
    return max(int(by_account or 0), int(by_address or 0) // 4)  # one address may try several accounts


async def login(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    address: str | None,
    user_agent: str | None,
    hash_key: bytes,
    hours: float,
    max_failures: int,
    lockout: timedelta,
) -> tuple[str, AuthSession, User]:
    """Check the password; on success open a session and return its token.

    Failures are recorded per account and per address; after ``max_failures`` in the lockout
    window every attempt (even a right password) is refused until the window has passed.
    A wrong password, an unknown email and an inactive account get the same answer."""
    address_key = (address or "")[:64] or None
    try:
        clean = normalise_email(email)
    except ValidationFailed:
        clean = str(email)[:320].strip().lower()
    failures = await recent_failures(session, email=clean, address=address_key, window=lockout)
    if failures >= max_failures:
        raise LoginRefused([_error(None, "LOCKED", f"Too many failed sign-ins: try again in {int(lockout.total_seconds() // 60)} minutes.")])
    user = await session.scalar(sa.select(User).where(User.email == clean))
    ok = check_password(user.password_hash if user else None, password if isinstance(password, str) else "")
    if not ok or user is None or not user.active:
        session.add(LoginFailure(email=clean, address=address_key, at=utcnow()))
        raise LoginRefused([_error("password", "INVALID_CREDENTIALS", "The email or password is wrong.")])
    await session.execute(sa.delete(LoginFailure).where(LoginFailure.email == clean))
    if _hasher.check_needs_rehash(user.password_hash or ""):
        user.password_hash = hash_password(password)
    token = tokens.new_token("ses")
    now = utcnow()
    auth = AuthSession(
        user_id=user.id,
        token_hash=tokens.token_hash(token, hash_key),
        created_at=now,
        expires_at=now + timedelta(hours=hours),
        address=address_key,
        user_agent=(user_agent or "")[:300] or None,
    )
    user.last_login_at = now
    session.add(auth)
    await session.flush()
    return token, auth, user


async def logout(session: AsyncSession, *, session_id: int) -> None:
    await session.execute(
        sa.update(AuthSession).where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None)).values(revoked_at=utcnow())
    )


async def revoke_sessions(session: AsyncSession, *, user_id: int) -> None:
    await session.execute(
        sa.update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
