"""The pipeline summary and customer statistics, as a manager and an analyst read them."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_graph.core.clock import frozen_clock
from tests.sales.conftest import (
    CREATE_ORDER,
    LOSE,
    MOVE,
    ORDER_STATUS,
    RECORD_PAYMENT,
    WIN,
    money,
)

SUMMARY = """
query($from: Date, $to: Date, $currency: String) {
  pipelineSummary(from: $from, to: $to, currency: $currency) {
    currency currencies from to openCount wonCount lostCount winRate averageDaysToWin
    openAmount { amount } weightedForecast { amount } wonAmount { amount }
    stages { stage { name } count amount { amount currency } weightedAmount { amount } }
    months { month count amount { amount } weightedAmount { amount } }
  }
}
"""
STATS = """
query($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on Customer {
      displayName
      stats {
        orderCount firstOrderAt lastOrderAt currency
        totalSpent { amount currency } averageOrderValue { amount currency }
        byCurrency { currency orderCount totalSpent { amount } averageOrderValue { amount } }
      }
    }
  }
}
"""


def _by_stage(summary):
    return {s["stage"]["name"]: (s["count"], s["amount"]["amount"], s["weightedAmount"]["amount"]) for s in summary["stages"]}


async def test_pipeline_summary_forecast_funnel_and_win_rate(client, sales):
    customer = await sales.customer()
    with frozen_clock(datetime(2026, 1, 5, 9, tzinfo=UTC)) as clock:
        a = await sales.opportunity(customer, title="A", amount=money("1000"), expectedCloseDate="2026-02-10")
        b = await sales.opportunity(customer, title="B", amount=money("3000"), expectedCloseDate="2026-02-20")
        c = await sales.opportunity(customer, title="C", amount=money("500"), expectedCloseDate="2026-03-05", probability=80)
        won1 = await sales.opportunity(customer, title="W1", amount=money("2000"))
        won2 = await sales.opportunity(customer, title="W2", amount=money("400"))
        lost = await sales.opportunity(customer, title="L", amount=money("700"))
        await sales.opportunity(customer, title="Dollars", amount=money("999", "USD"), expectedCloseDate="2026-02-01")
        await client.mutate(MOVE, {"id": b["id"], "stageId": await sales.stage("Negotiation")})
        clock.advance(days=10)
        await client.mutate(WIN, {"id": won1["id"]})
        clock.advance(days=10)
        await client.mutate(WIN, {"id": won2["id"]})
        await client.mutate(LOSE, {"id": lost["id"]})
        del a, c

        summary = (await client.execute(SUMMARY))["pipelineSummary"]
    assert summary["currency"] == "EUR"
    assert summary["currencies"] == ["EUR", "USD"]
    assert (summary["openCount"], summary["wonCount"], summary["lostCount"]) == (3, 2, 1)
    stages = _by_stage(summary)
    assert stages["Qualification"] == (2, "1500.00", "500.00")  # 1000 x 10% + 500 x 80% (set by hand)
    assert stages["Negotiation"] == (1, "3000.00", "2250.00")
    assert stages["Won"] == (2, "2400.00", "2400.00")
    assert stages["Lost"] == (1, "700.00", "0.00")
    assert stages["Proposal"] == (0, "0.00", "0.00")
    assert summary["openAmount"] == {"amount": "4500.00"}
    assert summary["weightedForecast"] == {"amount": "2750.00"}
    assert summary["months"] == [
        {"month": "2026-02", "count": 2, "amount": {"amount": "4000.00"}, "weightedAmount": {"amount": "2350.00"}},
        {"month": "2026-03", "count": 1, "amount": {"amount": "500.00"}, "weightedAmount": {"amount": "400.00"}},
    ]
    assert summary["winRate"] == 0.6667
    assert summary["averageDaysToWin"] == 15.0

    february = (await client.execute(SUMMARY, {"from": "2026-02-01", "to": "2026-02-28"}))["pipelineSummary"]
    assert (february["openCount"], february["wonCount"], february["lostCount"]) == (2, 0, 0)
    assert february["winRate"] is None
    january = (await client.execute(SUMMARY, {"from": "2026-01-01", "to": "2026-01-31"}))["pipelineSummary"]
    assert (january["openCount"], january["wonCount"], january["lostCount"]) == (0, 2, 1)
    dollars = (await client.execute(SUMMARY, {"currency": "usd"}))["pipelineSummary"]
    assert dollars["currency"] == "USD" and dollars["openCount"] == 1
    bad = await client.post(SUMMARY, {"currency": "DOLLARS"})
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_CURRENCY"


async def test_customer_stats_count_paid_or_fulfilled_orders_only(client, sales):
    ada, bob, cy = await sales.customer("Ada Ltd"), await sales.customer("Bob Ltd"), await sales.customer("Cy Ltd")

    async def order(customer, amount, currency="EUR", when="2026-01-10T08:00:00Z"):
        created = await client.mutate(CREATE_ORDER, {"input": {
            "customerId": customer, "orderedAt": when,
            "lineItems": [{"description": "Goods", "unitPrice": money(amount, currency)}]}})
        return created["order"]["id"]

    paid = await order(ada, "100.00", when="2026-01-10T08:00:00Z")
    await client.mutate(RECORD_PAYMENT, {"input": {"orderId": paid, "amount": money("100.00")}})
    fulfilled_unpaid = await order(ada, "50.00", when="2026-03-01T08:00:00Z")
    await client.mutate(ORDER_STATUS, {"id": fulfilled_unpaid, "status": "CONFIRMED"})
    await client.mutate(ORDER_STATUS, {"id": fulfilled_unpaid, "status": "FULFILLED"})
    await order(ada, "999.00", when="2026-04-01T08:00:00Z")  # pending and unpaid: not a purchase yet
    refunded = await order(ada, "70.00", when="2026-05-01T08:00:00Z")
    await client.mutate(RECORD_PAYMENT, {"input": {"orderId": refunded, "amount": money("70.00")}})
    await client.mutate(ORDER_STATUS, {"id": refunded, "status": "REFUNDED"})
    dollars = await order(ada, "30.00", "USD", when="2026-06-01T08:00:00Z")
    await client.mutate(RECORD_PAYMENT, {"input": {"orderId": dollars, "amount": money("30.00", "USD")}})
    cancelled = await order(bob, "10.00")
    await client.mutate(ORDER_STATUS, {"id": cancelled, "status": "CANCELLED"})

    data = await client.execute(STATS, {"ids": [ada, bob, cy]})
    ada_stats, bob_stats, cy_stats = (n["stats"] for n in data["nodes"])
    assert ada_stats["orderCount"] == 3
    assert ada_stats["currency"] == "EUR"
    assert ada_stats["totalSpent"] == money("150.00")
    assert ada_stats["averageOrderValue"] == money("75.00")
    assert ada_stats["firstOrderAt"] == "2026-01-10T08:00:00+00:00"
    assert ada_stats["lastOrderAt"] == "2026-06-01T08:00:00+00:00"
    assert ada_stats["byCurrency"] == [
        {"currency": "EUR", "orderCount": 2, "totalSpent": {"amount": "150.00"}, "averageOrderValue": {"amount": "75.00"}},
        {"currency": "USD", "orderCount": 1, "totalSpent": {"amount": "30.00"}, "averageOrderValue": {"amount": "30.00"}},
    ]
    empty = {"orderCount": 0, "firstOrderAt": None, "lastOrderAt": None, "currency": None, "totalSpent": None,
             "averageOrderValue": None, "byCurrency": []}
    assert bob_stats == cy_stats == empty
