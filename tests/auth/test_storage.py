"""What a stolen database dump gives away: no key, no password, no session token."""

from __future__ import annotations

import os
import sqlite3
import subprocess

from sqlalchemy.engine import make_url

from tests.auth.conftest import CREATE_KEY, PASSWORD, create_user, login


def dump(settings, postgres) -> str:
    url = make_url(settings.database_url)
    if postgres is None:
        connection = sqlite3.connect(url.database)
        try:
            return "\n".join(connection.iterdump())
        finally:
            connection.close()
    result = subprocess.run(
        [str(postgres.bin_dir / "pg_dump"), "-h", "127.0.0.1", "-p", str(postgres.port), "-U", postgres.user, url.database],
        capture_output=True, text=True, check=True, env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
    )
    return result.stdout


async def test_a_database_dump_holds_no_secret(admin, admin_key, connect, settings, postgres, app):
    await create_user(admin, "rep@example.com")
    session_token = (await login(await connect(), "rep@example.com"))["token"]
    made = await admin.mutate(CREATE_KEY, {"input": {"name": "shop sync", "scopes": ["customers:read"]}})
    assert session_token and made["key"]
    await app.state.auth.drain()

    text = dump(settings, postgres)
    assert "rep@example.com" in text and "shop sync" in text  # the dump is real and complete
    for secret in (PASSWORD, session_token, made["key"], admin_key):
        assert secret not in text
        assert secret[8:] not in text  # nor the random part without its prefix
    assert made["apiKey"]["prefix"] in text  # only what the API shows of a key
    assert "argon2id" in text  # the password is there only as its hash
