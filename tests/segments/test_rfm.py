"""RFM scores, groups and value tiers equal an independent computation in plain Python."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from decimal import Decimal

from crm_graph.core.clock import frozen_clock
from crm_graph.sales.models import OrderStatus, PaymentStatus
from tests.segments.factories import NOW, TODAY, customer, days_ago, order

WINDOW = 365


def expected_group(r: int, f: int, m: int) -> str:
    """The rules of docs/segments.md, written out again independently of the code."""
    table = [
        ("CHAMPIONS", lambda: r == 5 and f in (4, 5)),
        ("LOYAL", lambda: r in (3, 4) and f in (4, 5)),
        ("POTENTIAL_LOYALIST", lambda: r in (4, 5) and f in (2, 3)),
        ("NEW", lambda: r == 5 and f == 1),
        ("PROMISING", lambda: r == 4 and f == 1),
        ("NEEDS_ATTENTION", lambda: r == 3 and f == 3),
        ("ABOUT_TO_SLEEP", lambda: r == 3 and f in (1, 2)),
        ("CANNOT_LOSE", lambda: r in (1, 2) and (f == 5 or m == 5)),
        ("AT_RISK", lambda: r in (1, 2) and f in (3, 4)),
        ("LOST", lambda: r == 1 and f == 1),
        ("HIBERNATING", lambda: True),
    ]
    return next(name for name, rule in table if rule())


def quintile(values: dict[int, object], better_is_larger: bool) -> dict[int, int]:
    """Score 1-5 from the rank among all: rank = 1 + how many are strictly worse."""
    n = len(values)
    out = {}
    for key, value in values.items():
        worse = sum(1 for other in values.values() if (other < value if better_is_larger else other > value))
        out[key] = 5 * worse // n + 1
    return out


async def _dataset(db) -> dict[int, list[tuple]]:
    rng = random.Random(11)
    orders: dict[int, list[tuple]] = {}
    async with db.writer() as session, session.begin():
        with frozen_clock(NOW):
            ids = [await customer(session, lastName=f"R{i:02d}") for i in range(45)]
        for cid in ids[:40]:
            rows = []
            for _ in range(rng.choice([1, 1, 2, 3, 5, 8])):
                at = days_ago(rng.randint(0, 500), hours=rng.randint(0, 23))
                total = Decimal(rng.choice([20, 50, 50, 120, 300, 999])) + Decimal(rng.randint(0, 99)) / 100
                kind = rng.random()
                if kind < 0.1:
                    status, payment, currency = OrderStatus.CANCELLED, PaymentStatus.UNPAID, "EUR"
                elif kind < 0.15:
                    status, payment, currency = OrderStatus.CONFIRMED, PaymentStatus.UNPAID, "EUR"
                elif kind < 0.2:
                    status, payment, currency = OrderStatus.FULFILLED, PaymentStatus.PAID, "USD"
                else:
                    status, payment, currency = rng.choice([(OrderStatus.FULFILLED, PaymentStatus.PAID),
                                                            (OrderStatus.CONFIRMED, PaymentStatus.PAID),
                                                            (OrderStatus.FULFILLED, PaymentStatus.UNPAID)]) + ("EUR",)
                order(session, cid, total, at, status=status, payment=payment, currency=currency)
                rows.append((at, total, status, payment, currency))
            orders[cid] = rows
    return orders


def _python_rfm(orders: dict[int, list[tuple]]):
    start = NOW.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1) - timedelta(days=WINDOW)
    end = start + timedelta(days=WINDOW)
    measured = {}
    ever_counted = set()
    for cid, rows in orders.items():
        counted = [(at, total, currency) for at, total, status, payment, currency in rows
                   if status not in (OrderStatus.CANCELLED, OrderStatus.REFUNDED)
                   and (payment is PaymentStatus.PAID or status is OrderStatus.FULFILLED)]
        if counted:
            ever_counted.add(cid)
        window = [(at, total) for at, total, currency in counted if currency == "EUR" and start <= at < end]
        if window:
            last = max(at for at, _ in window)
            measured[cid] = ((TODAY - last.date()).days, len(window), sum(t for _, t in window))
    r = quintile({c: -v[0] for c, v in measured.items()}, better_is_larger=True)
    f = quintile({c: v[1] for c, v in measured.items()}, better_is_larger=True)
    m = quintile({c: v[2] for c, v in measured.items()}, better_is_larger=True)
    ranked = sorted(measured, key=lambda c: (-measured[c][2], c))
    total = sum(v[2] for v in measured.values())
    tiers, running = {}, Decimal(0)
    for cid in ranked:
        before = running
        running += measured[cid][2]
        tiers[cid] = "KEY" if before * 5 < total * 4 else "ORDINARY" if before * 20 < total * 19 else "POTENTIAL"
    for cid in ever_counted - set(measured):
        tiers[cid] = "POTENTIAL"
    return measured, r, f, m, tiers, total


RFM = """
query { customers(first: 100, orderBy: [{field: DISPLAY_NAME}]) { edges { node { id displayName
  rfm { recencyDays frequency monetary { amount } recencyScore frequencyScore monetaryScore cell group valueTier } } } } }
"""
ANALYSIS = """
query($asOf: Date) { rfmAnalysis(asOf: $asOf) { run { currency customers revenue { amount currency } windowDays }
  groups { group customers revenue { amount } shareOfRevenue }
  grid { recencyScore frequencyScore customers averageMonetary { amount } } previousRun { asOf } movements { fromGroup toGroup customers } } }
"""


async def test_rfm_scores_groups_and_tiers_match_an_independent_computation(client, db):
    orders = await _dataset(db)
    measured, r, f, m, tiers, total = _python_rfm(orders)
    with frozen_clock(NOW):
        analysis = (await client.execute(ANALYSIS, {}))["rfmAnalysis"]
        data = await client.execute(RFM)
    assert analysis["run"]["currency"] == "EUR" and analysis["run"]["windowDays"] == WINDOW
    assert analysis["run"]["customers"] == len(measured)
    assert Decimal(analysis["run"]["revenue"]["amount"]) == total

    by_name = {e["node"]["displayName"]: e["node"] for e in data["customers"]["edges"]}
    name_of = {cid: f"R{i:02d}" for i, cid in enumerate(sorted(orders))}
    assert len(name_of) == 40
    groups = Counter()
    for cid, (days, freq, money) in measured.items():
        node = by_name[name_of[cid]]["rfm"]
        expected = (r[cid], f[cid], m[cid])
        assert (node["recencyDays"], node["frequency"], Decimal(node["monetary"]["amount"])) == (days, freq, money)
        assert (node["recencyScore"], node["frequencyScore"], node["monetaryScore"]) == expected, name_of[cid]
        assert node["cell"] == "".join(map(str, expected))
        assert node["group"] == expected_group(*expected)
        assert node["valueTier"] == tiers[cid]
        groups[node["group"]] += 1
    for cid in set(orders) - set(measured):
        node = by_name[name_of[cid]]["rfm"]
        assert node is None or (node["recencyScore"] is None and node["valueTier"] == tiers.get(cid)), name_of[cid]
    assert {g["group"]: g["customers"] for g in analysis["groups"] if g["customers"]} == dict(groups)
    assert sum(Decimal(g["shareOfRevenue"]) for g in analysis["groups"]) == Decimal("1.0000") or total == 0
    assert len(analysis["grid"]) == 25 and sum(c["customers"] for c in analysis["grid"]) == len(measured)
    assert analysis["previousRun"] is None


async def test_runs_are_stored_and_compared(client, db):
    async with db.writer() as session, session.begin():
        with frozen_clock(NOW):
            steady = await customer(session, lastName="Steady")
            fading = await customer(session, lastName="Fading")
            newbie = await customer(session, lastName="Newbie")
            await customer(session, lastName="Nobody")
        for days in (10, 20, 30, 40, 50, 70, 80):
            order(session, steady, "100", days_ago(days))
        order(session, fading, "100", days_ago(300))
        order(session, newbie, "50", days_ago(1))
    sixty_days_ago = (TODAY - timedelta(days=60)).isoformat()
    with frozen_clock(NOW):
        first = (await client.execute(ANALYSIS, {"asOf": sixty_days_ago}))["rfmAnalysis"]
        second = (await client.execute(ANALYSIS, {}))["rfmAnalysis"]
        again = (await client.execute(ANALYSIS, {}))["rfmAnalysis"]  # read back, not computed anew
    # Sixty days ago: Steady (R3 F3 M3) NEEDS_ATTENTION, Fading (R1 F1 M1) LOST.
    assert first["run"]["customers"] == 2
    assert {g["group"]: g["customers"] for g in first["groups"] if g["customers"]} == {"NEEDS_ATTENTION": 1, "LOST": 1}
    # Today a newer customer outranks Steady on recency: Steady (R2 F4 M4) is AT_RISK. Scores are relative.
    assert second["previousRun"] == {"asOf": sixty_days_ago}
    assert second["movements"] == [{"fromGroup": "NEEDS_ATTENTION", "toGroup": "AT_RISK", "customers": 1}]
    assert again == second

    data = await client.execute("""{ atRisk: customers(filter: {rfm: {group: {eq: AT_RISK}}}) { edges { node { displayName } } }
      key: customers(filter: {valueTier: {eq: KEY}}) { edges { node { displayName } } }
      recent: customers(filter: {rfm: {recencyScore: {gte: 4}}}) { edges { node { displayName } } }
      notKey: customers(filter: {valueTier: {neq: KEY}}, orderBy: [{field: DISPLAY_NAME}]) { edges { node { displayName } } }
      unscored: customers(filter: {rfm: {group: {isNull: true}}}) { edges { node { displayName } } } }""")
    assert [e["node"]["displayName"] for e in data["atRisk"]["edges"]] == ["Steady"]
    assert [e["node"]["displayName"] for e in data["key"]["edges"]] == ["Steady"]
    assert [e["node"]["displayName"] for e in data["recent"]["edges"]] == ["Newbie"]
    # A customer the run did not score has no tier and no group, like a missing value.
    assert [e["node"]["displayName"] for e in data["notKey"]["edges"]] == ["Fading", "Newbie", "Nobody"]
    assert [e["node"]["displayName"] for e in data["unscored"]["edges"]] == ["Nobody"]


async def test_value_concentration(client, db):
    async with db.writer() as session, session.begin():
        with frozen_clock(NOW):
            ids = [await customer(session, lastName=f"V{i}") for i in range(10)]
        # One whale brings 800 of 1000.
        order(session, ids[0], "800", days_ago(1))
        for cid in ids[1:]:
            order(session, cid, "22.22", days_ago(2))
        order(session, ids[9], "0.02", days_ago(3))
    with frozen_clock(NOW):
        data = (await client.execute("""{ valueConcentration { customers revenue { amount } topTenPercentShare: top10PercentShare
            top20PercentShare tiers { tier customers revenue { amount } shareOfRevenue } } }"""))["valueConcentration"]
    assert data["customers"] == 10 and Decimal(data["revenue"]["amount"]) == Decimal("1000.00")
    assert Decimal(data["topTenPercentShare"]) == Decimal("0.8")
    assert Decimal(data["top20PercentShare"]) == Decimal("0.8222")  # (800 + 22.24) / 1000
    tiers = {t["tier"]: t["customers"] for t in data["tiers"]}
    # The whale alone reaches 80%; the next 15% (to 95%) takes 7 more customers of 22.22.
    assert tiers == {"KEY": 1, "ORDINARY": 7, "POTENTIAL": 2}


async def test_bad_analysis_arguments(client):
    body = await client.post("{ rfmAnalysis(windowDays: 0) { run { currency } } }")
    assert "windowDays" in body["errors"][0]["message"]
    body = await client.post('{ valueConcentration(currency: "EURO") { customers } }')
    assert "currency" in body["errors"][0]["message"]
    assert (await client.execute("{ rfmAnalysis { run { currency } } }")) == {"rfmAnalysis": None}
