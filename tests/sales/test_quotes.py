"""Quotes through GraphQL: numbering, states, expiry, acceptance."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_graph.core.clock import frozen_clock
from tests.sales.conftest import (
    ACCEPT_QUOTE,
    CREATE_QUOTE,
    LOSE,
    SEND_QUOTE,
    codes,
    money,
)

REJECT = "mutation($id: ID!, $reason: String) { rejectQuote(id: $id, reason: $reason) { quote { status } errors { field code } } }"
LIST = """
query($filter: QuoteFilter) { quotes(filter: $filter) { totalCount edges { node { number status validUntil } } } }
"""


async def _opportunity(sales, **extra):
    customer = await sales.customer()
    product = await sales.product(extra.pop("sku", "Q-1"), "80.00")
    return await sales.opportunity(customer, lineItems=[{"productId": product["id"], "quantity": "5", "discountPercent": "10"}], **extra)


async def test_quote_copies_the_lines_and_computes_totals(client, sales):
    with frozen_clock(datetime(2026, 5, 4, 12, tzinfo=UTC)):
        opportunity = await _opportunity(sales)
        quote = (await client.mutate(CREATE_QUOTE, {"input": {"opportunityId": opportunity["id"], "taxRate": "19"}}))["quote"]
    assert quote["status"] == "DRAFT"
    assert quote["validUntil"] == "2026-06-03"
    assert quote["customerName"] == "Acme Trading"
    assert quote["currency"] == "EUR"
    assert quote["lineItems"][0]["sku"] == "Q-1"
    assert (quote["subtotal"], quote["discount"], quote["tax"], quote["total"]) == (
        money("400.00"), money("40.00"), money("68.40"), money("428.40"),
    )
    assert quote["taxRate"] == "19"


async def test_numbers_are_unique_and_restart_each_year(client, sales):
    opportunity = await _opportunity(sales)
    numbers = []
    for moment in (datetime(2026, 12, 30, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)):
        with frozen_clock(moment):
            quote = (await client.mutate(CREATE_QUOTE, {"input": {"opportunityId": opportunity["id"]}}))["quote"]
            numbers.append(quote["number"])
    assert numbers == ["Q-2026-0001", "Q-2026-0002", "Q-2027-0001"]


async def test_an_expired_quote_cannot_be_accepted(client, sales):
    with frozen_clock(datetime(2026, 5, 4, tzinfo=UTC)) as clock:
        opportunity = await _opportunity(sales)
        quote = (await client.mutate(CREATE_QUOTE, {"input": {"opportunityId": opportunity["id"], "validUntil": "2026-05-10"}}))["quote"]
        await client.mutate(SEND_QUOTE, {"id": quote["id"]})
        clock.advance(days=7)
        expired = await client.execute(LIST, {"filter": {"status": {"eq": "EXPIRED"}}})
        assert [e["node"]["number"] for e in expired["quotes"]["edges"]] == [quote["number"]]
        assert (await client.execute(LIST, {"filter": {"status": {"eq": "SENT"}}}))["quotes"]["totalCount"] == 0
        body = await client.execute(ACCEPT_QUOTE, {"id": quote["id"]})
        assert codes(body["acceptQuote"]) == {("id", "QUOTE_EXPIRED")}
        assert body["acceptQuote"]["order"] is None
        opportunity_now = await client.execute("query($id: ID!) { opportunity(id: $id) { status order { id } } }", {"id": opportunity["id"]})
        assert opportunity_now["opportunity"] == {"status": "OPEN", "order": None}
        past = await client.execute(CREATE_QUOTE, {"input": {"opportunityId": opportunity["id"], "validUntil": "2026-05-01"}})
        assert codes(past["createQuote"]) == {("validUntil", "OUT_OF_RANGE")}


async def test_accepting_needs_a_sent_quote_and_happens_once(client, sales):
    opportunity = await _opportunity(sales)
    quote = (await client.mutate(CREATE_QUOTE, {"input": {"opportunityId": opportunity["id"]}}))["quote"]
    draft = await client.execute(ACCEPT_QUOTE, {"id": quote["id"]})
    assert codes(draft["acceptQuote"]) == {("id", "INVALID_STATE")}
    await client.mutate(SEND_QUOTE, {"id": quote["id"]})
    first = await client.mutate(ACCEPT_QUOTE, {"id": quote["id"]})
    again = await client.mutate(ACCEPT_QUOTE, {"id": quote["id"]})
    assert again["order"]["id"] == first["order"]["id"]
    assert first["quote"]["order"]["id"] == first["order"]["id"]
    orders = await client.execute("{ orders { totalCount } }")
    assert orders["orders"]["totalCount"] == 1


async def test_rejecting_and_quoting_closed_opportunities(client, sales):
    opportunity = await _opportunity(sales)
    quote = (await client.mutate(CREATE_QUOTE, {"input": {"opportunityId": opportunity["id"]}}))["quote"]
    assert codes((await client.execute(REJECT, {"id": quote["id"]}))["rejectQuote"]) == {("id", "INVALID_STATE")}
    await client.mutate(SEND_QUOTE, {"id": quote["id"]})
    rejected = await client.mutate(REJECT, {"id": quote["id"], "reason": "Too expensive"})
    assert rejected["quote"]["status"] == "REJECTED"
    await client.mutate(LOSE, {"id": opportunity["id"]})
    body = await client.execute(CREATE_QUOTE, {"input": {"opportunityId": opportunity["id"]}})
    assert codes(body["createQuote"]) == {("opportunityId", "INVALID_STATE")}


async def test_an_opportunity_without_anything_to_sell_cannot_be_quoted(client, sales):
    customer = await sales.customer()
    empty = await sales.opportunity(customer, currency="EUR")
    body = await client.execute(CREATE_QUOTE, {"input": {"opportunityId": empty["id"]}})
    assert codes(body["createQuote"]) == {("opportunityId", "NOTHING_TO_QUOTE")}
