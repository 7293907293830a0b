"""From a bearer token to an ``Actor``, cheaply.

One keyed hash and one indexed lookup per token, then the actor is remembered in this process
for ``CRM_AUTH_CACHE_SECONDS`` (revoking through this process forgets it at once; other
processes notice within that time). The last-used time is written at most once a minute per
token, after the answer, so authentication does not show up in a request's profile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from crm_graph.auth import tokens
from crm_graph.auth.models import ApiKey, AuthSession, CustomRole, SharingDefault, User
from crm_graph.auth.roles import BUILTIN_ROLES, Role, expand, narrow
from crm_graph.core.access import DEFAULT_SHARING, Sharing, register_principals
from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.db.session import Database
from crm_graph.settings import Settings

log = logging.getLogger("crm_graph.auth")

TOUCH_EVERY = timedelta(seconds=60)


class InvalidCredentials(Exception):
    """The request sent a token that is malformed, unknown, expired or revoked."""


@dataclass
class _Entry:
    actor: Actor
    until: float  # monotonic time the entry is trusted until
    expires_at: datetime | None
    table: Any
    row_id: int
    touched_at: datetime | None


class Authenticator:
    """Verifies tokens for one server; keeps the short-lived cache and the role table."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.key = settings.hash_key()
        self._cache: dict[str, _Entry] = {}
        self._roles: tuple[float, dict[str, Role]] | None = None
        self._sharing: tuple[float, dict[str, Sharing]] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- tokens -----------------------------------------------------------------------------

    async def actor_for_token(self, token: str) -> Actor:
        if not tokens.well_formed(token):
            raise InvalidCredentials("This is not a crm-graph key or session token (wrong shape or checksum).")
        digest = tokens.token_hash(token, self.key)
        now = utcnow()
        entry = self._cache.get(digest)
        if entry is None or entry.until < time.monotonic():
            entry = await self._lookup(digest, tokens.kind_of(token))
            self._cache[digest] = entry
            if len(self._cache) > 10_000:
                self._cache.clear()
        if entry.expires_at is not None and entry.expires_at <= now:
            self._cache.pop(digest, None)
            raise InvalidCredentials("The key or session is not valid (unknown, expired or revoked).")
        if entry.touched_at is None or now - entry.touched_at >= TOUCH_EVERY:
            entry.touched_at = now
            self._spawn(self._touch(entry.table, entry.row_id, now))
        return entry.actor

    def forget(self, *, user_id: int | None = None, key_id: int | None = None, session_id: int | None = None) -> None:
        """Drop cached actors of a user, a key or a session (after a revocation or a change)."""
        for digest, entry in list(self._cache.items()):
            a = entry.actor
            if (user_id is not None and a.user_id == user_id) or (key_id is not None and a.key_id == key_id) or (
                session_id is not None and a.session_id == session_id
            ):
                del self._cache[digest]

    def forget_all(self) -> None:
        self._cache.clear()
        self._roles = None
        self._sharing = None

    async def _lookup(self, digest: str, kind: str | None) -> _Entry:
        now = utcnow()
        until = time.monotonic() + self.settings.auth_cache_seconds
        invalid = InvalidCredentials("The key or session is not valid (unknown, expired or revoked).")
        # Before taking a connection: a lookup that held one while waiting for a second (the
        # role table's) could exhaust the pool when many clients sign in at once.
        roles = await self.roles()
        async with self.db.reader() as session:
            if kind == "key":
                key = await session.scalar(sa.select(ApiKey).where(ApiKey.token_hash == digest))
                if key is None or key.revoked_at is not None or (key.expires_at and key.expires_at <= now):
                    raise invalid
                user = await session.get(User, key.user_id) if key.user_id else None
                if user is not None and not user.active:
                    raise invalid
                role = roles.get(key.role)
                if role is None:
                    raise invalid
                actor = key_actor(key, user, role, roles.get(user.role) if user else None)
                return _Entry(actor, until, key.expires_at, ApiKey, key.id, key.last_used_at)
            auth = await session.scalar(sa.select(AuthSession).where(AuthSession.token_hash == digest))
            if auth is None or auth.revoked_at is not None or auth.expires_at <= now:
                raise invalid
            user = await session.get(User, auth.user_id)
            if user is None or not user.active:
                raise invalid
            role = roles.get(user.role)
            if role is None:
                raise invalid
            actor = user_actor(user, role, session_id=auth.id)
            return _Entry(actor, until, auth.expires_at, AuthSession, auth.id, auth.last_used_at)

    async def actor_for_user(self, user: User, *, session_id: int | None = None) -> Actor | None:
        role = (await self.roles()).get(user.role)
        return user_actor(user, role, session_id=session_id) if role is not None else None

    async def _touch(self, table: Any, row_id: int, now: datetime) -> None:
        try:
            async with self.db.writer() as session, session.begin():
                await session.execute(sa.update(table).where(table.id == row_id).values(last_used_at=now))
        except Exception:  # noqa: BLE001 - a missed last-used time is not worth failing anything for
            log.warning("could not record the last use of %s %s", table.__tablename__, row_id, exc_info=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for pending last-used writes (at shutdown, and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- roles and sharing, cached like tokens ----------------------------------------------

    async def roles(self) -> dict[str, Role]:
        if self._roles is not None and self._roles[0] > time.monotonic():
            return self._roles[1]
        async with self.db.reader() as session:
            roles = await load_roles(session)
        self._roles = (time.monotonic() + self.settings.auth_cache_seconds, roles)
        return roles

    async def sharing(self) -> dict[str, Sharing]:
        if self._sharing is not None and self._sharing[0] > time.monotonic():
            return self._sharing[1]
        async with self.db.reader() as session:
            levels = await load_sharing(session)
        self._sharing = (time.monotonic() + self.settings.auth_cache_seconds, levels)
        return levels


async def load_roles(session: Any) -> dict[str, Role]:
    roles = dict(BUILTIN_ROLES)
    for custom in await session.scalars(sa.select(CustomRole).execution_options(crm_skip_scope=True)):
        roles[custom.name] = Role(
            custom.name, custom.description or "",
            frozenset(custom.permissions) if "*" in custom.permissions else expand(custom.permissions),
            view_all=custom.view_all, manages_team=custom.manages_team, builtin=False,
        )
    return roles


async def load_sharing(session: Any) -> dict[str, Sharing]:
    levels = dict(DEFAULT_SHARING)
    for row in await session.scalars(sa.select(SharingDefault)):
        levels[row.object] = Sharing(row.level)
    return levels


def user_actor(user: User, role: Role, *, session_id: int | None = None) -> Actor:
    return Actor(
        "user", id=str(user.id), name=user.email, role=role.name, permissions=role.permissions,
        user_id=user.id, team_id=user.team_id, manages_team=role.manages_team, view_all=role.view_all,
        session_id=session_id,
    )


def key_actor(key: ApiKey, user: User | None, role: Role, user_role: Role | None = None) -> Actor:
    """A key's actor: its role narrowed by its scopes and, for a key that belongs to a user,
    by that user's current role too (a demoted user's old keys lose what the user lost)."""
    permissions = narrow(role.permissions, key.scopes)
    view_all, manages_team = role.view_all, role.manages_team
    if user is not None:
        if user_role is None:
            permissions, view_all, manages_team = frozenset(), False, False
        elif "*" not in user_role.permissions:
            permissions = narrow(permissions, sorted(user_role.permissions))
            view_all, manages_team = view_all and user_role.view_all, manages_team and user_role.manages_team
    return Actor(
        "api_key", id=str(key.id), name=key.name, role=role.name,
        permissions=permissions,
        scopes=tuple(key.scopes) if key.scopes is not None else None,
        user_id=user.id if user else None, team_id=user.team_id if user else None,
        manages_team=manages_team, view_all=view_all, key_id=key.id,
    )


async def principal_actor(session: Any, principal: str) -> Actor | None:
    """The actor of a stored principal (``user:<id>``, ``api_key:<id>``), or None when that
    principal cannot act any more: a revoked or expired key, a deactivated user."""
    kind, _, raw = principal.partition(":")
    if not raw.isdigit():
        return None
    now = utcnow()
    roles = await load_roles(session)
    if kind == "user":
        user = await session.get(User, int(raw))
        role = roles.get(user.role) if user is not None and user.active else None
        return user_actor(user, role) if role is not None else None
    if kind == "api_key":
        key = await session.get(ApiKey, int(raw))
        if key is None or key.revoked_at is not None or (key.expires_at and key.expires_at <= now):
            return None
        user = await session.get(User, key.user_id) if key.user_id else None
        if user is not None and not user.active:
            return None
        role = roles.get(key.role)
        return key_actor(key, user, role, roles.get(user.role) if user else None) if role is not None else None
    return None


register_principals(actor=principal_actor, sharing=load_sharing)


def bearer_token(request: Any) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, if the request has one."""
    header = request.headers.get("authorization") if request is not None else None
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None
