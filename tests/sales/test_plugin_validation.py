"""Plugins can veto sales writes (crm_validate); a veto is a UserError and nothing is written."""

from __future__ import annotations

from crm_graph import hookimpl
from crm_graph.core.errors import FieldError
from tests.plugins.support import server_factory  # noqa: F401  (the fixture)
from tests.sales.conftest import UPSERT_ORDER, WIN, Sales, codes, money


class CreditCheck:
    """Refuses orders over 1000 and closing deals owned by nobody."""

    name = "credit_check"

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict]] = []

    @hookimpl
    def crm_validate(self, entity: str, data: dict) -> FieldError | None:
        self.seen.append((entity, dict(data)))
        if entity == "order":
            total = sum(line["unitPrice"]["amount"] * line.get("quantity", 1) for line in data["lineItems"])
            if total > 1000:
                return FieldError("lineItems", "CREDIT_LIMIT", "Over the customer's credit limit.")
        if entity == "opportunity" and data.get("status") == "WON":
            return FieldError("id", "NO_OWNER", "Assign an owner before closing.")
        return None


async def test_plugins_veto_orders_and_wins(server_factory, db):  # noqa: F811
    plugin = CreditCheck()
    server = await server_factory(plugin)
    client, sales = server.client, Sales(server.client)
    customer = await sales.customer()
    big = {
        "externalRef": {"system": "shop", "externalId": "9"},
        "customerId": customer,
        "lineItems": [{"description": "Forklift", "unitPrice": money("25000.00")}],
    }
    body = await client.execute(UPSERT_ORDER, {"input": big})
    assert codes(body["upsertOrder"]) == {("lineItems", "CREDIT_LIMIT")}
    assert (await client.execute("{ orders { totalCount } }"))["orders"]["totalCount"] == 0

    opportunity = await sales.opportunity(customer, amount=money("10"))
    refused = await client.execute(WIN, {"id": opportunity["id"]})
    assert codes(refused["winOpportunity"]) == {("id", "NO_OWNER")}
    still = await client.execute("query($id: ID!) { opportunity(id: $id) { status } }", {"id": opportunity["id"]})
    assert still["opportunity"]["status"] == "OPEN"
    assert {entity for entity, _ in plugin.seen} >= {"order", "opportunity"}
