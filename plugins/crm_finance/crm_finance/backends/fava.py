"""Beancount books through fava's JSON API (``name = "fava"``).

What the books hold, per CRM order (its number is the ``reference``, a beancount link):

- the invoice: one balanced transaction dated ``issued`` with the link ``^<reference>``, the tag
  ``#crm`` and the meta ``crm-invoice: "<reference>"``; the total debits the receivable account,
  each order line's net credits the revenue account (a posting per line, its description in the
  posting's meta), the tax credits the tax account;
- a cancellation: the same postings negated, with the same link and ``crm-reversal-of``;
- payments: what the accountant enters, a transaction with the same link that credits the
  receivable account and debits the bank account (or one below it).

fava has no login (secret_keys is empty), no entry ids and no server-side idempotency. Before it
adds (``PUT api/add_entries``) this adapter reads, in one ``GET api/journal`` with a filter, the
entries of the link and the open, close, balance and commodity directives of the accounts and
currency it will use: an invoice already there is returned, and what bean-check would reject (an
unknown or closed account, a currency the books lack, a date before a balance assertion) is
refused, since nothing is deleted. It then counts the link in the ledger file on disk
(``GET api/source``), so that a fava still reloading after another request's write cannot make it
add an invoice twice. Amounts go as strings ("3516.09 EUR") and come back as strings: exact.

Payment ids are a hash of the entry's date, links and postings (fava's entry hash moves with the
line number), numbered when equal entries repeat; an edited payment reads as a new one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from crm_graph.core.accounting import (
    AccountingError,
    InvoiceRequest,
    PaymentPage,
    RemoteInvoice,
    RemotePayment,
)

ACCOUNT_ROLES = ("receivable", "revenue", "tax", "bank")
DEFAULT_TIMEOUT = 30.0
DEFAULT_LOOKBACK_DAYS = 31
# What beancount accepts in a link (and fava's ``^link`` filter matches).
_LINK = re.compile(r"[A-Za-z0-9\-_/.]+")
_LINK_CHAR = r"[A-Za-z0-9\-_/.]"
_CURRENCY = re.compile(r"[A-Z][A-Z0-9'._-]{0,22}[A-Z0-9]|[A-Z]")
_AMOUNT = re.compile(r"\s*(-?[0-9][0-9,]*(?:\.[0-9]*)?)\s+([A-Z][A-Z0-9'._-]*)\s*$")
_CHECKPOINT_VERSION = 1


def _valid_account(name: str) -> bool:
    parts = name.split(":")
    if len(parts) < 2 or not parts[0][:1].isalpha() or not parts[0][:1].isupper():
        return False
    for part in parts:
        if not part or not (part[0].isupper() or part[0].isdigit()):
            return False
        if not all(c.isalnum() or c == "-" for c in part):
            return False
    return True


def _text(value: str, limit: int = 200) -> str:
    """A string for the ledger: one line, no control characters (the file stays readable)."""
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in value).split())
    return cleaned[:limit]


def _number(value: Decimal) -> str:
    return format(value, "f")


def _under(account: str, parent: str) -> bool:
    return account == parent or account.startswith(parent + ":")


@dataclass(frozen=True)
class _Posting:
    account: str
    number: Decimal | None  # None: an amount with a cost or price this adapter does not read
    currency: str
    raw: str


@dataclass(frozen=True)
class _Entry:
    date: date
    payee: str
    narration: str
    links: frozenset[str]
    meta: Mapping[str, Any]
    postings: tuple[_Posting, ...]
    lineno: int

    def total(self, account: str) -> dict[str, Decimal]:
        sums: dict[str, Decimal] = {}
        for posting in self.postings:
            if posting.number is not None and _under(posting.account, account):
                sums[posting.currency] = sums.get(posting.currency, Decimal(0)) + posting.number
        return sums


def _parse_posting(data: Mapping[str, Any]) -> _Posting:
    raw = str(data.get("amount") or "")
    match = _AMOUNT.match(raw)
    if match is None:
        return _Posting(str(data.get("account", "")), None, "", raw)
    return _Posting(str(data.get("account", "")), Decimal(match.group(1).replace(",", "")), match.group(2), raw)


def _parse_entry(data: Mapping[str, Any]) -> _Entry | None:
    if data.get("t") != "Transaction":
        return None
    try:
        day = date.fromisoformat(str(data["date"]))
    except (KeyError, ValueError):
        return None
    meta = data.get("meta") or {}
    return _Entry(
        date=day,
        payee=str(data.get("payee") or ""),
        narration=str(data.get("narration") or ""),
        links=frozenset(str(link) for link in data.get("links") or ()),
        meta=meta,
        postings=tuple(_parse_posting(p) for p in data.get("postings") or ()),
        lineno=meta.get("lineno", 0) if isinstance(meta.get("lineno"), int) else 0,
    )


@dataclass
class _Facts:
    """What the books declare about some accounts and a currency."""

    opened: dict[str, tuple[date, list[str]]]  # account: (open date, currencies it takes; [] = any)
    closed: dict[str, date]
    balances: list[tuple[date, str]]
    commodities: set[str]

    @classmethod
    def read(cls, raw: Sequence[Mapping[str, Any]]) -> _Facts:
        facts = cls({}, {}, [], set())
        for entry in raw:
            kind, account = entry.get("t"), str(entry.get("account", ""))
            try:
                day = date.fromisoformat(str(entry.get("date")))
            except ValueError:
                continue
            if kind == "Open":
                currencies = entry.get("currencies") or []
                facts.opened[account] = (day, [str(c) for c in currencies] if isinstance(currencies, list) else [])
            elif kind == "Close":
                facts.closed[account] = day
            elif kind == "Balance":
                facts.balances.append((day, account))
            elif kind == "Commodity":
                facts.commodities.add(str(entry.get("currency", "")))
        return facts


def _problems(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    url = config.get("url")
    if not isinstance(url, str) or not url.strip():
        problems.append(("url", "the address of fava is required, e.g. http://127.0.0.1:5000"))
    else:
        try:
            parts = urlsplit(url.strip())
            port_ok = parts.port is None or 0 < parts.port < 65536
        except ValueError:
            parts, port_ok = None, False
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
            problems.append(("url", "must be an http:// or https:// address with a host, e.g. "
                                    "http://127.0.0.1:5000"))
        elif parts.username is not None or parts.password is not None:
            problems.append(("url", "must not hold a user or password: fava has no login"))
        elif parts.query or parts.fragment:
            problems.append(("url", "must not have a query string or fragment"))
    ledger = config.get("ledger")
    if not isinstance(ledger, str) or not ledger.strip():
        problems.append(("ledger", "the ledger's slug in fava's URLs is required "
                                   "(from its option \"title\", e.g. crm-books)"))
    elif "/" in ledger or any(c.isspace() for c in ledger):
        problems.append(("ledger", "a slug has no slash or space (e.g. crm-books)"))
    accounts = config.get("accounts")
    if not isinstance(accounts, Mapping):
        problems.append(("accounts", "an object with the accounts receivable, revenue, tax and bank is required"))
    else:
        for role in ACCOUNT_ROLES:
            name = accounts.get(role)
            if name is None or name == "":
                problems.append((f"accounts.{role}", f"the {role} account is required (a beancount account name)"))
            elif not isinstance(name, str) or not _valid_account(name):
                problems.append((f"accounts.{role}",
                                 f"{name!r} is not a beancount account name (e.g. Assets:Receivables)"))
    timeout = config.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 600
    ):
        problems.append(("timeout", "seconds, a number above 0 and at most 600"))
    lookback = config.get("paymentLookbackDays")
    if lookback is not None and (
        isinstance(lookback, bool) or not isinstance(lookback, int) or not 0 <= lookback <= 3660
    ):
        problems.append(("paymentLookbackDays", "whole days from 0 to 3660"))
    return problems


class FavaBackend:
    name = "fava"
    description = "Beancount books served by fava (JSON API): invoices as linked transactions, payments read back"
    secret_keys: frozenset[str] = frozenset()

    def check_config(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        if not isinstance(config, Mapping):
            return [("", "the configuration must be an object")]
        return _problems(config)

    def connect(self, config: Mapping[str, Any], secrets: Mapping[str, str]) -> FavaConnection:
        problems = self.check_config(config)
        if problems:
            key, message = problems[0]
            raise AccountingError(f"fava configuration: {key}: {message}", retry=False, field=key or None)
        accounts = config["accounts"]
        return FavaConnection(
            url=config["url"].strip().rstrip("/"),
            ledger=config["ledger"].strip(),
            receivable=accounts["receivable"],
            revenue=accounts["revenue"],
            tax=accounts["tax"],
            bank=accounts["bank"],
            timeout=float(config.get("timeout") or DEFAULT_TIMEOUT),
            lookback_days=int(config.get("paymentLookbackDays", DEFAULT_LOOKBACK_DAYS)),
        )


class FavaConnection:
    def __init__(
        self,
        *,
        url: str,
        ledger: str,
        receivable: str,
        revenue: str,
        tax: str,
        bank: str,
        timeout: float = DEFAULT_TIMEOUT,
        lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    ) -> None:
        self.url = url
        self.ledger = ledger
        self.receivable = receivable
        self.revenue = revenue
        self.tax = tax
        self.bank = bank
        self.timeout = timeout
        self.lookback_days = lookback_days
        self._client = httpx.AsyncClient(
            base_url=f"{url}/{quote(ledger, safe='')}/api", timeout=httpx.Timeout(timeout), follow_redirects=False
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- HTTP -----------------------------------------------------------------------------

    async def _call(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                    body: Any = None) -> Any:
        where = f"fava at {self.url}"
        try:
            response = await self._client.request(method, path, params=params, json=body)
        except httpx.TimeoutException:
            raise AccountingError(f"{where} did not answer within {self.timeout:g} s", retry=True) from None
        except httpx.TransportError as exc:
            detail = str(exc) or type(exc).__name__
            raise AccountingError(f"{where} could not be reached: {detail}", retry=True) from None
        remote = self._remote_message(response)
        if response.status_code == 404:
            raise AccountingError(
                f"{where} has no ledger {self.ledger!r} (404; the slug comes from the ledger's option \"title\")",
                retry=False, field="ledger",
            )
        if response.status_code >= 500:
            raise AccountingError(f"{where} failed ({response.status_code}): {remote}", retry=True)
        if response.status_code >= 400:
            raise AccountingError(f"{where} refused the request ({response.status_code}): {remote}", retry=False)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or "data" not in payload:
            raise AccountingError(f"{where} gave an answer that is not fava's JSON API ({response.status_code})",
                                  retry=True)
        return payload["data"]

    @staticmethod
    def _remote_message(response: httpx.Response) -> str:
        """fava's own words (``{"error": ...}``); for an HTML page, only its status's reason."""
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("error"), str):
            return _text(payload["error"], 500)
        if response.status_code == 401:
            return "Unauthorized (is fava running with --read-only?)"
        return response.reason_phrase or str(response.status_code)

    async def _journal(self, reference: str | None, accounts: Sequence[str] = (), currency: str | None = None
                       ) -> tuple[list[_Entry], int, _Facts]:
        """One journal read (fava reloads changed files first): the transactions with the link
        ``^reference``, how many entries of any kind have it, and what the books say of
        ``accounts`` and ``currency`` (open, close and balance directives on them or their
        parents, the commodity directive)."""
        parts = [f"^{reference}"] if reference else []
        if accounts:
            names = sorted({":".join(a.split(":")[:n]) for a in accounts for n in range(1, a.count(":") + 2)})
            parts.append('account:"^(' + "|".join(re.escape(n) for n in names) + ')$"')
        if currency:
            parts.append(f'(currency:"^{re.escape(currency)}$" -amount:"")')
        data = await self._call("GET", "/journal", params={"filter": " , ".join(parts)})
        if not isinstance(data, list):
            raise AccountingError("fava answered the journal with something other than a list of entries", retry=True)
        raw = [d for d in data if isinstance(d, Mapping)]
        linked = sum(1 for d in raw if reference and reference in (d.get("links") or ()))
        entries = [e for e in (_parse_entry(d) for d in raw) if e is not None and reference in e.links]
        return entries, linked, _Facts.read(raw)

    async def _touching(self, account: str) -> list[_Entry]:
        data = await self._call("GET", "/journal", params={"account": account})
        if not isinstance(data, list):
            raise AccountingError("fava answered the journal with something other than a list of entries", retry=True)
        entries = [e for e in (_parse_entry(d) for d in data if isinstance(d, Mapping)) if e is not None]
        return [e for e in entries if any(_under(p.account, account) for p in e.postings)]

    # -- reading the books ----------------------------------------------------------------

    def _kind(self, entry: _Entry) -> str:
        if "crm-reversal-of" in entry.meta:
            return "reversal"
        if "crm-invoice" in entry.meta:
            return "invoice"
        receivable = entry.total(self.receivable)
        if any(v > 0 for v in receivable.values()):
            return "invoice"
        if any(v < 0 for v in receivable.values()) and any(_under(p.account, self.bank) for p in entry.postings):
            return "payment"
        return "other"

    @staticmethod
    def _reference_of(entry: _Entry) -> str:
        ref = entry.meta.get("crm-invoice")
        if isinstance(ref, str) and ref:
            return ref
        return next(iter(entry.links)) if len(entry.links) == 1 else ""

    def _remote(self, invoice: _Entry, reference: str, related: Sequence[_Entry]) -> RemoteInvoice:
        sums = invoice.total(self.receivable)
        currency, total = max(sums.items(), key=lambda kv: abs(kv[1])) if sums else ("", Decimal(0))
        state = "posted"
        if reference and any(e.meta.get("crm-reversal-of") == reference for e in related):
            state = "cancelled"
        elif reference:
            paid = sum((-e.total(self.receivable).get(currency, Decimal(0)) for e in related
                        if self._kind(e) == "payment"), Decimal(0))
            if total > 0 and paid >= total:
                state = "paid"
        remote_id = f"^{reference}" if reference else f"entry:{self._content_id(invoice)}"
        return RemoteInvoice(remote_id=remote_id, reference=reference, currency=currency, total=total,
                             number=None, state=state, issued=invoice.date)

    @staticmethod
    def _content_id(entry: _Entry) -> str:
        """A hash of what an entry says (date, links, postings), not where it sits in the file:
        fava's own entry hash changes when lines above it move."""
        postings = sorted(
            (p.account, _number(p.number.normalize()) if p.number is not None else p.raw, p.currency)
            for p in entry.postings
        )
        text = json.dumps([entry.date.isoformat(), sorted(entry.links), postings], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def _locate(self, reference: str, entries: Sequence[_Entry]) -> tuple[_Entry, RemoteInvoice] | None:
        """The invoice of ``reference``: the entry this adapter booked, else any entry with the link
        that debits the receivable account (typed in by hand: still not to be booked twice)."""
        linked = [e for e in entries if reference in e.links]
        invoices = [e for e in linked if self._kind(e) == "invoice"]
        invoices.sort(key=lambda e: (e.meta.get("crm-invoice") != reference, e.date, e.lineno))
        if not invoices:
            return None
        return invoices[0], self._remote(invoices[0], reference, linked)

    def _cancelled(self, reference: str, entries: Sequence[_Entry]) -> bool:
        located = self._locate(reference, entries)
        return located is not None and located[1].state == "cancelled"

    async def find_invoice(self, reference: str) -> RemoteInvoice | None:
        self._check_reference(reference)
        entries, _, _ = await self._journal(reference)
        found = self._locate(reference, entries)
        return None if found is None else found[1]

    async def _source_mentions(self, reference: str) -> int:
        """How often the file fava writes to holds the link, read from disk (not fava's memory)."""
        data = await self._call("GET", "/source")
        source = data.get("source") if isinstance(data, dict) else None
        if not isinstance(source, str):
            raise AccountingError("fava answered the source request without the file's text", retry=True)
        pattern = re.compile(rf"\^{re.escape(reference)}(?!{_LINK_CHAR})")
        count = 0
        for line in source.splitlines():
            stripped = line.lstrip()
            if stripped.startswith((";", "*", "#")):
                continue
            count += len(pattern.findall(line.split(";", 1)[0] if '"' not in line else line))
        return count

    async def _current(self, reference: str, accounts: Sequence[str] = (), currency: str | None = None,
                       *, done: Callable[[list[_Entry]], bool]) -> tuple[list[_Entry], _Facts]:
        """``_journal``; unless ``done`` says there is nothing left to write, only once fava's
        memory holds at least what its file holds: a fava still reloading after another request's
        write must not make a booked invoice (or reversal) look missing."""
        entries, linked, facts = await self._journal(reference, accounts, currency)
        for attempt in range(6):
            if done(entries) or linked >= await self._source_mentions(reference):
                return entries, facts
            await asyncio.sleep(0.1 * (attempt + 1))
            await self._call("GET", "/changed")
            entries, linked, facts = await self._journal(reference, accounts, currency)
        raise AccountingError(
            f"fava has not loaded the latest changes to its ledger (the link ^{reference} is in the file but "
            "not in what fava serves); try again", retry=True,
        )

    # -- checks before writing ------------------------------------------------------------

    @staticmethod
    def _check_reference(reference: str) -> None:
        if not isinstance(reference, str) or not _LINK.fullmatch(reference):
            raise AccountingError(
                f"the reference {reference!r} cannot be a beancount link (letters, digits, - _ / . only)",
                retry=False,
            )

    async def _check_books(self, facts: _Facts, accounts: Sequence[str], currency: str, day: date) -> None:
        """Refuse, before anything is written, what bean-check would reject: an account the books
        do not have, not yet open or closed on ``day``, a currency an account or the books do not
        take, or an entry before a balance assertion on one of the accounts (a closed period)."""
        for account in sorted(set(accounts)):
            if account not in facts.opened:
                raise AccountingError(f"the books have no account {account} (no open directive)", retry=False,
                                      field=self._field(account))
            opened, allowed = facts.opened[account]
            closed = facts.closed.get(account)
            if day < opened:
                raise AccountingError(f"the account {account} opens on {opened}, after the entry's date {day}",
                                      retry=False, field=self._field(account))
            if closed is not None and day >= closed:
                raise AccountingError(f"the account {account} was closed on {closed}; the entry's date is {day}",
                                      retry=False, field=self._field(account))
            if allowed and currency not in allowed:
                raise AccountingError(f"the account {account} takes {', '.join(allowed)}, not {currency}",
                                      retry=False, field=self._field(account))
        # The books have a currency they declare, let one of these accounts hold, or operate in.
        if currency not in facts.commodities and not any(currency in facts.opened[a][1] for a in accounts):
            options = await self._call("GET", "/options")
            beancount = options.get("beancount_options") if isinstance(options, dict) else None
            operating = str(beancount.get("operating_currency", "")) if isinstance(beancount, dict) else ""
            if currency not in re.findall(r"['\"]([^'\"]+)['\"]", operating):
                raise AccountingError(
                    f"the books do not have the currency {currency} (no commodity directive, operating "
                    "currency or account that takes it)", retry=False,
                )
        for when, asserted in facts.balances:
            if when > day and any(_under(account, asserted) for account in accounts):
                raise AccountingError(
                    f"the books are closed for {day}: a balance assertion on {asserted} dated {when} follows it",
                    retry=False,
                )

    @staticmethod
    def _check_currency(currency: str) -> None:
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            raise AccountingError(f"{currency!r} is not a currency the books can have", retry=False)

    def _field(self, account: str) -> str | None:
        for role in ACCOUNT_ROLES:
            if getattr(self, role) == account:
                return f"accounts.{role}"
        return None

    @staticmethod
    def _check_request(invoice: InvoiceRequest) -> None:
        if not invoice.lines:
            raise AccountingError(f"the invoice {invoice.reference} has no lines", retry=False)
        try:
            lines = sum((Decimal(line.net) for line in invoice.lines), Decimal(0))
            if lines != invoice.net or invoice.net + invoice.tax != invoice.total:
                raise AccountingError(
                    f"the invoice {invoice.reference} does not balance: lines {lines}, net {invoice.net}, "
                    f"tax {invoice.tax}, total {invoice.total}", retry=False,
                )
        except (InvalidOperation, TypeError):
            raise AccountingError(f"the invoice {invoice.reference} has an amount that is not a number",
                                  retry=False) from None

    # -- writing --------------------------------------------------------------------------

    async def _add(self, entry: dict[str, Any]) -> None:
        await self._call("PUT", "/add_entries", body={"entries": [entry]})

    async def post_invoice(self, invoice: InvoiceRequest) -> RemoteInvoice:
        self._check_reference(invoice.reference)
        self._check_currency(invoice.currency)
        accounts = [self.receivable, self.revenue] + ([self.tax] if invoice.tax else [])
        entries, facts = await self._current(invoice.reference, accounts, invoice.currency,
                                             done=lambda found: self._locate(invoice.reference, found) is not None)
        existing = self._locate(invoice.reference, entries)
        if existing is not None:
            return existing[1]
        self._check_request(invoice)
        await self._check_books(facts, accounts, invoice.currency, invoice.issued)
        cur = invoice.currency
        postings: list[dict[str, Any]] = [{"account": self.receivable, "amount": f"{_number(invoice.total)} {cur}"}]
        for line in invoice.lines:
            postings.append({
                "account": self.revenue,
                "amount": f"{_number(-line.net)} {cur}",
                "meta": {
                    "description": _text(line.description),
                    "quantity": _number(line.quantity),
                    "unit-price": _number(line.unit_price),
                },
            })
        if invoice.tax:
            postings.append({"account": self.tax, "amount": f"{_number(-invoice.tax)} {cur}",
                             "meta": {"tax-rate": _number(invoice.tax_rate)}})
        meta = {"crm-invoice": invoice.reference, "crm-party": _text(invoice.party.reference)}
        if invoice.party.country:
            meta["crm-country"] = _text(invoice.party.country, 2)
        entry = {
            "t": "Transaction",
            "date": invoice.issued.isoformat(),
            "flag": "*",
            "payee": _text(invoice.party.name) or _text(invoice.party.reference),
            "narration": f"Invoice {invoice.reference}",
            "tags": ["crm"],
            "links": [invoice.reference],
            "meta": meta,
            "postings": postings,
        }
        await self._add(entry)
        return RemoteInvoice(remote_id=f"^{invoice.reference}", reference=invoice.reference, currency=cur,
                             total=invoice.total, state="posted", issued=invoice.issued)

    async def cancel_invoice(self, reference: str, reason: str) -> RemoteInvoice | None:
        self._check_reference(reference)
        entries, _ = await self._current(reference, done=lambda found: self._cancelled(reference, found))
        located = self._locate(reference, entries)
        if located is None:
            return None
        invoice, found = located
        if found.state == "cancelled":
            return found
        if any(p.number is None for p in invoice.postings):
            raise AccountingError(
                f"the invoice {reference} has a posting with a cost or price; reverse it in fava by hand", retry=False
            )
        day = max(datetime.now(UTC).date(), invoice.date)
        currencies = {p.currency for p in invoice.postings}
        for currency in sorted(currencies):
            self._check_currency(currency)
            accounts = [p.account for p in invoice.postings if p.currency == currency]
            _, _, facts = await self._journal(None, accounts, currency)
            await self._check_books(facts, accounts, currency, day)
        entry = {
            "t": "Transaction",
            "date": day.isoformat(),
            "flag": "*",
            "payee": _text(invoice.payee),
            "narration": _text(f"Reversal of invoice {reference}" + (f": {reason}" if reason.strip() else ""), 300),
            "tags": ["crm"],
            "links": sorted(invoice.links | {reference}),
            "meta": {"crm-reversal-of": reference, "crm-reason": _text(reason or "", 300)},
            "postings": [{"account": p.account, "amount": f"{_number(-(p.number or 0))} {p.currency}"}
                         for p in invoice.postings],
        }
        await self._add(entry)
        return RemoteInvoice(remote_id=found.remote_id, reference=reference, currency=found.currency,
                             total=found.total, number=found.number, state="cancelled", issued=found.issued)

    # -- payments and reconciliation --------------------------------------------------------

    def _payments(self, entries: Sequence[_Entry]) -> list[tuple[date, RemotePayment]]:
        references = {self._reference_of(e) for e in entries if self._kind(e) == "invoice"} - {""}
        seen: dict[str, int] = {}
        payments: list[tuple[date, RemotePayment]] = []
        for entry in sorted(entries, key=lambda e: (e.date, e.lineno)):
            if self._kind(entry) != "payment":
                continue
            linked = sorted(entry.links & references)
            if not linked:
                continue
            key = self._content_id(entry)
            seen[key] = seen.get(key, 0) + 1
            base = f"fava:{key}" + (f".{seen[key]}" if seen[key] > 1 else "")
            credits = {c: -v for c, v in entry.total(self.receivable).items() if v < 0}
            for currency, amount in sorted(credits.items()):
                external_id = base if len(credits) == 1 else f"{base}:{currency}"
                paid_at = datetime(entry.date.year, entry.date.month, entry.date.day, tzinfo=UTC)
                payments.append((entry.date, RemotePayment(external_id=external_id, reference=linked[0],
                                                           amount=amount, currency=currency, paid_at=paid_at)))
        return payments

    def _read_checkpoint(self, checkpoint: str | None) -> tuple[date | None, set[str]]:
        if checkpoint is None:
            return None, set()
        try:
            data = json.loads(checkpoint)
            if not isinstance(data, dict) or data.get("v") != _CHECKPOINT_VERSION:
                raise ValueError
            since = date.fromisoformat(data["from"]) if data.get("from") else None
            seen = data.get("seen", [])
            if not isinstance(seen, list) or not all(isinstance(s, str) for s in seen):
                raise ValueError
            return since, set(seen)
        except (ValueError, KeyError, TypeError):
            raise AccountingError("the payment checkpoint was not made by the fava backend", retry=False,
                                  field="checkpoint") from None

    async def payments_since(self, checkpoint: str | None) -> PaymentPage:
        """Payments dated from the checkpoint's day on that it has not seen. The checkpoint keeps a
        window of ``paymentLookbackDays`` (default 31) before the newest payment (or today) with the
        ids seen in it, so a payment entered a few days back-dated is still read once."""
        since, seen = self._read_checkpoint(checkpoint)
        payments = self._payments(await self._touching(self.receivable))
        new = [p for day, p in payments if (since is None or day >= since) and p.external_id not in seen]
        newest = max((day for day, _ in payments), default=None)
        if newest is None:
            start = since
        else:
            start = min(newest, datetime.now(UTC).date()) - timedelta(days=self.lookback_days)
            if since is not None:
                start = max(start, since)
        window = sorted({p.external_id for day, p in payments if start is None or day >= start})
        mark = json.dumps({"v": _CHECKPOINT_VERSION, "from": start.isoformat() if start else None, "seen": window},
                          separators=(",", ":"))
        return PaymentPage(payments=new, checkpoint=mark)

    async def invoices(self, start: date, end: date) -> Sequence[RemoteInvoice]:
        entries = await self._touching(self.receivable)
        by_link: dict[str, list[_Entry]] = {}
        for entry in entries:
            for link in entry.links:
                by_link.setdefault(link, []).append(entry)
        result: list[RemoteInvoice] = []
        for entry in entries:
            if not start <= entry.date <= end or self._kind(entry) != "invoice":
                continue
            reference = self._reference_of(entry)
            related = by_link.get(reference, []) if reference else []
            result.append(self._remote(entry, reference, related))
        return result
