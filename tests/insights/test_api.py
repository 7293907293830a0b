"""The customer-value model through GraphQL on the demo data: the run, every buyer's figures,
a dynamic segment on them, statement counts, bad input, and who may see and do what."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm_graph.core import ids
from crm_graph.core.clock import utcnow
from crm_graph.customers.models import Customer
from crm_graph.sales.models import Order, OrderStatus, PaymentStatus
from crm_graph.seed import seed_demo
from crm_graph.testing.auth import make_key, share
from crm_graph.testing.client import GraphQLClient, asgi_client
from tests.segments.factories import customer, order

REFRESH = """
mutation($input: RefreshCustomerValueModelInput) { refreshCustomerValueModel(input: $input) {
  model { asOf timeUnit currency r alpha a b p q gamma logLikelihood customers repeatCustomers horizonDays discountRate }
  errors { field code message } } }
"""
MODEL = "{ customerValueModel { asOf timeUnit currency r alpha a b p q gamma logLikelihood customers repeatCustomers horizonDays discountRate } }"
PAGE = """
query($after: String, $filter: CustomerFilter) { customers(first: 100, after: $after, filter: $filter) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { node { id lifetimeValue { asOf frequency recencyDays ageDays probabilityAlive expectedPurchases
    in90: expectedPurchases(days: 90) clv { amount currency } clv90: clv(horizonDays: 90, discountRate: 0) { amount }
    averageSpend { amount } expectedSpend { amount } } } } } }
"""


async def all_customers(client: GraphQLClient, filter: dict[str, Any] | None = None) -> dict[int, Any]:
    out, after = {}, None
    while True:
        page = (await client.execute(PAGE, {"after": after, "filter": filter}))["customers"]
        for edge in page["edges"]:
            out[ids.decode_as(edge["node"]["id"], "Customer")] = edge["node"]["lifetimeValue"]
        if not page["pageInfo"]["hasNextPage"]:
            return out
        after = page["pageInfo"]["endCursor"]


async def purchase_days(db, currency: str) -> dict[int, set]:
    """Every live customer's purchase days, from the order rows and the rule written out again."""
    async with db.reader() as session:
        rows = (await session.execute(
            sa.select(Order.customer_id, Order.status, Order.payment_status, Order.currency, Order.ordered_at)
            .join(Customer, Customer.id == Order.customer_id).where(Customer.deleted_at.is_(None))
        )).all()
    days: dict[int, set] = defaultdict(set)
    for cid, status, payment, cur, at in rows:
        counted = status not in (OrderStatus.CANCELLED, OrderStatus.REFUNDED) and (
            payment is PaymentStatus.PAID or status is OrderStatus.FULFILLED)
        if counted and cur == currency:
            days[cid].add(at.astimezone(UTC).date())
    return days


async def test_demo_data_every_buyer_gets_a_value_and_a_segment_on_it_works(client, settings, db):
    await seed_demo(settings, count=120)
    model = (await client.mutate(REFRESH, {"input": {"timeUnit": "WEEK"}}))["model"]
    assert model == (await client.execute(MODEL))["customerValueModel"]
    assert model["asOf"] == utcnow().date().isoformat() and model["timeUnit"] == "WEEK"
    assert model["currency"] == "EUR"  # the currency of most demo orders; the others are not added in
    assert all(model[k] > 0 for k in ("r", "alpha", "a", "b", "p", "q", "gamma")) and model["logLikelihood"] < 0
    assert (model["horizonDays"], model["discountRate"]) == (365, 0.1)

    days = await purchase_days(db, "EUR")
    values = await all_customers(client)
    covered = {cid for cid, v in values.items() if v is not None}
    assert covered == set(days) and model["customers"] == len(days) > 40
    assert model["repeatCustomers"] == sum(1 for d in days.values() if len(d) > 1)
    for cid in covered:
        v = values[cid]
        first, last = min(days[cid]), max(days[cid])
        assert (v["frequency"], v["recencyDays"], v["ageDays"]) == (len(days[cid]) - 1, (last - first).days, (utcnow().date() - first).days)
        assert 0 < v["probabilityAlive"] <= 1 and v["expectedPurchases"] > v["in90"] > 0
        assert v["clv"]["currency"] == "EUR" and Decimal(v["clv"]["amount"]) > 0
        assert Decimal(v["clv90"]["amount"]) < Decimal(v["clv"]["amount"])
        assert (v["averageSpend"] is None) == (v["frequency"] == 0)

    # "Probably leaving, but worth a lot": thresholds that split the demo customers.
    alive = sorted(values[c]["probabilityAlive"] for c in covered)
    worth = sorted(Decimal(values[c]["clv"]["amount"]) for c in covered)
    p_cut, clv_cut = alive[len(alive) * 2 // 3], worth[len(worth) // 3]
    wanted = {c for c in covered if values[c]["probabilityAlive"] < p_cut and Decimal(values[c]["clv"]["amount"]) > clv_cut}
    assert 0 < len(wanted) < len(covered)
    condition = {"lifetimeValue": {"probabilityAlive": {"lt": str(p_cut)}, "clv": {"gt": str(clv_cut)}}}
    created = await client.mutate(
        "mutation($f: CustomerFilter) { createSegment(input: {name: \"Leaving, valuable\", kind: DYNAMIC, filter: $f}) "
        "{ segment { id size isValid } errors { field code message } } }", {"f": condition})
    assert created["segment"]["isValid"] and created["segment"]["size"] == len(wanted)
    assert set(await all_customers(client, condition)) == wanted
    # Customers the run does not cover have no figures: only isNull matches them.
    assert set(await all_customers(client, {"lifetimeValue": {"clv": {"isNull": True}}})) == set(values) - covered
    assert set(await all_customers(client, {"not": {"lifetimeValue": {"frequency": {"gte": 0}}}})) == set(values) - covered


async def test_a_page_of_values_costs_the_same_statements_whatever_its_size(client, settings, db, sql_counter):
    await seed_demo(settings, count=60)
    await client.mutate(REFRESH, {"input": {"timeUnit": "DAY"}})
    query = "query($n: Int) { customers(first: $n) { edges { node { id lifetimeValue { probabilityAlive " \
            "expectedPurchases(days: 30) clv(horizonDays: 180) { amount } } } } } }"
    await client.warm_up()
    counts = []
    for n in (3, 50):
        sql_counter.count = 0
        data = await client.execute(query, {"n": n})
        counts.append(sql_counter.count)
        assert len(data["customers"]["edges"]) == n
    assert counts[0] == counts[1]


async def _few(db, repeat_buyers: int) -> None:
    now = utcnow()
    async with db.writer() as session, session.begin():
        for i in range(repeat_buyers + 5):
            cid = await customer(session, lastName=f"F{i}")
            order(session, cid, "10", now - timedelta(days=40))
            if i < repeat_buyers:
                order(session, cid, "20", now - timedelta(days=10 + i))


async def errors(client: GraphQLClient, data: dict[str, Any]) -> list[tuple[str, str]]:
    payload = (await client.execute(REFRESH, {"input": data}))["refreshCustomerValueModel"]
    assert payload["model"] is None
    return [(e["field"], e["code"]) for e in payload["errors"]]


async def test_bad_input_gets_user_errors(client, db):
    tomorrow = (utcnow() + timedelta(days=1)).date().isoformat()
    assert await errors(client, {"asOf": tomorrow}) == [("asOf", "INVALID_VALUE")]
    assert await errors(client, {}) == [("asOf", "NO_ORDERS")]  # no orders at all
    await _few(db, repeat_buyers=3)
    assert await errors(client, {"asOf": "2020-01-01"}) == [("asOf", "NO_ORDERS")]  # before any order
    assert await errors(client, {}) == [("asOf", "NOT_ENOUGH_DATA")]
    assert await errors(client, {"currency": "XYZ"}) == [("currency", "INVALID_VALUE")]
    assert await errors(client, {"currency": "JPY"}) == [("currency", "NO_ORDERS")]
    assert (await client.execute(MODEL))["customerValueModel"] is None


async def test_bad_arguments_of_the_figures_are_clear_errors(client, db):
    await _few(db, repeat_buyers=25)
    await client.mutate(REFRESH, {"input": {}})
    for field, message in (("clv(horizonDays: 0) { amount }", "horizonDays"), ("clv(discountRate: -0.5) { amount }", "discountRate"),
                           ("expectedPurchases(days: 100000)", "days")):
        body = await client.post(f"{{ customers(first: 1) {{ edges {{ node {{ lifetimeValue {{ {field} }} }} }} }} }}")
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_REQUEST"] and message in body["errors"][0]["message"]


async def test_figures_follow_the_customers_visibility_and_refreshing_needs_the_permission(client, settings, db):
    await _few(db, repeat_buyers=25)
    await client.mutate(REFRESH, {"input": {}})
    rep_key, rep_id = await make_key(db, settings, role="SALES", email="rep@example.com")
    reader_key, _ = await make_key(db, settings, role="READ_ONLY", email="reader@example.com", team="South")
    async with db.writer() as session, session.begin():
        first = await session.scalar(sa.select(sa.func.min(Customer.id)))
        await session.execute(sa.update(Customer).values(owner_id=None, team_id=None))
        await session.execute(sa.update(Customer).where(Customer.id == first).values(owner_id=rep_id))
    await share(db, "PRIVATE", "customers")
    client.app.state.auth.forget_all()  # as setSharingDefault does in the process that made it
    everyone = {"lifetimeValue": {"probabilityAlive": {"gte": "0"}}}
    async with asgi_client(client.app, rep_key) as http:
        rep = GraphQLClient(http, client.app)
        assert set(await all_customers(rep, everyone)) == {first}
        assert (await rep.execute(MODEL))["customerValueModel"]["customers"] == 30  # the run covers everyone
        body = await rep.post(REFRESH, {"input": {}})
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await share(db, "PUBLIC_READ", "customers")
    client.app.state.auth.forget_all()
    async with asgi_client(client.app, reader_key) as http:
        reader = GraphQLClient(http, client.app)
        assert len(await all_customers(reader, everyone)) == 30
    # Without `insights:read` the figures are hidden too, though the customers are not.
    narrow_key, _ = await make_key(db, settings, role="SALES", email="rep@example.com", scopes=["customers:read"])
    async with asgi_client(client.app, narrow_key) as http:
        narrow = GraphQLClient(http, client.app)
        seen = await all_customers(narrow)
        assert len(seen) == 30 and set(seen.values()) == {None}
        assert await all_customers(narrow, everyone) == {}
        assert (await narrow.post(MODEL))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
