"""Signing in and out: passwords to session tokens, throttled per account and per address.

``login`` runs before anyone is signed in, so it works on an unscoped session. A failed attempt
is written in a transaction of its own (``sign_in``): the refusal rolls back everything else,
but the failure must stay on record, or throttling would never count it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.auth import tokens
from crm_graph.auth.models import AuthSession, LoginFailure, Team, User
from crm_graph.auth.service.common import (
    INVALID_CREDENTIALS,
    LOCKED,
    check_password,
    error,
    hash_password,
    needs_rehash,
    normalise_email,
)
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ValidationFailed

# Each failure is answered later than the one before: min(cap, base * 2**earlier failures)
# seconds. With the default five failures that is at most 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s.
FAILURE_DELAY_BASE = 0.1
FAILURE_DELAY_CAP = 2.0
ADDRESS_SHARE = 4  # one address (an office behind NAT) may fail this many times more than one account


class LoginRefused(ValidationFailed):
    """``INVALID_CREDENTIALS`` (to be recorded as a failure) or ``LOCKED`` (not recorded, so
    a locked account unlocks when the window has passed however often it is tried)."""

    def __init__(self, code: str, message: str, *, failures: int, email: str, address: str | None) -> None:
        super().__init__([error("password" if code == INVALID_CREDENTIALS else None, code, message)])
        self.code = code
        self.failures = failures
        self.email = email
        self.address = address


@dataclass(frozen=True)
class SignedIn:
    token: str  # shown to the client once; only its keyed hash is stored
    session: AuthSession
    user: User
    team: Team | None


def failure_delay(failures: int) -> float:
    return min(FAILURE_DELAY_CAP, FAILURE_DELAY_BASE * 2 ** min(failures, 32))


async def recent_failures(session: AsyncSession, *, email: str, address: str | None, window: timedelta) -> int:
    """Failures of the account, or of the address divided by ``ADDRESS_SHARE``, in the window."""
    since = utcnow() - window
    count = sa.select(sa.func.count()).select_from(LoginFailure).where(LoginFailure.at >= since)
    by_account = await session.scalar(count.where(LoginFailure.email == email))
    by_address = await session.scalar(count.where(LoginFailure.address == address)) if address else 0
    return max(int(by_account or 0), int(by_address or 0) // ADDRESS_SHARE)


def _account(email: Any) -> str:
    try:
        return normalise_email(email)
    except ValidationFailed:
        return str(email)[:320].strip().lower()


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
) -> SignedIn:
    """Check the password; on success open a session and return its token.

    After ``max_failures`` failures of the account (or many of the address) within ``lockout``,
    every attempt, even with the right password, is refused with ``LOCKED`` until the window
    has passed. A wrong password, an unknown email and an inactive account get the same answer
    and take the same time. Writes nothing on failure (``sign_in`` records it)."""
    address_key = (address or "")[:64] or None
    account = _account(email)
    failures = await recent_failures(session, email=account, address=address_key, window=lockout)
    if failures >= max_failures:
        minutes = max(1, round(lockout.total_seconds() / 60))
        raise LoginRefused(
            LOCKED, f"Too many failed sign-ins: try again in {minutes} minutes.", failures=failures, email=account,
            address=address_key,
        )
    user = await session.scalar(sa.select(User).where(User.email == account))
    # argon2 takes tens of milliseconds of CPU: off the event loop, so other requests go on.
    ok = await asyncio.to_thread(check_password, user.password_hash if user else None, password if isinstance(password, str) else "")
    if not ok or user is None or not user.active:
        raise LoginRefused(
            INVALID_CREDENTIALS, "The email or password is wrong.", failures=failures, email=account, address=address_key
        )
    await session.execute(sa.delete(LoginFailure).where(LoginFailure.email == account))
    if needs_rehash(user.password_hash):
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
    team = await session.get(Team, user.team_id) if user.team_id else None
    return SignedIn(token, auth, user, team)


async def sign_in(
    sessions: Callable[[], AsyncSession],
    *,
    delay: Callable[[int], float] | None = None,
    **arguments: Any,
) -> SignedIn:
    """``login`` in a transaction of ``sessions()`` (an unscoped writer); a refusal for wrong
    credentials is recorded in a second transaction and answered after ``delay(failures)``
    (default ``failure_delay``)."""
    try:
        async with sessions() as session, session.begin():
            return await login(session, **arguments)
    except LoginRefused as refusal:
        if refusal.code == INVALID_CREDENTIALS:
            async with sessions() as session, session.begin():
                session.add(LoginFailure(email=refusal.email, address=refusal.address, at=utcnow()))
            await asyncio.sleep((delay or failure_delay)(refusal.failures))
        raise


async def logout(session: AsyncSession, *, session_id: int) -> None:
    await session.execute(
        sa.update(AuthSession).where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None)).values(revoked_at=utcnow())
    )


async def revoke_sessions(session: AsyncSession, *, user_id: int) -> None:
    await session.execute(
        sa.update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
