"""Credentials for tests (the project's and a plugin author's): a user and an API key of a role,
made directly in the database the way ``crm-graph user create`` and ``apikey create`` do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from crm_graph.auth import service
from crm_graph.auth.models import Team, User
from crm_graph.core.actor import SYSTEM

# The secret API keys are hashed with in tests (``Settings.secret_key``): fixed, so a run never
# writes var/secret_key, and long enough for the production check.
TEST_SECRET = "test-secret-key-of-at-least-thirty-two-characters"


async def make_key(
    db: Any,
    settings: Any,
    *,
    role: str = "ADMIN",
    email: str | None = None,
    team: str | None = None,
    scopes: Sequence[str] | None = None,
    name: str | None = None,
) -> tuple[str, int]:
    """An API key acting as the user ``email`` (created with ``role`` in ``team`` if new).

    Returns ``(key, user id)``. Without ``email`` the user is ``<role>@example.com``.
    """
    email = email or f"{role.lower()}@example.com"
    async with db.writer() as session, session.begin():
        team_id = None
        if team is not None:
            team_id = await session.scalar(sa.select(Team.id).where(Team.name == team))
            if team_id is None:
                team_id = (await service.create_team(session, actor=SYSTEM, name=team)).id
        user = await session.scalar(sa.select(User).where(User.email == email))
        if user is None:
            user = await service.create_user(session, actor=SYSTEM, email=email, role=role, team_id=team_id)
        token, _ = await service.create_api_key(
            session, actor=SYSTEM, name=name or f"test {role}", role=role, scopes=scopes, user_id=user.id,
            hash_key=settings.hash_key(),
        )
        return token, user.id


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def share(db: Any, level: str, *objects: str) -> None:
    """Set the sharing default of ``objects`` to ``level``, as ``setSharingDefault`` does."""
    async with db.writer() as session, session.begin():
        for obj in objects:
            await service.set_sharing_default(session, actor=SYSTEM, object=obj, level=level)
