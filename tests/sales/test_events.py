"""Domain events reach the outbox in the transaction of the change, and only when it commits."""

from __future__ import annotations

import sqlalchemy as sa

from crm_graph.core.events import OutboxEvent
from tests.sales.conftest import (
    ACCEPT_QUOTE,
    CREATE_OPPORTUNITY,
    CREATE_QUOTE,
    LOSE,
    MOVE,
    RECORD_PAYMENT,
    SEND_QUOTE,
    UPSERT_ORDER,
    money,
)


async def _events(db) -> list[tuple[str, str]]:
    async with db.reader() as session:
        rows = await session.execute(sa.select(OutboxEvent.type, OutboxEvent.entity_type).order_by(OutboxEvent.id))
        return [(t, e) for t, e in rows.all() if e not in ("Customer",)]


async def test_the_sales_flow_records_its_events_in_order(client, sales, db):
    customer = await sales.customer()
    product = await sales.product("EV-1", "10.00")
    opportunity = await sales.opportunity(customer, lineItems=[{"productId": product["id"]}])
    await client.mutate(MOVE, {"id": opportunity["id"], "stageId": await sales.stage("Proposal")})
    quote = (await client.mutate(CREATE_QUOTE, {"input": {"opportunityId": opportunity["id"]}}))["quote"]
    await client.mutate(SEND_QUOTE, {"id": quote["id"]})
    order = (await client.mutate(ACCEPT_QUOTE, {"id": quote["id"]}))["order"]
    await client.mutate(RECORD_PAYMENT, {"input": {"orderId": order["id"], "amount": money("10.00")}})
    assert await _events(db) == [
        ("product.created", "Product"),
        ("opportunity.created", "Opportunity"),
        ("opportunity.stage_changed", "Opportunity"),
        ("quote.created", "Quote"),
        ("quote.sent", "Quote"),
        ("order.created", "Order"),
        ("opportunity.stage_changed", "Opportunity"),
        ("quote.accepted", "Quote"),
        ("opportunity.won", "Opportunity"),
        ("payment.recorded", "Payment"),
        ("order.paid", "Order"),
    ]


async def test_failed_mutations_write_nothing(client, sales, db):
    customer = await sales.customer()
    before = await _events(db)
    body = await client.execute(
        CREATE_OPPORTUNITY, {"input": {"title": "X", "customerId": customer, "lineItems": [{"productId": "UHJvZHVjdDo0Mg"}]}}
    )
    assert body["createOpportunity"]["errors"]
    opportunity = await sales.opportunity(customer, amount=money("5"))
    await client.mutate(LOSE, {"id": opportunity["id"]})
    body = await client.execute(
        UPSERT_ORDER,
        {"input": {"externalRef": {"system": "shop", "externalId": "1"}, "customerId": customer,
                   "lineItems": [{"description": "A", "unitPrice": money("1", "EUR")}, {"description": "B", "unitPrice": money("1", "GBP")}]}},
    )
    assert body["upsertOrder"]["errors"] and body["upsertOrder"]["order"] is None
    after = await _events(db)
    assert after[len(before):] == [
        ("opportunity.created", "Opportunity"),
        ("opportunity.stage_changed", "Opportunity"),
        ("opportunity.lost", "Opportunity"),
    ]
    orders = await client.execute("{ orders { totalCount } }")
    assert orders["orders"]["totalCount"] == 0
