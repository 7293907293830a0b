"""The Tryton backend against a real Tryton 8.2 (started once for the file by ``tryton_server``).

Invoices are dated today (Tryton numbers a fiscal year's invoices in date order), except where
a test needs another year.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from counterparts.tryton import TrytonServer, tryton_server  # noqa: F401
from crm_finance.backends.tryton import TrytonBackend, TrytonConnection
from crm_graph.core.accounting import (
    AccountingBackend,
    AccountingConnection,
    AccountingError,
    InvoiceLine,
    InvoiceRequest,
    Party,
)

# Touches no CRM database: runs in the --db sqlite pass of `make test` only.
pytestmark = pytest.mark.one_pass

TODAY = date.today()
CENT = Decimal("0.01")
THREE_LINES = (("Widget", "2", "1250.00"), ("Gadget", "3", "99.90"), ("Bolt", "10", "15.50"))


def order(lines: Iterable[tuple[str, str, str]] = THREE_LINES, *, rate: str = "19", currency: str = "EUR",
          issued: date = TODAY, customer: str = "CRM-C-1", reference: str | None = None,
          nets: Iterable[str] | None = None) -> InvoiceRequest:
    items = []
    nets = list(nets) if nets is not None else None
    for i, (description, quantity, price) in enumerate(lines):
        net = Decimal(nets[i]) if nets else (Decimal(quantity) * Decimal(price)).quantize(CENT, ROUND_HALF_UP)
        items.append(InvoiceLine(description, Decimal(quantity), Decimal(price), net))
    net = sum((item.net for item in items), Decimal(0))
    tax = (net * Decimal(rate) / 100).quantize(CENT, ROUND_HALF_UP)
    return InvoiceRequest(
        reference=reference or f"SO-{TODAY.year}-{uuid.uuid4().hex[:8].upper()}",
        party=Party(customer, "Müller Maschinenbau GmbH", "einkauf@mueller.example", ("Hauptstraße 5", "80331 München"),
                    "DE"),
        currency=currency, issued=issued, lines=items, net=net, tax_rate=Decimal(rate), tax=tax, total=net + tax)


@pytest.fixture
async def books(tryton_server: TrytonServer) -> AsyncIterator[TrytonConnection]:  # noqa: F811
    connection = TrytonBackend().connect(tryton_server.config, tryton_server.secrets)
    yield connection
    await connection.aclose()


def connect(server: TrytonServer, **changes: Any) -> TrytonConnection:
    config = dict(server.config, **changes)
    return TrytonBackend().connect(config, server.secrets)


def totals(move_lines: list[dict[str, Any]]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for line in move_lines:
        out[line["account"]] = out.get(line["account"], Decimal(0)) + line["debit"] - line["credit"]
    return out


class DroppingProxy:
    """A TCP proxy on loopback in front of Tryton that, once armed with a marker, forwards the next
    request containing it, waits for Tryton's answer (so the work is done and committed) and hangs
    up on the client instead of passing the answer on: the answer is lost."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.marker: bytes | None = None
        self.dropped = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> DroppingProxy:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        drop = asyncio.Event()

        async def to_server() -> None:
            tail = b""
            while data := await reader.read(65536):
                seen, tail = tail + data, (tail + data)[-200:]
                if self.marker and self.marker in seen:
                    self.marker = None
                    drop.set()
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def to_client() -> None:
            while data := await up_reader.read(65536):
                if drop.is_set():
                    self.dropped += 1
                    writer.transport.abort()
                    return
                writer.write(data)
                await writer.drain()
            writer.close()

        await asyncio.gather(to_server(), to_client(), return_exceptions=True)
        up_writer.close()


# -- the backend ---------------------------------------------------------------------------------


def test_backend_follows_the_protocol(tryton_server: TrytonServer) -> None:  # noqa: F811
    backend = TrytonBackend()
    assert isinstance(backend, AccountingBackend)
    assert backend.name == "tryton" and backend.secret_keys == {"password"}
    assert isinstance(backend.connect(tryton_server.config, tryton_server.secrets), AccountingConnection)


async def test_post_invoice_books_one_balanced_posted_invoice(tryton_server: TrytonServer,  # noqa: F811
                                                              books: TrytonConnection) -> None:
    request = order()
    assert (request.net, request.tax, request.total) == (Decimal("2954.70"), Decimal("561.39"), Decimal("3516.09"))
    remote = await books.post_invoice(request)
    assert remote.reference == request.reference and remote.state == "posted"
    assert remote.total == Decimal("3516.09") and remote.currency == "EUR" and remote.issued == TODAY
    assert remote.number and remote.number.startswith(f"INV/{TODAY.year}/")

    (held,) = await tryton_server.invoices_for(request.reference)
    assert held["id"] == int(remote.remote_id) and held["number"] == remote.number
    assert held["state"] == "posted" and held["move_state"] == "posted" and held["party"] == "CRM-C-1"
    assert (held["untaxed"], held["tax"], held["total"]) == (request.net, request.tax, request.total)
    assert [(line["description"], line["amount"]) for line in held["lines"]] == [
        ("Widget", Decimal("2500.00")), ("Gadget", Decimal("299.70")), ("Bolt", Decimal("155.00"))]
    lines = held["move_lines"]
    assert sum(line["debit"] for line in lines) == sum(line["credit"] for line in lines) == Decimal("3516.09")
    accounts = tryton_server.accounts
    assert totals(lines) == {accounts["receivable"]: Decimal("3516.09"), accounts["revenue"]: Decimal("-2954.70"),
                             accounts["tax"]: Decimal("-561.39")}
    assert sorted(line["credit"] for line in lines if line["account"] == accounts["revenue"]) == [
        Decimal("155.00"), Decimal("299.70"), Decimal("2500.00")]
    assert await books.find_invoice(request.reference) == remote


async def test_posting_again_returns_the_first_invoice(tryton_server: TrytonServer,  # noqa: F811
                                                       books: TrytonConnection) -> None:
    request = order()
    first = await books.post_invoice(request)
    assert await books.post_invoice(request) == first
    fresh = connect(tryton_server)
    try:
        assert await fresh.post_invoice(request) == first
    finally:
        await fresh.aclose()
    assert len(await tryton_server.invoices_for(request.reference)) == 1


@pytest.mark.parametrize("lost", ["model.account.invoice.post", "model.account.invoice.create"])
async def test_a_lost_answer_then_the_retry_finds_the_first(tryton_server: TrytonServer, lost: str) -> None:  # noqa: F811
    request = order(customer="CRM-C-LOST")
    async with DroppingProxy(tryton_server.port) as proxy:
        connection = connect(tryton_server, url=proxy.url)
        try:
            proxy.marker = f'"{lost}"'.encode()
            with pytest.raises(AccountingError) as lost_answer:
                await connection.post_invoice(request)
            assert lost_answer.value.retry is True and proxy.dropped == 1
            retried = await connection.post_invoice(request)
        finally:
            await connection.aclose()
    (held,) = await tryton_server.invoices_for(request.reference)
    assert held["state"] == "posted" and held["id"] == int(retried.remote_id) and held["total"] == request.total


async def test_amounts_are_the_crm_s_to_the_cent(tryton_server: TrytonServer,  # noqa: F811
        books: TrytonConnection) -> None:
    # A discounted line whose net is not quantity x a four-place price goes as one unit at its net;
    # 91.50 x 19 % = 17.385: the CRM rounds half up (17.39), Tryton half even (17.38).
    request = order([("Washer", "1", "1.51"), ("Consulting", "3", "33.33")], nets=["1.51", "89.99"])
    assert (request.net, request.tax) == (Decimal("91.50"), Decimal("17.39"))
    remote = await books.post_invoice(request)
    (held,) = await tryton_server.invoices_for(request.reference)
    assert [(line["description"], line["amount"]) for line in held["lines"]] == [
        ("Washer", Decimal("1.51")), ("Consulting (3 x 33.33)", Decimal("89.99"))]
    assert (held["untaxed"], held["tax"], held["total"]) == (Decimal("91.50"), Decimal("17.39"), Decimal("108.89"))
    assert remote.total == Decimal("108.89")
    assert totals(held["move_lines"])[tryton_server.accounts["tax"]] == Decimal("-17.39")


async def test_another_currency_with_a_rate_books_in_it(tryton_server: TrytonServer,  # noqa: F811
                                                        books: TrytonConnection) -> None:
    request = order([("Widget", "1", "100.00")], currency="USD")
    remote = await books.post_invoice(request)
    assert (remote.currency, remote.total) == ("USD", Decimal("119.00"))
    (held,) = await tryton_server.invoices_for(request.reference)
    assert held["currency"] == "USD" and held["move_state"] == "posted"


async def test_cancel_twice_books_one_credit_note(tryton_server: TrytonServer,  # noqa: F811
        books: TrytonConnection) -> None:
    request = order()
    posted = await books.post_invoice(request)
    first = await books.cancel_invoice(request.reference, "customer withdrew")
    second = await books.cancel_invoice(request.reference, "customer withdrew")
    assert first is not None and second == first
    assert first.state == "cancelled" and first.remote_id == posted.remote_id
    assert (await books.find_invoice(request.reference)).state == "cancelled"  # type: ignore[union-attr]
    assert await books.post_invoice(request) == first  # a cancelled order is not booked again
    (held,) = await tryton_server.invoices_for(request.reference)
    assert held["state"] == "cancelled"
    (note,) = held["credit_notes"]
    assert note["total"] == -request.total and note["state"] == "paid"  # reconciled with the invoice
    assert note["number"].startswith(f"CN/{TODAY.year}/") and "customer withdrew" in note["description"]
    assert totals(note["move_lines"]) == {key: -value for key, value in totals(held["move_lines"]).items()}
    assert await books.cancel_invoice(f"SO-NONE-{uuid.uuid4().hex[:6]}", "x") is None


async def test_payments_partial_then_the_rest(tryton_server: TrytonServer,  # noqa: F811
        books: TrytonConnection) -> None:
    request = order()
    await books.post_invoice(request)
    await tryton_server.pay(request.reference, Decimal("1000.00"), "EUR", TODAY)
    await tryton_server.pay(request.reference, Decimal("2516.09"), "EUR", TODAY)
    assert (await books.find_invoice(request.reference)).state == "paid"  # type: ignore[union-attr]

    page = await books.payments_since(None)
    mine = [p for p in page.payments if p.reference == request.reference]
    assert sorted(p.amount for p in mine) == [Decimal("1000.00"), Decimal("2516.09")]
    assert all(p.currency == "EUR" and p.paid_at == datetime.combine(TODAY, datetime.min.time(), UTC) for p in mine)
    assert len({p.external_id for p in mine}) == 2
    again = await books.payments_since(None)
    assert [p for p in again.payments if p.reference == request.reference] == mine  # same ids at every read
    assert page.checkpoint is not None
    assert (await books.payments_since(page.checkpoint)).payments == []

    later = order([("Widget", "1", "10.00")])
    await books.post_invoice(later)
    await tryton_server.pay(later.reference, Decimal("11.90"), "EUR", TODAY)
    news = await books.payments_since(page.checkpoint)
    assert [(p.reference, p.amount) for p in news.payments] == [(later.reference, Decimal("11.90"))]
    assert (await books.payments_since(news.checkpoint)).payments == []
    other = connect(tryton_server)  # a checkpoint is the books', not the connection's
    try:
        assert (await other.payments_since(news.checkpoint)).payments == []
    finally:
        await other.aclose()
    with pytest.raises(AccountingError) as bad:
        await books.payments_since("not a checkpoint")
    assert bad.value.retry is False

    # Refunded after payment: a credit note beside the paid invoice; the payments stay as they were.
    cancelled = await books.cancel_invoice(request.reference, "refunded")
    assert cancelled is not None and cancelled.state == "cancelled"
    assert await books.cancel_invoice(request.reference, "refunded") == cancelled
    (held,) = await tryton_server.invoices_for(request.reference)
    (note,) = held["credit_notes"]
    assert note["state"] == "posted" and note["total"] == -request.total and "refunded" in note["description"]
    assert [p for p in (await books.payments_since(None)).payments if p.reference == request.reference] == mine


async def test_invoices_of_a_period_show_strays(tryton_server: TrytonServer,  # noqa: F811
        books: TrytonConnection) -> None:
    year = TODAY.year - 1  # a fiscal year of its own, so its dates may precede this year's invoices
    inside = order([("Widget", "1", "100.00")], issued=date(year, 1, 10))
    cancelled = order([("Gadget", "2", "20.00")], issued=date(year, 1, 12))
    await books.post_invoice(inside)
    await books.post_invoice(cancelled)
    await books.cancel_invoice(cancelled.reference, "wrong customer")
    stray = await tryton_server.book_invoice(Decimal("42.00"), date(year, 1, 14))

    listed = await books.invoices(date(year, 1, 1), date(year, 1, 31))
    assert sorted((i.reference, i.total, i.state) for i in listed) == sorted([
        ("", Decimal("42.00"), "posted"), (inside.reference, Decimal("119.00"), "posted"),
        (cancelled.reference, Decimal("47.60"), "cancelled")])  # its credit note is not listed apart
    assert {i.number for i in listed if not i.reference} == {stray}
    assert {i.issued for i in listed} == {date(year, 1, 10), date(year, 1, 12), date(year, 1, 14)}
    assert [i.reference for i in await books.invoices(date(year, 1, 1), date(year, 1, 11))] == [inside.reference]
    assert [i.reference for i in await books.invoices(date(year, 1, 13), date(year, 1, 14))] == [""]


# -- configuration and failures -------------------------------------------------------------------


def test_check_config_lists_every_problem() -> None:
    backend = TrytonBackend()
    good = {"url": "http://127.0.0.1:8000", "database": "crm", "username": "admin",
            "accounts": {"receivable": "1.2.1", "revenue": "4.1.1", "tax": "6.3.4"}}
    assert backend.check_config(good) == []
    assert backend.check_config(dict(good, tax="VAT 19 %", journal="REV", timeout=5)) == []
    assert sorted(key for key, _ in backend.check_config({})) == ["accounts", "database", "url", "username"]
    problems = dict(backend.check_config({
        "url": "ftp://books", "database": "", "username": 7, "accounts": {"receivable": "1.2.1", "tax": " "},
        "timeout": -1, "journal": ""}))
    assert set(problems) == {"url", "database", "username", "accounts.revenue", "accounts.tax", "timeout", "journal"}
    assert "ftp://books" in problems["url"]
    with_password = backend.check_config(dict(good, url="http://admin:hunter2@127.0.0.1:8000"))
    assert dict(with_password)["url"].startswith("the address must not hold a user or password")
    assert "hunter2" not in str(with_password)
    assert dict(backend.check_config(dict(good, accounts=["1.2.1"]))) == {
        "accounts": "must be an object {receivable, revenue, tax}"}
    assert [key for key, _ in backend.check_config(dict(good, timeout=True))] == ["timeout"]
    with pytest.raises(AccountingError) as missing:
        backend.connect(good, {})
    assert missing.value.retry is False and missing.value.field == "password"
    with pytest.raises(AccountingError) as bad:
        backend.connect(dict(good, url="nope"), {"password": "x"})
    assert bad.value.field == "url"


async def test_an_unknown_account_is_final(tryton_server: TrytonServer) -> None:  # noqa: F811
    connection = connect(tryton_server, accounts=dict(tryton_server.config["accounts"], revenue="9.9.9"))
    request = order()
    try:
        with pytest.raises(AccountingError) as failure:
            await connection.post_invoice(request)
    finally:
        await connection.aclose()
    assert failure.value.retry is False and failure.value.field == "accounts.revenue"
    assert "9.9.9" in failure.value.message
    assert await tryton_server.invoices_for(request.reference) == []


async def test_an_account_of_the_wrong_kind_is_final(tryton_server: TrytonServer) -> None:  # noqa: F811
    connection = connect(tryton_server, accounts=dict(tryton_server.config["accounts"], receivable="4.1.1"))
    try:
        with pytest.raises(AccountingError) as failure:
            await connection.post_invoice(order())
    finally:
        await connection.aclose()
    assert failure.value.retry is False and failure.value.field == "accounts.receivable"
    assert "not of a receivable type" in failure.value.message


@pytest.mark.parametrize(("currency", "words"), [("JPY", "no currency JPY"), ("GBP", "no exchange rate for GBP")])
async def test_a_currency_the_books_lack_is_final(tryton_server: TrytonServer, books: TrytonConnection,  # noqa: F811
                                                  currency: str, words: str) -> None:
    request = order(currency=currency)
    with pytest.raises(AccountingError) as failure:
        await books.post_invoice(request)
    assert failure.value.retry is False and words in failure.value.message
    assert await tryton_server.invoices_for(request.reference) == []


async def test_a_tax_rate_the_books_lack_is_final(tryton_server: TrytonServer,  # noqa: F811
        books: TrytonConnection) -> None:
    with pytest.raises(AccountingError) as failure:
        await books.post_invoice(order(rate="16"))
    assert failure.value.retry is False and "16 % tax" in failure.value.message


async def test_a_closed_period_is_final_and_leaves_no_draft(tryton_server: TrytonServer,  # noqa: F811
                                                            books: TrytonConnection) -> None:
    request = order(issued=date(2020, 5, 4))
    with pytest.raises(AccountingError) as failure:
        await books.post_invoice(request)
    assert failure.value.retry is False
    assert request.reference in failure.value.message and 'reopen the period "2020-05"' in failure.value.message
    assert await books.find_invoice(request.reference) is None
    assert [(h["state"], h["number"]) for h in await tryton_server.invoices_for(request.reference)] == [
        ("cancelled", None)]  # the draft is cancelled, not deleted, and was never numbered


async def test_an_inconsistent_order_is_refused_before_anything_is_sent(books: TrytonConnection) -> None:
    request = order()
    broken = InvoiceRequest(request.reference, request.party, request.currency, request.issued, request.lines,
                            request.net + 1, request.tax_rate, request.tax, request.total)
    with pytest.raises(AccountingError) as failure:
        await books.post_invoice(broken)
    assert failure.value.retry is False and "add up to" in failure.value.message


async def test_bad_credentials_are_final_and_not_shown(tryton_server: TrytonServer) -> None:  # noqa: F811
    wrong = "not-the-password-" + uuid.uuid4().hex[:6]
    connection = TrytonBackend().connect(tryton_server.config, {"password": wrong})
    try:
        with pytest.raises(AccountingError) as failure:
            await connection.find_invoice("SO-1")
    finally:
        await connection.aclose()
    assert failure.value.retry is False and failure.value.field == "password"
    assert "refused the login" in failure.value.message and wrong not in failure.value.message
    with pytest.raises(AccountingError) as unknown:
        connection = connect(tryton_server, database="nosuch")
        try:
            await connection.find_invoice("SO-1")
        finally:
            await connection.aclose()
    assert unknown.value.retry is False and unknown.value.field == "database"


async def test_the_server_stopped_is_retried_and_then_books(tryton_server: TrytonServer,  # noqa: F811
                                                            books: TrytonConnection) -> None:
    await books.find_invoice("SO-warm-up")  # a session before the restart
    request = order()
    tryton_server.stop()
    try:
        with pytest.raises(AccountingError) as failure:
            await books.post_invoice(request)
        assert failure.value.retry is True and "cannot reach Tryton" in failure.value.message
        assert tryton_server.password not in failure.value.message
    finally:
        tryton_server.start()
    remote = await books.post_invoice(request)
    assert remote.state == "posted" and len(await tryton_server.invoices_for(request.reference)) == 1


async def test_two_at_a_time_for_a_new_customer(tryton_server: TrytonServer,  # noqa: F811
                                                     books: TrytonConnection) -> None:
    requests = [order([("Widget", "1", f"{10 + i}.00")], customer="CRM-C-PARALLEL") for i in range(2)]
    remotes = await asyncio.gather(*(books.post_invoice(r) for r in requests))
    assert len({r.remote_id for r in remotes}) == 2
    for request, remote in zip(requests, remotes, strict=True):
        (held,) = await tryton_server.invoices_for(request.reference)
        assert held["id"] == int(remote.remote_id) and held["total"] == request.total
    assert len(tryton_server.read("party.party", [("code", "=", "CRM-C-PARALLEL")], ["name"])) == 1


def test_the_books_are_consistent_at_the_end(tryton_server: TrytonServer) -> None:  # noqa: F811
    tryton_server.check()
