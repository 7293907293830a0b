"""Lifecycle stages from hand-built order histories, one customer per stage: the stage of each,
its figures, history and event; a pinned stage that runs leave alone until it is unpinned;
statement counts, errors and permissions."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from crm_graph.core import ids
from crm_graph.core.clock import frozen_clock
from crm_graph.core.events import OutboxEvent
from crm_graph.customers.models import Customer
from crm_graph.insights import jobs
from crm_graph.insights.config import InsightsSettings
from crm_graph.sales.models import OrderStatus, PaymentStatus
from crm_graph.testing.auth import make_key, share
from crm_graph.testing.client import GraphQLClient, asgi_client
from tests.segments.factories import customer, order

AS_OF = date(2026, 6, 30)
REFRESH = """mutation($input: RefreshLifecycleStagesInput) { refreshLifecycleStages(input: $input) {
  run { asOf windowDays churnedAfterDays trialOrders growthRatio declineRatio customers changed complete } errors { field code message } } }"""
PIN = """mutation($input: PinLifecycleStageInput!) { pinLifecycleStage(input: $input) {
  lifecycle { computedStage pinned pinnedBy pinNote } errors { field code message } } }"""
UNPIN = """mutation($input: UnpinLifecycleStageInput!) { unpinLifecycleStage(input: $input) {
  lifecycle { computedStage pinned } errors { field code message } } }"""
CUSTOMERS = """query($first: Int, $filter: CustomerFilter) { customers(first: $first, filter: $filter) { edges { node {
  id lifecycleStage lifecycle { computedStage pinned asOf orders volume { amount currency } previousVolume { amount }
    daysSinceLastOrder }
  lifecycleHistory(first: 5) { fromStage toStage source actor } } } } }"""


def at(days_before: int, total: str = "100") -> tuple[str, datetime]:
    day = AS_OF - timedelta(days=days_before)
    return total, datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


# Windows of 90 days: the latest is days 0-89 before AS_OF, the one before it days 90-179.
HISTORIES: dict[str, list[tuple[str, datetime]]] = {
    "Eve": [at(10, "20"), at(40, "15")],  # two small orders: still trying
    "Fred": [at(120), at(10), at(30), at(60)],  # 100 -> 300: growing fast (3x, at least 1.5x)
    "Stan": [at(90), at(150), at(20), at(60)],  # 200 -> 200: steady (day 90 is the earlier window's)
    "Dora": [at(95), at(120), at(170), at(30, "50")],  # 300 -> 50: falling (at most 0.67x)
    "Chad": [at(400), at(420), at(450), at(500)],  # nothing for 400 days: gone
}
EXPECTED = {"Eve": "EXPLORATION", "Fred": "FORMATION", "Stan": "STABILITY", "Dora": "DECLINE", "Chad": "CHURNED", "Lea": "LEAD"}


async def _histories(db) -> dict[str, int]:
    async with db.writer() as session, session.begin():
        people = {name: await customer(session, lastName=name) for name in (*HISTORIES, "Lea")}
        for name, orders in HISTORIES.items():
            for total, when in orders:
                order(session, people[name], total, when)
        # Orders that do not count: cancelled, unpaid and unfulfilled, after asOf.
        order(session, people["Dora"], "900", at(5)[1], status=OrderStatus.CANCELLED, payment=PaymentStatus.UNPAID)
        order(session, people["Dora"], "900", at(6)[1], status=OrderStatus.CONFIRMED, payment=PaymentStatus.UNPAID)
        order(session, people["Chad"], "900", at(-1)[1])
    return people


async def _by_name(client: GraphQLClient, people: dict[str, int], filter: dict[str, Any] | None = None) -> dict[str, Any]:
    names = {cid: name for name, cid in people.items()}
    data = await client.execute(CUSTOMERS, {"first": 100, "filter": filter})
    return {names[ids.decode_as(e["node"]["id"], "Customer")]: e["node"] for e in data["customers"]["edges"]}


async def _events(db) -> list[tuple[int, dict[str, Any]]]:
    async with db.reader() as session:
        rows = (await session.execute(sa.select(OutboxEvent.entity_id, OutboxEvent.payload)
                                      .where(OutboxEvent.type == "customer.lifecycle_changed").order_by(OutboxEvent.id))).all()
    return [(int(entity), payload["data"]) for entity, payload in rows]


async def test_each_stage_from_its_order_history(client, db):
    people = await _histories(db)
    run = (await client.mutate(REFRESH, {"input": {"asOf": AS_OF.isoformat()}}))["run"]
    assert run == {"asOf": "2026-06-30", "windowDays": 90, "churnedAfterDays": 365, "trialOrders": 2, "growthRatio": 1.5,
                   "declineRatio": 0.67, "customers": 5, "changed": 5, "complete": True}
    seen = await _by_name(client, people)
    assert {name: node["lifecycleStage"] for name, node in seen.items()} == EXPECTED
    stan = seen["Stan"]["lifecycle"]
    assert stan["computedStage"] == "STABILITY" and not stan["pinned"] and stan["asOf"] == "2026-06-30"
    assert (stan["orders"], stan["volume"], stan["previousVolume"], stan["daysSinceLastOrder"]) == (
        4, {"amount": "200.00", "currency": "EUR"}, {"amount": "200.00"}, 20)
    assert seen["Dora"]["lifecycle"]["volume"]["amount"] == "50.00" and seen["Dora"]["lifecycle"]["orders"] == 4
    assert seen["Chad"]["lifecycle"]["daysSinceLastOrder"] == 400
    assert seen["Lea"]["lifecycle"] is None and seen["Lea"]["lifecycleHistory"] == []
    (fred,) = seen["Fred"]["lifecycleHistory"]
    assert (fred["fromStage"], fred["toStage"], fred["source"]) == ("LEAD", "FORMATION", "RUN") and fred["actor"] != "system"
    events = await _events(db)
    assert sorted(cid for cid, _ in events) == sorted(people[n] for n in HISTORIES)
    assert {cid: (d["from"], d["to"], d["source"]) for cid, d in events}[people["Dora"]] == ("LEAD", "DECLINE", "RUN")
    # The stage is a condition of the customer filter.
    assert set(await _by_name(client, people, {"lifecycleStage": {"in": ["DECLINE", "CHURNED"]}})) == {"Dora", "Chad"}
    assert set(await _by_name(client, people, {"lifecycle": {"computedStage": {"isNull": True}}})) == {"Lea"}

    # The same run again changes nothing and announces nothing.
    again = (await client.mutate(REFRESH, {"input": {"asOf": AS_OF.isoformat()}}))["run"]
    assert again["changed"] == 0 and len(await _events(db)) == 5
    # A stage that moves with time: Eve buys a lot in the latest window.
    async with db.writer() as session, session.begin():
        for days in (3, 4, 5):
            order(session, people["Eve"], "200", at(days)[1])
    moved = (await client.mutate(REFRESH, {"input": {"asOf": AS_OF.isoformat()}}))["run"]
    assert moved["changed"] == 1
    eve = (await _by_name(client, people))["Eve"]
    assert eve["lifecycleStage"] == "FORMATION"
    assert [(h["fromStage"], h["toStage"], h["source"]) for h in eve["lifecycleHistory"]] == [
        ("EXPLORATION", "FORMATION", "RUN"), ("LEAD", "EXPLORATION", "RUN")]


async def test_a_pinned_stage_stays_until_it_is_unpinned(client, db):
    people = await _histories(db)
    await client.mutate(REFRESH, {"input": {"asOf": AS_OF.isoformat()}})
    eve = ids.encode("Customer", people["Eve"])
    pinned = (await client.mutate(PIN, {"input": {"customerId": eve, "stage": "STABILITY", "note": "Framework contract"}}))
    assert pinned["lifecycle"]["pinned"] and pinned["lifecycle"]["computedStage"] == "EXPLORATION"
    assert pinned["lifecycle"]["pinNote"] == "Framework contract" and pinned["lifecycle"]["pinnedBy"].startswith("api_key:")
    assert (await _by_name(client, people))["Eve"]["lifecycleStage"] == "STABILITY"
    assert set(await _by_name(client, people, {"lifecycle": {"pinned": True}})) == {"Eve"}
    # Runs keep computing the stage but leave the pinned one alone.
    async with db.writer() as session, session.begin():
        for days in (3, 4, 5):
            order(session, people["Eve"], "200", at(days)[1])
    run = (await client.mutate(REFRESH, {"input": {"asOf": AS_OF.isoformat()}}))["run"]
    assert run["changed"] == 0
    node = (await _by_name(client, people))["Eve"]
    assert node["lifecycleStage"] == "STABILITY" and node["lifecycle"]["computedStage"] == "FORMATION"
    # Unpinned: back to what the newest run computed.
    unpinned = await client.mutate(UNPIN, {"input": {"customerId": eve}})
    assert unpinned["lifecycle"] == {"computedStage": "FORMATION", "pinned": False}
    node = (await _by_name(client, people))["Eve"]
    assert node["lifecycleStage"] == "FORMATION"
    assert [(h["fromStage"], h["toStage"], h["source"]) for h in node["lifecycleHistory"]] == [
        ("STABILITY", "FORMATION", "UNPIN"), ("EXPLORATION", "STABILITY", "PIN"), ("LEAD", "EXPLORATION", "RUN")]
    mine = [(d["from"], d["to"], d["source"]) for cid, d in await _events(db) if cid == people["Eve"]]
    assert mine == [("LEAD", "EXPLORATION", "RUN"), ("EXPLORATION", "STABILITY", "PIN"), ("STABILITY", "FORMATION", "UNPIN")]

    # A customer nobody computed can be pinned too (a lead), and unpinning leaves the stage as it is.
    lea = ids.encode("Customer", people["Lea"])
    await client.mutate(PIN, {"input": {"customerId": lea, "stage": "EXPLORATION"}})
    assert (await client.mutate(UNPIN, {"input": {"customerId": lea}}))["lifecycle"] == {"computedStage": None, "pinned": False}
    assert (await _by_name(client, people))["Lea"]["lifecycleStage"] == "EXPLORATION"


async def test_bad_input_gets_user_errors(client, db):
    people = await _histories(db)

    async def errors(query: str, data: dict[str, Any]) -> list[tuple[str | None, str]]:
        (payload,) = (await client.execute(query, {"input": data})).values()
        return [(e["field"], e["code"]) for e in payload["errors"]]

    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert await errors(REFRESH, {"asOf": tomorrow}) == [("asOf", "INVALID_VALUE")]
    eve = ids.encode("Customer", people["Eve"])
    missing = ids.encode("Customer", 999999)
    assert await errors(PIN, {"customerId": missing, "stage": "DECLINE"}) == [("customerId", "NOT_FOUND")]
    assert await errors(PIN, {"customerId": eve, "stage": "DECLINE", "note": "x" * 501}) == [("note", "INVALID_VALUE")]
    assert await errors(UNPIN, {"customerId": eve}) == [("customerId", "INVALID_STATE")]
    body = await client.post(PIN, {"input": {"customerId": "not-an-id", "stage": "DECLINE"}})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ID"
    body = await client.post(CUSTOMERS.replace("first: 5", "first: 0"))
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_a_page_costs_the_same_statements_whatever_its_size_and_pinning_needs_the_permission(
        client, settings, db, sql_counter):
    people = await _histories(db)
    await client.mutate(REFRESH, {"input": {"asOf": AS_OF.isoformat()}})
    await client.warm_up()
    counts = []
    for n in (2, 6):
        sql_counter.count = 0
        data = await client.execute(CUSTOMERS, {"first": n})
        assert len(data["customers"]["edges"]) == n
        counts.append(sql_counter.count)
    # the page, the states with their run rows, the history
    assert counts[0] == counts[1] == 3
    rep_key, _ = await make_key(db, settings, role="SALES", email="rep@example.com")
    async with asgi_client(client.app, rep_key) as http:
        rep = GraphQLClient(http, client.app)
        assert (await _by_name(rep, people))["Dora"]["lifecycle"]["computedStage"] == "DECLINE"
        body = await rep.post(PIN, {"input": {"customerId": ids.encode("Customer", people["Dora"]), "stage": "STABILITY"}})
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_run_changes_the_customers_its_caller_may_change_and_the_job_changes_everyone(client, settings, db):
    people = await _histories(db)
    manager_key, manager_id = await make_key(db, settings, role="MANAGER", email="south@example.com", team="South")
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(Customer).values(owner_id=None, team_id=None))
        await session.execute(sa.update(Customer).where(Customer.id.in_([people["Dora"], people["Fred"]]))
                              .values(owner_id=manager_id))
    await share(db, "PRIVATE", "customers")
    client.app.state.auth.forget_all()
    async with asgi_client(client.app, manager_key) as http:
        manager = GraphQLClient(http, client.app)
        run = (await manager.mutate(REFRESH, {"input": {"asOf": AS_OF.isoformat()}}))["run"]
        assert (run["customers"], run["changed"], run["complete"]) == (2, 2, False)
    stages = {name: node["lifecycleStage"] for name, node in (await _by_name(client, people)).items()}
    assert stages == {**{name: "LEAD" for name in EXPECTED}, "Dora": "DECLINE", "Fred": "FORMATION"}
    # The scheduled job, as the system, covers everyone (its day: today).
    with frozen_clock(datetime(2026, 6, 30, 18, tzinfo=UTC)):
        assert (await jobs.run(db, InsightsSettings(job_interval=86400))).startswith("5 lifecycle stages (3 changed)")
        assert await jobs.run(db, InsightsSettings(job_interval=86400)) == "newest lifecycle run is fresh"
    assert {name: node["lifecycleStage"] for name, node in (await _by_name(client, people)).items()} == EXPECTED


async def test_two_runs_at_once_both_succeed_and_announce_each_change_once(client, db):
    people = await _histories(db)
    results = await asyncio.gather(*(client.execute(REFRESH, {"input": {"asOf": AS_OF.isoformat()}}) for _ in range(2)))
    runs = [r["refreshLifecycleStages"] for r in results]
    assert [r["errors"] for r in runs] == [[], []]
    assert sorted(r["run"]["changed"] for r in runs) == [0, 5]  # one after the other: the second finds nothing new
    assert sorted(cid for cid, _ in await _events(db)) == sorted(people[n] for n in HISTORIES)
