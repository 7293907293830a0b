"""Activities: the customer's timeline and tasks, through GraphQL."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_graph.core.clock import frozen_clock
from tests.customers.test_schema import create

LOG = """
mutation($input: LogActivityInput!) {
  logActivity(input: $input) {
    activity { id type subject occurredAt dueAt assignee completedAt isOpenTask isOverdue direction customer { displayName } }
    errors { field code message }
  }
}
"""
COMPLETE = "mutation($id: ID!) { completeTask(id: $id) { activity { completedAt isOpenTask } errors { field code } } }"
TIMELINE = """
query($id: ID!, $first: Int, $after: String, $f: ActivityFilter) {
  customer(id: $id) { activities(first: $first, after: $after, filter: $f) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { subject type } } } }
}
"""


async def test_timeline_is_newest_first_and_pages(client):
    customer = await create(client, kind="PERSON", lastName="Timeline")
    for day, (kind, subject) in enumerate([("NOTE", "first note"), ("CALL", "intro call"), ("EMAIL", "price list"),
                                           ("MEETING", "demo")], start=1):
        await client.mutate(LOG, {"input": {"customerId": customer["id"], "type": kind, "subject": subject,
                                            "occurredAt": f"2026-03-0{day}T10:00:00Z"}})
    page = (await client.execute(TIMELINE, {"id": customer["id"], "first": 3}))["customer"]["activities"]
    assert [e["node"]["subject"] for e in page["edges"]] == ["demo", "price list", "intro call"]
    assert page["totalCount"] == 4 and page["pageInfo"]["hasNextPage"]
    rest = (await client.execute(TIMELINE, {"id": customer["id"], "first": 3, "after": page["pageInfo"]["endCursor"]}))
    assert [e["node"]["subject"] for e in rest["customer"]["activities"]["edges"]] == ["first note"]
    calls = await client.execute(TIMELINE, {"id": customer["id"], "f": {"type": {"in": ["CALL", "EMAIL"]}}})
    assert calls["customer"]["activities"]["totalCount"] == 2


async def test_task_lifecycle_with_due_date_and_completion(client):
    customer = await create(client, kind="PERSON", lastName="Tasked")
    with frozen_clock(datetime(2026, 5, 1, 9, tzinfo=UTC)) as clock:
        task = (await client.mutate(LOG, {"input": {"customerId": customer["id"], "type": "TASK", "subject": "Send quote",
                                                    "dueAt": "2026-05-03T17:00:00Z", "assignee": "kim@example.com"}}))["activity"]
        assert task["isOpenTask"] is True and task["isOverdue"] is False
        assert task["customer"]["displayName"] == "Tasked"
        clock.advance(days=3)
        open_tasks = await client.execute(
            "{ activities(filter: {type: {eq: TASK}, completedAt: {isNull: true}}) { edges { node { subject isOverdue assignee } } } }"
        )
        assert open_tasks["activities"]["edges"] == [{"node": {"subject": "Send quote", "isOverdue": True, "assignee": "kim@example.com"}}]
        done = (await client.mutate(COMPLETE, {"id": task["id"]}))["activity"]
        assert done["completedAt"] == "2026-05-04T09:00:00+00:00" and done["isOpenTask"] is False
        clock.advance(days=1)
        again = (await client.mutate(COMPLETE, {"id": task["id"]}))["activity"]
        assert again["completedAt"] == done["completedAt"]  # completing twice changes nothing


async def test_bad_activity_input(client):
    customer = await create(client, kind="PERSON", lastName="Strict")
    note = (await client.mutate(LOG, {"input": {"customerId": customer["id"], "type": "NOTE", "subject": "n"}}))["activity"]
    body = await client.execute(LOG, {"input": {"customerId": customer["id"], "type": "NOTE", "subject": "  ",
                                                "dueAt": "2026-01-01T00:00:00Z", "direction": "INBOUND",
                                                "durationMinutes": -5}})
    assert {(e["field"], e["code"]) for e in body["logActivity"]["errors"]} == {
        ("subject", "REQUIRED"), ("dueAt", "INVALID_VALUE"), ("direction", "INVALID_VALUE"), ("durationMinutes", "INVALID_VALUE"),
    }
    not_task = await client.execute(COMPLETE, {"id": note["id"]})
    assert not_task["completeTask"]["errors"] == [{"field": "id", "code": "INVALID_STATE"}]

    await client.mutate('mutation($id: ID!) { deleteCustomer(id: $id) { customer { id } errors { field code message } } }', {"id": customer["id"]})
    gone = await client.execute(LOG, {"input": {"customerId": customer["id"], "type": "NOTE", "subject": "late"}})
    assert gone["logActivity"]["errors"][0]["code"] == "NOT_FOUND"
    # A deleted customer's activities leave the global list too.
    assert (await client.execute("{ activities { totalCount } }"))["activities"]["totalCount"] == 0
