"""What the access services share: passwords, emails, names, roles and the rule against
handing out more than one holds."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.auth.models import User
from crm_graph.auth.roles import Role, expand
from crm_graph.core.access import SKIP_OPTION, AccessDenied
from crm_graph.core.actor import Actor
from crm_graph.core.errors import INVALID_EMAIL, INVALID_VALUE, REQUIRED, FieldError, ValidationFailed
from crm_graph.customers import validation as v

INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
LOCKED = "LOCKED"
LAST_ADMIN = "LAST_ADMIN"

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
MIN_PASSWORD = 10
MAX_PASSWORD = 1000
# A hash of a random password: verifying against it when the account does not exist makes an
# unknown email take as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-password-of-anyone")
_ROLE_NAME = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")

# The access layer's own lookups (uniqueness, counting administrators) must see every row,
# whatever the caller's scope: a hidden duplicate is still a duplicate.
UNSCOPED = {SKIP_OPTION: True}


def error(field: str | None, code: str, message: str) -> FieldError:
    return FieldError(field, code, message)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str | None) -> bool:
    return bool(password_hash) and _hasher.check_needs_rehash(password_hash or "")


def normalise_email(value: Any, field: str = "email") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed([error(field, REQUIRED, "An email address is required.")])
    try:
        return v.email(value)
    except v.InvalidValue as exc:
        raise ValidationFailed([error(field, INVALID_EMAIL, str(exc))]) from exc


def text(value: Any, limit: int, field: str, *, required: bool = False) -> str | None:
    try:
        return v.text(value, limit, required=required)
    except v.InvalidValue as exc:
        code = REQUIRED if value is None or (isinstance(value, str) and not value.strip()) else INVALID_VALUE
        raise ValidationFailed([error(field, code, str(exc))]) from exc


def validate_password(password: Any, field: str = "password") -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ValidationFailed([error(field, INVALID_VALUE, f"A password needs at least {MIN_PASSWORD} characters.")])
    if len(password) > MAX_PASSWORD:
        raise ValidationFailed([error(field, INVALID_VALUE, f"A password may have at most {MAX_PASSWORD} characters.")])
    return password


def validate_role_name(name: Any, field: str = "name") -> str:
    if not isinstance(name, str) or not _ROLE_NAME.match(name.strip()):
        raise ValidationFailed([error(field, INVALID_VALUE, "A role name is 2 to 64 upper-case letters, digits or underscores, e.g. `ANALYST`.")])
    return name.strip()


async def roles(session: AsyncSession) -> dict[str, Role]:
    """The built-in roles and the custom ones, by name."""
    from crm_graph.auth.authenticate import load_roles

    return await load_roles(session)


async def check_role(session: AsyncSession, role: Any, field: str = "role") -> Role:
    found = (await roles(session)).get(role) if isinstance(role, str) else None
    if found is None:
        raise ValidationFailed([error(field, INVALID_VALUE, f"Unknown role {str(role)[:64]!r}.")])
    return found


def is_admin(actor: Actor) -> bool:
    return actor.can("*", "*")


def check_within(actor: Actor, permissions: Iterable[str], view_all: bool, field: str, what: str) -> None:
    """Nobody hands out more than they hold: a role given to a user, a custom role defined, or an
    API key made by someone who is not an administrator must grant nothing the actor lacks."""
    if is_admin(actor):
        return
    missing = sorted(expand(permissions) - expand(actor.permissions))
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise AccessDenied(f"{what} would grant `{missing[0]}`{more}, which you do not have.", field)
    if view_all and not actor.view_all:
        raise AccessDenied(f"{what} would see every record, which you do not.", field)


async def count_admins(session: AsyncSession, *, excluding: int | None = None) -> int:
    stmt = sa.select(sa.func.count()).select_from(User).where(User.role == "ADMIN", User.active.is_(True))
    if excluding is not None:
        stmt = stmt.where(User.id != excluding)
    return int(await session.scalar(stmt.execution_options(**UNSCOPED)) or 0)
