"""A ticket's whole life through GraphQL: opening with business-hours due times, the first
reply, waiting for the customer, the customer's answer, resolution, rating, statistics, closing."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tests.support.conftest import (
    CHANGE_STATUS,
    RATE,
    REPLY,
    START,
    create_customer,
    create_policy,
    create_ticket,
    event_types,
    get_ticket,
    reply,
    set_status,
)

BERLIN_WEEKDAYS = {"timeZone": "Europe/Berlin", "weekdays": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
                   "startTime": "09:00", "endTime": "17:00"}

STATS = """
query($from: DateTime!, $to: DateTime!) {
  supportStats(from: $from, to: $to) {
    from to opened resolved openBacklog { priority count }
    firstResponseCompliance resolutionCompliance
    firstResponseTargets { met breached compliance } resolutionTargets { met breached compliance }
    firstResponseTime { count medianMinutes p90Minutes } resolutionTime { count medianMinutes p90Minutes }
    ratings csat averageRating satisfactionIndex
  }
}
"""


def utc(*args: int) -> str:
    return datetime(*args, tzinfo=UTC).isoformat()


async def test_a_ticket_runs_from_opening_to_closing(client, db, clock):
    await create_policy(client, name="Office hours", firstResponseMinutes=60, resolutionMinutes=480,
                        businessHours=BERLIN_WEEKDAYS)
    customer = await create_customer(client, firstName="Grace", lastName="Hopper")

    # Friday 6 March, 16:30 in Berlin: half an hour of business time is left that day.
    clock.current = datetime(2026, 3, 6, 15, 30, tzinfo=UTC)
    ticket = await create_ticket(client, customer["id"], subject="Cannot log in", channel="WEB", priority="HIGH",
                                 tags=["Login", "web"])
    assert re.fullmatch(r"T-\d{6}", ticket["number"])
    assert ticket["status"] == "NEW"
    assert ticket["customer"]["displayName"] == "Grace Hopper"
    assert ticket["tags"] == ["login", "web"]
    sla = ticket["sla"]
    assert sla["policy"]["name"] == "Office hours"
    # 60 business minutes: 30 on Friday, 30 on Monday morning (09:30 Berlin = 08:30 UTC).
    assert sla["firstResponseDueAt"] == utc(2026, 3, 9, 8, 30)
    # 480 business minutes: 30 on Friday and 7.5 hours on Monday (16:30 Berlin).
    assert sla["resolutionDueAt"] == utc(2026, 3, 9, 15, 30)
    assert (sla["firstResponseStatus"], sla["resolutionStatus"], sla["breached"]) == ("PENDING", "PENDING", False)

    # Monday 09:10 Berlin: an internal note does not count as a response; the public reply does.
    clock.current = datetime(2026, 3, 9, 8, 5, tzinfo=UTC)
    note = await reply(client, ticket["id"], "Probably the SSO certificate.", public=False, author="Kim")
    assert note["ticket"]["status"] == "NEW" and note["ticket"]["sla"]["firstRespondedAt"] is None
    assert note["comment"]["public"] is False and note["comment"]["author"] == "Kim"
    clock.current = datetime(2026, 3, 9, 8, 10, tzinfo=UTC)
    answered = (await reply(client, ticket["id"], "Could you send a screenshot?", author="Kim"))["ticket"]
    assert answered["status"] == "OPEN"
    assert answered["sla"]["firstRespondedAt"] == utc(2026, 3, 9, 8, 10)
    assert answered["sla"]["firstResponseStatus"] == "MET"

    # Monday 10:00 Berlin: waiting for the customer. 6.5 business hours of resolution time are left.
    clock.current = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    pending = await set_status(client, ticket["id"], "PENDING")
    assert pending["sla"]["resolutionPausedAt"] == utc(2026, 3, 9, 9, 0)

    # Wednesday: the original due time (Monday 16:30) has long passed, but the clock stood still.
    clock.current = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
    waiting = await get_ticket(client, ticket["id"])
    assert waiting["sla"]["resolutionStatus"] == "PENDING" and waiting["sla"]["breached"] is False
    listed = await client.execute("{ tickets(filter: {slaBreached: true}) { totalCount } }")
    assert listed["tickets"]["totalCount"] == 0

    # The customer answers (Wednesday 10:00 Berlin): the ticket opens and the due time moves on.
    answer = await reply(client, ticket["id"], "Here it is.", **{"from": "CUSTOMER"})
    assert answer["comment"]["authorKind"] == "CUSTOMER" and answer["comment"]["author"] == "Grace Hopper"
    reopened = answer["ticket"]
    assert reopened["status"] == "OPEN"
    assert reopened["sla"]["resolutionPausedAt"] is None
    assert reopened["sla"]["resolutionDueAt"] == utc(2026, 3, 11, 15, 30)

    # Resolved at noon, within the moved target.
    clock.current = datetime(2026, 3, 11, 11, 0, tzinfo=UTC)
    resolved = await set_status(client, ticket["id"], "RESOLVED")
    assert resolved["resolvedAt"] == utc(2026, 3, 11, 11, 0)
    assert resolved["sla"]["resolvedAt"] == resolved["resolvedAt"]
    assert resolved["sla"]["resolutionStatus"] == "MET"

    rated = (await client.mutate(RATE, {"id": ticket["id"], "input": {"rating": 5, "expectation": 4, "comment": "Fast!"}}))["ticket"]
    assert rated["satisfaction"]["rating"] == 5
    assert rated["satisfaction"]["index"] == 1.25

    stats = (await client.execute(STATS, {"from": utc(2026, 3, 1), "to": utc(2026, 3, 15)}))["supportStats"]
    assert stats["opened"] == 1 and stats["resolved"] == 1
    assert stats["firstResponseCompliance"] == 100.0 and stats["resolutionCompliance"] == 100.0
    # Friday 15:30 UTC to Monday 08:10 UTC, and to Wednesday 11:00 UTC, in elapsed minutes.
    assert stats["firstResponseTime"] == {"count": 1, "medianMinutes": 3880.0, "p90Minutes": 3880.0}
    assert stats["resolutionTime"] == {"count": 1, "medianMinutes": 6930.0, "p90Minutes": 6930.0}
    assert (stats["ratings"], stats["csat"], stats["averageRating"], stats["satisfactionIndex"]) == (1, 100.0, 5.0, 1.25)
    assert {b["priority"]: b["count"] for b in stats["openBacklog"]} == {"LOW": 0, "NORMAL": 0, "HIGH": 0, "URGENT": 0}

    closed = await set_status(client, ticket["id"], "CLOSED")
    assert closed["status"] == "CLOSED" and closed["closedAt"] is not None

    # CLOSED is final: no replies, no way back; a late rating still replaces the earlier one.
    refused = (await client.execute(REPLY, {"id": ticket["id"], "input": {"body": "One more thing"}}))["replyToTicket"]
    assert [(e["field"], e["code"]) for e in refused["errors"]] == [("id", "TICKET_CLOSED")]
    assert refused["ticket"] is None
    back = (await client.execute(CHANGE_STATUS, {"id": ticket["id"], "status": "OPEN"}))["changeTicketStatus"]
    assert [(e["field"], e["code"]) for e in back["errors"]] == [("status", "INVALID_TRANSITION")]
    rerated = (await client.mutate(RATE, {"id": ticket["id"], "input": {"rating": 3}}))["ticket"]
    assert rerated["satisfaction"] == {**rerated["satisfaction"], "rating": 3, "expectation": None, "index": None}
    history = await client.execute(
        "query($id: ID!) { ticket(id: $id) { satisfactionHistory { rating expectation } comments { totalCount edges { node { body public authorKind } } } } }",
        {"id": ticket["id"]},
    )
    assert history["ticket"]["satisfactionHistory"] == [{"rating": 5, "expectation": 4}, {"rating": 3, "expectation": None}]
    thread = history["ticket"]["comments"]
    assert thread["totalCount"] == 3
    assert [e["node"]["body"] for e in thread["edges"]] == ["Probably the SSO certificate.", "Could you send a screenshot?", "Here it is."]

    assert await event_types(db) == [
        "ticket.created",
        "ticket.replied",  # the note
        "ticket.replied",
        "ticket.status_changed",  # NEW -> OPEN
        "ticket.status_changed",  # OPEN -> PENDING
        "ticket.replied",
        "ticket.status_changed",  # PENDING -> OPEN
        "ticket.status_changed",  # OPEN -> RESOLVED
        "ticket.resolved",
        "ticket.rated",
        "ticket.status_changed",  # RESOLVED -> CLOSED
        "ticket.rated",
    ]
    assert START < clock.current


async def test_ticket_opening_and_resolution_appear_on_the_customer_timeline(client):
    from tests.customers.test_schema import create

    customer = await create(client, kind="PERSON", lastName="Timeline")
    created = await client.mutate(
        'mutation($c: ID!) { createTicket(input: {customerId: $c, subject: "Printer on fire", channel: PHONE, priority: URGENT}) '
        "{ ticket { id number } errors { field code message } } }",
        {"c": customer["id"]},
    )
    ticket = created["ticket"]
    await client.mutate('mutation($id: ID!) { changeTicketStatus(id: $id, status: RESOLVED) { ticket { status } errors { field code message } } }',
                        {"id": ticket["id"]})
    data = await client.execute(
        "query($id: ID!) { customer(id: $id) { activities { edges { node { type subject } } } } }", {"id": customer["id"]}
    )
    subjects = [e["node"] for e in data["customer"]["activities"]["edges"]]
    assert {"type": "TICKET", "subject": f"{ticket['number']} resolved: Printer on fire"} in subjects
    assert {"type": "TICKET", "subject": f"{ticket['number']} opened: Printer on fire"} in subjects
    refused = await client.execute(
        'mutation($c: ID!) { logActivity(input: {customerId: $c, type: TICKET, subject: "fake"}) { errors { field code } } }',
        {"c": customer["id"]},
    )
    assert refused["logActivity"]["errors"] == [{"field": "type", "code": "INVALID_VALUE"}]
