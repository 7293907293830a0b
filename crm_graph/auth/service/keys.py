"""API keys: made, listed and revoked. The key itself is shown once and never stored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.auth import tokens
from crm_graph.auth.models import ApiKey, User
from crm_graph.auth.roles import Role, expand, narrow, valid_permission
from crm_graph.auth.service.common import UNSCOPED, check_role, check_within, is_admin, text
from crm_graph.core.access import AccessDenied
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import INVALID_VALUE, NOT_FOUND, REQUIRED, ErrorCollector, NotFound
from crm_graph.core.pagination import SortKey, parse_datetime

KEY_ORDER = [SortKey(ApiKey.created_at, "created_at", True, parse_datetime), SortKey(ApiKey.id, "id", True, int)]


async def create_api_key(
    session: AsyncSession,
    *,
    actor: Actor,
    name: str,
    role: str | None = None,
    scopes: Sequence[str] | None = None,
    expires_at: datetime | None = None,
    user_id: int | None = None,
    hash_key: bytes,
) -> tuple[str, ApiKey]:
    """Make a key; returns ``(the key, its row)``. Only its keyed hash is stored.

    The key acts as ``user_id`` (default: the actor's user; none for an integration key made by
    the system). ``role`` defaults to the actor's. ``scopes`` narrow the role. Someone who is not
    an administrator makes keys of their own role only, and never with more than they hold
    (a scoped key cannot make a wider one)."""
    errors = ErrorCollector()
    clean_name = text(name, 200, "name", required=True)
    granted = await check_role(session, role if role is not None else actor.role)
    if scopes is not None:
        if not scopes:
            errors.add("scopes", REQUIRED, "Give at least one scope, or leave `scopes` out for everything the role allows.")
        for i, scope in enumerate(scopes):
            if not isinstance(scope, str) or not valid_permission(scope):
                errors.add(f"scopes.{i}", INVALID_VALUE, f"{str(scope)[:64]!r} is not a scope such as `customers:read`.")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            errors.add("expiresAt", INVALID_VALUE, "The expiry needs a time zone, e.g. `2030-01-31T00:00:00Z`.")
        elif expires_at <= utcnow():
            errors.add("expiresAt", INVALID_VALUE, "The expiry must be in the future.")
    owner = user_id if user_id is not None else actor.user_id
    if user_id is not None and await session.get(User, user_id) is None:
        errors.add("userId", NOT_FOUND, "User was not found.")
    errors.raise_if_any()
    if not is_admin(actor):
        if granted.name != actor.role:
            raise AccessDenied("Only administrators create keys with another role than their own.", "role")
        if owner != actor.user_id:
            raise AccessDenied("Only administrators create keys for other users.", "userId")
        check_within(actor, narrow(granted.permissions, scopes), granted.view_all, "scopes", "This key")
    token = tokens.new_token("key")
    key = ApiKey(
        name=clean_name,
        prefix=tokens.prefix_of(token),
        token_hash=tokens.token_hash(token, hash_key),
        role=granted.name,
        scopes=list(dict.fromkeys(scopes)) if scopes is not None else None,
        user_id=owner,
        created_by=actor.label,
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    return token, key


async def revoke_api_key(session: AsyncSession, *, actor: Actor, key_id: int) -> ApiKey:
    """Revoke a key (again: a no-op). Outside administrators the scope shows only one's own keys,
    so another user's key is NOT_FOUND."""
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise NotFound("API key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
    return key


async def revoke_keys_beyond(session: AsyncSession, *, user_id: int, role: Role, roles: Mapping[str, Role]) -> int:
    """Revoke the keys of a user that grant more than ``role`` (after the user was given it): a
    key acts as its user, so a demoted administrator's ADMIN keys must not outlive the demotion.
    Returns how many were revoked. Sees every key of the user, whoever asks."""
    allowed = expand(role.permissions)
    keys = await session.scalars(
        sa.select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None)).execution_options(**UNSCOPED)
    )
    beyond = []
    for key in keys:
        own = roles.get(key.role)
        if own is None or not expand(narrow(own.permissions, key.scopes)) <= allowed or (own.view_all and not role.view_all):
            beyond.append(key.id)
    if beyond:
        await session.execute(
            sa.update(ApiKey).where(ApiKey.id.in_(beyond)).values(revoked_at=utcnow()).execution_options(**UNSCOPED)
        )
    return len(beyond)


async def find_api_key(session: AsyncSession, reference: str) -> ApiKey:
    """A key by its number or its prefix (``crm_key_AbC1``, as listed); a whole key works too."""
    reference = reference.strip()
    if reference.isdigit():
        key = await session.get(ApiKey, int(reference))
    else:
        matches = list(await session.scalars(sa.select(ApiKey).where(ApiKey.prefix == tokens.prefix_of(reference)).limit(2)))
        if len(matches) > 1:
            raise NotFound("A single API key with this prefix (use its number)", "key")
        key = matches[0] if matches else None
    if key is None:
        raise NotFound("API key", "key")
    return key


def api_key_select(*, include_revoked: bool = True) -> sa.Select[Any]:
    stmt = sa.select(ApiKey)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return stmt


async def api_keys_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, ApiKey]:
    return {k.id: k for k in await session.scalars(sa.select(ApiKey).where(ApiKey.id.in_(ids)))}
