"""supportStats on a small, hand-computed data set: the same answers on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

from crm_graph.core.actor import SYSTEM
from crm_graph.customers import service as customers
from crm_graph.support import service
from tests.support.conftest import START

STATS = """
query($from: DateTime!, $to: DateTime!) {
  supportStats(from: $from, to: $to) {
    opened resolved openBacklog { priority count }
    firstResponseCompliance resolutionCompliance
    firstResponseTargets { met breached } resolutionTargets { met breached }
    firstResponseTime { count medianMinutes p90Minutes } resolutionTime { count medianMinutes p90Minutes }
    ratings csat averageRating satisfactionIndex
  }
}
"""

# (first response after, resolution after, rating, expectation), in minutes from opening; one ticket per hour.
RESOLVED = [(10, 60, 5, 4), (20, 120, 4, 4), (30, 240, 3, 4), (40, 360, 2, None), (100, 600, 5, 5)]


async def _build(db, clock) -> None:
    """Targets: first response 45 minutes, resolution 300 minutes, around the clock."""
    async with db.writer() as session, session.begin():
        await service.create_sla_policy(session, actor=SYSTEM, data={"name": "Default", "firstResponseMinutes": 45,
                                                                     "resolutionMinutes": 300})
        owner = await customers.create_customer(session, actor=SYSTEM, config=customers.ServiceConfig(),
                                                data={"kind": "PERSON", "lastName": "Rater"})

    async def at(moment: datetime, work):  # one transaction at a given time
        clock.current = moment
        async with db.writer() as session, session.begin():
            return await work(session)

    def open_ticket(priority: str):
        return lambda s: service.create_ticket(s, actor=SYSTEM, data={"customerId": owner.id, "subject": "Help",
                                                                      "channel": "EMAIL", "priority": priority})

    for i, (answer, solve, rating, expectation) in enumerate(RESOLVED):
        opened = START + timedelta(hours=i)
        ticket = await at(opened, open_ticket("HIGH"))
        await at(opened + timedelta(minutes=answer),
                 lambda s, t=ticket: service.reply_to_ticket(s, actor=SYSTEM, ticket_id=t.id, data={"body": "On it"}))
        await at(opened + timedelta(minutes=solve),
                 lambda s, t=ticket: service.change_ticket_status(s, actor=SYSTEM, ticket_id=t.id, status="RESOLVED",
                                                                  expected_version=None))
        await at(opened + timedelta(minutes=solve + 1),
                 lambda s, t=ticket, r=rating, e=expectation: service.rate_ticket(
                     s, actor=SYSTEM, ticket_id=t.id, data={"rating": r, "expectation": e}))
    # Never answered: both targets pass their due times while nobody looks.
    await at(START + timedelta(minutes=30), open_ticket("NORMAL"))
    # Answered after 5 minutes, then waiting for the customer: the resolution clock stands still.
    urgent = await at(START + timedelta(minutes=10), open_ticket("URGENT"))
    await at(START + timedelta(minutes=15),
             lambda s: service.reply_to_ticket(s, actor=SYSTEM, ticket_id=urgent.id, data={"body": "Which order?"}))
    await at(START + timedelta(minutes=16),
             lambda s: service.change_ticket_status(s, actor=SYSTEM, ticket_id=urgent.id, status="PENDING", expected_version=None))
    clock.current = START + timedelta(days=1)


async def stats(client, start: datetime, end: datetime) -> dict:
    data = await client.execute(STATS, {"from": start.isoformat(), "to": end.isoformat()})
    return data["supportStats"]


async def test_statistics_of_a_day(client, db, clock):
    await _build(db, clock)
    day = await stats(client, START, START + timedelta(days=1))
    assert (day["opened"], day["resolved"]) == (7, 5)
    assert {b["priority"]: b["count"] for b in day["openBacklog"]} == {"LOW": 0, "NORMAL": 1, "HIGH": 0, "URGENT": 1}
    # First response: met by the replies after 5, 10, 20, 30, 40 minutes; missed after 100 minutes and by the
    # unanswered ticket. Resolution: met after 60, 120, 240 minutes; missed after 360 and 600 and unanswered.
    assert day["firstResponseTargets"] == {"met": 5, "breached": 2}
    assert day["resolutionTargets"] == {"met": 3, "breached": 3}
    assert day["firstResponseCompliance"] == 71.43
    assert day["resolutionCompliance"] == 50.0
    # Six first responses: 5, 10, 20, 30, 40, 100. Median between the 3rd and 4th; p90 at rank 4.5 (0-based).
    assert day["firstResponseTime"] == {"count": 6, "medianMinutes": 25.0, "p90Minutes": 70.0}
    # Five resolutions: 60, 120, 240, 360, 600. p90 at rank 3.6: 360 + 0.6 x 240.
    assert day["resolutionTime"] == {"count": 5, "medianMinutes": 240.0, "p90Minutes": 504.0}
    # Ratings 5, 4, 3, 2, 5: three of five are 4 or 5. Indices 5/4, 4/4, 3/4, 5/5 (one rating has no expectation).
    assert (day["ratings"], day["csat"], day["averageRating"], day["satisfactionIndex"]) == (5, 60.0, 3.8, 1.0)


async def test_percentiles_interpolate_between_ranks(client, db, clock):
    await _build(db, clock)
    # The first three hours hold the first responses after 5, 10, 20 and 30 minutes.
    early = await stats(client, START, START + timedelta(hours=3))
    assert early["firstResponseTime"] == {"count": 4, "medianMinutes": 15.0, "p90Minutes": 27.0}
    # A period with nothing in it has counts of zero and no averages.
    empty = await stats(client, START - timedelta(days=7), START - timedelta(days=1))
    assert empty["opened"] == 0 and empty["firstResponseCompliance"] is None
    assert empty["firstResponseTime"] == {"count": 0, "medianMinutes": None, "p90Minutes": None}
    assert (empty["csat"], empty["averageRating"], empty["satisfactionIndex"]) == (None, None, None)


async def test_a_period_must_run_forward(client):
    body = await client.post(STATS, {"from": START.isoformat(), "to": START.isoformat()})
    assert body["errors"][0]["message"] == "`to` must be after `from`."
