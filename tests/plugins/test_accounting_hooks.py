"""``crm_accounting_backends``, as a partner uses it beside the finance plugin (plugins/crm_finance):
a partner's books (a ledger of its own, kept in the test process: the partner's program) receive
confirmed orders once, reverse cancelled ones, and give payments back, which reach the orders
once; credentials are stored encrypted and never shown; a failing backend leaves a FAILED sync
with its message. The built-in backends are tested against the real programs in
plugins/crm_finance/tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from crm_graph import hookimpl
from crm_graph.core.accounting import AccountingError, PaymentPage, RemoteInvoice, RemotePayment
from crm_graph.plugins import PluginError

CONNECT = """
mutation($input: CreateFinanceConnectionInput!) {
  createFinanceConnection(input: $input) { financeConnection { id name backend config credentials pushStatuses } errors { field code message } }
}
"""
ORDER = """
mutation($input: CreateOrderInput!) { createOrder(input: $input) { order { id number total { amount currency } } errors { field code message } } }
"""
SYNC = "query($id: ID!) { node(id: $id) { ... on Order { paymentStatus paidAmount { amount } financeSync { status remoteId remoteNumber lastError attempts unapplied { amount currency } connection { name } } } } }"


@dataclass
class Books:
    """The partner's ledger: invoices by reference, payments, and a switch to make it fail."""

    invoices: dict[str, RemoteInvoice] = field(default_factory=dict)
    posts: list[str] = field(default_factory=list)
    payments: list[RemotePayment] = field(default_factory=list)
    failing: str | None = None
    logins: list[dict] = field(default_factory=list)


class LedgerConnection:
    def __init__(self, books: Books) -> None:
        self.books = books

    def _fail(self) -> None:
        if self.books.failing:
            raise AccountingError(self.books.failing, retry=True)

    async def find_invoice(self, reference):  # noqa: ANN001, ANN201
        return self.books.invoices.get(reference)

    async def post_invoice(self, invoice):  # noqa: ANN001, ANN201
        self._fail()
        found = self.books.invoices.get(invoice.reference)
        if found is not None:
            return found
        self.books.posts.append(invoice.reference)
        made = RemoteInvoice(remote_id=f"inv-{len(self.books.posts)}", reference=invoice.reference, currency=invoice.currency,
                             total=invoice.total, number=f"L{len(self.books.posts):04d}", issued=invoice.issued)
        self.books.invoices[invoice.reference] = made
        return made

    async def cancel_invoice(self, reference, reason):  # noqa: ANN001, ANN201
        self._fail()
        found = self.books.invoices.get(reference)
        if found is None:
            return None
        cancelled = RemoteInvoice(**{**found.__dict__, "state": "cancelled"})
        self.books.invoices[reference] = cancelled
        return cancelled

    async def payments_since(self, checkpoint):  # noqa: ANN001, ANN201
        self._fail()
        start = int(checkpoint or 0)
        return PaymentPage(self.books.payments[start:], str(len(self.books.payments)))

    async def invoices(self, start, end):  # noqa: ANN001, ANN201
        return [i for i in self.books.invoices.values() if i.issued is None or start <= i.issued <= end]

    async def aclose(self) -> None:
        return None


class LedgerBackend:
    name = "ledgerbook"
    description = "The partner's own books."
    secret_keys = frozenset({"apiKey"})

    def __init__(self, books: Books) -> None:
        self.books = books

    def check_config(self, config):  # noqa: ANN001, ANN201
        return [] if config.get("url") else [("url", "url is the ledger's address.")]

    def connect(self, config, secrets):  # noqa: ANN001, ANN201
        self.books.logins.append(dict(secrets))
        return LedgerConnection(self.books)


class Partner:
    def __init__(self) -> None:
        self.books = Books()

    @hookimpl
    def crm_accounting_backends(self):  # noqa: ANN201
        return LedgerBackend(self.books)


class Twin:
    @hookimpl
    def crm_accounting_backends(self):  # noqa: ANN201
        backend = LedgerBackend(Books())
        backend.name = "fava"  # type: ignore[misc]
        return backend


async def _order(client, status: str = "CONFIRMED") -> dict:  # noqa: ANN001
    customer = (await client.mutate("mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } errors { code } } }",
                                    {"i": {"kind": "ORGANIZATION", "organizationName": "Acme"}}))["customer"]["id"]
    return (await client.mutate(ORDER, {"input": {"customerId": customer, "currency": "EUR", "taxRate": "19", "status": status,
                                                  "lineItems": [{"description": "Consulting", "quantity": "2",
                                                                 "unitPrice": {"amount": "500.00", "currency": "EUR"}}]}}))["order"]


async def test_hook_crm_accounting_backends_a_partners_books_get_orders_and_give_payments(server_factory, monkeypatch):
    partner = Partner()
    server = await server_factory(partner, entry_points=True)
    client = server.client
    bad = (await client.execute(CONNECT, {"input": {"name": "Books", "backend": "ledgerbook", "config": {}}}))["createFinanceConnection"]
    assert [(e["field"], e["code"]) for e in bad["errors"]] == [("config.url", "INVALID_VALUE")]
    unknown = (await client.execute(CONNECT, {"input": {"name": "Books", "backend": "sap", "config": {}}}))["createFinanceConnection"]
    assert [e["code"] for e in unknown["errors"]] == ["UNKNOWN_BACKEND"]

    made = (await client.mutate(CONNECT, {"input": {"name": "Books", "backend": "ledgerbook",
                                                    "config": {"url": "https://books.example", "apiKey": "s3cret"}}}))["financeConnection"]
    assert made["config"] == {"url": "https://books.example"} and made["credentials"] == ["stored (encrypted)"]
    assert "s3cret" not in str(await client.execute("{ financeConnections { config credentials } }"))
    from crm_finance.models import FinanceConnection

    async with server.app.state.db.reader() as session:
        stored = await session.scalar(sa.select(FinanceConnection.secrets))
    assert stored and b"s3cret" not in stored

    order = await _order(client)
    draft = await _order(client, status="PENDING")
    await server.dispatcher.drain()
    assert partner.books.posts == [order["number"]]  # the pending order is not pushed
    assert partner.books.logins[-1] == {"apiKey": "s3cret"}
    synced = (await client.execute(SYNC, {"id": order["id"]}))["node"]["financeSync"]
    assert synced == [{"status": "SYNCED", "remoteId": "inv-1", "remoteNumber": "L0001", "lastError": None, "attempts": 1,
                       "unapplied": None, "connection": {"name": "Books"}}]
    assert (await client.execute(SYNC, {"id": draft["id"]}))["node"]["financeSync"] == []

    # Asked again, the order is looked up and not booked twice.
    retried = await client.mutate("mutation($id: ID!) { retryFinanceSync(orderId: $id) { financeSync { status } errors { code } } }",
                                  {"id": order["id"]})
    assert retried["financeSync"] == [{"status": "SYNCED"}]
    await server.dispatcher.drain()
    assert partner.books.posts == [order["number"]]

    # Payments: a partial one, then the rest and more; each recorded once, the excess kept apart.
    paid = datetime(2026, 11, 23, 10, tzinfo=UTC)
    partner.books.payments.append(RemotePayment("p-1", order["number"], Decimal("400.00"), "EUR", paid))
    pull = "mutation($id: ID!) { pullFinancePayments(connectionId: $id) { seen applied already unmatched errors { code } } }"
    assert (await client.mutate(pull, {"id": made["id"]})) == {"seen": 1, "applied": 1, "already": 0, "unmatched": 0, "errors": []}
    partner.books.payments.append(RemotePayment("p-2", order["number"], Decimal("900.00"), "EUR", paid))
    partner.books.payments.append(RemotePayment("p-x", "SO-UNKNOWN", Decimal("5.00"), "EUR", paid))
    assert (await client.mutate(pull, {"id": made["id"]}))["applied"] == 1
    now = (await client.execute(SYNC, {"id": order["id"]}))["node"]
    assert now["paymentStatus"] == "PAID" and Decimal(now["paidAmount"]["amount"]) == Decimal("1190.00")
    assert now["financeSync"][0]["unapplied"] == {"amount": "110.00", "currency": "EUR"}  # 400 + 900 - 1,190
    # Read again from the start (a lost checkpoint): nothing is recorded twice.
    from crm_finance.models import FinanceConnection as Model

    async with server.app.state.db.writer() as session, session.begin():
        await session.execute(sa.update(Model).values(payments_checkpoint=None))
    again = await client.mutate(pull, {"id": made["id"]})
    assert again["seen"] == 3 and again["applied"] == 0 and again["already"] == 3

    report = (await client.execute(
        'query($id: ID!) { financeReconciliation(connectionId: $id, from: "2020-01-01", to: "2030-12-31") { clean '
        "missingRemote { number } missingLocal { reference } mismatches { reference problem } crmTotals { amount currency } "
        "remoteTotals { amount currency } } }", {"id": made["id"]}))["financeReconciliation"]
    assert report["clean"] and report["crmTotals"] == report["remoteTotals"] == [{"amount": "1190.00", "currency": "EUR"}]


async def test_hook_crm_accounting_backends_failures_are_kept_and_cancellations_reversed(server_factory, monkeypatch):
    partner = Partner()
    server = await server_factory(partner, entry_points=True)
    client = server.client
    monkeypatch.setenv("LEDGER_KEY", "from-env")
    conn = (await client.mutate(CONNECT, {"input": {"name": "Books", "backend": "ledgerbook",
                                                    "config": {"url": "https://books.example", "apiKeyEnv": "LEDGER_KEY"}}}))["financeConnection"]
    assert conn["credentials"] == ["apiKey: from $LEDGER_KEY"]
    partner.books.failing = "503 Service Unavailable: the ledger is closed for maintenance"
    order = await _order(client)
    await server.dispatcher.drain(max_rounds=1)
    failed = (await client.execute(SYNC, {"id": order["id"]}))["node"]["financeSync"][0]
    assert failed["status"] == "FAILED" and "closed for maintenance" in failed["lastError"] and failed["attempts"] == 1
    assert partner.books.logins[-1] == {"apiKey": "from-env"}

    partner.books.failing = None
    await client.mutate("mutation($id: ID!) { retryFinanceSync(orderId: $id) { errors { code } } }", {"id": order["id"]})
    await server.dispatcher.drain()
    assert (await client.execute(SYNC, {"id": order["id"]}))["node"]["financeSync"][0]["status"] == "SYNCED"
    assert partner.books.posts == [order["number"]]

    await client.mutate("mutation($id: ID!) { updateOrderStatus(id: $id, status: CANCELLED) { errors { code } } }", {"id": order["id"]})
    await server.dispatcher.drain()
    assert partner.books.invoices[order["number"]].state == "cancelled"
    assert (await client.execute(SYNC, {"id": order["id"]}))["node"]["financeSync"][0]["status"] == "CANCELLED"
    assert partner.books.posts == [order["number"]]  # reversed, never deleted or booked again


async def test_hook_crm_accounting_backends_two_of_one_name_stop_start_up(server_factory):
    with pytest.raises(PluginError, match="'fava' clashes"):
        await server_factory(Twin(), entry_points=True)

