"""Users, teams, roles and sharing defaults through the API, with the rules of who may do what."""

from __future__ import annotations

from crm_graph.testing.auth import make_key
from tests.auth.conftest import CREATE_USER, ME, PASSWORD, UPDATE_USER, codes, create_user, error_code, userless_key

CREATE_ROLE = """
mutation($input: CreateRoleInput!) {
  createRole(input: $input) { role { name description permissions viewAll managesTeam builtin } errors { field code message } }
}
"""
SHARING = "{ sharingDefaults { object level } }"
SET_SHARING = """
mutation($object: String!, $level: SharingLevel!) {
  setSharingDefault(object: $object, level: $level) { sharingDefaults { object level } errors { field code message } }
}
"""


async def test_sales_cannot_create_users(admin, connect, db, settings):
    rep_key, _ = await make_key(db, settings, role="SALES", email="rep@example.com")
    body = await (await connect(rep_key)).post(CREATE_USER, {"input": {"email": "new@example.com", "role": "ADMIN"}})
    assert body["data"] is None and error_code(body) == "FORBIDDEN"
    assert "users:create" in body["errors"][0]["message"]
    emails = (await admin.execute("{ users { edges { node { email } } } }"))["users"]["edges"]
    assert "new@example.com" not in [e["node"]["email"] for e in emails]


async def test_create_user_validates_its_input(admin):
    await create_user(admin, "rep@example.com")
    cases = [
        ({"email": "REP@example.com", "role": "SALES"}, [("email", "DUPLICATE")]),
        ({"email": "not-an-email", "role": "SALES"}, [("email", "INVALID_EMAIL")]),
        ({"email": "x@example.com", "role": "WIZARD"}, [("role", "INVALID_VALUE")]),
        ({"email": "x@example.com", "role": "SALES", "password": "short"}, [("password", "INVALID_VALUE")]),
    ]
    for input, expected in cases:
        payload = (await admin.execute(CREATE_USER, {"input": input}))["createUser"]
        assert payload["user"] is None and codes(payload) == expected, input


async def test_an_admin_cannot_change_their_own_role(admin):
    me = (await admin.execute(ME))["me"]["user"]
    payload = (await admin.execute(UPDATE_USER, {"id": me["id"], "input": {"role": "SALES"}}))["updateUser"]
    assert payload["user"] is None and codes(payload) == [("role", "FORBIDDEN")]
    payload = (await admin.execute(UPDATE_USER, {"id": me["id"], "input": {"active": False}}))["updateUser"]
    assert codes(payload) == [("active", "FORBIDDEN")]
    assert (await admin.execute(ME))["me"]["user"]["role"] == "ADMIN"


async def test_the_last_admin_cannot_be_demoted_or_deactivated(admin, connect, db, settings):
    integration = await connect(await userless_key(db, settings, role="ADMIN"))  # an admin key of no user
    me = (await admin.execute(ME))["me"]["user"]
    for change, field in (({"role": "SALES"}, "role"), ({"active": False}, "active")):
        payload = (await integration.execute(UPDATE_USER, {"id": me["id"], "input": change}))["updateUser"]
        assert codes(payload) == [(field, "LAST_ADMIN")]
    assert (await admin.execute(ME))["me"]["role"] == "ADMIN"

    await create_user(admin, "second.admin@example.com", role="ADMIN")
    payload = await integration.mutate(UPDATE_USER, {"id": me["id"], "input": {"role": "SALES"}})
    assert payload["user"]["role"] == "SALES"
    # A key acts as its user: the demoted admin's ADMIN key stops working with the next request.
    body = await admin.post(CREATE_USER, {"input": {"email": "x@example.com", "role": "SALES"}})
    assert body["data"] is None and error_code(body) == "UNAUTHENTICATED"
    keys = (await integration.execute("{ apiKeys { edges { node { name revokedAt user { email } } } } }"))["apiKeys"]["edges"]
    assert [k["node"]["name"] for k in keys if k["node"]["revokedAt"]] == ["test ADMIN"]


async def test_update_user_changes_team_and_checks_the_version(admin):
    team = (await admin.mutate('mutation { createTeam(input: {name: "South", description: "Southern region"}) { team { id name } errors { code } } }'))["team"]
    user = await create_user(admin, "rep@example.com")
    payload = await admin.mutate(UPDATE_USER, {"id": user["id"], "input": {"teamId": team["id"]}})
    assert payload["user"]["version"] == user["version"] + 1
    stale = (await admin.execute(
        "mutation($id: ID!) { updateUser(id: $id, input: {name: \"R\"}, expectedVersion: 1) { user { id } errors { field code } } }",
        {"id": user["id"]},
    ))["updateUser"]
    assert codes(stale) == [("expectedVersion", "VERSION_CONFLICT")]

    teams = (await admin.execute("{ teams { edges { node { name description members { totalCount edges { node { email } } } } } } }"))
    (south,) = [e["node"] for e in teams["teams"]["edges"]]
    assert south["name"] == "South" and south["description"] == "Southern region"
    assert south["members"]["totalCount"] == 1 and south["members"]["edges"][0]["node"]["email"] == "rep@example.com"
    users = (await admin.execute("query($t: ID!) { users(teamId: $t) { edges { node { email team { name } } } } }", {"t": team["id"]}))
    assert users["users"]["edges"] == [{"node": {"email": "rep@example.com", "team": {"name": "South"}}}]
    node = (await admin.execute("query($id: ID!) { node(id: $id) { ... on User { email role } } }", {"id": user["id"]}))
    assert node["node"] == {"email": "rep@example.com", "role": "SALES"}
    duplicate = (await admin.execute('mutation { createTeam(input: {name: "South"}) { team { id } errors { field code } } }'))
    assert codes(duplicate["createTeam"]) == [("name", "DUPLICATE")]


async def test_a_custom_role_grants_exactly_its_permissions(admin, connect, db, settings):
    payload = await admin.mutate(CREATE_ROLE, {"input": {
        "name": "ANALYST", "description": "Reads customers and deals", "permissions": ["customers:read", "opportunities:read"],
    }})
    assert payload["role"] == {
        "name": "ANALYST", "description": "Reads customers and deals", "permissions": ["customers:read", "opportunities:read"],
        "viewAll": False, "managesTeam": False, "builtin": False,
    }
    roles = [r["name"] for r in (await admin.execute("{ roles { name builtin } }"))["roles"]]
    assert roles[-1] == "ANALYST" and roles[0] == "ADMIN"

    key, _ = await make_key(db, settings, role="ANALYST", email="analyst@example.com")
    analyst = await connect(key)
    me = (await analyst.execute(ME))["me"]
    assert me["role"] == "ANALYST" and me["permissions"] == ["customers:read", "opportunities:read"]
    assert "errors" not in await analyst.post("{ opportunities { totalCount } }")
    for query in ("{ users { totalCount } }", "{ tickets { totalCount } }", "{ roles { name } }"):
        assert error_code(await analyst.post(query)) == "FORBIDDEN", query


async def test_create_role_refuses_taken_names_and_unknown_permissions(admin):
    cases = [
        ({"name": "ADMIN", "permissions": ["customers:read"]}, [("name", "DUPLICATE")]),
        ({"name": "lower case", "permissions": ["customers:read"]}, [("name", "INVALID_VALUE")]),
        ({"name": "ODD", "permissions": ["customers:read", "spaceships:read", "customers:fly"]},
         [("permissions.1", "INVALID_VALUE"), ("permissions.2", "INVALID_VALUE")]),
        ({"name": "EMPTY", "permissions": []}, [("permissions", "REQUIRED")]),
    ]
    await admin.mutate(CREATE_ROLE, {"input": {"name": "ANALYST", "permissions": ["customers:read"]}})
    cases.append(({"name": "ANALYST", "permissions": ["customers:read"]}, [("name", "DUPLICATE")]))
    for input, expected in cases:
        payload = (await admin.execute(CREATE_ROLE, {"input": input}))["createRole"]
        assert payload["role"] is None and codes(payload) == expected, input


async def test_nobody_hands_out_more_than_they_hold(admin, connect, db, settings):
    await admin.mutate(CREATE_ROLE, {"input": {"name": "USER_ADMIN", "permissions": ["users:*", "roles:*", "teams:read"]}})
    key, _ = await make_key(db, settings, role="USER_ADMIN", email="hr@example.com")
    hr = await connect(key)
    promote = (await hr.execute(CREATE_USER, {"input": {"email": "boss@example.com", "role": "ADMIN", "password": PASSWORD}}))
    assert codes(promote["createUser"]) == [("role", "FORBIDDEN")]
    wider = (await hr.execute(CREATE_ROLE, {"input": {"name": "WIDER", "permissions": ["customers:delete"]}}))
    assert codes(wider["createRole"]) == [("permissions", "FORBIDDEN")]
    me = (await admin.execute(ME))["me"]["user"]
    takeover = (await hr.execute(UPDATE_USER, {"id": me["id"], "input": {"password": "a new password of mine"}}))
    assert codes(takeover["updateUser"]) == [(None, "FORBIDDEN")]
    ok = await hr.mutate(CREATE_USER, {"input": {"email": "new.hr@example.com", "role": "USER_ADMIN"}})
    assert ok["user"]["role"] == "USER_ADMIN"


async def test_sharing_defaults_can_be_read_by_anyone_and_changed_by_admins(admin, connect, db, settings):
    created = await admin.mutate('mutation { createCustomer(input: {kind: PERSON, firstName: "Ada"}) { customer { id } errors { code } } }')
    assert created["customer"]["id"]
    rep_key, _ = await make_key(db, settings, role="SALES", email="rep@example.com", team="North")
    rep = await connect(rep_key)
    defaults = {d["object"]: d["level"] for d in (await rep.execute(SHARING))["sharingDefaults"]}
    assert defaults == {"customers": "PUBLIC_READ", "opportunities": "TEAM", "quotes": "TEAM", "orders": "TEAM",
                        "tickets": "PUBLIC_READ_WRITE"}
    assert (await rep.execute("{ customers { totalCount } }"))["customers"]["totalCount"] == 1

    refused = await rep.post(SET_SHARING, {"object": "customers", "level": "PRIVATE"})
    assert error_code(refused) == "FORBIDDEN"
    payload = await admin.mutate(SET_SHARING, {"object": "customers", "level": "PRIVATE"})
    assert {"object": "customers", "level": "PRIVATE"} in payload["sharingDefaults"]

    # The next request already sees with the new level: the admin's customer is private now.
    assert (await rep.execute("{ customers { totalCount } }"))["customers"]["totalCount"] == 0
    bad = (await admin.execute(SET_SHARING, {"object": "widgets", "level": "TEAM"}))["setSharingDefault"]
    assert bad["sharingDefaults"] is None and codes(bad) == [("object", "INVALID_VALUE")]
