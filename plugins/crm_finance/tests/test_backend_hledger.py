"""The hledger backend against the real hledger-web (one per session, see counterparts/hledger.py):
invoices booked once whatever the retries, reversals, payments with stable ids, the period's
invoices, configuration problems, the books' own refusals, and faults (a lost answer, a stopped
server, a timeout, a gateway error). What the books hold is read with the hledger command."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from collections.abc import AsyncIterator
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from counterparts.hledger import ACCOUNTS, HledgerServer, hledger_server  # noqa: F401

from crm_finance.backends.hledger import HledgerBackend, HledgerConnection
from crm_graph.core.accounting import AccountingConnection, AccountingError, InvoiceLine, InvoiceRequest, Party

# Touches no CRM database: runs in the --db sqlite pass of `make test` only.
pytestmark = pytest.mark.one_pass

BACKEND = HledgerBackend()
_numbers = itertools.count(1)
CENT = Decimal("0.01")


def reference() -> str:
    return f"SO-2026-{next(_numbers):04d}"


def order(ref: str, *, currency: str = "EUR", issued: date = date(2026, 3, 2), rate: str = "19",
          name: str = "Müller Maschinenbau GmbH",
          lines: tuple[tuple[str, str, str], ...] = (("Machine", "2", "1250.00"), ("Service hours", "3", "99.90"),
                                                     ("Spare part", "10", "15.50"))) -> InvoiceRequest:
    items = [InvoiceLine(d, Decimal(q), Decimal(p), (Decimal(q) * Decimal(p)).quantize(CENT)) for d, q, p in lines]
    net = sum((line.net for line in items), Decimal(0))
    tax = (net * Decimal(rate) / 100).quantize(CENT, ROUND_HALF_UP)
    return InvoiceRequest(reference=ref, party=Party(reference="CRM-C-42", name=name, email="einkauf@mueller.test"),
                          currency=currency, issued=issued, lines=items, net=net, tax_rate=Decimal(rate), tax=tax,
                          total=net + tax)


@pytest.fixture
async def books(hledger_server: HledgerServer) -> AsyncIterator[HledgerConnection]:  # noqa: F811
    conn = BACKEND.connect(hledger_server.config, hledger_server.secrets)
    yield conn
    await conn.aclose()


def connect(server: HledgerServer, **changes: Any) -> HledgerConnection:
    config = {**server.config, **changes}
    return BACKEND.connect(config, server.secrets)


def amounts(entry: dict[str, Any]) -> list[tuple[str, Decimal]]:
    return sorted((p["account"], p["amount"]) for p in entry["postings"])


class Proxy:
    """A TCP proxy on loopback in front of hledger-web. ``drop_put``: the request of a PUT goes
    through, then the client's side is closed as its answer starts (the entry is written, the
    answer lost). ``answer``: bytes sent instead of forwarding (a gateway's error). ``hang``:
    reads the request and never answers."""

    def __init__(self, port: int, *, drop_put: bool = False, answer: bytes | None = None, hang: bool = False):
        self.target, self.drop_put, self.answer, self.hang = port, drop_put, answer, hang
        self.dropped = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.hang or self.answer is not None:
                await reader.read(65536)
                if self.answer is not None:
                    writer.write(self.answer)
                    await writer.drain()
                else:
                    await reader.read()  # until the client gives up
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
            put = False

            async def requests() -> None:
                nonlocal put
                while data := await reader.read(65536):
                    put = put or data.startswith(b"PUT ")
                    up_writer.write(data)
                    await up_writer.drain()
                up_writer.close()

            async def answers() -> None:
                while data := await up_reader.read(65536):
                    if put and self.drop_put:
                        self.dropped += 1
                        return
                    writer.write(data)
                    await writer.drain()

            forward = asyncio.ensure_future(requests())
            await answers()
            forward.cancel()
            up_writer.close()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


# ------------------------------------------------------------------------------------------------


async def test_an_invoice_is_one_balanced_entry_with_the_reference(books: HledgerConnection,
                                                                   hledger_server: HledgerServer) -> None:  # noqa: F811
    assert isinstance(books, AccountingConnection)
    ref = reference()
    invoice = order(ref)
    assert (invoice.net, invoice.tax, invoice.total) == (Decimal("2954.70"), Decimal("561.39"), Decimal("3516.09"))

    posted = await books.post_invoice(invoice)
    assert (posted.reference, posted.currency, posted.total, posted.state, posted.issued) == \
        (ref, "EUR", Decimal("3516.09"), "posted", date(2026, 3, 2))

    [entry] = await hledger_server.invoices_for(ref)
    assert entry["code"] == ref and entry["tags"]["invoice"] == ref and entry["tags"]["customer"] == "CRM-C-42"
    assert entry["date"] == date(2026, 3, 2) and "Müller Maschinenbau GmbH" in entry["description"]
    assert amounts(entry) == sorted([
        ("assets:receivable", Decimal("3516.09")), ("revenue:sales", Decimal("-2500.00")),
        ("revenue:sales", Decimal("-299.70")), ("revenue:sales", Decimal("-155.00")),
        ("liabilities:tax:vat", Decimal("-561.39")),
    ])
    assert sum(p["amount"] for p in entry["postings"]) == 0
    assert {p["commodity"] for p in entry["postings"]} == {"EUR"}

    again = await books.post_invoice(invoice)
    other = connect(hledger_server)
    try:
        from_another = await other.post_invoice(invoice)
        found = await other.find_invoice(ref)
    finally:
        await other.aclose()
    assert again == posted and from_another == posted and found == posted
    assert len(await hledger_server.invoices_for(ref)) == 1
    assert await books.find_invoice("SO-1999-9999") is None
    hledger_server.check()


async def test_a_lost_answer_is_found_by_the_retry(hledger_server: HledgerServer) -> None:  # noqa: F811
    ref = reference()
    proxy = Proxy(hledger_server.port, drop_put=True)
    async with proxy as url:
        lossy = connect(hledger_server, url=url)
        try:
            with pytest.raises(AccountingError) as lost:
                await lossy.post_invoice(order(ref))
        finally:
            await lossy.aclose()
    assert lost.value.retry is True and proxy.dropped == 1
    assert len(await hledger_server.invoices_for(ref)) == 1  # written, though the answer never came

    retry = connect(hledger_server)
    try:
        posted = await retry.post_invoice(order(ref))
    finally:
        await retry.aclose()
    assert posted.reference == ref and posted.total == Decimal("3516.09")
    assert len(await hledger_server.invoices_for(ref)) == 1


async def test_posts_at_the_same_time_book_each_order_once(books: HledgerConnection,
                                                           hledger_server: HledgerServer) -> None:  # noqa: F811
    a, b, c = reference(), reference(), reference()
    results = await asyncio.gather(*(books.post_invoice(order(r)) for r in (a, a, b, c, a)))
    assert [r.reference for r in results] == [a, a, b, c, a]
    assert results[0] == results[1] == results[4]
    for ref in (a, b, c):
        assert len(await hledger_server.invoices_for(ref)) == 1


async def test_cancel_twice_books_one_reversal(books: HledgerConnection, hledger_server: HledgerServer) -> None:  # noqa: F811
    ref = reference()
    posted = await books.post_invoice(order(ref))
    first = await books.cancel_invoice(ref, "customer withdrew")
    second = await books.cancel_invoice(ref, "customer withdrew")
    assert first is not None and second is not None
    assert first.state == second.state == "cancelled" and first.remote_id == second.remote_id == posted.remote_id
    found = await books.find_invoice(ref)
    assert found is not None and found.state == "cancelled"

    entries = await hledger_server.entries_for(ref)
    [invoice] = [e for e in entries if e["kind"] == "invoice"]
    [reversal] = [e for e in entries if e["kind"] == "reversal"]
    assert reversal["tags"]["reverses"] == ref and "customer withdrew" in reversal["description"]
    assert amounts(reversal) == sorted((a, -q) for a, q in amounts(invoice))
    # A reversal is not money received.
    assert [p for p in (await books.payments_since(None)).payments if p.reference == ref] == []
    assert await books.cancel_invoice("SO-1999-9998", "none such") is None
    hledger_server.check()


async def test_payments_come_back_once_with_stable_ids(books: HledgerConnection,
                                                       hledger_server: HledgerServer) -> None:  # noqa: F811
    ref, other = reference(), reference()
    await books.post_invoice(order(ref))
    await books.post_invoice(order(other, lines=(("Consulting", "1", "100.00"),)))
    await hledger_server.pay(ref, Decimal("1000.00"), "EUR", date(2026, 3, 10))
    after_first = await books.find_invoice(ref)
    await hledger_server.pay(ref, Decimal("2516.09"), "EUR", date(2026, 3, 20))

    page = await books.payments_since(None)
    mine = [p for p in page.payments if p.reference == ref]
    assert [(p.amount, p.currency, p.paid_at.date()) for p in mine] == [
        (Decimal("1000.00"), "EUR", date(2026, 3, 10)), (Decimal("2516.09"), "EUR", date(2026, 3, 20))]
    assert len({p.external_id for p in mine}) == 2
    assert after_first is not None and after_first.state == "posted"
    paid = await books.find_invoice(ref)
    assert paid is not None and paid.state == "paid"

    reread = await books.payments_since(None)
    assert [p.external_id for p in reread.payments] == [p.external_id for p in page.payments]
    empty = await books.payments_since(page.checkpoint)
    assert empty.payments == [] and empty.checkpoint == page.checkpoint

    # One transfer paying two invoices (tags on the receivable postings) is two payments; a
    # payment naming an order the books have no invoice for is none of the CRM's.
    hledger_server.append(f"""\
2026-03-25 * Bank transfer | two invoices
    assets:bank:checking         150.00 EUR
    assets:receivable            -50.00 EUR  ; invoice:{ref}
    assets:receivable           -100.00 EUR  ; invoice:{other}

2026-03-26 * Bank transfer | unknown order  ; invoice:SO-1999-0001
    assets:bank:checking          10.00 EUR
    assets:receivable            -10.00 EUR

2026-03-27 * Bank transfer less 2 % cash discount  ; invoice:{other}
    assets:bank:checking          18.62 EUR
    revenue:sales                  0.32 EUR
    liabilities:tax:vat            0.06 EUR
    assets:receivable            -19.00 EUR""")
    new = await books.payments_since(page.checkpoint)
    assert [(p.reference, p.amount) for p in new.payments] == [
        (ref, Decimal("50.00")), (other, Decimal("100.00")), (other, Decimal("19.00"))]
    settled = await books.find_invoice(other)
    assert settled is not None and settled.state == "paid"  # 119.00: 100.00 and 19.00 with the discount
    assert (await books.payments_since(new.checkpoint)).payments == []

    # The accountant reconciles (pending marks) and comments the entries, and inserts a late
    # payment above them: every payment is given again (nothing lost), with the same ids.
    ids = {p.external_id for p in (await books.payments_since(None)).payments}

    def reconcile(text: str) -> str:
        text = text.replace("* Bank transfer | two invoices", "! Bank transfer | two invoices  ; checked")
        late = (f"2026-03-05 Bank transfer | {other}  ; invoice:{other}\n"
                "    assets:bank:checking  19.00 EUR\n    assets:receivable  -19.00 EUR\n\n")
        head, sep, rest = text.partition("\n2026-")
        return head + "\n" + late + sep.lstrip("\n") + rest
    hledger_server.edit(reconcile)
    again = await books.payments_since(new.checkpoint)
    now = {p.external_id: p for p in again.payments}
    assert ids <= set(now) and len(now) == len(again.payments) == len(ids) + 1
    [late] = [now[i] for i in set(now) - ids]
    assert (late.reference, late.amount, late.paid_at.date()) == (other, Decimal("19.00"), date(2026, 3, 5))
    assert (await books.payments_since(again.checkpoint)).payments == []
    hledger_server.check()


async def test_invoices_of_a_period_show_strays(books: HledgerConnection, hledger_server: HledgerServer) -> None:  # noqa: F811
    april, may = reference(), reference()
    await books.post_invoice(order(april, issued=date(2026, 4, 10)))
    await books.post_invoice(order(may, issued=date(2026, 5, 2)))
    await books.cancel_invoice(may, "wrong month")
    hledger_server.append("""\
2026-04-15 (INV-77) Walk-in customer | entered by hand
    assets:receivable            119.00 EUR
    revenue:other               -100.00 EUR
    liabilities:tax:vat          -19.00 EUR""")
    await hledger_server.pay(april, Decimal("10.00"), "EUR", date(2026, 4, 20))

    found = await books.invoices(date(2026, 4, 1), date(2026, 4, 30))
    assert sorted((i.reference, i.total, i.issued) for i in found) == [
        ("", Decimal("119.00"), date(2026, 4, 15)), (april, Decimal("3516.09"), date(2026, 4, 10))]
    stray = next(i for i in found if i.reference == "")
    assert stray.remote_id and stray.remote_id not in (april, may)
    assert [i.state for i in await books.invoices(date(2026, 5, 2), date(2026, 5, 2))] == ["cancelled"]
    assert await books.invoices(date(2026, 4, 30), date(2026, 4, 1)) == []
    hledger_server.check()


def test_check_config_lists_every_problem() -> None:
    assert BACKEND.name == "hledger" and BACKEND.secret_keys == frozenset()
    good = {"url": "http://127.0.0.1:5000", "accounts": dict(ACCOUNTS)}
    assert BACKEND.check_config(good) == []
    assert {k for k, _ in BACKEND.check_config({})} == {
        "url", "accounts", "accounts.receivable", "accounts.revenue", "accounts.tax", "accounts.bank"}

    problems = dict(BACKEND.check_config({
        "url": "http://admin:secret@books.example:5000", "timeout": 0, "referenceTag": "my tag",
        "decimalMark": ";", "currencies": ["EUR", 7],
        "accounts": {"receivable": "assets", "revenue": "revenue::sales", "tax": " liabilities:tax",
                     "bank": "assets:bank"},
    }))
    assert set(problems) == {"url", "timeout", "referenceTag", "decimalMark", "currencies", "accounts.revenue",
                             "accounts.tax", "accounts.bank"}
    assert "secret" not in problems["url"] and "under" in problems["accounts.bank"]
    assert [k for k, _ in BACKEND.check_config({**good, "url": "ftp://books.example"})] == ["url"]
    assert [k for k, _ in BACKEND.check_config({**good, "timeout": "30"})] == ["timeout"]

    with pytest.raises(AccountingError) as bad:
        BACKEND.connect({**good, "accounts": {**ACCOUNTS, "tax": ""}}, {})
    assert bad.value.retry is False and bad.value.field == "accounts.tax"


async def test_an_unknown_account_is_refused(hledger_server: HledgerServer) -> None:  # noqa: F811
    ref = reference()
    conn = connect(hledger_server, accounts={**ACCOUNTS, "revenue": "revenue:nothere"})
    try:
        with pytest.raises(AccountingError) as refused:
            await conn.post_invoice(order(ref))
    finally:
        await conn.aclose()
    assert refused.value.retry is False and refused.value.field == "accounts.revenue"
    assert "revenue:nothere" in refused.value.message
    assert await hledger_server.entries_for(ref) == []


async def test_currencies_the_books_keep_and_lack(books: HledgerConnection,
                                                  hledger_server: HledgerServer) -> None:  # noqa: F811
    jpy = reference()
    with pytest.raises(AccountingError) as refused:
        await books.post_invoice(order(jpy, currency="JPY"))
    assert refused.value.retry is False and refused.value.field == "currency" and "JPY" in refused.value.message
    assert await hledger_server.entries_for(jpy) == []

    # CHF is kept with a decimal comma: the amounts are written the books' way and read back exact.
    chf = reference()
    posted = await books.post_invoice(order(chf, currency="CHF", lines=(("Lizenz", "3", "1234.56"),)))
    [entry] = await hledger_server.invoices_for(chf)
    assert posted.total == Decimal("4407.38")
    assert amounts(entry) == sorted([("assets:receivable", Decimal("4407.38")), ("revenue:sales", Decimal("-3703.68")),
                                     ("liabilities:tax:vat", Decimal("-703.70"))])

    # USD is declared but hledger-web 1.25 lists only currencies with amounts: the connection
    # names it, then it is booked.
    usd = reference()
    with pytest.raises(AccountingError):
        await books.post_invoice(order(usd, currency="USD"))
    conn = connect(hledger_server, currencies=["USD"])
    try:
        assert (await conn.post_invoice(order(usd, currency="USD"))).currency == "USD"
    finally:
        await conn.aclose()
    hledger_server.check()


async def test_a_closed_year_is_refused(books: HledgerConnection, hledger_server: HledgerServer) -> None:  # noqa: F811
    ref = reference()
    with pytest.raises(AccountingError) as refused:
        await books.post_invoice(order(ref, issued=date(2025, 6, 1)))
    assert refused.value.retry is False and "closed" in refused.value.message and "2025-12-31" in refused.value.message
    assert await hledger_server.entries_for(ref) == []
    hledger_server.check()


async def test_bad_input_is_refused_before_anything_is_sent(hledger_server: HledgerServer) -> None:  # noqa: F811
    nowhere = connect(hledger_server, url="http://127.0.0.1:9")  # nothing listens: any call would be retry=True
    try:
        good = order("SO-2026-BAD1")
        for wrong, field in ((replace(good, total=good.total + CENT), "total"),
                             (replace(good, net=good.net - CENT), "net"),
                             (replace(good, lines=[]), "lines"),
                             (order("SO 2026 (1)"), "reference"),
                             (order("SO-2026-BAD2", currency="EU1"), "currency")):
            with pytest.raises(AccountingError) as refused:
                await nowhere.post_invoice(wrong)
            assert refused.value.retry is False and refused.value.field == field, refused.value.message
    finally:
        await nowhere.aclose()


async def test_names_and_descriptions_cannot_break_the_entry(books: HledgerConnection,
                                                             hledger_server: HledgerServer) -> None:  # noqa: F811
    ref = reference()
    await books.post_invoice(order(ref, name="Smith; Sons | Ltd\ninvoice:SO-1", lines=(
        ("Time: 10h; travel invoice:SO-2", "1", "10.00"),)))
    [entry] = await hledger_server.invoices_for(ref)
    assert entry["tags"] == {"invoice": ref, "customer": "CRM-C-42"}
    assert all(p["tags"] == {} for p in entry["postings"])
    assert entry["description"].startswith("Smith, Sons / Ltd")
    assert sum(p["amount"] for p in entry["postings"]) == 0
    hledger_server.check()


async def test_faults_are_worth_a_retry(hledger_server: HledgerServer) -> None:  # noqa: F811
    async with Proxy(hledger_server.port, hang=True) as url:
        slow = connect(hledger_server, url=url, timeout=0.5)
        try:
            with pytest.raises(AccountingError) as timed_out:
                await slow.find_invoice("SO-2026-0001")
        finally:
            await slow.aclose()
    assert timed_out.value.retry is True and "did not answer" in timed_out.value.message

    gateway = b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 17\r\n\r\nupstream is down\n"
    async with Proxy(hledger_server.port, answer=gateway) as url:
        behind = connect(hledger_server, url=url)
        try:
            with pytest.raises(AccountingError) as failed:
                await behind.post_invoice(order(reference()))
        finally:
            await behind.aclose()
    assert failed.value.retry is True and "502" in failed.value.message and "upstream is down" in failed.value.message

    ref = reference()
    conn = connect(hledger_server)
    try:
        hledger_server.stop()
        try:
            with pytest.raises(AccountingError) as down:
                await conn.post_invoice(order(ref))
            assert down.value.retry is True and hledger_server.url in down.value.message
        finally:
            hledger_server.start()
        assert (await conn.post_invoice(order(ref))).reference == ref
    finally:
        await conn.aclose()
    assert len(await hledger_server.invoices_for(ref)) == 1


async def test_a_hledger_web_without_add_is_refused(tmp_path: Any) -> None:
    """hledger-web has no login; what refuses a client is a missing capability (403)."""
    viewer = HledgerServer(tmp_path, capabilities="view")
    viewer.start()
    try:
        conn = connect(viewer)
        try:
            with pytest.raises(AccountingError) as refused:
                await conn.post_invoice(order(reference()))
        finally:
            await conn.aclose()
    finally:
        viewer.stop()
    assert refused.value.retry is False and "403" in refused.value.message
    assert "--capabilities=view,add" in refused.value.message
    assert [e for e in await viewer.entries() if "invoice" in e["tags"]] == []


def test_the_books_pass_hledgers_own_check_at_the_end(hledger_server: HledgerServer) -> None:  # noqa: F811
    hledger_server.check()
