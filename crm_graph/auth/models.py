"""Tables of the access domain.

Secrets are never stored: passwords as argon2id hashes, API keys and session tokens (random and
high-entropy) as a keyed SHA-256 hash (``tokens.py``), looked up by that hash through a unique
index.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_graph.core.access import Scope, guard_object
from crm_graph.db.base import Base, IdMixin, TimestampMixin, VersionMixin
from crm_graph.db.types import IdType, JSONType, UTCDateTime


class Team(IdMixin, TimestampMixin, Base):
    __tablename__ = "teams"

    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    description: Mapped[str | None] = mapped_column(sa.String(1000))


class User(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    password_hash: Mapped[str | None] = mapped_column(sa.String(200))  # None: cannot sign in
    role: Mapped[str] = mapped_column(sa.String(64))
    team_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CustomRole(IdMixin, TimestampMixin, Base):
    """A role defined through the API: a name and a list of ``object:action`` permissions."""

    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    description: Mapped[str | None] = mapped_column(sa.String(1000))
    permissions: Mapped[list[str]] = mapped_column(JSONType)
    view_all: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    manages_team: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class ApiKey(IdMixin, TimestampMixin, Base):
    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(sa.String(200))
    prefix: Mapped[str] = mapped_column(sa.String(16))  # the first characters, to recognise a key
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    role: Mapped[str] = mapped_column(sa.String(64))
    scopes: Mapped[list[str] | None] = mapped_column(JSONType)  # None: everything the role allows
    user_id: Mapped[int | None] = mapped_column(IdType, sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[str | None] = mapped_column(sa.String(100))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuthSession(IdMixin, Base):
    """A signed-in session: the token ``login`` returned, by its hash."""

    __tablename__ = "auth_sessions"

    user_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    address: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(300))


class LoginFailure(IdMixin, Base):
    """One failed sign-in, by account (normalised email) and by client address; old rows expire."""

    __tablename__ = "login_failures"

    email: Mapped[str] = mapped_column(sa.String(320), index=True)
    address: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SharingDefault(Base):
    """The organisation-wide default of one object type (``core/access.py`` ``Sharing``)."""

    __tablename__ = "sharing_defaults"

    object: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    level: Mapped[str] = mapped_column(sa.String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


def _own_keys(scope: Scope) -> sa.ColumnElement[bool] | None:
    """Outside administrators, a user sees only the keys that belong to them."""
    actor = scope.actor
    if actor.can("*", "*"):
        return None
    return ApiKey.user_id == actor.user_id if actor.user_id is not None else sa.false()


guard_object(User, "users")
guard_object(Team, "teams")
guard_object(CustomRole, "roles")
guard_object(ApiKey, "api_keys", extra=_own_keys)
