"""The fava backend against a real fava (beancount 3) on loopback: invoices booked once, reversals
once, payments read with stable ids, the books' refusals and the network's failures typed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from counterparts.fava import FavaServer, fava_server  # noqa: F401
from crm_finance.backends.fava import FavaBackend, FavaConnection
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

BACKEND = FavaBackend()
LINES = (
    ("Drehmaschine DM-200", Decimal("2"), Decimal("1250.00")),
    ("Wartungsvertrag \"Premium\"", Decimal("3"), Decimal("99.90")),
    ("Kühlschmierstoff 5 l", Decimal("10"), Decimal("15.50")),
)


def reference() -> str:
    return f"SO-2026-{uuid.uuid4().hex[:8].upper()}"


def order(ref: str, *, currency: str = "EUR", issued: date = date(2026, 3, 2), tax_rate: Decimal = Decimal("19"),
          lines: tuple[tuple[str, Decimal, Decimal], ...] = LINES) -> InvoiceRequest:
    invoice_lines = [InvoiceLine(d, q, p, (q * p).quantize(Decimal("0.01"))) for d, q, p in lines]
    net = sum((line.net for line in invoice_lines), Decimal(0))
    tax = (net * tax_rate / 100).quantize(Decimal("0.01"))
    return InvoiceRequest(
        reference=ref,
        party=Party(reference="CRM-C-42", name="Müller Maschinenbau GmbH", email="ap@mueller.example", country="DE"),
        currency=currency, issued=issued, lines=invoice_lines, net=net, tax_rate=tax_rate, tax=tax, total=net + tax,
    )


@pytest.fixture
async def books(fava_server: FavaServer) -> AsyncIterator[FavaConnection]:  # noqa: F811
    connection = BACKEND.connect(fava_server.config, fava_server.secrets)
    yield connection
    await connection.aclose()


def test_backend_follows_the_protocol(fava_server: FavaServer) -> None:  # noqa: F811
    assert isinstance(BACKEND, AccountingBackend)
    assert BACKEND.name == "fava" and BACKEND.secret_keys == frozenset()
    assert isinstance(BACKEND.connect(fava_server.config, {}), AccountingConnection)


async def test_an_invoice_is_one_balanced_entry_with_the_reference(
    fava_server: FavaServer, books: FavaConnection  # noqa: F811
) -> None:
    ref = reference()
    request = order(ref)
    assert (request.net, request.tax, request.total) == (Decimal("2954.70"), Decimal("561.39"), Decimal("3516.09"))

    posted = await books.post_invoice(request)
    assert (posted.reference, posted.currency, posted.total, posted.state) == (ref, "EUR", Decimal("3516.09"), "posted")
    assert posted.issued == date(2026, 3, 2)

    [entry] = await fava_server.invoices_for(ref)
    assert entry["date"] == "2026-03-02" and ref in entry["links"] and entry["meta"]["crm-invoice"] == ref
    assert entry["payee"] == "Müller Maschinenbau GmbH"
    amounts = [(p["account"], p["amount"]) for p in entry["postings"]]
    assert amounts == [
        ("Assets:Receivables", (Decimal("3516.09"), "EUR")),
        ("Income:Sales", (Decimal("-2500.00"), "EUR")),
        ("Income:Sales", (Decimal("-299.70"), "EUR")),
        ("Income:Sales", (Decimal("-155.00"), "EUR")),
        ("Liabilities:VAT", (Decimal("-561.39"), "EUR")),
    ]
    assert sum(p["amount"][0] for p in entry["postings"]) == 0
    assert [p["meta"].get("description") for p in entry["postings"][1:4]] == [d for d, _, _ in LINES]

    again = await books.post_invoice(request)
    assert again.remote_id == posted.remote_id and again.total == posted.total
    assert len(await fava_server.invoices_for(ref)) == 1
    found = await books.find_invoice(ref)
    assert found is not None and found.remote_id == posted.remote_id
    assert await books.find_invoice(reference()) is None
    fava_server.check()


async def test_a_fresh_connection_finds_the_invoice_rather_than_booking_it_again(
    fava_server: FavaServer, books: FavaConnection  # noqa: F811
) -> None:
    ref = reference()
    first = await books.post_invoice(order(ref, tax_rate=Decimal("7")))
    other = BACKEND.connect(fava_server.config, {})
    try:
        second = await other.post_invoice(order(ref, tax_rate=Decimal("7")))
    finally:
        await other.aclose()
    assert second.remote_id == first.remote_id
    assert len(await fava_server.invoices_for(ref)) == 1


class DroppingProxy:
    """A TCP proxy on loopback to fava that, when armed, forwards a PUT and closes the client's side
    as soon as fava starts answering it: the entry is written, the answer is lost."""

    def __init__(self, port: int) -> None:
        self.upstream_port = port
        self.armed = False
        self.dropped = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> DroppingProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        put_pending = False

        async def to_upstream() -> None:
            nonlocal put_pending
            while data := await client_reader.read(65536):
                if data.startswith(b"PUT "):
                    put_pending = True
                upstream_writer.write(data)
                await upstream_writer.drain()

        async def to_client() -> None:
            nonlocal put_pending
            while data := await upstream_reader.read(65536):
                if put_pending and self.armed:
                    self.armed = False
                    self.dropped += 1
                    client_writer.transport.abort()
                    return
                put_pending = False
                client_writer.write(data)
                await client_writer.drain()

        tasks = [asyncio.create_task(to_upstream()), asyncio.create_task(to_client())]
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_writer, upstream_writer):
            writer.close()


async def test_a_lost_answer_is_found_on_retry_not_booked_twice(fava_server: FavaServer) -> None:  # noqa: F811
    ref = reference()
    async with DroppingProxy(fava_server.port) as proxy:
        connection = BACKEND.connect({**fava_server.config, "url": proxy.url}, {})
        try:
            proxy.armed = True
            with pytest.raises(AccountingError) as lost:
                await connection.post_invoice(order(ref))
            assert proxy.dropped == 1 and lost.value.retry is True
            assert len(await fava_server.invoices_for(ref)) == 1  # written though the answer was lost

            retried = await connection.post_invoice(order(ref))
            assert retried.reference == ref and retried.total == Decimal("3516.09")
            assert len(await fava_server.invoices_for(ref)) == 1

            # A cancel whose answer is lost reverses once too.
            proxy.armed = True
            with pytest.raises(AccountingError):
                await connection.cancel_invoice(ref, "duplicate order")
            cancelled = await connection.cancel_invoice(ref, "duplicate order")
            assert cancelled is not None and cancelled.state == "cancelled"
            assert len(await fava_server.reversals_for(ref)) == 1
        finally:
            await connection.aclose()
    fava_server.check()


async def test_an_invoice_fava_has_not_reloaded_yet_is_not_booked_again(
    fava_server: FavaServer, books: FavaConnection, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """The invoice is in fava's file but fava still serves the ledger from before (a reload in
    progress for another request). That moment cannot be timed from outside, so the journal reads
    of this connection are made to miss the link the first times; the file on disk is real."""
    ref = reference()
    await books.post_invoice(order(ref))
    real_journal = books._journal
    stale_reads = {"left": 100}

    async def stale_journal(*args: Any, **kwargs: Any) -> Any:
        entries, linked, facts = await real_journal(*args, **kwargs)
        if stale_reads["left"] > 0:
            stale_reads["left"] -= 1
            return [], 0, facts
        return entries, linked, facts

    monkeypatch.setattr(books, "_journal", stale_journal)
    with pytest.raises(AccountingError) as stale:
        await books.post_invoice(order(ref))
    assert stale.value.retry is True and "not loaded the latest changes" in stale.value.message
    with pytest.raises(AccountingError):
        await books.cancel_invoice(ref, "stale view")
    assert len(await fava_server.invoices_for(ref)) == 1 and await fava_server.reversals_for(ref) == []

    stale_reads["left"] = 2  # fava catches up while the backend waits
    again = await books.post_invoice(order(ref))
    assert again.reference == ref and len(await fava_server.invoices_for(ref)) == 1


async def test_cancel_twice_books_one_reversal(fava_server: FavaServer, books: FavaConnection) -> None:  # noqa: F811
    ref = reference()
    posted = await books.post_invoice(order(ref))
    first = await books.cancel_invoice(ref, "customer withdrew")
    second = await books.cancel_invoice(ref, "customer withdrew")
    assert first is not None and second is not None
    assert first.state == second.state == "cancelled" and first.remote_id == second.remote_id == posted.remote_id

    [reversal] = await fava_server.reversals_for(ref)
    [invoice] = await fava_server.invoices_for(ref)
    assert ref in reversal["links"] and reversal["meta"]["crm-reversal-of"] == ref
    assert "customer withdrew" in reversal["narration"]
    assert sorted((p["account"], -p["amount"][0]) for p in reversal["postings"]) == sorted(
        (p["account"], p["amount"][0]) for p in invoice["postings"]
    )
    found = await books.find_invoice(ref)
    assert found is not None and found.state == "cancelled"
    assert await books.cancel_invoice(reference(), "never booked") is None
    fava_server.check()


async def test_partial_payments_read_once_with_stable_ids(
    fava_server: FavaServer, books: FavaConnection  # noqa: F811
) -> None:
    ref = reference()
    await books.post_invoice(order(ref))  # 3516.09 EUR
    await fava_server.pay(ref, Decimal("1000.00"), "EUR", date(2026, 3, 10))
    await fava_server.pay(ref, Decimal("2516.09"), "EUR", date(2026, 3, 20))

    page = await books.payments_since(None)
    mine = [p for p in page.payments if p.reference == ref]
    assert sorted((p.amount, p.currency, p.paid_at.date()) for p in mine) == [
        (Decimal("1000.00"), "EUR", date(2026, 3, 10)),
        (Decimal("2516.09"), "EUR", date(2026, 3, 20)),
    ]
    assert len({p.external_id for p in mine}) == 2
    again = await books.payments_since(None)
    assert {p.external_id for p in again.payments if p.reference == ref} == {p.external_id for p in mine}
    found = await books.find_invoice(ref)
    assert found is not None and found.state == "paid"

    assert page.checkpoint is not None
    assert (await books.payments_since(page.checkpoint)).payments == []

    # Two equal payments on one day are two payments; what came before the checkpoint stays out.
    other = reference()
    await books.post_invoice(order(other, lines=(("Beratung", Decimal("1"), Decimal("100.00")),)))
    await fava_server.pay(other, Decimal("50.00"), "EUR", date(2026, 3, 21))
    await fava_server.pay(other, Decimal("50.00"), "EUR", date(2026, 3, 21))
    later = await books.payments_since(page.checkpoint)
    assert sorted((p.reference, p.amount) for p in later.payments) == [(other, Decimal("50.00"))] * 2
    assert len({p.external_id for p in later.payments}) == 2
    assert (await books.payments_since(later.checkpoint)).payments == []
    everything = await books.payments_since(None)
    assert {p.external_id for p in later.payments} <= {p.external_id for p in everything.payments}

    # A payment linked to no CRM invoice is not the CRM's.
    await fava_server.pay("unrelated-transfer", Decimal("5.00"), "EUR", date(2026, 3, 22))
    assert (await books.payments_since(later.checkpoint)).payments == []

    with pytest.raises(AccountingError) as bad:
        await books.payments_since("not a checkpoint")
    assert bad.value.retry is False
    fava_server.check()


async def test_invoices_of_a_period_include_strays(
    fava_server: FavaServer, books: FavaConnection  # noqa: F811
) -> None:
    april, may = reference(), reference()
    await books.post_invoice(order(april, issued=date(2026, 4, 1)))
    await books.post_invoice(order(may, issued=date(2026, 5, 1)))

    listed = await books.invoices(date(2026, 2, 1), date(2026, 4, 30))
    by_reference = {i.reference: i for i in listed}
    assert april in by_reference and may not in by_reference
    assert by_reference[april].total == Decimal("3516.09") and by_reference[april].issued == date(2026, 4, 1)
    strays = [i for i in listed if i.reference == ""]
    assert [(s.total, s.currency, s.issued) for s in strays] == [(Decimal("59.50"), "EUR", date(2026, 2, 10))]
    assert all(date(2026, 2, 1) <= i.issued <= date(2026, 4, 30) for i in listed if i.issued)
    assert [i.reference for i in await books.invoices(date(2026, 5, 1), date(2026, 5, 1))] == [may]


def test_check_config_names_every_problem() -> None:
    assert BACKEND.check_config({}) == [
        ("url", "the address of fava is required, e.g. http://127.0.0.1:5000"),
        ("ledger", "the ledger's slug in fava's URLs is required (from its option \"title\", e.g. crm-books)"),
        ("accounts", "an object with the accounts receivable, revenue, tax and bank is required"),
    ]
    problems = BACKEND.check_config({
        "url": "http://admin:hunter2@fava.example", "ledger": "crm books",
        "accounts": {"receivable": "Assets:Receivables", "revenue": "sales", "bank": 7}, "timeout": -1,
    })
    assert [key for key, _ in problems] == ["url", "ledger", "accounts.revenue", "accounts.tax", "accounts.bank",
                                            "timeout"]
    assert not any("hunter2" in message for _, message in problems)
    assert [k for k, _ in BACKEND.check_config({"url": "ftp://x", "ledger": "b", "accounts": {
        role: "Assets:X" for role in ("receivable", "revenue", "tax", "bank")}})] == ["url"]
    good = {"url": "https://books.example/fava", "ledger": "crm-books", "timeout": 5,
            "accounts": {"receivable": "Assets:Receivables:Kunden", "revenue": "Income:Sales", "tax": "Liabilities:VAT",
                         "bank": "Assets:Bank:Giro-1"}}
    assert BACKEND.check_config(good) == []
    with pytest.raises(AccountingError) as refused:
        BACKEND.connect({**good, "accounts": {**good["accounts"], "tax": "vat"}}, {})
    assert refused.value.retry is False and refused.value.field == "accounts.tax"


@pytest.mark.parametrize(
    ("accounts", "currency", "issued", "field", "words"),
    [
        ({"revenue": "Income:Nope"}, "EUR", date(2026, 3, 2), "accounts.revenue", "no account Income:Nope"),
        ({}, "CHF", date(2026, 3, 2), None, "do not have the currency CHF"),
        ({"revenue": "Income:Consulting"}, "EUR", date(2026, 3, 2), "accounts.revenue", "takes USD, not EUR"),
        ({"revenue": "Income:Legacy"}, "EUR", date(2026, 3, 2), "accounts.revenue", "closed on 2024-12-31"),
        ({}, "EUR", date(2025, 6, 30), None, "closed for 2025-06-30"),
        ({}, "eur", date(2026, 3, 2), None, "not a currency"),
    ],
    ids=["unknown-account", "unknown-currency", "account-currency", "closed-account", "closed-period", "bad-currency"],
)
async def test_what_the_books_refuse_is_not_written(
    fava_server: FavaServer,  # noqa: F811
    accounts: dict[str, str], currency: str, issued: date, field: str | None, words: str,
) -> None:
    config = fava_server.config
    config["accounts"].update(accounts)
    connection = BACKEND.connect(config, {})
    ref = reference()
    before = fava_server.source()
    try:
        with pytest.raises(AccountingError) as refused:
            await connection.post_invoice(order(ref, currency=currency, issued=issued))
    finally:
        await connection.aclose()
    assert refused.value.retry is False and refused.value.field == field
    assert words in refused.value.message
    assert fava_server.source() == before


async def test_an_invoice_in_another_currency(fava_server: FavaServer) -> None:  # noqa: F811
    config = fava_server.config
    config["accounts"]["revenue"] = "Income:Consulting"
    connection = BACKEND.connect(config, {})
    ref = reference()
    try:
        posted = await connection.post_invoice(order(ref, currency="USD", tax_rate=Decimal("0")))
    finally:
        await connection.aclose()
    assert (posted.currency, posted.total) == ("USD", Decimal("2954.70"))
    [entry] = await fava_server.invoices_for(ref)
    assert [p["account"] for p in entry["postings"]].count("Liabilities:VAT") == 0


async def test_requests_fava_cannot_book_are_refused(books: FavaConnection) -> None:
    with pytest.raises(AccountingError) as spaced:
        await books.post_invoice(order("SO 2026 1"))
    assert spaced.value.retry is False and "link" in spaced.value.message
    ref = reference()
    unbalanced = order(ref)
    unbalanced = InvoiceRequest(**{**unbalanced.__dict__, "total": unbalanced.total + Decimal("0.01")})
    with pytest.raises(AccountingError) as wrong:
        await books.post_invoice(unbalanced)
    assert wrong.value.retry is False and "does not balance" in wrong.value.message
    assert await books.find_invoice(ref) is None


async def test_a_wrong_ledger_slug_is_not_retried(fava_server: FavaServer) -> None:  # noqa: F811
    connection = BACKEND.connect({**fava_server.config, "ledger": "other-books"}, {})
    try:
        with pytest.raises(AccountingError) as missing:
            await connection.find_invoice(reference())
    finally:
        await connection.aclose()
    assert missing.value.retry is False and missing.value.field == "ledger" and "other-books" in missing.value.message


@contextlib.asynccontextmanager
async def fake_server(answer: bytes | None) -> AsyncIterator[str]:
    """A loopback listener that answers every request with ``answer``, or never (None)."""
    held: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if answer is None:
            held.append(writer)
            return
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def _http(status: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            f"Connection: close\r\n\r\n").encode() + data


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (None, "did not answer within 0.5 s"),
        (_http("500 INTERNAL SERVER ERROR", {"error": "Disk full."}), "Disk full."),
        (_http("401 UNAUTHORIZED", {}), None),
    ],
    ids=["timeout", "server-error", "read-only"],
)
async def test_network_and_server_failures_are_typed(
    fava_server: FavaServer, answer: bytes | None, words: str | None  # noqa: F811
) -> None:
    async with fake_server(answer) as url:
        connection = BACKEND.connect({**fava_server.config, "url": url, "timeout": 0.5}, {})
        try:
            with pytest.raises(AccountingError) as failed:
                await connection.post_invoice(order(reference()))
        finally:
            await connection.aclose()
    if words is None:  # a read-only fava: no retry helps
        assert failed.value.retry is False and "--read-only" in failed.value.message
    else:
        assert failed.value.retry is True and words in failed.value.message


async def test_a_stopped_server_is_retried_and_works_once_back(
    fava_server: FavaServer, books: FavaConnection  # noqa: F811
) -> None:
    ref = reference()
    fava_server.stop()
    try:
        with pytest.raises(AccountingError) as down:
            await books.post_invoice(order(ref))
        assert down.value.retry is True and fava_server.url in down.value.message
        with pytest.raises(AccountingError) as reading:
            await books.payments_since(None)
        assert reading.value.retry is True
    finally:
        fava_server.start()
    posted = await books.post_invoice(order(ref))
    assert posted.reference == ref and len(await fava_server.invoices_for(ref)) == 1


def test_the_books_pass_bean_check_at_the_end(fava_server: FavaServer) -> None:  # noqa: F811
    fava_server.check()
    assert "crm-invoice:" in fava_server.source()
