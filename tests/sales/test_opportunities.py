"""Opportunities through GraphQL: amounts, probabilities, stages, winning and losing, lists."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_graph.core.clock import frozen_clock
from tests.sales.conftest import (
    CREATE_OPPORTUNITY,
    CREATE_PIPELINE,
    LOSE,
    MOVE,
    OPPORTUNITY_FIELDS,
    WIN,
    codes,
    money,
)

UPDATE = f"""
mutation($id: ID!, $input: UpdateOpportunityInput!, $v: Int) {{
  updateOpportunity(id: $id, input: $input, expectedVersion: $v) {{ opportunity {{ {OPPORTUNITY_FIELDS} }} errors {{ field code message }} }}
}}
"""
DELETE = "mutation($id: ID!) { deleteOpportunity(id: $id) { opportunity { id deletedAt } errors { code } } }"
RESTORE = "mutation($id: ID!) { restoreOpportunity(id: $id) { opportunity { id deletedAt } errors { code } } }"
LIST = """
query($filter: OpportunityFilter, $orderBy: [OpportunityOrder!], $first: Int, $after: String) {
  opportunities(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { title status amount { amount currency } } }
  }
}
"""


async def test_amount_is_the_sum_of_line_items_with_product_prices_by_default(client, sales):
    customer = await sales.customer()
    chair = await sales.product("CH-1", "49.99")
    desk = await sales.product("DK-1", "310.00")
    opportunity = await sales.opportunity(
        customer, title="Office", owner="kim@example.com", source="REFERRAL",
        lineItems=[
            {"productId": chair["id"], "quantity": "12", "discountPercent": "12.5"},
            {"productId": desk["id"], "quantity": "2", "unitPrice": money("295.00"), "description": "Desk, oak"},
        ],
    )
    assert opportunity["currency"] == "EUR"
    lines = opportunity["lineItems"]
    assert lines[0]["unitPrice"] == money("49.99")
    assert lines[0]["subtotal"] == money("599.88")
    assert lines[0]["discount"] == money("74.99")  # 12.5% of 599.88 = 74.985, rounded half up
    assert lines[0]["total"] == money("524.89")
    assert lines[1]["description"] == "Desk, oak" and lines[1]["total"] == money("590.00")
    assert opportunity["amount"] == money("1114.89")
    # The default pipeline's first stage has probability 10.
    assert opportunity["stage"]["name"] == "Qualification"
    assert (opportunity["probability"], opportunity["probabilityIsManual"]) == (10, False)
    assert opportunity["weightedAmount"] == money("111.49")
    assert opportunity["status"] == "OPEN"
    assert [h["stage"]["name"] for h in opportunity["stageHistory"]] == ["Qualification"]


async def test_bad_opportunity_input_gives_field_errors_and_writes_nothing(client, sales):
    customer = await sales.customer()
    euro = await sales.product("EU-1", "10.00", "EUR")
    dollar = await sales.product("US-1", "10.00", "USD")
    body = await client.execute(
        CREATE_OPPORTUNITY,
        {"input": {"title": "Mixed", "customerId": customer, "probability": 101, "lineItems": [
            {"productId": euro["id"], "quantity": "-1"},
            {"productId": dollar["id"]},
            {"productId": euro["id"], "unitPrice": money("-3")},
            {"productId": euro["id"], "discountPercent": "120"},
            {"productId": "UHJvZHVjdDo5OTk"},
        ]}},
    )
    payload = body["createOpportunity"]
    assert payload["opportunity"] is None
    assert codes(payload) == {
        ("probability", "OUT_OF_RANGE"),
        ("lineItems.0.quantity", "OUT_OF_RANGE"),
        ("lineItems.1.productId", "CURRENCY_MISMATCH"),
        ("lineItems.2.unitPrice.amount", "OUT_OF_RANGE"),
        ("lineItems.3.discountPercent", "OUT_OF_RANGE"),
        ("lineItems.4.productId", "NOT_FOUND"),
    }
    unknown_customer = await client.execute(
        CREATE_OPPORTUNITY, {"input": {"title": "X", "customerId": "Q3VzdG9tZXI6OTk5", "currency": "XYZ"}}
    )
    assert codes(unknown_customer["createOpportunity"]) == {("customerId", "NOT_FOUND"), ("currency", "INVALID_CURRENCY")}
    dollars_for_euro_product = await client.execute(
        CREATE_OPPORTUNITY,
        {"input": {"title": "X", "customerId": customer, "currency": "USD", "lineItems": [{"productId": euro["id"]}]}},
    )
    assert codes(dollars_for_euro_product["createOpportunity"]) == {("lineItems.0.productId", "CURRENCY_MISMATCH")}
    manual_with_lines = await client.execute(
        CREATE_OPPORTUNITY,
        {"input": {"title": "X", "customerId": customer, "amount": money("5"), "lineItems": [{"productId": euro["id"]}]}},
    )
    assert codes(manual_with_lines["createOpportunity"]) == {("amount", "INVALID_VALUE")}
    listed = await client.execute(LIST)
    assert listed["opportunities"]["totalCount"] == 0


async def test_a_stage_of_another_pipeline_is_refused(client, sales):
    other = (await client.mutate(CREATE_PIPELINE, {"input": {"name": "Other", "stages": [
        {"name": "Open", "probability": 50}, {"name": "Won", "kind": "WON"}, {"name": "Lost", "kind": "LOST"},
    ]}}))["pipeline"]
    customer = await sales.customer()
    opportunity = await sales.opportunity(customer, amount=money("100"))
    body = await client.execute(MOVE, {"id": opportunity["id"], "stageId": other["stages"][0]["id"]})
    assert codes(body["moveOpportunity"]) == {("stageId", "WRONG_PIPELINE")}
    body = await client.execute(MOVE, {"id": opportunity["id"], "stageId": await sales.stage("Won")})
    assert codes(body["moveOpportunity"]) == {("stageId", "CLOSED_STAGE")}
    body = await client.execute(
        CREATE_OPPORTUNITY,
        {"input": {"title": "X", "customerId": customer, "currency": "EUR", "pipelineId": other["id"],
                   "stageId": await sales.stage("Proposal")}},
    )
    assert codes(body["createOpportunity"]) == {("stageId", "WRONG_PIPELINE")}


async def test_manual_probability_and_version_conflicts(client, sales):
    customer = await sales.customer()
    opportunity = await sales.opportunity(customer, amount=money("1000"), expectedCloseDate="2026-06-30")
    updated = (await client.mutate(UPDATE, {"id": opportunity["id"], "input": {"probability": 90}, "v": 1}))["opportunity"]
    assert (updated["probability"], updated["probabilityIsManual"]) == (90, True)
    assert updated["weightedAmount"] == money("900.00")
    assert updated["version"] == 2
    stale = await client.execute(UPDATE, {"id": opportunity["id"], "input": {"title": "Late"}, "v": 1})
    assert codes(stale["updateOpportunity"]) == {("expectedVersion", "VERSION_CONFLICT")}
    back = (await client.mutate(UPDATE, {"id": opportunity["id"], "input": {"probability": None}}))["opportunity"]
    assert (back["probability"], back["probabilityIsManual"]) == (10, False)
    assert back["title"] == "Deal"


async def test_replacing_line_items_recomputes_the_amount(client, sales):
    customer = await sales.customer()
    widget = await sales.product("W-1", "20.00")
    opportunity = await sales.opportunity(customer, lineItems=[{"productId": widget["id"], "quantity": "2"}])
    assert opportunity["amount"] == money("40.00")
    updated = (await client.mutate(
        UPDATE, {"id": opportunity["id"], "input": {"lineItems": [{"productId": widget["id"], "quantity": "2.5"}]}}
    ))["opportunity"]
    assert updated["amount"] == money("50.00")
    assert updated["lineItems"][0]["quantity"] == "2.5"
    refused = await client.execute(UPDATE, {"id": opportunity["id"], "input": {"amount": money("7")}})
    assert codes(refused["updateOpportunity"]) == {("amount", "INVALID_VALUE")}


async def test_win_creates_the_order_and_winning_again_returns_it(client, sales):
    customer = await sales.customer()
    widget = await sales.product("W-2", "15.00")
    opportunity = await sales.opportunity(customer, lineItems=[{"productId": widget["id"], "quantity": "4"}])
    won = await client.mutate(WIN, {"id": opportunity["id"]})
    assert won["opportunity"]["status"] == "WON"
    assert won["opportunity"]["stage"]["kind"] == "WON"
    assert won["opportunity"]["probability"] == 100
    assert won["opportunity"]["closedAt"] is not None
    order = won["order"]
    assert order["origin"] == "OPPORTUNITY"
    assert order["opportunity"]["id"] == opportunity["id"]
    assert order["total"] == money("60.00")
    assert order["status"] == "PENDING" and order["paymentStatus"] == "UNPAID"
    again = await client.mutate(WIN, {"id": opportunity["id"]})
    assert again["order"]["id"] == order["id"]
    refused = await client.execute(LOSE, {"id": opportunity["id"], "reason": "changed mind"})
    assert codes(refused["loseOpportunity"]) == {("id", "INVALID_STATE")}
    back = await client.execute(MOVE, {"id": opportunity["id"], "stageId": await sales.stage("Proposal")})
    assert codes(back["moveOpportunity"]) == {("id", "INVALID_STATE")}


async def test_a_lost_opportunity_cannot_be_won_but_can_be_revived(client, sales):
    customer = await sales.customer()
    opportunity = await sales.opportunity(customer, amount=money("500"))
    lost = (await client.mutate(LOSE, {"id": opportunity["id"], "reason": "Budget cut"}))["opportunity"]
    assert (lost["status"], lost["lostReason"], lost["probability"]) == ("LOST", "Budget cut", 0)
    assert lost["weightedAmount"] == money("0.00")
    refused = await client.execute(WIN, {"id": opportunity["id"]})
    assert codes(refused["winOpportunity"]) == {("id", "INVALID_STATE")}
    assert refused["winOpportunity"]["order"] is None
    revived = (await client.mutate(MOVE, {"id": opportunity["id"], "stageId": await sales.stage("Proposal")}))["opportunity"]
    assert (revived["status"], revived["lostReason"], revived["closedAt"]) == ("OPEN", None, None)
    assert [h["stage"]["name"] for h in revived["stageHistory"]] == ["Qualification", "Lost", "Proposal"]
    won = await client.mutate(WIN, {"id": opportunity["id"]})
    assert won["order"]["lineItems"][0]["description"] == "Deal"
    assert won["order"]["total"] == money("500.00")


async def test_deleted_opportunities_leave_lists_until_restored(client, sales):
    customer = await sales.customer()
    opportunity = await sales.opportunity(customer, amount=money("10"))
    deleted = await client.mutate(DELETE, {"id": opportunity["id"]})
    assert deleted["opportunity"]["deletedAt"] is not None
    assert (await client.execute(LIST))["opportunities"]["totalCount"] == 0
    assert (await client.execute("query($id: ID!) { opportunity(id: $id) { id } }", {"id": opportunity["id"]}))["opportunity"] is None
    await client.mutate(RESTORE, {"id": opportunity["id"]})
    assert (await client.execute(LIST))["opportunities"]["totalCount"] == 1


async def test_list_filters_and_orders_in_sql(client, sales):
    acme, globex = await sales.customer("Acme"), await sales.customer("Globex")
    with frozen_clock(datetime(2026, 1, 10, tzinfo=UTC)) as clock:
        await sales.opportunity(acme, title="Small", amount=money("100"), expectedCloseDate="2026-02-01", owner="kim")
        clock.advance(hours=1)
        await sales.opportunity(acme, title="Large", amount=money("9000"), owner="sam")
        clock.advance(hours=1)
        big = await sales.opportunity(globex, title="Medium", amount=money("2500"), expectedCloseDate="2026-01-20", owner="kim")
        await client.mutate(LOSE, {"id": big["id"]})
    by_customer = await client.execute(LIST, {"filter": {"customer": {"eq": acme}}})
    assert {e["node"]["title"] for e in by_customer["opportunities"]["edges"]} == {"Small", "Large"}
    kim_open = await client.execute(
        LIST, {"filter": {"owner": {"eq": "kim"}, "status": {"eq": "OPEN"}, "amount": {"gte": "50"}}}
    )
    assert [e["node"]["title"] for e in kim_open["opportunities"]["edges"]] == ["Small"]
    by_close = await client.execute(LIST, {"orderBy": [{"field": "EXPECTED_CLOSE_DATE"}], "first": 2})
    assert [e["node"]["title"] for e in by_close["opportunities"]["edges"]] == ["Medium", "Small"]
    rest = await client.execute(
        LIST, {"orderBy": [{"field": "EXPECTED_CLOSE_DATE"}], "first": 2,
               "after": by_close["opportunities"]["pageInfo"]["endCursor"]}
    )
    assert [e["node"]["title"] for e in rest["opportunities"]["edges"]] == ["Large"]
    either = await client.execute(
        LIST, {"filter": {"or": [{"title": {"contains": "LARG"}}, {"expectedCloseDate": {"lt": "2026-01-31"}}]}}
    )
    assert {e["node"]["title"] for e in either["opportunities"]["edges"]} == {"Large", "Medium"}


async def test_extreme_values_get_clear_answers_not_server_errors(client, sales):
    customer = await sales.customer()
    product = await sales.product("BIG-1", "10.00")
    giant = await client.execute(
        CREATE_OPPORTUNITY,
        {"input": {"title": "Huge", "customerId": customer, "lineItems": [
            {"productId": product["id"], "quantity": "2", "unitPrice": money("100000000000")}]}},
    )
    assert codes(giant["createOpportunity"]) == {("lineItems.0.unitPrice.amount", "OUT_OF_RANGE")}
    too_big_product = await client.execute(
        CREATE_OPPORTUNITY,
        {"input": {"title": "Huge", "customerId": customer, "lineItems": [
            {"productId": product["id"], "quantity": "999999999", "unitPrice": money("9999999"), "discountPercent": "100"}]}},
    )
    assert codes(too_big_product["createOpportunity"]) == {("lineItems.0.quantity", "OUT_OF_RANGE")}
    body = await client.post(LIST, {"filter": {"amount": {"gt": "1e30"}}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    body = await client.post(LIST, {"filter": {"amount": {"gt": "NaN"}}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    # Below 10**15 (what NUMERIC(19, 4) holds) but past SQLite's 64-bit ten-thousandths: refused too.
    body = await client.post(LIST, {"filter": {"amount": {"gt": "999999999999999"}}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST", body
    summary = await client.execute('{ pipelineSummary(from: "0001-01-01", to: "9999-12-31") { openCount } }')
    assert summary["pipelineSummary"]["openCount"] == 0
