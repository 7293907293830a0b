"""Automation flows through the API: a definition's problems come back as errors with their
paths; templates; activating, pausing and archiving; an event-triggered flow enrols a new
customer once however often the event is delivered, runs its steps, and shows it in `stats`;
`simulateFlow` says in words what a flow would do; who may change flows."""

from __future__ import annotations

from typing import Any

import httpx

from crm_graph.app import create_app
from crm_graph.automation import engine
from crm_graph.testing.auth import make_key
from crm_graph.testing.client import GraphQLClient, asgi_client
from crm_graph.testing.events import EventLog

FLOW_FIELDS = """
  id name status templateKey trigger steps enrolmentRule goal activatedAt version
  versions { number } currentVersion { number }
  stats { enrolled active completed converted failed steps { key entered waiting completed skipped failed } }
"""
CREATE = f"""
mutation($input: CreateAutomationFlowInput!) {{
  createAutomationFlow(input: $input) {{ automationFlow {{ {FLOW_FIELDS} }} errors {{ field code message }} }}
}}
"""
FROM_TEMPLATE = """
mutation($key: String!) {
  createAutomationFlowFromTemplate(key: $key) { automationFlow { id name status templateKey steps } errors { field code } }
}
"""
UPDATE = """
mutation($id: ID!, $input: UpdateAutomationFlowInput!, $expectedVersion: Int) {
  updateAutomationFlow(id: $id, input: $input, expectedVersion: $expectedVersion) { automationFlow { id name version } errors { field code message } }
}
"""
STATE = """
mutation($id: ID!) {
  %s(id: $id) { automationFlow { id status activatedAt versions { number } currentVersion { number } } errors { field code } }
}
"""
FLOW = f"query($id: ID!) {{ automationFlow(id: $id) {{ {FLOW_FIELDS} }} }}"
SIMULATE = """
query($flow: ID!, $customer: ID!) {
  simulateFlow(flowId: $flow, customerId: $customer) {
    simulation { wouldEnrol reason version steps { key type outcome explanation } }
    errors { field code message }
  }
}
"""
CUSTOMER = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) { customer { id timeZone } errors { field code message } }
}
"""

WELCOME = {
    "name": "Welcome new customers",
    "trigger": {"kind": "EVENT", "eventType": "customer.created"},
    "steps": [
        {"key": "tag", "type": "ACTION", "action": "update_customer", "params": {"addTags": ["welcomed"]}},
        {"key": "call", "type": "ACTION", "action": "create_task",
         "params": {"subject": "Call {{ customer.display_name }}", "dueInDays": 2}},
    ],
}


async def create_flow(client: GraphQLClient, definition: dict[str, Any]) -> dict[str, Any]:
    return (await client.mutate(CREATE, {"input": definition}))["automationFlow"]


async def state(client: GraphQLClient, mutation: str, flow_id: str) -> dict[str, Any]:
    return (await client.execute(STATE % mutation, {"id": flow_id}))[mutation]


async def test_a_bad_definition_gives_errors_with_the_paths_of_its_fields(client):
    body = await client.execute(CREATE, {"input": {
        "name": " ",
        "trigger": {"kind": "EVENT", "eventType": "customer.teleported"},
        "steps": [
            {"key": "mail", "type": "ACTION", "action": "send_fax", "params": {}},
            {"key": "mail", "type": "WAIT", "wait": {"days": 1}},
            {"key": "check", "type": "CONDITION", "condition": {"city": {"eq": "Porto"}}, "yes": "nowhere"},
        ],
        "enrolmentRule": {"quietHoursStart": "22:00", "timeZone": "Mars/Olympus"},
    }})
    payload = body["createAutomationFlow"]
    assert payload["automationFlow"] is None
    errors = {(e["field"], e["code"]) for e in payload["errors"]}
    assert errors == {
        ("name", "REQUIRED"),
        ("trigger.eventType", "INVALID_VALUE"),
        ("steps.0.action", "INVALID_VALUE"),
        ("steps.0.key", "DUPLICATE"),
        ("steps.1.key", "DUPLICATE"),
        ("enrolmentRule.quietHoursEnd", "REQUIRED"),
        ("enrolmentRule.timeZone", "INVALID_VALUE"),
    }
    unknown_action = next(e for e in payload["errors"] if e["field"] == "steps.0.action")
    assert "send_email" in unknown_action["message"]  # the message lists the actions there are

    # Once those are right, the graph's own problems: a target that is no step, a loop.
    body = await client.execute(CREATE, {"input": {
        "name": "Loops", "trigger": {"kind": "EVENT", "eventType": "customer.created"},
        "steps": [
            {"key": "a", "type": "CONDITION", "condition": {"city": {"eq": "Porto"}}, "yes": "b", "no": "nowhere"},
            {"key": "b", "type": "WAIT", "wait": {"hours": 1}, "next": "a"},
        ],
    }})
    assert body["createAutomationFlow"]["errors"] == [
        {"field": "steps.0.no", "code": "NOT_FOUND", "message": "No step has the key 'nowhere'."}]
    body = await client.execute(CREATE, {"input": {
        "name": "Loops", "trigger": {"kind": "EVENT", "eventType": "customer.created"},
        "steps": [
            {"key": "a", "type": "CONDITION", "condition": {"city": {"eq": "Porto"}}, "yes": "b", "no": "END"},
            {"key": "b", "type": "WAIT", "wait": {"hours": 1}, "next": "a"},
        ],
    }})
    assert [(e["field"], e["code"]) for e in body["createAutomationFlow"]["errors"]] == [("steps.0", "INVALID_VALUE")]
    # A segment ID that is no segment's, and an action's parameter problems, with their paths.
    body = await client.execute(CREATE, {"input": {
        "name": "Entering", "trigger": {"kind": "SEGMENT_ENTERED", "segmentId": "not-an-id"},
        "steps": [{"key": "t", "type": "ACTION", "action": "create_task", "params": {"dueInDays": 900}}],
    }})
    assert {(e["field"], e["code"]) for e in body["createAutomationFlow"]["errors"]} == {
        ("trigger.segmentId", "NOT_FOUND"), ("steps.0.params.subject", "REQUIRED"), ("steps.0.params.dueInDays", "INVALID_VALUE")}


async def test_every_template_makes_a_draft(client):
    templates = (await client.execute("{ automationTemplates { key name description } }"))["automationTemplates"]
    keys = [t["key"] for t in templates]
    assert keys == ["welcome", "win-back", "birthday-points", "satisfaction-follow-up"]
    assert all(t["name"] and t["description"] for t in templates)
    for key in keys:
        flow = (await client.mutate(FROM_TEMPLATE, {"key": key}))["automationFlow"]
        assert (flow["status"], flow["templateKey"]) == ("DRAFT", key)
        assert flow["name"] == next(t["name"] for t in templates if t["key"] == key)
        assert flow["steps"]
    unknown = (await client.execute(FROM_TEMPLATE, {"key": "rocket"}))["createAutomationFlowFromTemplate"]
    assert unknown == {"automationFlow": None, "errors": [{"field": "key", "code": "NOT_FOUND"}]}
    listed = await client.execute("{ automationFlows(filter: {status: {eq: DRAFT}}) { totalCount edges { node { templateKey } } } }")
    assert listed["automationFlows"]["totalCount"] == 4
    assert [e["node"]["templateKey"] for e in listed["automationFlows"]["edges"]] == list(reversed(keys))  # newest first


async def test_activate_publishes_versions_pause_and_archive(client):
    flow = await create_flow(client, WELCOME)
    assert (flow["status"], flow["versions"], flow["currentVersion"], flow["activatedAt"]) == ("DRAFT", [], None, None)
    active = await state(client, "activateAutomationFlow", flow["id"])
    assert active["errors"] == [] and active["automationFlow"]["status"] == "ACTIVE"
    assert active["automationFlow"]["activatedAt"] and active["automationFlow"]["currentVersion"] == {"number": 1}

    # A change is a new version once activated again; activating an unchanged flow publishes none.
    changed = (await client.mutate(UPDATE, {"id": flow["id"], "input": {"name": "Welcome, v2", "steps": WELCOME["steps"][:1]}}))
    assert changed["automationFlow"]["name"] == "Welcome, v2"
    again = await state(client, "activateAutomationFlow", flow["id"])
    assert again["automationFlow"]["versions"] == [{"number": 1}, {"number": 2}]
    again = await state(client, "activateAutomationFlow", flow["id"])
    assert again["automationFlow"]["versions"] == [{"number": 1}, {"number": 2}]

    paused = await state(client, "pauseAutomationFlow", flow["id"])
    assert paused["automationFlow"]["status"] == "PAUSED"
    assert (await state(client, "pauseAutomationFlow", flow["id"]))["errors"] == [{"field": "id", "code": "INVALID_STATE"}]
    stale = await client.execute(UPDATE, {"id": flow["id"], "input": {"name": "x"}, "expectedVersion": 1})
    assert stale["updateAutomationFlow"]["errors"][0]["code"] == "VERSION_CONFLICT"

    archived = await state(client, "archiveAutomationFlow", flow["id"])
    assert archived["automationFlow"]["status"] == "ARCHIVED"
    assert (await state(client, "activateAutomationFlow", flow["id"]))["errors"] == [{"field": "id", "code": "INVALID_STATE"}]
    refused = await client.execute(UPDATE, {"id": flow["id"], "input": {"name": "Back"}})
    assert refused["updateAutomationFlow"]["errors"][0]["code"] == "INVALID_STATE"
    counts = await client.execute("""{ archived: automationFlows(filter: {status: {eq: ARCHIVED}}) { totalCount }
                                       active: automationFlows(filter: {status: {eq: ACTIVE}}) { totalCount } }""")
    assert counts == {"archived": {"totalCount": 1}, "active": {"totalCount": 0}}


async def test_an_event_flow_enrols_a_new_customer_once_and_runs_its_steps(client, db):
    flow = await create_flow(client, WELCOME)
    await state(client, "activateAutomationFlow", flow["id"])
    events = EventLog(client.app)
    ana = (await client.mutate(CUSTOMER, {"input": {"kind": "PERSON", "firstName": "Ana", "lastName": "Lima"}}))["customer"]

    await events.deliver()  # customer.created reaches the flow: Ana is enrolled ...
    runtime = engine.runtime_of(client.app.state.settings, client.app.state.plugins)
    (created,) = await events.all("customer.created")
    assert await engine.handle_event(db, runtime, created) == 0  # ... and a second delivery enrols nobody
    ran = await engine.drain(db, runtime)
    assert (ran.steps, ran.finished, ran.failed) == (2, 1, 0)
    await events.deliver()
    assert await engine.handle_event(db, runtime, created) == 0  # not even once she has finished

    seen = await client.execute("""query($id: ID!) { node(id: $id) { ... on Customer {
        tags activities { edges { node { type subject assignee } } } } } }""", {"id": ana["id"]})
    assert seen["node"]["tags"] == ["welcomed"]
    assert [e["node"] for e in seen["node"]["activities"]["edges"]] == [
        {"type": "TASK", "subject": "Call Ana Lima", "assignee": "admin@example.com"}]

    shown = (await client.execute(FLOW, {"id": flow["id"]}))["automationFlow"]
    assert shown["stats"] == {
        "enrolled": 1, "active": 0, "completed": 1, "converted": 0, "failed": 0,
        "steps": [{"key": "tag", "entered": 1, "waiting": 0, "completed": 1, "skipped": 0, "failed": 0},
                  {"key": "call", "entered": 1, "waiting": 0, "completed": 1, "skipped": 0, "failed": 0}],
    }
    log = await client.execute("""query($id: ID!) { automationFlow(id: $id) { enrolments { totalCount edges { node {
        status customer { id } log { stepKey outcome } } } } } }""", {"id": flow["id"]})
    (enrolment,) = [e["node"] for e in log["automationFlow"]["enrolments"]["edges"]]
    assert (enrolment["status"], enrolment["customer"]) == ("COMPLETED", {"id": ana["id"]})
    assert [(r["stepKey"], r["outcome"]) for r in enrolment["log"]] == [
        ("tag", "ENTERED"), ("tag", "COMPLETED"), ("call", "ENTERED"), ("call", "COMPLETED")]

    # What the flow would do: Ana was enrolled once already; for Bo it says step by step.
    said = (await client.execute(SIMULATE, {"flow": flow["id"], "customer": ana["id"]}))["simulateFlow"]
    assert said["errors"] == [] and said["simulation"]["wouldEnrol"] is False
    assert "once" in said["simulation"]["reason"]
    bo = (await client.mutate(CUSTOMER, {"input": {"kind": "PERSON", "firstName": "Bo", "lastName": "Berg"}}))["customer"]
    said = (await client.execute(SIMULATE, {"flow": flow["id"], "customer": bo["id"]}))["simulateFlow"]["simulation"]
    assert (said["wouldEnrol"], said["version"]) == (True, 1)
    assert [(s["key"], s["outcome"], s["explanation"]) for s in said["steps"]] == [
        ("tag", "WOULD_RUN", "would add the tags welcomed"),
        ("call", "WOULD_RUN", "would create the task 'Call {{ customer.display_name }}' for the customer's owner"),
    ]
    missing = (await client.execute(SIMULATE, {"flow": flow["id"], "customer": "Q3VzdG9tZXI6OTk5OTk"}))["simulateFlow"]
    assert missing["simulation"] is None and missing["errors"][0]["code"] == "NOT_FOUND"


async def test_segment_ids_in_a_definition_are_global_ids(client):
    segment = (await client.mutate("""mutation { createSegment(input: {name: "VIP", kind: STATIC}) {
        segment { id } errors { code } } }"""))["segment"]
    flow = await create_flow(client, {
        "name": "VIP welcome", "trigger": {"kind": "SEGMENT_ENTERED", "segmentId": segment["id"]},
        "steps": [{"key": "tag", "type": "ACTION", "action": "update_customer", "params": {"addTags": ["vip"]}}],
        "enrolmentRule": {"suppressionSegmentIds": [segment["id"]], "reenrolAfterDays": 30},
    })
    assert flow["trigger"]["segmentId"] == segment["id"]
    assert flow["enrolmentRule"]["suppressionSegmentIds"] == [segment["id"]]


async def test_a_customer_time_zone_is_an_iana_name(client):
    bad = (await client.execute(CUSTOMER, {"input": {"kind": "PERSON", "firstName": "Cy", "timeZone": "Europe/Atlantis"}}))
    assert [(e["field"], e["code"]) for e in bad["createCustomer"]["errors"]] == [("timeZone", "INVALID_VALUE")]
    good = (await client.mutate(CUSTOMER, {"input": {"kind": "PERSON", "firstName": "Cy", "timeZone": "Europe/Lisbon"}}))
    assert good["customer"]["timeZone"] == "Europe/Lisbon"


async def test_read_only_users_see_flows_but_cannot_change_them(client, settings, db):
    flow = await create_flow(client, WELCOME)
    token, _ = await make_key(db, settings, role="READ_ONLY", email="reader@example.com")
    app = create_app(settings, db=db, dispatcher=False, jobs=False)
    async with asgi_client(app, token) as http:
        reader = GraphQLClient(http, app)
        body = await reader.post(CREATE, {"input": WELCOME})
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        body = await reader.post(STATE % "activateAutomationFlow", {"id": flow["id"]})
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        seen = await reader.execute("{ automationFlows { totalCount edges { node { id name } } } }")
    assert seen["automationFlows"] == {"totalCount": 1, "edges": [{"node": {"id": flow["id"], "name": WELCOME["name"]}}]}
    assert isinstance(http, httpx.AsyncClient)
