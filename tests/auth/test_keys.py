"""API keys: shown once, recognised by prefix, scoped, revoked and expired at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_graph.auth import tokens
from crm_graph.core.clock import frozen_clock
from crm_graph.testing.auth import make_key
from tests.auth.conftest import CREATE_KEY, ME, codes, error_code, userless_key

KEYS = "{ apiKeys { totalCount edges { node { id name prefix scopes lastUsedAt revokedAt user { email } } } } }"
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) { apiKey { id revokedAt } errors { field code message } } }"
CREATE_CUSTOMER = """
mutation { createCustomer(input: {kind: PERSON, firstName: "Ada", lastName: "Lovelace"}) { customer { id } errors { code } } }
"""


async def test_create_api_key_shows_the_key_once_and_records_its_use(admin, connect, app):
    payload = await admin.mutate(CREATE_KEY, {"input": {"name": "shop sync"}})
    key, row = payload["key"], payload["apiKey"]
    assert key.startswith("crm_key_") and tokens.well_formed(key)
    assert row["prefix"] == key[: len(row["prefix"])] and len(row["prefix"]) < len(key)
    assert row["role"] == "ADMIN" and row["scopes"] is None and row["lastUsedAt"] is None

    me = (await (await connect(key)).execute(ME))["me"]
    assert me["kind"] == "api_key" and me["apiKey"] == {"id": row["id"], "name": "shop sync", "prefix": row["prefix"]}
    assert me["user"]["email"] == "admin@example.com"  # a key made through the API acts as its maker
    await app.state.auth.drain()  # the last use is written after the answer

    listed = {e["node"]["id"]: e["node"] for e in (await admin.execute(KEYS))["apiKeys"]["edges"]}
    assert listed[row["id"]]["lastUsedAt"] is not None
    # Neither listing nor the node lookup ever shows the key again.
    assert key not in str(listed) and key not in str(await admin.execute(f'{{ node(id: "{row["id"]}") {{ id ... on ApiKey {{ prefix }} }} }}'))


async def test_revoked_key_stops_working_at_once(admin, connect):
    payload = await admin.mutate(CREATE_KEY, {"input": {"name": "to revoke"}})
    holder = await connect(payload["key"])
    assert (await holder.execute(ME))["me"]["kind"] == "api_key"  # now cached by the server

    revoked = await admin.mutate(REVOKE, {"id": payload["apiKey"]["id"]})
    assert revoked["apiKey"]["revokedAt"] is not None

    body = await holder.post(ME)
    assert body["data"] is None and error_code(body) == "UNAUTHENTICATED"


async def test_expired_key_is_refused(admin, connect):
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    payload = await admin.mutate(CREATE_KEY, {"input": {"name": "one hour", "expiresAt": soon}})
    holder = await connect(payload["key"])
    assert (await holder.execute(ME))["me"]["kind"] == "api_key"

    with frozen_clock(datetime.now(UTC) + timedelta(hours=2)):
        assert error_code(await holder.post(ME)) == "UNAUTHENTICATED"


async def test_bad_expiry_is_a_field_error(admin):
    for value in ((datetime.now(UTC) - timedelta(days=1)).isoformat(), "2030-01-01T00:00:00"):
        payload = (await admin.execute(CREATE_KEY, {"input": {"name": "k", "expiresAt": value}}))["createApiKey"]
        assert payload["key"] is None and codes(payload) == [("expiresAt", "INVALID_VALUE")]


async def test_corrupted_or_foreign_tokens_are_refused_with_a_clear_message(connect, admin_key):
    last = admin_key[-1]
    corrupted = admin_key[:-1] + ("A" if last != "A" else "B")
    for token in (corrupted, "ghp_not_ours_at_all", admin_key.replace("crm_key_", "crm_ses_")):
        body = await (await connect(token)).post(ME)
        assert body["data"] is None and error_code(body) == "UNAUTHENTICATED"
        assert "checksum" in body["errors"][0]["message"]
    # A well-formed key that the server never issued is refused too.
    stranger = tokens.new_token("key")
    body = await (await connect(stranger)).post(ME)
    assert error_code(body) == "UNAUTHENTICATED" and "not valid" in body["errors"][0]["message"]


async def test_a_read_scoped_key_reads_customers_but_cannot_create_them(admin, connect):
    payload = await admin.mutate(CREATE_KEY, {"input": {"name": "reporting", "scopes": ["customers:read"]}})
    assert payload["apiKey"]["scopes"] == ["customers:read"]
    reader = await connect(payload["key"])

    me = (await reader.execute(ME))["me"]
    assert me["permissions"] == ["customers:read"] and me["scopes"] == ["customers:read"]
    assert (await reader.execute("{ customers { totalCount } }"))["customers"]["totalCount"] == 0

    body = await reader.post(CREATE_CUSTOMER)
    assert body["data"] is None and error_code(body) == "FORBIDDEN"
    assert "customers:create" in body["errors"][0]["message"]
    assert (await admin.execute("{ customers { totalCount } }"))["customers"]["totalCount"] == 0


async def test_invalid_scopes_are_field_errors(admin):
    payload = (await admin.execute(CREATE_KEY, {"input": {"name": "k", "scopes": ["customers:read", "customers:fly", "*:*"]}}))
    assert codes(payload["createApiKey"]) == [("scopes.1", "INVALID_VALUE"), ("scopes.2", "INVALID_VALUE")]
    assert (await admin.execute(KEYS))["apiKeys"]["totalCount"] == 1  # only the admin's own key


async def test_a_scoped_key_cannot_make_a_wider_key(admin, connect):
    payload = await admin.mutate(CREATE_KEY, {"input": {"name": "keys only", "scopes": ["api_keys:create", "api_keys:read"]}})
    narrow = await connect(payload["key"])
    wider = (await narrow.execute(CREATE_KEY, {"input": {"name": "everything"}}))["createApiKey"]
    assert wider["key"] is None and codes(wider) == [("scopes", "FORBIDDEN")]
    same = await narrow.mutate(CREATE_KEY, {"input": {"name": "read keys", "scopes": ["api_keys:read"]}})
    assert same["key"].startswith("crm_key_")


async def test_non_admins_see_and_revoke_only_their_own_keys(admin, connect, db, settings):
    rep_key, _ = await make_key(db, settings, role="SALES", email="rep@example.com", name="rep key")
    other = await admin.mutate(CREATE_KEY, {"input": {"name": "admin's other key"}})
    custom = "mutation { createRole(input: {name: \"KEYS\", permissions: [\"api_keys:*\", \"customers:read\"]}) { errors { code } } }"
    assert (await admin.execute(custom))["createRole"]["errors"] == []
    keys_key, _ = await make_key(db, settings, role="KEYS", email="keys@example.com", name="keys key")
    holder = await connect(keys_key)

    listed = (await holder.execute(KEYS))["apiKeys"]
    assert [e["node"]["name"] for e in listed["edges"]] == ["keys key"] and listed["totalCount"] == 1
    refused = (await holder.execute(REVOKE, {"id": other["apiKey"]["id"]}))["revokeApiKey"]
    assert codes(refused) == [("id", "NOT_FOUND")]
    assert (await (await connect(other["key"])).execute(ME))["me"]["kind"] == "api_key"
    sales = await connect(rep_key)
    assert error_code(await sales.post(KEYS)) == "FORBIDDEN"  # SALES has no api_keys:read


async def test_me_for_a_key_without_a_user(connect, db, settings):
    token = await userless_key(db, settings, role="INTEGRATION")
    me = (await (await connect(token)).execute(ME))["me"]
    assert me["kind"] == "api_key" and me["role"] == "INTEGRATION" and me["viewAll"] is True
    assert me["user"] is None and me["apiKey"]["name"] == "integration INTEGRATION"
