"""`crm-graph user ...` and `crm-graph apikey ...`, run as an operator would, against the test database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner, Result

from crm_graph.cli import cli
from tests.auth.conftest import ME, PASSWORD, error_code, login


async def crm_graph(settings, *args: str, input: str | None = None) -> Result:
    """Run the command in a thread of its own (it runs its own event loop, as from a shell)."""
    env = {"CRM_DATABASE_URL": settings.database_url, "CRM_SECRET_KEY": settings.secret_key}
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, cli, list(args), input=input, env=env, catch_exceptions=False)


async def test_apikey_create_prints_only_the_key_and_the_key_works(settings, connect):
    result = await crm_graph(settings, "apikey", "create", "--name", "shop sync", "--role", "INTEGRATION",
                             "--scope", "customers:read", "--scope", "orders:read", "--expires", "30d")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("crm_key_")
    assert "not shown again" in result.stderr and lines[0] not in result.stderr

    me = (await (await connect(lines[0])).execute("{ me { role permissions user { id } apiKey { expiresAt } } }"))["me"]
    assert me["role"] == "INTEGRATION" and me["user"] is None
    assert me["permissions"] == ["customers:read", "orders:read"]
    expires = datetime.fromisoformat(me["apiKey"]["expiresAt"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=5)


async def test_apikey_create_for_a_user_with_an_iso_expiry(settings, connect, admin_key):
    until = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    result = await crm_graph(settings, "apikey", "create", "--name", "laptop", "--role", "ADMIN",
                             "--user", "ADMIN@example.com", "--expires", until.isoformat())
    assert result.exit_code == 0, result.output
    holder = await connect(result.stdout.strip())
    me = (await holder.execute(ME))["me"]
    assert me["user"]["email"] == "admin@example.com" and me["apiKey"]["name"] == "laptop"
    keys = (await holder.execute("{ apiKeys { edges { node { name expiresAt } } } }"))["apiKeys"]["edges"]
    assert {"name": "laptop", "expiresAt": until.isoformat()} in [e["node"] for e in keys]


async def test_user_create_reads_the_password_from_stdin_and_the_user_can_sign_in(settings, connect):
    result = await crm_graph(settings, "user", "create", "--email", "Ops@Example.com", "--role", "MANAGER",
                             "--name", "Ops", "--team", "North", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "ops@example.com" in result.stdout and PASSWORD not in result.output

    signed_in = await login(await connect(), "ops@example.com")
    assert signed_in["errors"] == [] and signed_in["user"]["role"] == "MANAGER"
    me = (await (await connect(signed_in["token"])).execute(ME))["me"]
    assert me["user"]["team"] == {"name": "North"}


async def test_set_password_replaces_the_old_one(settings, connect):
    await crm_graph(settings, "user", "create", "--email", "ops@example.com", "--role", "SALES", input=PASSWORD + "\n")
    result = await crm_graph(settings, "user", "set-password", "--email", "ops@example.com", input="another long password\n")
    assert result.exit_code == 0, result.output
    anonymous = await connect()
    assert (await login(anonymous, "ops@example.com", "another long password"))["token"]
    assert (await login(anonymous, "ops@example.com"))["errors"][0]["code"] == "INVALID_CREDENTIALS"


async def test_apikey_revoke_and_list(settings, connect):
    made = await crm_graph(settings, "apikey", "create", "--name", "old sync", "--role", "INTEGRATION")
    key = made.stdout.strip()
    listed = await crm_graph(settings, "apikey", "list")
    (line,) = [row for row in listed.stdout.splitlines() if "old sync" in row]
    prefix = key[:12]
    assert prefix in line and "active" in line and "never used" in line and key not in listed.stdout

    revoked = await crm_graph(settings, "apikey", "revoke", prefix)
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    assert error_code(await (await connect(key)).post(ME)) == "UNAUTHENTICATED"
    listed = await crm_graph(settings, "apikey", "list")
    assert "revoked" in [row for row in listed.stdout.splitlines() if "old sync" in row][0]


async def test_cli_mistakes_are_messages_not_tracebacks(settings):
    first = await crm_graph(settings, "user", "create", "--email", "ops@example.com", "--role", "SALES", input=PASSWORD + "\n")
    assert first.exit_code == 0
    cases = [
        (("user", "create", "--email", "ops@example.com", "--role", "SALES"), PASSWORD + "\n", "A user with this email exists"),
        (("user", "create", "--email", "new@example.com", "--role", "SALES"), "short\n", "at least 10 characters"),
        (("user", "create", "--email", "new@example.com", "--role", "SALES"), "", "password on the first line of stdin"),
        (("apikey", "create", "--name", "k", "--role", "WIZARD"), None, "Unknown role"),
        (("apikey", "create", "--name", "k", "--role", "ADMIN", "--expires", "soon"), None, "--expires"),
        (("apikey", "create", "--name", "k", "--role", "ADMIN", "--user", "nobody@example.com"), None, "User was not found"),
        (("apikey", "revoke", "crm_key_nope"), None, "API key was not found"),
    ]
    for args, stdin, message in cases:
        result = await crm_graph(settings, *args, input=stdin)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output
