"""Cross-sell rules on a hand-built basket set: support, confidence and lift against the same
figures counted here from the baskets, and each customer's recommendations with their reasons;
statement counts, bad input, and who may see them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import permutations
from typing import Any

import pytest
import sqlalchemy as sa

from crm_graph.core import ids
from crm_graph.customers.models import Customer
from crm_graph.sales.models import Order, OrderLineItem, OrderStatus, PaymentStatus, Product, ProductTag
from crm_graph.testing.auth import make_key, share
from crm_graph.testing.client import GraphQLClient, asgi_client
from tests.segments.factories import customer, order

AS_OF = date(2026, 6, 30)
# Who bought what in the window (each customer's products, over one or several orders).
BASKETS: dict[str, set[str]] = {
    "c1": {"beans", "grinder"}, "c2": {"beans", "grinder"}, "c3": {"beans", "grinder", "mugs"}, "c4": {"beans", "mugs"},
    "c5": {"grinder"}, "c6": {"mugs", "kettle"}, "c7": {"mugs", "kettle"}, "c8": {"kettle"},
    "c9": {"beans", "grinder", "kettle"}, "c10": {"grinder"},
}
PRICES = {"beans": "10.00", "grinder": "25.00", "mugs": "8.00", "kettle": "30.00", "filters": "3.00"}
TAGS = {"beans": ["coffee"], "grinder": ["coffee"], "kettle": ["tea"]}
REFRESH = """mutation($input: RefreshProductAssociationsInput) { refreshProductAssociations(input: $input) {
  run { asOf windowDays customers minSupportCount ruleCount } errors { field code message } } }"""
RULES = """{ productAssociationRun { customers rules(first: 100) { antecedent { sku } consequent { sku } both
  antecedentBuyers consequentBuyers support confidence lift } } }"""
RECOMMENDED = """query($first: Int) { customers(first: $first) { edges { node { id
  recommendations(first: 3) { product { sku } basedOn { sku } kind tag confidence lift support buyers reason } } } } }"""


def at(days_before: int) -> datetime:
    day = AS_OF - timedelta(days=days_before)
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


async def _world(db) -> dict[str, int]:
    async with db.writer() as session, session.begin():
        now = at(0)
        products = {}
        for sku, price in PRICES.items():
            row = Product(sku=sku, name=sku.capitalize(), description=None, unit_price=Decimal(price), currency="EUR",
                          active=sku != "filters", created_at=now, updated_at=now, version=1)
            session.add(row)
            await session.flush()
            products[sku] = row.id
            session.add_all([ProductTag(product_id=row.id, tag=tag) for tag in TAGS.get(sku, [])])
        people = {name: await customer(session, lastName=name) for name in BASKETS}

        async def bought(cid: int, skus: list[str], days: int, **kind: Any) -> None:
            row = order(session, cid, "1.00", at(days), **kind)
            await session.flush()
            for i, sku in enumerate(skus):
                price = Decimal(PRICES[sku])
                session.add(OrderLineItem(order_id=row.id, product_id=products[sku], sku=sku, position=i + 1,
                                          description=sku, quantity=Decimal(1), unit_price=price, discount_percent=Decimal(0),
                                          subtotal=price, discount=Decimal(0), total=price))

        for name, skus in BASKETS.items():
            ordered = sorted(skus)
            await bought(people[name], ordered[:1], 100)  # the first product in one order...
            if ordered[1:]:
                await bought(people[name], ordered[1:] + ordered[:1], 20)  # ...the rest (and it again) in another
        # What does not count: an order before the window, a cancelled one, one after asOf.
        await bought(people["c5"], ["mugs", "filters"], 400)
        await bought(people["c5"], ["kettle"], 10, status=OrderStatus.CANCELLED, payment=PaymentStatus.UNPAID)
        await bought(people["c8"], ["beans"], -1)
    return {**products, **people}


def by_hand() -> dict[tuple[str, str], tuple[int, float, float, float]]:
    """(both, support, confidence, lift) of every ordered pair, counted from BASKETS."""
    n = len(BASKETS)
    buyers = {sku: {c for c, b in BASKETS.items() if sku in b} for sku in PRICES}
    out = {}
    for x, y in permutations(PRICES, 2):
        both = len(buyers[x] & buyers[y])
        if both and buyers[x]:
            confidence = both / len(buyers[x])
            out[(x, y)] = (both, both / n, confidence, confidence / (len(buyers[y]) / n))
    return out


async def test_support_confidence_and_lift_match_the_baskets(client, db):
    await _world(db)
    run = (await client.mutate(REFRESH, {"input": {"asOf": AS_OF.isoformat(), "windowDays": 365}}))["run"]
    expected = {pair: f for pair, f in by_hand().items() if f[0] >= 2 and f[3] > 1 and f[2] >= 0.05}
    assert run == {"asOf": "2026-06-30", "windowDays": 365, "customers": 10, "minSupportCount": 2, "ruleCount": len(expected)}
    data = (await client.execute(RULES))["productAssociationRun"]
    got = {(r["antecedent"]["sku"], r["consequent"]["sku"]): (r["both"], r["support"], r["confidence"], r["lift"])
           for r in data["rules"]}
    assert set(got) == set(expected)
    for pair, (both, support, confidence, lift) in expected.items():
        assert got[pair][0] == both and got[pair][1:] == pytest.approx((support, confidence, lift)), pair
    # The same by hand, written out: 4 of the 5 buyers of beans bought a grinder, and 6 of the 10
    # customers bought one: confidence 0.8, lift 0.8 / 0.6.
    assert got[("beans", "grinder")] == (4, pytest.approx(0.4), pytest.approx(0.8), pytest.approx(4 / 3))
    assert ("beans", "mugs") not in got  # 2 of 5 beans buyers, as often as anyone buys mugs: lift 1, no rule
    assert ("grinder", "kettle") not in got  # bought together once: under the support count


async def test_each_customer_is_offered_what_buyers_like_them_bought(client, db, sql_counter):
    world = await _world(db)
    await client.mutate(REFRESH, {"input": {"asOf": AS_OF.isoformat()}})
    await client.warm_up()
    counts = []
    for n in (3, 10):
        sql_counter.count = 0
        data = await client.execute(RECOMMENDED, {"first": n})
        assert len(data["customers"]["edges"]) == n
        counts.append(sql_counter.count)
    # the page, the recommendations, the products they name
    assert counts[0] == counts[1] == 3
    names = {world[name]: name for name in BASKETS}
    offered = {names[ids.decode_as(e["node"]["id"], "Customer")]: e["node"]["recommendations"] for e in data["customers"]["edges"]}
    hand = by_hand()
    # c4 bought beans and mugs: a grinder (a pricier coffee product: up-sell), then a kettle.
    grinder, kettle = offered["c4"]
    assert (grinder["product"]["sku"], grinder["basedOn"]["sku"], grinder["kind"], grinder["tag"]) == ("grinder", "beans", "UP_SELL", "coffee")
    assert grinder["confidence"] == pytest.approx(hand[("beans", "grinder")][2]) and grinder["buyers"] == 5
    assert grinder["reason"] == "A step up from Beans (tag 'coffee'): bought by 80% of buyers of Beans, lift 1.3"
    assert (kettle["product"]["sku"], kettle["basedOn"]["sku"], kettle["kind"]) == ("kettle", "mugs", "CROSS_SELL")
    assert kettle["reason"] == f"Bought by {hand[('mugs', 'kettle')][2]:.0%} of buyers of Mugs, lift {hand[('mugs', 'kettle')][3]:.1f}"
    # c5 bought a grinder, and long ago mugs: beans (cheaper than the grinder: a cross-sell), and a
    # kettle from the mugs, though not in the window (the cancelled kettle was not bought).
    assert [(r["product"]["sku"], r["basedOn"]["sku"], r["kind"]) for r in offered["c5"]] == [
        ("beans", "grinder", "CROSS_SELL"), ("kettle", "mugs", "CROSS_SELL")]
    # Nothing they already bought: c1 has beans and a grinder, which lead only to each other.
    assert offered["c1"] == []
    assert [r["product"]["sku"] for r in offered["c9"]] == ["mugs"]
    for name, recommendations in offered.items():
        assert not {r["product"]["sku"] for r in recommendations} & BASKETS[name], name


async def test_bad_input_and_who_sees_recommendations(client, settings, db):
    world = await _world(db)

    async def errors(data: dict[str, Any]) -> list[tuple[str, str]]:
        payload = (await client.execute(REFRESH, {"input": data}))["refreshProductAssociations"]
        return [(e["field"], e["code"]) for e in payload["errors"]]

    assert await errors({"windowDays": 0}) == [("windowDays", "INVALID_VALUE")]
    assert await errors({"asOf": (datetime.now(UTC) + timedelta(days=1)).date().isoformat()}) == [("asOf", "INVALID_VALUE")]
    body = await client.post(RECOMMENDED.replace("recommendations(first: 3)", "recommendations(first: 101)"), {"first": 1})
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert (await client.execute("{ productAssociationRun { ruleCount } }"))["productAssociationRun"] is None
    await client.mutate(REFRESH, {"input": {"asOf": AS_OF.isoformat()}})

    # Without insights:read the recommendations are empty, though the customers are not.
    narrow_key, _ = await make_key(db, settings, role="SALES", email="rep@example.com", scopes=["customers:read", "products:read"])
    async with asgi_client(client.app, narrow_key) as http:
        narrow = GraphQLClient(http, client.app)
        data = await narrow.execute(RECOMMENDED, {"first": 20})
        assert len(data["customers"]["edges"]) == 10
        assert all(e["node"]["recommendations"] == [] for e in data["customers"]["edges"])
        assert (await narrow.post(REFRESH))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # A rep who sees only c4 sees only c4's recommendations.
    rep_key, rep_id = await make_key(db, settings, role="SALES", email="other@example.com")
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(Customer).values(owner_id=None, team_id=None))
        await session.execute(sa.update(Customer).where(Customer.id == world["c4"]).values(owner_id=rep_id))
    await share(db, "PRIVATE", "customers")
    client.app.state.auth.forget_all()
    async with asgi_client(client.app, rep_key) as http:
        rep = GraphQLClient(http, client.app)
        edges = (await rep.execute(RECOMMENDED, {"first": 20}))["customers"]["edges"]
        assert [ids.decode_as(e["node"]["id"], "Customer") for e in edges] == [world["c4"]]
        # Recommendations rest on the orders the reader may see: c4's are another team's.
        assert edges[0]["node"]["recommendations"] == []
        async with db.writer() as session, session.begin():
            await session.execute(sa.update(Order).where(Order.customer_id == world["c4"]).values(owner_id=rep_id))
        edges = (await rep.execute(RECOMMENDED, {"first": 20}))["customers"]["edges"]
        assert [r["product"]["sku"] for r in edges[0]["node"]["recommendations"]] == ["grinder", "kettle"]
