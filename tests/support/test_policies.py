"""SLA policies: which one a new ticket gets, and how changing a policy behaves."""

from __future__ import annotations

from tests.support.conftest import create_customer, create_policy, create_ticket

UPDATE_POLICY = """
mutation($id: ID!, $input: UpdateSlaPolicyInput!, $v: Int) {
  updateSlaPolicy(id: $id, input: $input, expectedVersion: $v) {
    slaPolicy { id name active rank priorities channels tags firstResponseMinutes version
                businessHours { timeZone weekdays startTime endTime } }
    errors { field code message }
  }
}
"""


async def test_a_new_ticket_gets_the_first_matching_active_policy_by_rank(client):
    await create_policy(client, name="Default", firstResponseMinutes=480, resolutionMinutes=4800)
    await create_policy(client, name="Urgent", rank=10, priorities=["URGENT", "HIGH"], firstResponseMinutes=15, resolutionMinutes=240)
    await create_policy(client, name="Chat", rank=20, channels=["CHAT"], firstResponseMinutes=5, resolutionMinutes=120)
    vip = await create_policy(client, name="VIP", rank=5, tags=["VIP"], firstResponseMinutes=10, resolutionMinutes=60)
    customer = await create_customer(client)

    async def policy_of(**input) -> str | None:
        ticket = await create_ticket(client, customer["id"], **input)
        policy = ticket["sla"]["policy"]
        return policy["name"] if policy else None

    assert await policy_of(priority="LOW") == "Default"
    assert await policy_of(priority="URGENT", channel="CHAT") == "Urgent"  # rank 10 before rank 20
    assert await policy_of(priority="NORMAL", channel="CHAT") == "Chat"
    assert await policy_of(priority="URGENT", tags=["vip", "other"]) == "VIP"

    updated = (await client.mutate(UPDATE_POLICY, {"id": vip["id"], "input": {"active": False}}))["slaPolicy"]
    assert updated["active"] is False
    assert await policy_of(priority="URGENT", tags=["vip"]) == "Urgent"

    listed = await client.execute("{ slaPolicies(first: 10) { totalCount edges { node { name rank } } } }")
    assert [e["node"]["name"] for e in listed["slaPolicies"]["edges"]] == ["VIP", "Urgent", "Chat", "Default"]


async def test_updating_a_policy_checks_the_version_and_can_drop_business_hours(client, db):
    policy = await create_policy(
        client, name="Office", tags=["b2b"],
        businessHours={"timeZone": "America/New_York", "weekdays": ["MONDAY", "FRIDAY", "MONDAY"],
                       "startTime": "08:30", "endTime": "17:30"},
    )
    assert policy["businessHours"] == {"timeZone": "America/New_York", "weekdays": ["MONDAY", "FRIDAY"],
                                       "startTime": "08:30:00", "endTime": "17:30:00"}
    changed = (await client.mutate(UPDATE_POLICY, {"id": policy["id"], "v": policy["version"],
                                                   "input": {"firstResponseMinutes": 90, "businessHours": None, "tags": None}}))
    assert changed["slaPolicy"]["businessHours"] is None
    assert changed["slaPolicy"]["tags"] == [] and changed["slaPolicy"]["firstResponseMinutes"] == 90
    assert changed["slaPolicy"]["version"] == policy["version"] + 1

    stale = (await client.execute(UPDATE_POLICY, {"id": policy["id"], "v": policy["version"], "input": {"name": "Lost"}}))
    assert [(e["field"], e["code"]) for e in stale["updateSlaPolicy"]["errors"]] == [("expectedVersion", "VERSION_CONFLICT")]
    cleared = (await client.execute(UPDATE_POLICY, {"id": policy["id"], "input": {"resolutionMinutes": None, "firstResponseMinutes": 0}}))
    assert {(e["field"], e["code"]) for e in cleared["updateSlaPolicy"]["errors"]} == {
        ("resolutionMinutes", "REQUIRED"), ("firstResponseMinutes", "OUT_OF_RANGE")}
    node = await client.execute("query($id: ID!) { node(id: $id) { ... on SlaPolicy { name firstResponseMinutes } } }",
                                {"id": policy["id"]})
    assert node["node"] == {"name": "Office", "firstResponseMinutes": 90}


async def test_policies_created_at_once_with_one_name_make_one_policy(client):
    """Each request's name check passes before the other's insert: the loser is DUPLICATE, not an
    internal error (PostgreSQL's unique violation)."""
    import asyncio

    from tests.support.conftest import CREATE_POLICY

    async def attempt() -> dict:
        body = await client.post(CREATE_POLICY, {"input": {"name": "Racing", "firstResponseMinutes": 60, "resolutionMinutes": 480}})
        assert "errors" not in body, body
        return body["data"]["createSlaPolicy"]

    results = await asyncio.gather(*(attempt() for _ in range(4)))
    assert sum(1 for r in results if r["slaPolicy"]) == 1
    assert [e["code"] for r in results if not r["slaPolicy"] for e in r["errors"]] == ["DUPLICATE"] * 3
    assert all(e["field"] == "name" for r in results for e in r["errors"])
    listed = await client.execute("{ slaPolicies(first: 10) { totalCount } }")
    assert listed["slaPolicies"]["totalCount"] == 1
