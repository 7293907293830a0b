"""Locale fit: CJK names family name first, the customer's country as the phone region, Chinese
addresses with province, city and district, and amounts in CNY, JPY and KRW end to end."""

from __future__ import annotations

from typing import Any

from tests.sales.conftest import CREATE_ORDER, codes, money

CREATE = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    customer { id displayName country phones { number } primaryPhone
               addresses { line1 district city region country postalCode formatted } }
    errors { field code message }
  }
}
"""
UPDATE = """
mutation($id: ID!, $input: UpdateCustomerInput!) {
  updateCustomer(id: $id, input: $input) { customer { displayName } errors { field code } }
}
"""


async def _person(client: Any, first: str | None, last: str | None, **extra: Any) -> dict[str, Any]:
    data = {"kind": "PERSON", **({"firstName": first} if first else {}), **({"lastName": last} if last else {}), **extra}
    payload = await client.mutate(CREATE, {"input": data})
    assert payload["errors"] == [], payload["errors"]
    return payload["customer"]


async def test_cjk_names_are_family_name_first_without_a_space(client):
    assert (await _person(client, "伟", "张"))["displayName"] == "张伟"
    assert (await _person(client, "太郎", "山田"))["displayName"] == "山田太郎"
    assert (await _person(client, None, "山田 太郎"))["displayName"] == "山田太郎"
    assert (await _person(client, "민준", "김"))["displayName"] == "김민준"
    assert (await _person(client, "たろう", "やまだ"))["displayName"] == "やまだたろう"
    # Latin names and mixed ones keep "First Last".
    assert (await _person(client, "Ada", "Lovelace"))["displayName"] == "Ada Lovelace"
    assert (await _person(client, "David", "王"))["displayName"] == "David 王"
    assert (await _person(client, "José", "Müller"))["displayName"] == "José Müller"
    # Renaming recomputes it in the new script.
    ada = await _person(client, "Ada", "King")
    renamed = await client.mutate(UPDATE, {"id": ada["id"], "input": {"firstName": "丽", "lastName": "李"}})
    assert renamed == {"customer": {"displayName": "李丽"}, "errors": []}


async def test_a_number_without_country_code_is_read_in_the_customers_country(client):
    cn = await _person(client, "伟", "张", country="CN", phones=[{"number": "13812345678"}])
    assert cn["phones"] == [{"number": "+8613812345678"}] and cn["primaryPhone"] == "+8613812345678"
    # The country may come from the primary address alone.
    by_address = await _person(client, "芳", "王", phones=[{"number": "138 1234 5679"}],
                               addresses=[{"line1": "科技园路1号", "city": "深圳市", "region": "广东省", "country": "CN"}])
    assert by_address["country"] == "CN" and by_address["phones"] == [{"number": "+8613812345679"}]
    # A +country code always wins; customers without a country still get the default region (US).
    explicit = await _person(client, "Ana", "Silva", country="CN", phones=[{"number": "+49 30 1234567"}])
    assert explicit["phones"] == [{"number": "+49301234567"}]
    us = await _person(client, "Jo", "Doe", phones=[{"number": "(202) 555-0143"}])
    assert us["phones"] == [{"number": "+12025550143"}]
    # A Chinese mobile number of a German customer is not a German number.
    wrong = (await client.execute(CREATE, {"input": {"kind": "PERSON", "lastName": "Schulz", "country": "DE",
                                                     "phones": [{"number": "13812345678"}]}}))["createCustomer"]
    assert codes(wrong) == {("phones.0.number", "INVALID_PHONE")}


async def test_chinese_address_with_district_is_written_largest_first(client):
    customer = await _person(client, "伟", "张", addresses=[
        {"line1": "科技园路1号", "line2": "A栋", "district": "南山区", "city": "深圳市", "region": "广东省",
         "postalCode": "518057", "country": "cn", "primary": True},
        {"line1": "Hauptstraße 1", "district": "Mitte", "city": "Berlin", "postalCode": "10115", "country": "DE"},
    ])
    home, berlin = customer["addresses"]
    assert home["district"] == "南山区" and home["region"] == "广东省" and home["country"] == "CN"
    assert home["formatted"] == "CN 518057 广东省 深圳市 南山区 科技园路1号 A栋"
    assert berlin["formatted"] == "Hauptstraße 1, Mitte, 10115 Berlin, DE"
    # The district is trimmed and bounded like the other place fields.
    too_long = (await client.execute(CREATE, {"input": {"kind": "PERSON", "lastName": "李", "addresses": [
        {"line1": "x", "district": "区" * 101, "country": "CN"}]}}))["createCustomer"]
    assert codes(too_long) == {("addresses.0.district", "INVALID_VALUE")}


ORDER_TOTALS = "subtotal { amount currency } tax { amount currency } total { amount currency }"


async def test_cny_jpy_and_krw_amounts_end_to_end(client):
    customer = (await client.mutate(CREATE, {"input": {"kind": "ORGANIZATION", "organizationName": "深圳贸易有限公司",
                                                       "country": "CN"}}))["customer"]["id"]

    async def order(currency: str, price: str, quantity: str, tax: str) -> dict[str, Any]:
        payload = await client.mutate(CREATE_ORDER, {"input": {
            "customerId": customer, "taxRate": tax,
            "lineItems": [{"description": f"货物 {currency}", "quantity": quantity, "unitPrice": money(price, currency)}],
        }})
        assert payload["errors"] == [], payload["errors"]
        return payload["order"]

    cny = await order("CNY", "99.50", "2", "13")
    assert (cny["subtotal"], cny["tax"], cny["total"]) == (money("199.00", "CNY"), money("25.87", "CNY"), money("224.87", "CNY"))
    jpy = await order("JPY", "1500", "3", "10")
    assert (jpy["subtotal"], jpy["tax"], jpy["total"]) == (money("4500", "JPY"), money("450", "JPY"), money("4950", "JPY"))
    # Tax on yen rounds to whole yen, half away from zero: 1234 x 8% = 98.72 -> 99.
    odd = await order("JPY", "1234", "1", "8")
    assert odd["tax"] == money("99", "JPY") and odd["total"] == money("1333", "JPY")
    krw = await order("KRW", "12000", "5", "10")
    assert krw["total"] == money("66000", "KRW")
    # Lists and filters compare exact amounts in these currencies too.
    listed = await client.execute(
        '{ orders(filter: {currency: {eq: "JPY"}, total: {gte: "4950"}}) { totalCount edges { node { total { amount currency } } } } }'
    )
    assert listed["orders"]["totalCount"] == 1
    assert listed["orders"]["edges"][0]["node"]["total"] == money("4950", "JPY")


async def test_a_yen_quote_from_a_yen_opportunity(client):
    from tests.sales.conftest import CREATE_OPPORTUNITY, CREATE_PRODUCT

    customer = (await client.mutate(CREATE, {"input": {"kind": "ORGANIZATION", "organizationName": "山田商事", "country": "JP"}}))
    product = (await client.mutate(CREATE_PRODUCT, {"input": {"sku": "TEA-JP", "name": "抹茶", "unitPrice": money("1234", "JPY")}}))
    assert product["product"]["unitPrice"] == money("1234", "JPY")
    opportunity = (await client.mutate(CREATE_OPPORTUNITY, {"input": {
        "title": "抹茶の年間契約", "customerId": customer["customer"]["id"],
        "lineItems": [{"productId": product["product"]["id"], "quantity": "3", "discountPercent": "5"}],
    }}))["opportunity"]
    # 3 x 1234 = 3702, 5% discount = 185.1 -> 185 (whole yen), 3517.
    assert opportunity["amount"] == money("3517", "JPY")
    quote = (await client.mutate(
        "mutation($input: CreateQuoteInput!) { createQuote(input: $input) { quote { currency subtotal { amount currency } "
        "discount { amount currency } tax { amount currency } total { amount currency } } errors { field code message } } }",
        {"input": {"opportunityId": opportunity["id"], "taxRate": "10"}},
    ))["quote"]
    assert quote["currency"] == "JPY"
    assert (quote["subtotal"], quote["discount"]) == (money("3702", "JPY"), money("185", "JPY"))
    # Tax on the discounted 3517: 351.7 -> 352.
    assert (quote["tax"], quote["total"]) == (money("352", "JPY"), money("3869", "JPY"))
