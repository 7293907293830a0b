"""Products through GraphQL: the catalogue, its rules and its list."""

from __future__ import annotations

import asyncio

from tests.sales.conftest import CREATE_PRODUCT, codes, money

UPDATE = """
mutation($id: ID!, $input: UpdateProductInput!, $v: Int) {
  updateProduct(id: $id, input: $input, expectedVersion: $v) {
    product { id sku name active tags version unitPrice { amount currency } }
    errors { field code message }
  }
}
"""
LIST = """
query($filter: ProductFilter, $orderBy: [ProductOrder!], $first: Int, $after: String) {
  products(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { sku unitPrice { amount currency } active tags } }
  }
}
"""


async def test_create_product_keeps_the_price_exact(client):
    payload = await client.mutate(
        CREATE_PRODUCT,
        {"input": {"sku": "WID-1", "name": "Widget", "unitPrice": money("0.1000", "eur"), "tags": ["Hardware", "hardware"]}},
    )
    product = payload["product"]
    assert product["unitPrice"] == money("0.10", "EUR")
    assert product["active"] is True
    assert product["tags"] == ["hardware"]
    assert product["version"] == 1


async def test_bad_product_input_gives_field_errors_and_writes_nothing(client, sales):
    await sales.product("TAKEN-1")
    body = await client.execute(
        CREATE_PRODUCT,
        {"input": {"sku": "TAKEN-1", "name": " ", "unitPrice": money("-5", "EURO")}},
    )
    payload = body["createProduct"]
    assert payload["product"] is None
    assert codes(payload) == {
        ("sku", "DUPLICATE"),
        ("name", "REQUIRED"),
        ("unitPrice.currency", "INVALID_CURRENCY"),
        ("unitPrice.amount", "OUT_OF_RANGE"),
    }
    body = await client.execute(CREATE_PRODUCT, {"input": {"sku": "P-2", "name": "Fine", "unitPrice": money("1.00001")}})
    assert codes(body["createProduct"]) == {("unitPrice.amount", "TOO_PRECISE")}
    listed = await client.execute(LIST)
    assert listed["products"]["totalCount"] == 1


async def test_update_product_with_version_check(client, sales):
    product = await sales.product("SKU-9", "10.00")
    payload = await client.mutate(
        UPDATE, {"id": product["id"], "input": {"unitPrice": money("12.50"), "active": False}, "v": 1}
    )
    assert payload["product"]["unitPrice"] == money("12.50")
    assert payload["product"]["active"] is False
    assert payload["product"]["version"] == 2
    stale = await client.execute(UPDATE, {"id": product["id"], "input": {"name": "Renamed"}, "v": 1})
    assert codes(stale["updateProduct"]) == {("expectedVersion", "VERSION_CONFLICT")}
    current = await client.execute(LIST, {"filter": {"sku": {"eq": "SKU-9"}}})
    assert current["products"]["edges"][0]["node"]["unitPrice"] == money("12.50")


async def test_product_list_filters_in_sql_and_pages_by_price(client, sales):
    await sales.product("A-1", "5.00", tags=["eco"])
    await sales.product("A-2", "50.00", tags=["eco", "bulk"])
    await sales.product("A-3", "500.00", "USD")
    cheap_eco = await client.execute(
        LIST, {"filter": {"tags": {"containsAny": ["eco"]}, "unitPrice": {"lt": "100"}, "currency": {"eq": "EUR"}}}
    )
    assert [e["node"]["sku"] for e in cheap_eco["products"]["edges"]] == ["A-1", "A-2"]
    first = await client.execute(LIST, {"orderBy": [{"field": "UNIT_PRICE", "direction": "DESC"}], "first": 2})
    assert [e["node"]["sku"] for e in first["products"]["edges"]] == ["A-3", "A-2"]
    rest = await client.execute(
        LIST, {"orderBy": [{"field": "UNIT_PRICE", "direction": "DESC"}], "first": 2,
               "after": first["products"]["pageInfo"]["endCursor"]}
    )
    assert [e["node"]["sku"] for e in rest["products"]["edges"]] == ["A-1"]


async def test_concurrent_creates_of_one_sku_give_one_product_and_a_duplicate_error(client):
    request = {"input": {"sku": "RACE-1", "name": "Racer", "unitPrice": money("1.00")}}
    bodies = await asyncio.gather(*(client.execute(CREATE_PRODUCT, request) for _ in range(3)))
    payloads = [b["createProduct"] for b in bodies]
    assert sum(p["product"] is not None for p in payloads) == 1
    assert [codes(p) for p in payloads if p["product"] is None] == [{("sku", "DUPLICATE")}] * 2
    listed = await client.execute(LIST, {"filter": {"sku": {"eq": "RACE-1"}}})
    assert listed["products"]["totalCount"] == 1
