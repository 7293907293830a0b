"""Helpers for the sales tests: GraphQL documents and small builders that go through the API."""

from __future__ import annotations

from typing import Any

import pytest

MONEY = "{ amount currency }"
LINE = f"lineItems {{ product {{ id sku }} sku description quantity unitPrice {MONEY} discountPercent subtotal {MONEY} discount {MONEY} total {MONEY} }}"
ERRORS = "errors { field code message }"

OPPORTUNITY_FIELDS = f"""
  id title status currency owner expectedCloseDate source lostReason closedAt version probability probabilityIsManual
  amount {MONEY} weightedAmount {MONEY}
  customer {{ id displayName }}
  pipeline {{ id name }}
  stage {{ id name kind probability }}
  {LINE}
  stageHistory {{ stage {{ name }} enteredAt leftAt secondsInStage }}
"""
ORDER_FIELDS = f"""
  id number status paymentStatus currency origin orderedAt version taxRate
  subtotal {MONEY} discount {MONEY} tax {MONEY} total {MONEY} paidAmount {MONEY} balanceDue {MONEY}
  customer {{ id }} opportunity {{ id }} quote {{ id }}
  externalRefs {{ system externalId }}
  payments {{ id amount {MONEY} paidAt externalRef {{ system externalId }} }}
  {LINE}
"""
QUOTE_FIELDS = f"""
  id number status currency validUntil taxRate customerName version
  billingAddress {{ line1 city country }}
  subtotal {MONEY} discount {MONEY} tax {MONEY} total {MONEY}
  opportunity {{ id status }} order {{ id number origin }}
  {LINE}
"""

CREATE_CUSTOMER = """
mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } errors { field code message } } }
"""
CREATE_PRODUCT = f"""
mutation($input: CreateProductInput!) {{
  createProduct(input: $input) {{ product {{ id sku name active tags version unitPrice {MONEY} }} {ERRORS} }}
}}
"""
CREATE_PIPELINE = f"""
mutation($input: CreatePipelineInput!) {{
  createPipeline(input: $input) {{ pipeline {{ id name isDefault version stages {{ id name kind probability position }} }} {ERRORS} }}
}}
"""
CREATE_OPPORTUNITY = f"""
mutation($input: CreateOpportunityInput!) {{
  createOpportunity(input: $input) {{ opportunity {{ {OPPORTUNITY_FIELDS} }} {ERRORS} }}
}}
"""
MOVE = f"""
mutation($id: ID!, $stageId: ID!, $v: Int) {{
  moveOpportunity(id: $id, stageId: $stageId, expectedVersion: $v) {{ opportunity {{ {OPPORTUNITY_FIELDS} }} {ERRORS} }}
}}
"""
WIN = f"""
mutation($id: ID!) {{
  winOpportunity(id: $id) {{ opportunity {{ {OPPORTUNITY_FIELDS} }} order {{ {ORDER_FIELDS} }} {ERRORS} }}
}}
"""
LOSE = f"""
mutation($id: ID!, $reason: String) {{
  loseOpportunity(id: $id, reason: $reason) {{ opportunity {{ {OPPORTUNITY_FIELDS} }} {ERRORS} }}
}}
"""
CREATE_QUOTE = f"""
mutation($input: CreateQuoteInput!) {{ createQuote(input: $input) {{ quote {{ {QUOTE_FIELDS} }} {ERRORS} }} }}
"""
SEND_QUOTE = f"mutation($id: ID!) {{ sendQuote(id: $id) {{ quote {{ {QUOTE_FIELDS} }} {ERRORS} }} }}"
ACCEPT_QUOTE = f"mutation($id: ID!) {{ acceptQuote(id: $id) {{ quote {{ {QUOTE_FIELDS} }} order {{ {ORDER_FIELDS} }} {ERRORS} }} }}"
CREATE_ORDER = f"""
mutation($input: CreateOrderInput!) {{ createOrder(input: $input) {{ order {{ {ORDER_FIELDS} }} {ERRORS} }} }}
"""
UPSERT_ORDER = f"""
mutation($input: UpsertOrderInput!) {{ upsertOrder(input: $input) {{ created order {{ {ORDER_FIELDS} }} {ERRORS} }} }}
"""
RECORD_PAYMENT = f"""
mutation($input: RecordPaymentInput!) {{
  recordPayment(input: $input) {{ payment {{ id amount {MONEY} }} order {{ {ORDER_FIELDS} }} {ERRORS} }}
}}
"""
ORDER_STATUS = f"""
mutation($id: ID!, $status: OrderStatus!) {{ updateOrderStatus(id: $id, status: $status) {{ order {{ {ORDER_FIELDS} }} {ERRORS} }} }}
"""
DEFAULT_PIPELINE = "{ pipelines(first: 10) { edges { node { id name isDefault stages { id name kind probability } } } } }"


def money(amount: str, currency: str = "EUR") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


def codes(payload: dict[str, Any]) -> set[tuple[str | None, str]]:
    return {(e["field"], e["code"]) for e in payload["errors"]}


class Sales:
    """Builds sales data through the GraphQL API, as a client would."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._pipeline: dict[str, Any] | None = None

    async def customer(self, name: str = "Acme Trading", **extra: Any) -> str:
        payload = await self.client.mutate(
            CREATE_CUSTOMER, {"input": {"kind": "ORGANIZATION", "organizationName": name, **extra}}
        )
        return payload["customer"]["id"]

    async def product(self, sku: str, price: str = "100.00", currency: str = "EUR", **extra: Any) -> dict[str, Any]:
        payload = await self.client.mutate(
            CREATE_PRODUCT, {"input": {"sku": sku, "name": extra.pop("name", f"Product {sku}"), "unitPrice": money(price, currency), **extra}}
        )
        return payload["product"]

    async def default_pipeline(self) -> dict[str, Any]:
        if self._pipeline is None:
            data = await self.client.execute(DEFAULT_PIPELINE)
            self._pipeline = next(e["node"] for e in data["pipelines"]["edges"] if e["node"]["isDefault"])
        return self._pipeline

    async def stage(self, name: str) -> str:
        pipeline = await self.default_pipeline()
        return next(s["id"] for s in pipeline["stages"] if s["name"] == name)

    async def opportunity(self, customer_id: str, **input: Any) -> dict[str, Any]:
        payload = await self.client.mutate(
            CREATE_OPPORTUNITY, {"input": {"title": input.pop("title", "Deal"), "customerId": customer_id, **input}}
        )
        return payload["opportunity"]


@pytest.fixture
def sales(client: Any) -> Sales:
    return Sales(client)
