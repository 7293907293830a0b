"""Through the API, against each real program (Tryton, fava, hledger-web, started once per run): an
order confirmed in the CRM becomes one invoice or balanced entry; a payment the accountant enters
in the books appears on the order, once however often the books are read; a cancelled order is
reversed; the books' own check passes and the reconciliation is clean."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from counterparts.fava import fava_server  # noqa: F401
from counterparts.hledger import hledger_server  # noqa: F401
from counterparts.tryton import tryton_server  # noqa: F401
from crm_graph.sales.models import NumberSequence

CONNECT = """
mutation($input: CreateFinanceConnectionInput!) {
  createFinanceConnection(input: $input) { financeConnection { id credentials } errors { field code message } }
}
"""
ORDER = """
mutation($input: CreateOrderInput!) { createOrder(input: $input) { order { id number total { amount } } errors { field code message } } }
"""
STATE = ("query($id: ID!) { node(id: $id) { ... on Order { paymentStatus paidAmount { amount } balanceDue { amount } "
         "financeSync { status remoteId lastError } } } }")
PULL = "mutation($id: ID!) { pullFinancePayments(connectionId: $id) { seen applied already unmatched errors { code message } } }"


# Tryton takes half a minute to set up: its run-through goes in the SQLite pass only (its backend
# does the same against it there); fava and hledger-web run in both.
@pytest.fixture(params=[pytest.param("tryton", marks=pytest.mark.one_pass), "fava", "hledger"])
def books(request):  # noqa: ANN001, ANN201
    return request.param, request.getfixturevalue(f"{request.param}_server")


async def _unique_numbers(db) -> None:  # noqa: ANN001
    # The books outlive each test's database: start this test's order numbers somewhere of their own.
    async with db.writer() as session, session.begin():
        session.add(NumberSequence(scope="order", year=date.today().year, last_value=random.randrange(100_000, 900_000)))


async def test_orders_reach_the_books_and_payments_come_back(books, crm_client, crm_db, crm_events):
    name, server = books
    await _unique_numbers(crm_db)
    made = await crm_client.mutate(CONNECT, {"input": {"name": name, "backend": name, "config": {**server.config, **server.secrets}}})
    connection = made["financeConnection"]["id"]
    customer = (await crm_client.mutate(
        "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } errors { code } } }",
        {"i": {"kind": "ORGANIZATION", "organizationName": "Nordwind Handel GmbH", "emails": [{"address": "ap@nordwind.example"}],
               "addresses": [{"line1": "Kaistraße 9", "postalCode": "20457", "city": "Hamburg", "country": "DE", "primary": True}]}}
    ))["customer"]["id"]
    lines = [{"description": "Beratung", "quantity": "3", "unitPrice": {"amount": "120.00", "currency": "EUR"}},
             {"description": "Lizenz", "quantity": "1", "unitPrice": {"amount": "990.00", "currency": "EUR"}, "discountPercent": "10"}]
    order = (await crm_client.mutate(ORDER, {"input": {"customerId": customer, "currency": "EUR", "taxRate": "19",
                                                       "status": "CONFIRMED", "lineItems": lines}}))["order"]
    total = Decimal(order["total"]["amount"])
    assert total == Decimal("1488.69")  # (360 + 891) x 1.19

    await crm_events.deliver(check=False)
    state = (await crm_client.execute(STATE, {"id": order["id"]}))["node"]
    assert [s["status"] for s in state["financeSync"]] == ["SYNCED"], state
    booked = await server.invoices_for(order["number"])
    assert len(booked) == 1

    # Asked again (a retry), nothing new is booked.
    await crm_client.mutate("mutation($id: ID!) { retryFinanceSync(orderId: $id) { errors { code } } }", {"id": order["id"]})
    await crm_events.deliver(check=False)
    assert len(await server.invoices_for(order["number"])) == 1

    # The accountant enters a partial payment, then the rest, in the books.
    today = date.today()
    await server.pay(order["number"], Decimal("500.00"), "EUR", today)
    first = await crm_client.mutate(PULL, {"id": connection})
    assert first["applied"] == 1
    state = (await crm_client.execute(STATE, {"id": order["id"]}))["node"]
    assert state["paymentStatus"] == "PARTIALLY_PAID" and Decimal(state["balanceDue"]["amount"]) == total - 500
    await server.pay(order["number"], total - 500, "EUR", today)
    await crm_client.mutate(PULL, {"id": connection})
    again = await crm_client.mutate(PULL, {"id": connection})
    assert again["applied"] == 0
    state = (await crm_client.execute(STATE, {"id": order["id"]}))["node"]
    assert state["paymentStatus"] == "PAID" and Decimal(state["paidAmount"]["amount"]) == total

    # A second order, cancelled after it was booked, is reversed in the books, not deleted.
    other = (await crm_client.mutate(ORDER, {"input": {"customerId": customer, "currency": "EUR", "taxRate": "19",
                                                       "status": "CONFIRMED", "lineItems": lines[:1]}}))["order"]
    await crm_events.deliver(check=False)
    await crm_client.mutate("mutation($id: ID!) { updateOrderStatus(id: $id, status: CANCELLED) { errors { code } } }", {"id": other["id"]})
    await crm_events.deliver(check=False)
    assert [s["status"] for s in (await crm_client.execute(STATE, {"id": other["id"]}))["node"]["financeSync"]] == ["CANCELLED"]
    server.check()

    report = (await crm_client.execute(
        "query($id: ID!, $d: Date!) { financeReconciliation(connectionId: $id, from: $d, to: $d) { clean "
        "missingRemote { number } mismatches { reference problem } crmTotals { amount currency } } }",
        {"id": connection, "d": today.isoformat()}))["financeReconciliation"]
    assert report["missingRemote"] == [] and report["mismatches"] == [], report


async def test_a_currency_the_books_do_not_have_fails_clearly_and_is_not_retried(hledger_server, crm_client, crm_db, crm_events):
    await _unique_numbers(crm_db)
    await crm_client.mutate(CONNECT, {"input": {"name": "hledger", "backend": "hledger", "config": hledger_server.config}})
    customer = (await crm_client.mutate("mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } errors { code } } }",
                                        {"i": {"kind": "PERSON", "lastName": "Tanaka"}}))["customer"]["id"]
    order = (await crm_client.mutate(ORDER, {"input": {"customerId": customer, "currency": "JPY", "status": "CONFIRMED", "lineItems": [
        {"description": "Tea", "quantity": "1", "unitPrice": {"amount": "5000", "currency": "JPY"}}]}}))["order"]
    await crm_events.deliver(check=False)
    sync = (await crm_client.execute(STATE, {"id": order["id"]}))["node"]["financeSync"]
    assert sync[0]["status"] == "FAILED" and "JPY" in sync[0]["lastError"]
    assert await hledger_server.invoices_for(order["number"]) == []
    from crm_graph.core.events import EventDelivery, DeliveryStatus

    async with crm_db.reader() as session:
        statuses = list(await session.scalars(sa.select(EventDelivery.status).where(EventDelivery.subscriber.startswith("finance:"))))
    assert DeliveryStatus.DEAD in statuses  # not worth retrying: dead-lettered at once, retryFinanceSync after a fix


async def test_the_finance_commands_sync_pull_and_reconcile(hledger_server, crm_client, crm_db, crm_settings):
    import asyncio
    import sys
    from pathlib import Path

    from crm_graph.testing.auth import TEST_SECRET

    await _unique_numbers(crm_db)
    await crm_client.mutate(CONNECT, {"input": {"name": "books", "backend": "hledger", "config": hledger_server.config}})
    customer = (await crm_client.mutate("mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } errors { code } } }",
                                        {"i": {"kind": "PERSON", "lastName": "Okafor"}}))["customer"]["id"]
    order = (await crm_client.mutate(ORDER, {"input": {"customerId": customer, "currency": "EUR", "status": "CONFIRMED", "lineItems": [
        {"description": "Audit", "quantity": "1", "unitPrice": {"amount": "700.00", "currency": "EUR"}}]}}))["order"]
    cli = str(Path(sys.executable).with_name("crm-graph"))
    env = {"PATH": "/usr/bin:/bin", "CRM_DATABASE_URL": crm_settings.database_url, "CRM_SECRET_KEY": TEST_SECRET,
           "CRM_DATA_DIR": str(crm_settings.data_dir), "HOME": str(crm_settings.data_dir)}

    async def run(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(cli, "finance", *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.STDOUT)
        out, _ = await process.communicate()
        return process.returncode, out.decode()

    today = date.today().isoformat()
    code, out = await run("reconcile", "--connection", "books", "--from", today, "--to", today)
    assert code == 1 and order["number"] in out and "Orders without an invoice (1)" in out, out
    code, out = await run("sync")  # no dispatcher ran: the command catches up
    assert code == 0 and "books: 1 of 1 orders synced" in out, out
    assert len(await hledger_server.invoices_for(order["number"])) == 1
    await hledger_server.pay(order["number"], Decimal("700.00"), "EUR", date.today())
    code, out = await run("pull")
    assert code == 0 and "1 recorded" in out, out
    state = (await crm_client.execute(STATE, {"id": order["id"]}))["node"]
    assert state["paymentStatus"] == "PAID"
    code, out = await run("reconcile", "--connection", "books", "--from", today, "--to", today)
    assert "Orders without an invoice (0)" in out and "Disagreements (0)" in out, out
