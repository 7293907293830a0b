"""SLA breaches: seen on read the moment they happen, stored once, and never undone."""

from __future__ import annotations

from crm_graph.core.actor import SYSTEM
from crm_graph.core.clock import utcnow
from crm_graph.support.service import check_sla_breaches
from tests.support.conftest import (
    create_customer,
    create_policy,
    create_ticket,
    event_types,
    get_ticket,
    reply,
    set_status,
)

BREACHED = "{ tickets(filter: {slaBreached: true}) { totalCount edges { node { number } } } }"
NOT_BREACHED = "{ tickets(filter: {slaBreached: false}) { totalCount } }"


async def run_check(db) -> int:
    async with db.writer() as session, session.begin():
        return await check_sla_breaches(session, actor=SYSTEM, now=utcnow())


async def test_a_missed_first_response_shows_at_once_and_is_stored_once(client, db, clock):
    await create_policy(client, name="Chat", firstResponseMinutes=30, resolutionMinutes=240)
    customer = await create_customer(client)
    ticket = await create_ticket(client, customer["id"], channel="CHAT")
    other = await create_ticket(client, customer["id"], channel="CHAT", subject="Another question")

    clock.advance(minutes=29)
    await reply(client, other["id"])  # answered in time
    assert (await client.execute(BREACHED))["tickets"]["totalCount"] == 0

    clock.advance(minutes=2)  # 31 minutes after opening: no write happened, no check ran
    seen = await get_ticket(client, ticket["id"])
    assert seen["sla"]["firstResponseStatus"] == "BREACHED" and seen["sla"]["breached"] is True
    assert seen["sla"]["resolutionStatus"] == "PENDING"
    listed = (await client.execute(BREACHED))["tickets"]
    assert [e["node"]["number"] for e in listed["edges"]] == [ticket["number"]]
    assert (await client.execute(NOT_BREACHED))["tickets"]["totalCount"] == 1
    assert "ticket.sla_breached" not in await event_types(db)

    assert await run_check(db) == 1
    assert await run_check(db) == 0  # once per target
    assert (await event_types(db)).count("ticket.sla_breached") == 1

    # Answering late does not undo the breach.
    clock.advance(minutes=5)
    answered = (await reply(client, ticket["id"]))["ticket"]
    assert answered["status"] == "OPEN"
    assert answered["sla"]["firstRespondedAt"] is not None
    assert answered["sla"]["firstResponseStatus"] == "BREACHED"
    assert (await event_types(db)).count("ticket.sla_breached") == 1


async def test_a_late_write_stores_the_breach_without_the_periodic_check(client, db, clock):
    await create_policy(client, firstResponseMinutes=10, resolutionMinutes=60)
    customer = await create_customer(client)
    ticket = await create_ticket(client, customer["id"])

    clock.advance(minutes=61)
    resolved = await set_status(client, ticket["id"], "RESOLVED")
    # Resolving settles both targets, both too late: they stay breached although the ticket is resolved.
    assert resolved["sla"]["firstResponseStatus"] == "BREACHED"
    assert resolved["sla"]["resolutionStatus"] == "BREACHED"
    assert (await event_types(db)).count("ticket.sla_breached") == 2
    assert await run_check(db) == 0
    # Re-opening a ticket whose resolution target is breached keeps the due time and the breach.
    reopened = (await reply(client, ticket["id"], "It broke again", **{"from": "CUSTOMER"}))["ticket"]
    assert reopened["status"] == "OPEN" and reopened["resolvedAt"] is None
    assert reopened["sla"]["resolutionDueAt"] == ticket["sla"]["resolutionDueAt"]
    assert reopened["sla"]["resolutionStatus"] == "BREACHED"


async def test_time_spent_pending_does_not_breach_the_resolution_target(client, db, clock):
    await create_policy(client, firstResponseMinutes=10, resolutionMinutes=60)
    customer = await create_customer(client)
    ticket = await create_ticket(client, customer["id"])
    clock.advance(minutes=5)
    await reply(client, ticket["id"], "Which version do you use?")
    clock.advance(minutes=15)  # 40 minutes of the target are left
    await set_status(client, ticket["id"], "PENDING")

    clock.advance(days=3)
    assert await run_check(db) == 0
    waiting = await get_ticket(client, ticket["id"])
    assert waiting["status"] == "PENDING" and waiting["sla"]["resolutionStatus"] == "PENDING"

    resumed = (await reply(client, ticket["id"], "Version 2.1", **{"from": "CUSTOMER"}))["ticket"]
    assert resumed["status"] == "OPEN"
    clock.advance(minutes=39)
    assert (await get_ticket(client, ticket["id"]))["sla"]["resolutionStatus"] == "PENDING"
    clock.advance(minutes=2)
    assert (await get_ticket(client, ticket["id"]))["sla"]["resolutionStatus"] == "BREACHED"
    assert await run_check(db) == 1
    events = await event_types(db)
    assert events.count("ticket.sla_breached") == 1


async def test_a_ticket_without_a_matching_policy_has_no_targets(client, clock):
    await create_policy(client, name="Urgent only", priorities=["URGENT"], firstResponseMinutes=15, resolutionMinutes=60)
    customer = await create_customer(client)
    ticket = await create_ticket(client, customer["id"], priority="LOW")
    clock.advance(days=30)
    seen = await get_ticket(client, ticket["id"])
    assert seen["sla"] == {**seen["sla"], "policy": None, "firstResponseDueAt": None, "resolutionDueAt": None,
                           "firstResponseStatus": None, "resolutionStatus": None, "breached": False}
    assert (await client.execute(BREACHED))["tickets"]["totalCount"] == 0
