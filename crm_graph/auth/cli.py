"""``crm-graph user ...`` and ``crm-graph apikey ...``: access administration from a shell.

They work on the database directly, as the system (no key needed: whoever can run them can
read the settings anyway), after upgrading it like ``seed`` does. A key is printed alone on
stdout so a script can capture it (``KEY=$(crm-graph apikey create ...)``); notes go to stderr.
Passwords are read from stdin when it is not a terminal (one line), else prompted for twice.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.settings import Settings

T = TypeVar("T")
_RELATIVE = re.compile(r"^\s*(\d{1,6})\s*([dh])\s*$")


def _settings() -> Settings:
    from crm_graph.cli import load_settings

    return load_settings()


def _run(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Upgrade the database, then run ``work`` in one write transaction as the system."""
    from crm_graph.core.errors import DomainError
    from crm_graph.db import migrate
    from crm_graph.db.session import Database

    migrate.upgrade(settings)

    async def run() -> T:
        db = Database.from_settings(settings)
        try:
            async with db.writer() as session, session.begin():
                return await work(session)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except DomainError as exc:
        raise click.ClickException("; ".join(f"{e.field or 'input'}: {e.message}" for e in exc.errors)) from None


def _password() -> str:
    stdin = sys.stdin
    if not stdin.isatty():
        password = stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("Expected the password on the first line of stdin.")
        return password
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _note(message: str) -> None:
    click.echo(message, err=True)


def parse_expiry(value: str | None, now: datetime | None = None) -> datetime | None:
    """``30d`` or ``12h`` from now, or an ISO 8601 date or time (UTC unless it has an offset)."""
    if value is None:
        return None
    now = now or datetime.now(UTC)
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return now + (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter("use a number of days or hours (`30d`, `12h`) or an ISO date or time", param_hint="--expires") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- users ---------------------------------------------------------------------------------------


@click.group()
def user() -> None:
    """Users who sign in with `login(email, password)`."""


@user.command("create")
@click.option("--email", required=True, help="What the user signs in with.")
@click.option("--role", required=True, help="A built-in role (ADMIN, MANAGER, SALES, SUPPORT, MARKETING, READ_ONLY, INTEGRATION) or a custom one.")
@click.option("--name", default=None, help="Display name.")
@click.option("--team", default=None, help="Team name; the team is created when it does not exist.")
def user_create(email: str, role: str, name: str | None, team: str | None) -> None:
    """Add a user. The password comes from stdin (one line) or is prompted for twice."""
    from crm_graph.auth import service
    from crm_graph.auth.models import Team
    from crm_graph.core.actor import SYSTEM

    settings = _settings()
    password = _password()

    async def work(session: AsyncSession) -> tuple[Any, bool]:
        team_id, created_team = None, False
        if team is not None:
            team_id = await session.scalar(sa.select(Team.id).where(Team.name == team.strip()))
            if team_id is None:
                team_id, created_team = (await service.create_team(session, actor=SYSTEM, name=team)).id, True
        made = await service.create_user(
            session, actor=SYSTEM, email=email, role=role, password=password, name=name, team_id=team_id
        )
        return made, created_team

    made, created_team = _run(settings, work)
    if created_team:
        _note(f"team {team.strip()!r} created")  # type: ignore[union-attr]
    click.echo(f"user {made.email} created ({made.role})")


@user.command("set-password")
@click.option("--email", required=True, help="The user's email.")
def user_set_password(email: str) -> None:
    """Set a user's password (stdin or prompt, as `user create`); signs the user out everywhere."""
    from crm_graph.auth import service
    from crm_graph.core.actor import SYSTEM

    settings = _settings()
    password = _password()

    async def work(session: AsyncSession) -> Any:
        found = await service.user_by_email(session, email)
        return await service.update_user(session, actor=SYSTEM, user_id=found.id, data={"password": password})

    changed = _run(settings, work)
    click.echo(f"password of {changed.email} set")


# --- API keys ------------------------------------------------------------------------------------


@click.group()
def apikey() -> None:
    """API keys for programs: `Authorization: Bearer crm_key_...`."""


@apikey.command("create")
@click.option("--name", required=True, help="What the key is for, e.g. `shop sync`.")
@click.option("--role", required=True, help="The key's role (see `user create`).")
@click.option("--scope", "scopes", multiple=True, help="Limit the key to a permission, e.g. customers:read (repeatable).")
@click.option("--expires", default=None, help="`30d`, `12h`, or an ISO date or time (UTC unless it has an offset).")
@click.option("--user", "user_email", default=None, help="Email of the user the key acts as (default: none, an integration key).")
def apikey_create(name: str, role: str, scopes: tuple[str, ...], expires: str | None, user_email: str | None) -> None:
    """Make a key and print it, alone on one line. It is shown only this once."""
    from crm_graph.auth import service
    from crm_graph.core.actor import SYSTEM

    settings = _settings()
    expires_at = parse_expiry(expires)

    async def work(session: AsyncSession) -> tuple[str, Any]:
        owner = (await service.user_by_email(session, user_email)).id if user_email else None
        return await service.create_api_key(
            session, actor=SYSTEM, name=name, role=role, scopes=list(scopes) if scopes else None, expires_at=expires_at,
            user_id=owner, hash_key=settings.hash_key(),
        )

    token, key = _run(settings, work)
    limits = f", scopes {', '.join(key.scopes)}" if key.scopes else ""
    until = f", expires {key.expires_at.isoformat()}" if key.expires_at else ""
    _note(f"API key {key.id} {key.prefix}... ({key.role}{limits}{until}) created; store it now, it is not shown again:")
    click.echo(token)


@apikey.command("revoke")
@click.argument("reference", metavar="PREFIX_OR_ID")
def apikey_revoke(reference: str) -> None:
    """Revoke a key, named by its number or its prefix (as `apikey list` shows them)."""
    from crm_graph.auth import service
    from crm_graph.core.actor import SYSTEM

    settings = _settings()

    async def work(session: AsyncSession) -> Any:
        key = await service.find_api_key(session, reference)
        return await service.revoke_api_key(session, actor=SYSTEM, key_id=key.id)

    key = _run(settings, work)
    click.echo(f"API key {key.id} {key.prefix}... ({key.name}) revoked")
    _note(f"running servers refuse it within CRM_AUTH_CACHE_SECONDS ({settings.auth_cache_seconds:g} s)")


@apikey.command("list")
def apikey_list() -> None:
    """List keys, newest first: number, prefix, role, user, state, last use, name."""
    from crm_graph.auth.models import ApiKey, User

    settings = _settings()

    async def work(session: AsyncSession) -> list[Any]:
        stmt = (
            sa.select(ApiKey, User.email).outerjoin(User, User.id == ApiKey.user_id)
            .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        )
        return list((await session.execute(stmt)).all())

    rows = _run(settings, work)
    now = datetime.now(UTC)
    for key, email in rows:
        if key.revoked_at is not None:
            state = "revoked"
        elif key.expires_at is not None and key.expires_at <= now:
            state = "expired"
        else:
            state = f"until {key.expires_at:%Y-%m-%d}" if key.expires_at else "active"
        used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never used"
        scopes = f" [{', '.join(key.scopes)}]" if key.scopes else ""
        click.echo(f"{key.id:>5}  {key.prefix}  {key.role:<12} {email or '-':<28} {state:<17} {used:<16}  {key.name}{scopes}")
    if not rows:
        _note("no API keys")
