"""Churn risk from hand-built stored runs: who is on the list and why, its order, the event raised
once per customer who newly becomes a risk, statement counts, errors and visibility."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm_graph.core import ids
from crm_graph.core.clock import utcnow
from crm_graph.core.events import OutboxEvent
from crm_graph.customers.models import Customer
from crm_graph.insights.models import CustomerValue, CustomerValueRun, TimeUnit
from crm_graph.segments.models import RfmRun, RfmScore
from crm_graph.testing.auth import make_key, share
from crm_graph.testing.client import GraphQLClient, asgi_client
from tests.segments.factories import customer

ASSESS = "mutation { assessChurnRisks { assessment { asOf previousAsOf raised stillAtRisk cleared } errors { field code message } } }"
RISKS = """
query($first: Int, $after: String) { churnRisks(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { node { customer { id displayName } recencyScore { before now drop } frequencyScore { before now drop }
    daysSinceLastOrder probabilityAlive monetary { amount currency } clv { amount currency } reasons asOf previousAsOf } } } }
"""


async def _rfm_run(session: Any, as_of: date, scores: dict[int, tuple[int, int, str]]) -> None:
    """A stored RFM run with the (recency score, frequency score, monetary) of each customer."""
    run = RfmRun(as_of=as_of, window_days=365, currency="EUR", customer_count=len(scores), revenue=Decimal(0), created_at=utcnow())
    session.add(run)
    await session.flush()
    for cid, (r, f, money) in scores.items():
        session.add(RfmScore(run_id=run.id, customer_id=cid, recency_days=(6 - r) * 30, frequency=f, monetary=Decimal(money),
                             recency_score=r, frequency_score=f, monetary_score=3))


async def _value_run(session: Any, alive: dict[int, float]) -> None:
    run = CustomerValueRun(as_of=utcnow().date(), time_unit=TimeUnit.WEEK, currency="EUR", customer_count=len(alive),
                           repeat_customers=len(alive), r=1, alpha=1, a=1, b=1, log_likelihood=-1, p=1, q=2, gamma=1,
                           spend_log_likelihood=-1, horizon_days=365, discount_rate=0.1, created_at=utcnow())
    session.add(run)
    await session.flush()
    for cid, p in alive.items():
        session.add(CustomerValue(run_id=run.id, customer_id=cid, frequency=3, recency_days=100, age_days=300,
                                  average_spend=Decimal(50), expected_spend=Decimal(50), probability_alive=p,
                                  expected_purchases=1.0, clv=Decimal(int(p * 1000))))


async def _people(db, *names: str) -> dict[str, int]:
    async with db.writer() as session, session.begin():
        return {name: await customer(session, lastName=name) for name in names}


async def _period(db, before: dict[int, tuple[int, int, str]], now: dict[int, tuple[int, int, str]],
                  alive: dict[int, float], day: date) -> None:
    async with db.writer() as session, session.begin():
        await _rfm_run(session, day - timedelta(days=30), before)
        await _rfm_run(session, day, now)
        await _value_run(session, alive)


async def _events(db) -> list[int]:
    async with db.reader() as session:
        rows = (await session.execute(sa.select(OutboxEvent.entity_id, OutboxEvent.payload)
                                      .where(OutboxEvent.type == "customer.churn_risk_raised").order_by(OutboxEvent.id))).all()
    return [int(entity) for entity, _ in rows]


def _listed(data: dict[str, Any]) -> list[int]:
    return [ids.decode_as(e["node"]["customer"]["id"], "Customer") for e in data["churnRisks"]["edges"]]


async def test_falling_scores_and_low_probability_alive_make_a_risk_ranked_by_revenue_with_one_event(client, db):
    c = await _people(db, "Ann", "Bob", "Cy", "Dee", "Eve", "Fay", "Gus")
    await _period(db, before={
        c["Ann"]: (5, 4, "500"), c["Bob"]: (4, 3, "900"), c["Cy"]: (5, 3, "700"), c["Dee"]: (4, 3, "800"),
        c["Eve"]: (5, 2, "600"), c["Fay"]: (5, 5, "990"),
    }, now={
        c["Ann"]: (3, 4, "450"),  # recency fell 2: at risk
        c["Bob"]: (3, 2, "850"),  # both fell 1: at risk, and worth more than Ann
        c["Cy"]: (3, 3, "650"),  # fell 2, but probably still alive
        c["Dee"]: (3, 3, "780"),  # fell 1 only
        c["Eve"]: (2, 3, "400"),  # recency fell 3, frequency rose
        c["Fay"]: (3, 4, "980"),  # would be at risk, but deleted
        c["Gus"]: (1, 1, "10"),  # not in the earlier run
    }, alive={c["Ann"]: 0.2, c["Bob"]: 0.3, c["Cy"]: 0.8, c["Dee"]: 0.1, c["Eve"]: 0.1, c["Fay"]: 0.1, c["Gus"]: 0.01},
        day=date(2026, 6, 30))
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(Customer).where(Customer.id == c["Fay"]).values(deleted_at=utcnow()))

    assessment = (await client.mutate(ASSESS))["assessment"]
    assert assessment == {"asOf": "2026-06-30", "previousAsOf": "2026-05-31", "raised": 2, "stillAtRisk": 0, "cleared": 0}
    data = await client.execute(RISKS)
    assert _listed(data) == [c["Bob"], c["Ann"]] and data["churnRisks"]["totalCount"] == 2
    bob = data["churnRisks"]["edges"][0]["node"]
    assert bob["recencyScore"] == {"before": 4, "now": 3, "drop": 1} and bob["frequencyScore"] == {"before": 3, "now": 2, "drop": 1}
    assert bob["probabilityAlive"] == 0.3 and bob["monetary"] == {"amount": "850.00", "currency": "EUR"}
    assert bob["clv"]["amount"] == "300.00" and bob["daysSinceLastOrder"] == 90
    assert bob["reasons"][0].startswith("Recency score fell from 4 to 3") and "30%" in bob["reasons"][2]
    assert sorted(await _events(db)) == sorted([c["Ann"], c["Bob"]])

    # Assessed again on the same runs: still at risk, no second event.
    again = (await client.mutate(ASSESS))["assessment"]
    assert (again["raised"], again["stillAtRisk"], again["cleared"]) == (0, 2, 0)
    assert len(await _events(db)) == 2

    # A month later: Ann still falling, Bob recovered, Cy now leaving.
    await _period(db, before={c["Ann"]: (3, 4, "450"), c["Bob"]: (3, 2, "850"), c["Cy"]: (3, 3, "650")},
                  now={c["Ann"]: (2, 3, "300"), c["Bob"]: (5, 3, "900"), c["Cy"]: (2, 2, "600")},
                  alive={c["Ann"]: 0.1, c["Bob"]: 0.9, c["Cy"]: 0.2}, day=date(2026, 7, 30))
    later = (await client.mutate(ASSESS))["assessment"]
    assert (later["raised"], later["stillAtRisk"], later["cleared"]) == (1, 1, 1)
    data = await client.execute(RISKS)
    assert _listed(data) == [c["Cy"], c["Ann"]]
    assert data["churnRisks"]["edges"][1]["node"]["monetary"]["amount"] == "300.00"  # Ann's figures refreshed
    assert (await _events(db))[2:] == [c["Cy"]]

    # Bob falls again: a new risk, a new event.
    await _period(db, before={c["Bob"]: (5, 3, "900")}, now={c["Bob"]: (3, 3, "700")}, alive={c["Bob"]: 0.2}, day=date(2026, 8, 29))
    last = (await client.mutate(ASSESS))["assessment"]
    assert (last["raised"], last["stillAtRisk"], last["cleared"]) == (1, 0, 2)
    assert _listed(await client.execute(RISKS)) == [c["Bob"]]
    assert (await _events(db))[3:] == [c["Bob"]]


async def test_pages_follow_the_ranking_and_cost_the_same_statements_whatever_their_size(client, db, sql_counter):
    people = await _people(db, *(f"P{i:02d}" for i in range(12)))
    cids = list(people.values())
    await _period(db, before={cid: (5, 4, "100") for cid in cids},
                  now={cid: (3, 4, str(100 + 10 * i)) for i, cid in enumerate(cids)},
                  alive={cid: 0.1 for cid in cids}, day=date(2026, 6, 30))
    await client.mutate(ASSESS)
    seen, after = [], None
    while True:
        page = (await client.execute(RISKS, {"first": 5, "after": after}))["churnRisks"]
        seen += [ids.decode_as(e["node"]["customer"]["id"], "Customer") for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == cids[::-1]  # most revenue first
    await client.warm_up()
    counts = []
    for n in (2, 12):
        sql_counter.count = 0
        data = await client.execute(RISKS, {"first": n})
        assert len(data["churnRisks"]["edges"]) == n
        counts.append(sql_counter.count)
    # the page, the count, the customers
    assert counts[0] == counts[1] == 3
    body = await client.post(RISKS, {"after": "bm90IGEgY3Vyc29y"})
    assert "Malformed cursor" in body["errors"][0]["message"]


async def test_assessing_needs_two_rfm_runs_and_a_value_run(client, db):
    def codes(payload: dict[str, Any]) -> list[tuple[str | None, str]]:
        assert payload["assessChurnRisks"]["assessment"] is None
        return [(e["field"], e["code"]) for e in payload["assessChurnRisks"]["errors"]]

    assert codes(await client.execute(ASSESS)) == [(None, "NO_RFM_RUNS")]
    c = await _people(db, "Ann")
    async with db.writer() as session, session.begin():
        await _rfm_run(session, date(2026, 6, 1), {c["Ann"]: (5, 5, "10")})
        await _rfm_run(session, date(2026, 6, 30), {c["Ann"]: (3, 3, "10")})
    assert codes(await client.execute(ASSESS)) == [(None, "NO_VALUE_MODEL")]


async def test_a_rep_sees_the_risks_of_their_customers_and_cannot_assess(client, settings, db):
    c = await _people(db, "Ann", "Bob")
    await _period(db, before={c["Ann"]: (5, 5, "10"), c["Bob"]: (5, 5, "20")},
                  now={c["Ann"]: (3, 4, "10"), c["Bob"]: (3, 4, "20")}, alive={c["Ann"]: 0.1, c["Bob"]: 0.1}, day=date(2026, 6, 30))
    await client.mutate(ASSESS)
    rep_key, rep_id = await make_key(db, settings, role="SALES", email="rep@example.com")
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(Customer).values(owner_id=None, team_id=None))
        await session.execute(sa.update(Customer).where(Customer.id == c["Ann"]).values(owner_id=rep_id))
    await share(db, "PRIVATE", "customers")
    client.app.state.auth.forget_all()
    async with asgi_client(client.app, rep_key) as http:
        rep = GraphQLClient(http, client.app)
        data = await rep.execute(RISKS)
        assert _listed(data) == [c["Ann"]] and data["churnRisks"]["totalCount"] == 1
        assert (await rep.post(ASSESS))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    narrow_key, _ = await make_key(db, settings, role="SALES", email="rep@example.com", scopes=["customers:read"])
    async with asgi_client(client.app, narrow_key) as http:
        assert (await GraphQLClient(http, client.app).post(RISKS))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
