"""The first minute on a developer's machine: a dev administrator and a ready key.

``crm-graph serve`` in dev (never in production) makes the user ``admin@example.com`` (ADMIN,
no password: set one with ``crm-graph user set-password``) once, and an API key for it, which it
keeps in ``dev_admin_key`` (mode 600) in the data directory (``CRM_DATA_DIR``; ``var/`` in a
checkout) and prints at every start. The key is checked against the database at each start and
replaced if it was revoked or the database changed. GraphiQL opens with it in its headers.

With ``--seed-demo`` the demo records get owners: two sales teams (North and South) with a
representative each and a manager for North, so record-level sharing can be tried at once.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from crm_graph.auth import service, tokens
from crm_graph.auth.models import ApiKey, Team, User
from crm_graph.core.actor import SYSTEM
from crm_graph.db.session import Database
from crm_graph.settings import Settings

DEV_ADMIN = "admin@example.com"
DEMO_USERS = (  # email, role, team
    ("north.rep@example.com", "SALES", "North"),
    ("south.rep@example.com", "SALES", "South"),
    ("north.manager@example.com", "MANAGER", "North"),
)
OWNED_TABLES = ("customers", "opportunities", "quotes", "orders", "tickets")


def key_file(settings: Settings) -> Path:
    """Where the dev administrator's key is kept between starts."""
    return settings.data_dir / "dev_admin_key"


async def dev_admin_key(settings: Settings, *, demo_owners: bool = False) -> str:
    """The dev administrator's key, creating the user and the key when needed."""
    db = Database.from_settings(settings)
    path = key_file(settings)
    try:
        async with db.writer() as session, session.begin():
            admin = await session.scalar(sa.select(User).where(User.email == DEV_ADMIN))
            if admin is None:
                admin = await service.create_user(session, actor=SYSTEM, email=DEV_ADMIN, role="ADMIN", name="Dev admin")
            if demo_owners:
                await _demo_owners(session, admin)
            token = path.read_text().strip() if path.exists() else ""
            if tokens.well_formed(token, "key"):
                key = await session.scalar(sa.select(ApiKey).where(ApiKey.token_hash == tokens.token_hash(token, settings.hash_key())))
                if key is not None and key.revoked_at is None and key.expires_at is None:
                    return token
            token, _ = await service.create_api_key(
                session, actor=SYSTEM, name="dev admin (make serve)", role="ADMIN", user_id=admin.id,
                hash_key=settings.hash_key(),
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(token + "\n")
        path.chmod(0o600)
        return token
    finally:
        await db.dispose()


async def _demo_owners(session: sa.ext.asyncio.AsyncSession, admin: User) -> None:
    """Give unowned demo records to the demo representatives, alternately by id."""
    reps: list[User] = []
    for email, role, team_name in DEMO_USERS:
        team = await session.scalar(sa.select(Team).where(Team.name == team_name))
        if team is None:
            team = await service.create_team(session, actor=SYSTEM, name=team_name)
        user = await session.scalar(sa.select(User).where(User.email == email))
        if user is None:
            user = await service.create_user(session, actor=SYSTEM, email=email, role=role, team_id=team.id)
        if role == "SALES":
            reps.append(user)
    north, south = reps
    for name in OWNED_TABLES:
        table = sa.table(name, sa.column("id"), sa.column("owner_id"), sa.column("team_id"))
        for parity, rep in ((0, north), (1, south)):
            await session.execute(
                table.update()
                .where(table.c.owner_id.is_(None), table.c.id % 2 == parity)
                .values(owner_id=rep.id, team_id=rep.team_id)
            )
