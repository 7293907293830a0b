"""Signing in with a password, throttling, signing out and session expiry."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from crm_graph.app import create_app
from crm_graph.auth.models import AuthSession, LoginFailure, User
from crm_graph.auth.service import signin
from crm_graph.core.clock import frozen_clock
from tests.auth.conftest import ME, PASSWORD, UPDATE_USER, codes, create_user, error_code, login


async def count(db, model) -> int:
    async with db.reader() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(model)))


async def test_login_returns_a_session_token_that_works_as_bearer(admin, connect, db, settings):
    await admin.mutate("mutation { createTeam(input: {name: \"North\"}) { team { id } errors { code } } }")
    teams = await admin.execute("{ teams { edges { node { id } } } }")
    team_id = teams["teams"]["edges"][0]["node"]["id"]
    await create_user(admin, "Rep@Example.com", role="SALES", teamId=team_id)
    anonymous = await connect()

    before = datetime.now(UTC)
    result = await login(anonymous, "rep@example.com")
    assert result["errors"] == []
    token = result["token"]
    assert token.startswith("crm_ses_")
    assert result["user"]["email"] == "rep@example.com" and result["user"]["role"] == "SALES"
    assert result["user"]["lastLoginAt"] is not None
    expires = datetime.fromisoformat(result["expiresAt"])
    assert before + timedelta(hours=settings.session_hours) - timedelta(minutes=1) < expires
    assert expires < datetime.now(UTC) + timedelta(hours=settings.session_hours, minutes=1)

    me = (await (await connect(token)).execute(ME))["me"]
    assert me["kind"] == "user" and me["role"] == "SALES" and me["apiKey"] is None
    assert me["user"]["email"] == "rep@example.com" and me["user"]["team"] == {"name": "North"}
    assert "customers:read" in me["permissions"] and "users:create" not in me["permissions"]


async def test_wrong_password_and_unknown_email_get_the_same_answer_and_only_a_failure_is_written(admin, connect, db):
    await create_user(admin, "rep@example.com")
    anonymous = await connect()
    sessions_before = await count(db, AuthSession)

    wrong = await login(anonymous, "rep@example.com", "not the password")
    unknown = await login(anonymous, "nobody@example.com", PASSWORD)

    for result in (wrong, unknown):
        assert result["token"] is None and result["user"] is None
        assert codes(result) == [("password", "INVALID_CREDENTIALS")]
    assert wrong["errors"][0]["message"] == unknown["errors"][0]["message"]
    assert await count(db, AuthSession) == sessions_before
    async with db.reader() as session:
        failures = (await session.execute(sa.select(LoginFailure.email, LoginFailure.address))).all()
        rep = await session.scalar(sa.select(User).where(User.email == "rep@example.com"))
        nobody = await session.scalar(sa.select(User.id).where(User.email == "nobody@example.com"))
    assert sorted(failures) == [("nobody@example.com", "127.0.0.1"), ("rep@example.com", "127.0.0.1")]
    assert rep.last_login_at is None and nobody is None


async def test_malformed_login_input_is_a_refusal_not_a_crash(connect):
    anonymous = await connect()
    for email, password in (("", ""), ("not an email", "x"), ("a" * 5000, "b" * 5000)):
        result = await login(anonymous, email, password)
        assert codes(result) == [("password", "INVALID_CREDENTIALS")]


async def test_lockout_after_max_failures_refuses_even_the_right_password(admin, connect, db, settings, monkeypatch):
    await create_user(admin, "rep@example.com")
    await create_user(admin, "colleague@example.com")
    strict = dataclasses.replace(settings, login_max_failures=3, login_lockout_minutes=15)
    anonymous = await connect(app=create_app(strict, db=db))
    delays: list[float] = []
    real_delay = signin.failure_delay

    def recorded(failures: int) -> float:
        delays.append(real_delay(failures))
        return 0.0  # the growth is what matters here, not the wall-clock wait

    monkeypatch.setattr(signin, "failure_delay", recorded)

    for _ in range(3):
        assert codes(await login(anonymous, "rep@example.com", "wrong password!")) == [("password", "INVALID_CREDENTIALS")]
    # Each failure is answered later than the one before, up to a cap.
    assert delays == [0.1, 0.2, 0.4]
    assert real_delay(50) == signin.FAILURE_DELAY_CAP

    locked = await login(anonymous, "rep@example.com")
    assert locked["token"] is None and codes(locked) == [(None, "LOCKED")]
    assert "15 minutes" in locked["errors"][0]["message"]
    # The lock is the account's: a colleague behind the same address still signs in.
    assert (await login(anonymous, "colleague@example.com"))["token"] is not None

    with frozen_clock(datetime.now(UTC) + timedelta(minutes=16)):
        assert (await login(anonymous, "rep@example.com"))["token"] is not None


async def test_logout_ends_the_session(admin, connect):
    await create_user(admin, "rep@example.com")
    token = (await login(await connect(), "rep@example.com"))["token"]
    signed_in = await connect(token)
    assert (await signed_in.execute(ME))["me"]["user"]["email"] == "rep@example.com"

    assert await signed_in.mutate("mutation { logout { ok errors { field code message } } }") == {"ok": True, "errors": []}

    body = await signed_in.post(ME)
    assert body["data"] is None and error_code(body) == "UNAUTHENTICATED"


async def test_logout_with_an_api_key_says_how_to_end_a_key(admin):
    result = (await admin.execute("mutation { logout { ok errors { field code message } } }"))["logout"]
    assert result["ok"] is False and codes(result) == [(None, "INVALID_STATE")]
    assert "revokeApiKey" in result["errors"][0]["message"]
    assert (await admin.execute(ME))["me"]["role"] == "ADMIN"


async def test_expired_session_is_refused(admin, connect, settings):
    await create_user(admin, "rep@example.com")
    token = (await login(await connect(), "rep@example.com"))["token"]
    signed_in = await connect(token)
    assert (await signed_in.execute(ME))["me"]["kind"] == "user"

    with frozen_clock(datetime.now(UTC) + timedelta(hours=settings.session_hours, minutes=1)):
        body = await signed_in.post(ME)
    assert error_code(body) == "UNAUTHENTICATED"
    assert "expired" in body["errors"][0]["message"]


async def test_deactivated_user_cannot_sign_in_and_is_signed_out(admin, connect):
    user = await create_user(admin, "rep@example.com")
    token = (await login(await connect(), "rep@example.com"))["token"]

    payload = await admin.mutate(UPDATE_USER, {"id": user["id"], "input": {"active": False}})
    assert payload["user"]["active"] is False

    assert error_code(await (await connect(token)).post(ME)) == "UNAUTHENTICATED"
    assert codes(await login(await connect(), "rep@example.com")) == [("password", "INVALID_CREDENTIALS")]


async def test_anonymous_requests_are_told_to_sign_in(connect):
    anonymous = await connect()
    for query in ("{ customers { totalCount } }", ME):
        body = await anonymous.post(query)
        assert body["data"] is None and error_code(body) == "UNAUTHENTICATED"
        assert "Authorization: Bearer" in body["errors"][0]["message"]
