"""The whole sales flow through GraphQL: pipeline, opportunity, move, quote, accept, order, payment,
customer statistics and the pipeline summary."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_graph.core.clock import frozen_clock
from tests.sales.conftest import (
    ACCEPT_QUOTE,
    CREATE_PIPELINE,
    CREATE_QUOTE,
    MOVE,
    RECORD_PAYMENT,
    SEND_QUOTE,
    money,
)

STATS = """
query($id: ID!) {
  customer(id: $id) {
    stats { orderCount totalSpent { amount currency } averageOrderValue { amount currency } firstOrderAt lastOrderAt currency }
    orders(first: 5) { totalCount edges { node { number status paymentStatus } } }
    opportunities(first: 5) { totalCount edges { node { title status } } }
    quotes(first: 5) { totalCount edges { node { number status } } }
  }
}
"""
SUMMARY = """
query($id: ID!) {
  pipelineSummary(pipelineId: $id) {
    currency openCount wonCount lostCount winRate averageDaysToWin
    stages { stage { name } count amount { amount } weightedAmount { amount } }
    wonAmount { amount currency }
  }
}
"""


async def test_pipeline_to_paid_order_end_to_end(client, sales):
    with frozen_clock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)) as clock:
        pipeline = (
            await client.mutate(
                CREATE_PIPELINE,
                {"input": {"name": "Enterprise", "stages": [
                    {"name": "Discovery", "probability": 20},
                    {"name": "Proposal", "probability": 60},
                    {"name": "Closed won", "kind": "WON"},
                    {"name": "Closed lost", "kind": "LOST"},
                ]}},
            )
        )["pipeline"]
        proposal = pipeline["stages"][1]["id"]
        customer = await sales.customer(
            "Blue Harbor Foods",
            addresses=[{"line1": "1 Quay Road", "city": "Bristol", "country": "GB"}],
        )
        licence = await sales.product("LIC-100", "1200.00", "GBP", name="Licence")
        support = await sales.product("SUP-1", "250.00", "GBP", name="Support")
        opportunity = await sales.opportunity(
            customer, title="Rollout", pipelineId=pipeline["id"], expectedCloseDate="2026-04-30",
            lineItems=[
                {"productId": licence["id"], "quantity": "3", "discountPercent": "10"},
                {"productId": support["id"]},
            ],
        )
        assert opportunity["stage"]["name"] == "Discovery"
        assert opportunity["amount"] == money("3490.00", "GBP")  # 3 x 1200 - 10% + 250
        assert opportunity["weightedAmount"] == money("698.00", "GBP")

        clock.advance(days=5)
        moved = (await client.mutate(MOVE, {"id": opportunity["id"], "stageId": proposal, "v": opportunity["version"]}))["opportunity"]
        assert moved["stage"]["name"] == "Proposal"
        assert moved["probability"] == 60
        assert [h["stage"]["name"] for h in moved["stageHistory"]] == ["Discovery", "Proposal"]
        assert moved["stageHistory"][0]["secondsInStage"] == 5 * 86400

        quote = (await client.mutate(CREATE_QUOTE, {"input": {"opportunityId": opportunity["id"], "taxRate": "20"}}))["quote"]
        assert quote["number"] == "Q-2026-0001"
        assert quote["status"] == "DRAFT"
        assert quote["total"] == money("4188.00", "GBP")
        assert quote["billingAddress"] == {"line1": "1 Quay Road", "city": "Bristol", "country": "GB"}
        await client.mutate(SEND_QUOTE, {"id": quote["id"]})

        clock.advance(days=2)
        accepted = await client.mutate(ACCEPT_QUOTE, {"id": quote["id"]})
        order = accepted["order"]
        assert accepted["quote"]["status"] == "ACCEPTED"
        assert accepted["quote"]["opportunity"]["status"] == "WON"
        assert order["origin"] == "QUOTE"
        assert order["total"] == money("4188.00", "GBP")
        assert [li["sku"] for li in order["lineItems"]] == ["LIC-100", "SUP-1"]
        assert order["paymentStatus"] == "UNPAID"

        paid = await client.mutate(
            RECORD_PAYMENT, {"input": {"orderId": order["id"], "amount": money("4188.00", "GBP")}}
        )
        assert paid["order"]["paymentStatus"] == "PAID"
        assert paid["order"]["balanceDue"] == money("0.00", "GBP")

        data = await client.execute(STATS, {"id": customer})
        stats = data["customer"]["stats"]
        assert stats["orderCount"] == 1
        assert stats["totalSpent"] == money("4188.00", "GBP")
        assert stats["averageOrderValue"] == money("4188.00", "GBP")
        assert stats["firstOrderAt"] == stats["lastOrderAt"] == "2026-03-09T09:00:00+00:00"
        assert data["customer"]["opportunities"]["totalCount"] == 1
        assert data["customer"]["quotes"]["edges"][0]["node"] == {"number": "Q-2026-0001", "status": "ACCEPTED"}
        assert data["customer"]["orders"]["edges"][0]["node"]["paymentStatus"] == "PAID"

        summary = (await client.execute(SUMMARY, {"id": pipeline["id"]}))["pipelineSummary"]
        assert summary["currency"] == "GBP"
        assert (summary["openCount"], summary["wonCount"], summary["lostCount"]) == (0, 1, 0)
        assert summary["winRate"] == 1.0
        assert summary["averageDaysToWin"] == 7.0
        assert summary["wonAmount"] == money("3490.00", "GBP")
        assert [s["stage"]["name"] for s in summary["stages"]] == ["Discovery", "Proposal", "Closed won", "Closed lost"]
