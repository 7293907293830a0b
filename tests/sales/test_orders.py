"""Orders and payments through GraphQL: currency rules, idempotent sync, statuses, payments."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import sqlalchemy as sa

from crm_graph.core.actor import SYSTEM
from crm_graph.sales.models import Order, OrderExternalRef, Payment
from crm_graph.sales.service import orders as order_service
from tests.sales.conftest import (
    CREATE_ORDER,
    ORDER_STATUS,
    RECORD_PAYMENT,
    UPSERT_ORDER,
    codes,
    money,
)

LIST = "query($filter: OrderFilter) { orders(filter: $filter) { totalCount edges { node { number total { amount } } } } }"


def _upsert_input(customer: str, quantity: str = "2", **extra):
    return {
        "externalRef": {"system": "shop", "externalId": "A-1001"},
        "customerId": customer,
        "orderedAt": "2026-02-03T10:00:00Z",
        "lineItems": [{"sku": "MUG-1", "description": "Mug", "quantity": quantity, "unitPrice": money("8.50")}],
        **extra,
    }


async def test_create_order_with_products_free_lines_and_tax(client, sales):
    customer = await sales.customer()
    await sales.product("TEA-1", "4.20")
    payload = await client.mutate(
        CREATE_ORDER,
        {"input": {"customerId": customer, "taxRate": "7", "lineItems": [
            {"sku": "TEA-1", "quantity": "10"},
            {"description": "Gift wrapping", "unitPrice": money("2.00")},
        ]}},
    )
    order = payload["order"]
    assert order["number"].startswith("SO-") and order["origin"] == "DIRECT"
    assert order["lineItems"][0]["product"]["sku"] == "TEA-1"
    assert order["lineItems"][1]["product"] is None
    assert (order["subtotal"], order["tax"], order["total"]) == (money("44.00"), money("3.08"), money("47.08"))
    assert order["status"] == "PENDING" and order["paymentStatus"] == "UNPAID"


async def test_mixed_currencies_and_bad_codes_are_refused(client, sales):
    customer = await sales.customer()
    body = await client.execute(
        CREATE_ORDER,
        {"input": {"customerId": customer, "lineItems": [
            {"description": "A", "unitPrice": money("1.00", "EUR")},
            {"description": "B", "unitPrice": money("1.00", "USD")},
            {"description": "C", "unitPrice": money("1.00", "EUX")},
        ]}},
    )
    assert codes(body["createOrder"]) == {
        ("lineItems.1.unitPrice.currency", "CURRENCY_MISMATCH"),
        ("lineItems.2.unitPrice.currency", "INVALID_CURRENCY"),
    }
    no_lines = await client.execute(CREATE_ORDER, {"input": {"customerId": customer, "lineItems": [], "currency": "usd"}})
    assert codes(no_lines["createOrder"]) == {("lineItems", "REQUIRED")}
    assert (await client.execute(LIST))["orders"]["totalCount"] == 0


async def test_upsert_twice_gives_one_order_and_a_change_bumps_the_version(client, sales, db):
    customer = await sales.customer()
    first = await client.mutate(UPSERT_ORDER, {"input": _upsert_input(customer)})
    again = await client.mutate(UPSERT_ORDER, {"input": _upsert_input(customer)})
    assert (first["created"], again["created"]) == (True, False)
    assert again["order"]["id"] == first["order"]["id"]
    assert again["order"]["version"] == first["order"]["version"] == 1
    assert first["order"]["externalRefs"] == [{"system": "shop", "externalId": "A-1001"}]
    assert first["order"]["origin"] == "EXTERNAL"

    changed = await client.mutate(UPSERT_ORDER, {"input": _upsert_input(customer, quantity="3", status="CONFIRMED")})
    assert changed["created"] is False
    assert changed["order"]["id"] == first["order"]["id"]
    assert changed["order"]["version"] == 2
    assert changed["order"]["total"] == money("25.50")
    assert changed["order"]["status"] == "CONFIRMED"

    backwards = await client.execute(UPSERT_ORDER, {"input": _upsert_input(customer, quantity="3", status="PENDING")})
    assert codes(backwards["upsertOrder"]) == {("status", "INVALID_STATE")}
    listed = await client.execute(LIST, {"filter": {"externalRef": {"system": "shop", "externalId": "A-1001"}}})
    assert listed["orders"]["totalCount"] == 1
    async with db.reader() as session:
        updates = await session.scalar(sa.text("SELECT count(*) FROM outbox WHERE type = 'order.updated'"))
    assert updates == 1  # the identical resend changed nothing


async def test_concurrent_upserts_with_one_reference_create_one_order(client, sales):
    customer = await sales.customer()
    results = await asyncio.gather(*(client.mutate(UPSERT_ORDER, {"input": _upsert_input(customer)}) for _ in range(4)))
    assert len({r["order"]["id"] for r in results}) == 1
    assert sorted(r["created"] for r in results) == [False, False, False, True]
    assert (await client.execute(LIST))["orders"]["totalCount"] == 1


async def test_the_loser_of_an_insert_race_returns_the_winners_order(client, sales, db):
    """Two transactions upsert the same reference; the second starts before the first commits.

    On PostgreSQL the second does not see the first's row, inserts, waits on the unique index and
    then recovers from the violation; on SQLite it waits for the write lock and finds the row.
    Either way the outcome is one order, returned to both.
    """
    customer = await sales.customer()
    from crm_graph.graphql.relay import decode_global_id

    data = {
        "externalRef": {"system": "erp", "externalId": "77"},
        "customerId": decode_global_id(customer)[1],
        "lineItems": [{"description": "Service", "unitPrice": {"amount": Decimal("99.00"), "currency": "EUR"}}],
    }

    async def second() -> tuple[int, bool]:
        async with db.writer() as session, session.begin():
            order, created = await order_service.upsert_order(session, actor=SYSTEM, data=data)
            return order.id, created

    async with db.writer() as session:
        await session.begin()
        first_order, first_created = await order_service.upsert_order(session, actor=SYSTEM, data=data)
        racer = asyncio.create_task(second())
        await asyncio.sleep(0.3)
        await session.commit()
    second_id, second_created = await racer
    assert (first_created, second_created) == (True, False)
    assert second_id == first_order.id
    async with db.reader() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(OrderExternalRef)) == 1
        assert await session.scalar(sa.select(sa.func.count()).select_from(Order)) == 1


async def test_payments_are_idempotent_on_their_reference(client, sales, db):
    customer = await sales.customer()
    order = (await client.mutate(UPSERT_ORDER, {"input": _upsert_input(customer, quantity="10")}))["order"]
    assert order["total"] == money("85.00")
    payment = {"orderId": order["id"], "amount": money("30.00"), "externalRef": {"system": "psp", "externalId": "pay_1"}}
    first = await client.mutate(RECORD_PAYMENT, {"input": payment})
    again = await client.mutate(RECORD_PAYMENT, {"input": payment})
    assert again["payment"]["id"] == first["payment"]["id"]
    assert again["order"]["paidAmount"] == money("30.00")
    assert again["order"]["paymentStatus"] == "PARTIALLY_PAID"
    assert again["order"]["balanceDue"] == money("55.00")

    reused = await client.execute(RECORD_PAYMENT, {"input": {**payment, "amount": money("31.00")}})
    assert codes(reused["recordPayment"]) == {("externalRef", "EXTERNAL_REF_CONFLICT")}
    too_much = await client.execute(RECORD_PAYMENT, {"input": {"orderId": order["id"], "amount": money("55.01")}})
    assert codes(too_much["recordPayment"]) == {("amount.amount", "OVERPAYMENT")}
    wrong_currency = await client.execute(RECORD_PAYMENT, {"input": {"orderId": order["id"], "amount": money("5", "USD")}})
    assert codes(wrong_currency["recordPayment"]) == {("amount.currency", "CURRENCY_MISMATCH")}
    too_precise = await client.execute(RECORD_PAYMENT, {"input": {"orderId": order["id"], "amount": money("5.001")}})
    assert codes(too_precise["recordPayment"]) == {("amount.amount", "TOO_PRECISE")}

    rest = {"orderId": order["id"], "amount": money("55.00"), "externalRef": {"system": "psp", "externalId": "pay_2"}}
    results = await asyncio.gather(*(client.mutate(RECORD_PAYMENT, {"input": rest}) for _ in range(3)))
    assert len({r["payment"]["id"] for r in results}) == 1
    query = "query($id: ID!) { order(id: $id) { paymentStatus paidAmount { amount } payments { id } } }"
    final = (await client.execute(query, {"id": order["id"]}))["order"]
    assert final["paymentStatus"] == "PAID"
    assert final["paidAmount"] == {"amount": "85.00"}
    assert len(final["payments"]) == 2
    async with db.reader() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 2
        paid_events = await session.scalar(sa.text("SELECT count(*) FROM outbox WHERE type = 'order.paid'"))
    assert paid_events == 1


async def test_status_transitions(client, sales):
    customer = await sales.customer()
    order = (await client.mutate(CREATE_ORDER, {"input": {"customerId": customer, "lineItems": [
        {"description": "Box", "unitPrice": money("20.00")}]}}))["order"]
    refund_unpaid = await client.execute(ORDER_STATUS, {"id": order["id"], "status": "REFUNDED"})
    assert codes(refund_unpaid["updateOrderStatus"]) == {("status", "INVALID_STATE")}
    confirmed = await client.mutate(ORDER_STATUS, {"id": order["id"], "status": "CONFIRMED"})
    assert confirmed["order"]["status"] == "CONFIRMED"
    await client.mutate(RECORD_PAYMENT, {"input": {"orderId": order["id"], "amount": money("20.00")}})
    cancel_paid = await client.execute(ORDER_STATUS, {"id": order["id"], "status": "CANCELLED"})
    assert codes(cancel_paid["updateOrderStatus"]) == {("status", "INVALID_STATE")}
    fulfilled = await client.mutate(ORDER_STATUS, {"id": order["id"], "status": "FULFILLED"})
    assert fulfilled["order"]["status"] == "FULFILLED"
    back = await client.execute(ORDER_STATUS, {"id": order["id"], "status": "PENDING"})
    assert codes(back["updateOrderStatus"]) == {("status", "INVALID_STATE")}
    refunded = await client.mutate(ORDER_STATUS, {"id": order["id"], "status": "REFUNDED"})
    assert (refunded["order"]["status"], refunded["order"]["paymentStatus"]) == ("REFUNDED", "REFUNDED")
    more = await client.execute(RECORD_PAYMENT, {"input": {"orderId": order["id"], "amount": money("1.00")}})
    assert codes(more["recordPayment"]) == {("orderId", "INVALID_STATE")}
