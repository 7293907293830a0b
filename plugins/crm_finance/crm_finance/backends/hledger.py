"""The hledger backend: orders booked as balanced transactions through hledger-web's JSON API.

hledger-web (``hledger-web -f books.journal --serve-api --capabilities=view,add``) offers two
things: ``GET /transactions`` (the whole journal as JSON) and ``PUT /add`` (append one
transaction; it answers 201, checks nothing and never dedupes). hledger has no ids, no parties, no
credit notes and no login, so the books carry everything in the entries themselves:

- an invoice is a transaction with the order number as its code and as a tag (``invoice:`` by
  default, config ``referenceTag``)::

      2026-03-01 (SO-2026-0001) Müller GmbH | Invoice SO-2026-0001  ; invoice:SO-2026-0001, customer:CRM-C-42
          assets:receivable     3516.09 EUR
          revenue:sales        -2500.00 EUR  ; Machine, 2 x 1250.00
          ...
          liabilities:tax       -561.39 EUR  ; tax 19 %

- a cancellation is the same postings negated, tagged ``reverses:SO-2026-0001`` as well;
- a payment is what the accountant enters: a transaction with a posting to the bank account and
  one to the receivable account less, tagged with the order number (on the transaction, or on
  the receivable posting when one transfer pays several invoices); its amount is what it takes
  off the receivable.

Because ``PUT /add`` does not dedupe, every write looks the reference up first, under one lock per
connection. hledger-web re-reads the journal when the file's modification time is after its last
read; a write landing within the same clock tick as a read stays unseen until the next change, and
a look-up would then miss it. So a write comes a moment after the look-up's read (``_SETTLE``).
The first invoice in each currency is read back (a connection's): hledger parses amounts in the
journal's style, and one declaring a decimal comma reads ``1.00`` as 100. Two requests meeting on
the file make hledger-web answer 500 "file is locked" (nothing written): the step is done again,
look-up first.

hledger has no closed periods; what closes a year there is a balance assertion (``hledger close``
writes them), and an entry dated before one would make the journal fail to load. Such an entry is
refused as a closed period. This speaks hledger-web 1.25's JSON (Debian bookworm).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from crm_graph.core.accounting import (
    AccountingError,
    InvoiceRequest,
    PaymentPage,
    RemoteInvoice,
    RemotePayment,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
DEFAULT_TAG = "invoice"
REVERSAL_TAG = "reverses"
CUSTOMER_TAG = "customer"
ACCOUNT_ROLES = ("receivable", "revenue", "tax", "bank")
# The pause between the look-up's read and the write, longer than a tick of the kernel's coarse
# clock that stamps file modification times (4 ms at HZ=250), so hledger-web sees the write.
_SETTLE = 0.02
_BUSY_TRIES = 5
T = TypeVar("T")

_TAG_NAME = re.compile(r"[^\s:,;()]+")
_CURRENCY = re.compile(r"[^\W\d_]{1,20}")
_REFERENCE_BAD = re.compile(r"[\s,;()\"]")


# ----------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class HledgerSettings:
    url: str
    receivable: str
    revenue: str
    tax: str
    bank: str
    timeout: float = DEFAULT_TIMEOUT
    tag: str = DEFAULT_TAG
    decimal_mark: str = "."
    currencies: frozenset[str] = frozenset()


def _account_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "an hledger account name is required (e.g. assets:receivable)"
    if value != value.strip():
        return "an account name may not start or end with a space"
    if "  " in value or any(ch in value for ch in "\t\r\n;"):
        return "an account name may not hold two spaces in a row, tabs, line breaks or ';'"
    if any(not part for part in value.split(":")):
        return "an account name may not have an empty part ('a::b', a leading or trailing ':')"
    return None


def _under(account: str, root: str) -> bool:
    return account == root or account.startswith(root + ":")


def parse_config(config: Mapping[str, Any]) -> tuple[HledgerSettings | None, list[tuple[str, str]]]:
    """The settings in ``config`` and the problems with it, as ``(key, message)`` pairs."""
    problems: list[tuple[str, str]] = []
    if not isinstance(config, Mapping):
        return None, [("", "the configuration must be a JSON object")]

    url = config.get("url")
    if not isinstance(url, str) or not url.strip():
        problems.append(("url", "hledger-web's address is required, e.g. http://127.0.0.1:5000"))
    else:
        try:
            parts = urlsplit(url.strip())
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError:
            parts = None
            problems.append(("url", "not a valid URL"))
        if parts is not None:
            if parts.scheme not in ("http", "https") or not parts.hostname:
                problems.append(("url", "must be an http:// or https:// address with a host"))
            elif parts.username is not None or parts.password is not None:
                problems.append(("url", "must not hold a user name or password (hledger-web has no login)"))
            elif parts.query or parts.fragment:
                problems.append(("url", "must not have a query or fragment"))

    timeout: Any = config.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
        problems.append(("timeout", "seconds to wait for hledger-web: a number above 0 and at most 600"))

    accounts = config.get("accounts")
    names: dict[str, str] = {}
    if not isinstance(accounts, Mapping):
        problems.append(("accounts", "an object naming the accounts: " + ", ".join(ACCOUNT_ROLES)))
        for role in ACCOUNT_ROLES:
            problems.append((f"accounts.{role}", "missing"))
    else:
        for role in ACCOUNT_ROLES:
            problem = _account_problem(accounts.get(role))
            if role not in accounts:
                problems.append((f"accounts.{role}", "missing: " + (problem or "")))
            elif problem:
                problems.append((f"accounts.{role}", problem))
            else:
                names[role] = accounts[role]
        roles = list(names)
        for i, a in enumerate(roles):
            for b in roles[i + 1:]:
                if _under(names[a], names[b]) or _under(names[b], names[a]):
                    problems.append((f"accounts.{b}", f"must be apart from accounts.{a} ({names[a]!r}): "
                                                      "neither may be the other or under it"))

    tag = config.get("referenceTag", DEFAULT_TAG)
    if not isinstance(tag, str) or not _TAG_NAME.fullmatch(tag) or tag.lower() in (REVERSAL_TAG, CUSTOMER_TAG):
        problems.append(("referenceTag", "an hledger tag name (no spaces, ':', ',', ';' or brackets), "
                                         f"not {REVERSAL_TAG!r} or {CUSTOMER_TAG!r}"))

    mark = config.get("decimalMark", ".")
    if mark not in (".", ","):
        problems.append(("decimalMark", "'.' or ',': the decimal mark of currencies the books have no amount in yet"))

    currencies = config.get("currencies", [])
    if not isinstance(currencies, list) or not all(isinstance(c, str) and _CURRENCY.fullmatch(c) for c in currencies):
        problems.append(("currencies", "a list of currency codes (letters only) the books keep beyond those "
                                       "they already have amounts in"))

    if problems:
        return None, problems
    return HledgerSettings(
        url=url.strip().rstrip("/"), timeout=float(timeout), tag=tag, decimal_mark=mark,
        currencies=frozenset(currencies), **names,
    ), []


class HledgerBackend:
    """The backend object the plugin registers (``crm_accounting_backends``)."""

    name = "hledger"
    description = ("hledger-web's JSON API (hledger-web --serve-api --capabilities=view,add): invoices as "
                   "balanced transactions coded and tagged with the order number, cancellations as reversing "
                   "transactions, payments the accountant enters against the receivable account")
    secret_keys: frozenset[str] = frozenset()

    def check_config(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        return parse_config(config)[1]

    def connect(self, config: Mapping[str, Any], secrets: Mapping[str, str]) -> HledgerConnection:
        settings, problems = parse_config(config)
        if settings is None:
            key, _ = problems[0]
            text = "; ".join(f"{k}: {m}" if k else m for k, m in problems)
            raise AccountingError(f"hledger configuration: {text}", retry=False, field=key or None)
        return HledgerConnection(settings)


# ----------------------------------------------------------------------------------------------
# The journal as hledger-web shows it


@dataclass(frozen=True)
class _Posting:
    account: str
    amounts: tuple[tuple[str, Decimal], ...]
    styles: tuple[dict[str, Any] | None, ...]
    prices: tuple[Any, ...]
    tags: tuple[tuple[str, str], ...]
    comment: str
    date: date | None
    assertion: bool

    def total(self, commodity: str) -> Decimal:
        return sum((q for c, q in self.amounts if c == commodity), Decimal(0))

    def tag(self, name: str) -> str | None:
        return _tag(self.tags, name)


@dataclass(frozen=True)
class _Txn:
    index: int
    date: date
    code: str
    description: str
    tags: tuple[tuple[str, str], ...]
    postings: tuple[_Posting, ...]

    def tag(self, name: str) -> str | None:
        return _tag(self.tags, name)


def _tag(tags: Iterable[tuple[str, str]], name: str) -> str | None:
    for key, value in tags:
        if key.lower() == name.lower():
            return value.strip()
    return None


def _quantity(raw: Any) -> Decimal:
    mantissa, places = raw["decimalMantissa"], raw["decimalPlaces"]
    if isinstance(mantissa, bool) or not isinstance(mantissa, int) or not isinstance(places, int):
        raise ValueError("amount without an exact mantissa")
    return Decimal(mantissa).scaleb(-places)


def _parse_txns(data: Any) -> list[_Txn]:
    if not isinstance(data, list):
        raise ValueError("not a list of transactions")
    txns: list[_Txn] = []
    for raw in data:
        postings = []
        for p in raw["tpostings"]:
            amounts = tuple((a["acommodity"], _quantity(a["aquantity"])) for a in p["pamount"])
            postings.append(_Posting(
                account=p["paccount"], amounts=amounts,
                styles=tuple(a.get("astyle") for a in p["pamount"]),
                prices=tuple(a.get("aprice") for a in p["pamount"]),
                tags=tuple((str(k), str(v)) for k, v in p.get("ptags") or ()),
                comment=p.get("pcomment") or "",
                date=date.fromisoformat(p["pdate"]) if p.get("pdate") else None,
                assertion=p.get("pbalanceassertion") is not None,
            ))
        txns.append(_Txn(
            index=int(raw.get("tindex", 0)), date=date.fromisoformat(raw["tdate"]), code=raw.get("tcode") or "",
            description=raw.get("tdescription") or "",
            tags=tuple((str(k), str(v)) for k, v in raw.get("ttags") or ()), postings=tuple(postings),
        ))
    txns.sort(key=lambda t: t.index)
    return txns


@dataclass
class _Books:
    """One read of the journal, sorted into invoices, reversals and payments."""

    settings: HledgerSettings
    txns: list[_Txn]
    invoices: list[_Txn] = field(default_factory=list)
    by_reference: dict[str, _Txn] = field(default_factory=dict)
    reversals: dict[str, _Txn] = field(default_factory=dict)
    payments: list[RemotePayment] = field(default_factory=list)

    def __post_init__(self) -> None:
        s = self.settings
        by_reference: dict[str, _Txn] = {}
        found: list[tuple[str, date, Decimal, str]] = []  # (reference, date, amount, currency)
        for t in self.txns:
            receivable = [p for p in t.postings if _under(p.account, s.receivable)]
            reference = t.tag(s.tag)
            reverses = t.tag(REVERSAL_TAG)
            if reverses is not None:
                self.reversals.setdefault(reverses or reference or "", t)
                continue
            if any(_under(p.account, s.bank) for p in t.postings):
                # A payment: money in at the bank, the receivable less by what it settles (a cash
                # discount or a fee may go elsewhere), per reference: one transfer may pay several
                # invoices, each receivable posting tagged with its own.
                paid: dict[tuple[str, str], tuple[date, Decimal]] = {}
                for p in receivable:
                    ref = p.tag(s.tag) or reference
                    for commodity, quantity in p.amounts:
                        if ref and quantity < 0:
                            day, sofar = paid.get((ref, commodity), (p.date or t.date, Decimal(0)))
                            paid[(ref, commodity)] = (day, sofar - quantity)
                found.extend((ref, day, amount, c) for (ref, c), (day, amount) in paid.items())
                continue
            if not receivable:
                continue
            commodity = _first_commodity(receivable)
            owed = sum((p.total(commodity) for p in receivable), Decimal(0)) if commodity else Decimal(0)
            if owed > 0 or (owed == 0 and reference):
                self.invoices.append(t)
                if reference:
                    by_reference.setdefault(reference, t)
        self.by_reference = by_reference
        # A payment's id: what it is (reference, date, amount, currency) and which of the same it
        # is in the journal's order; so it stays the same whatever is added, cleared or commented.
        seen: dict[tuple[str, str, str, str], int] = {}
        for ref, day, amount, commodity in found:
            if ref not in by_reference:
                continue  # not against an invoice of the CRM's (yet: it is read again once it is)
            number = format(amount.normalize(), "f")
            key = (ref, day.isoformat(), number, commodity)
            seen[key] = seen.get(key, 0) + 1
            self.payments.append(RemotePayment(
                external_id=f"{ref}/{day.isoformat()}/{number} {commodity}/{seen[key]}", reference=ref,
                amount=amount, currency=commodity, paid_at=datetime(day.year, day.month, day.day, tzinfo=UTC),
            ))

    def invoice(self, reference: str) -> _Txn | None:
        return self.by_reference.get(reference)

    def remote(self, t: _Txn) -> RemoteInvoice:
        s = self.settings
        reference = t.tag(s.tag) or ""
        receivable = [p for p in t.postings if _under(p.account, s.receivable)]
        commodity = _first_commodity(receivable) or ""
        total = sum((p.total(commodity) for p in receivable), Decimal(0))
        state = "posted"
        if reference and reference in self.reversals:
            state = "cancelled"
        elif reference and total > 0:
            paid = sum((p.amount for p in self.payments if p.reference == reference and p.currency == commodity),
                       Decimal(0))
            state = "paid" if paid >= total else "posted"
        # No reference: an id from what the entry says (hledger has none of its own).
        remote_id = reference or "~" + hashlib.sha256(repr(
            (t.date.isoformat(), t.code, t.description, [(p.account, p.amounts) for p in t.postings])
        ).encode()).hexdigest()[:16]
        return RemoteInvoice(remote_id=remote_id, reference=reference, currency=commodity, total=total,
                             number=None, state=state, issued=t.date)

    def style(self, commodity: str) -> dict[str, Any] | None:
        """How the books write ``commodity`` (its decimal mark above all), from an amount in it."""
        for t in reversed(self.txns):
            for p in t.postings:
                for (c, _), st in zip(p.amounts, p.styles, strict=True):
                    if c == commodity and isinstance(st, dict):
                        return st
        return None

    def closing_after(self, accounts: Iterable[str], day: date) -> tuple[str, date] | None:
        """A balance assertion dated after ``day`` on one of ``accounts`` or above it."""
        for t in self.txns:
            if t.date <= day:
                continue
            for p in t.postings:
                if p.assertion and any(_under(a, p.account) for a in accounts):
                    return p.account, t.date
        return None


def _first_commodity(postings: Sequence[_Posting]) -> str | None:
    for p in postings:
        for c, _ in p.amounts:
            return c
    return None


# ----------------------------------------------------------------------------------------------
# Writing


def _clean(text: str, limit: int = 200) -> str:
    """Text safe for a description or a comment: one line, no ';' (it starts a comment), no '|'
    (it splits payee and note), no ':' that would make a word a tag."""
    text = " ".join(str(text).split())
    text = text.replace(";", ",").replace("|", "/").replace(":", "\u2236")
    return text[:limit]


def _tag_value(text: str) -> str:
    return " ".join(str(text).replace(",", " ").split())[:100]


def _amount_json(commodity: str, quantity: Decimal, style: Mapping[str, Any] | None, mark: str,
                 price: Any = None) -> dict[str, Any]:
    sign, digits, exponent = quantity.as_tuple()
    if not isinstance(exponent, int):
        raise AccountingError(f"not an amount: {quantity}", retry=False)
    places = max(0, -exponent)
    mantissa = int(quantity.scaleb(places))
    st = {"ascommodityside": "R", "ascommodityspaced": True, "asdecimalpoint": mark, "asdigitgroups": None}
    if style:
        st.update({k: style[k] for k in ("ascommodityside", "ascommodityspaced") if k in style})
        if style.get("asdecimalpoint") in (".", ","):
            st["asdecimalpoint"] = style["asdecimalpoint"]
    # The precision written is the amount's own, so hledger neither rounds nor pads it.
    st["asprecision"] = places
    return {"acommodity": commodity, "aquantity": {"decimalMantissa": mantissa, "decimalPlaces": places},
            "aprice": price, "astyle": st}


def _posting_json(account: str, amounts: list[dict[str, Any]], comment: str = "") -> dict[str, Any]:
    return {"paccount": account, "pamount": amounts, "pdate": None, "pdate2": None, "pstatus": "Unmarked",
            "pcomment": comment, "ptype": "RegularPosting", "ptags": [], "pbalanceassertion": None,
            "ptransaction_": "0", "poriginal": None}


def _txn_json(day: date, code: str, description: str, comment: str, postings: list[dict[str, Any]]) -> dict[str, Any]:
    pos = {"sourceName": "", "sourceLine": 1, "sourceColumn": 1}
    return {"tindex": 0, "tsourcepos": [pos, pos], "tdate": day.isoformat(), "tdate2": None, "tstatus": "Unmarked",
            "tcode": code, "tdescription": description, "tcomment": comment, "ttags": [],
            "tprecedingcomment": "", "tpostings": postings}


def _shape(postings: Iterable[_Posting]) -> list[tuple[str, str, Decimal]]:
    return sorted((p.account, c, q) for p in postings for c, q in p.amounts)


def _check_reference(reference: object) -> str:
    if not isinstance(reference, str) or not reference or _REFERENCE_BAD.search(reference) or len(reference) > 100:
        raise AccountingError(
            f"the order number {reference!r} cannot be an hledger code and tag: it must be 1-100 characters "
            "without spaces, commas, semicolons, brackets or quotes", retry=False, field="reference")
    return reference


def _check_invoice(invoice: InvoiceRequest) -> None:
    _check_reference(invoice.reference)
    if not isinstance(invoice.currency, str) or not _CURRENCY.fullmatch(invoice.currency):
        raise AccountingError(f"the currency {invoice.currency!r} is not a currency code (letters only)",
                              retry=False, field="currency")
    amounts = [invoice.net, invoice.tax, invoice.total, *(line.net for line in invoice.lines)]
    if not all(isinstance(a, Decimal) and a.is_finite() for a in amounts):
        raise AccountingError("the invoice's amounts must be finite decimals", retry=False, field="lines")
    if not invoice.lines:
        raise AccountingError("an invoice needs at least one line", retry=False, field="lines")
    if sum((line.net for line in invoice.lines), Decimal(0)) != invoice.net:
        raise AccountingError(f"the lines add up to {sum(line.net for line in invoice.lines)}, not the net "
                              f"{invoice.net}: the entry would not balance", retry=False, field="net")
    if invoice.net + invoice.tax != invoice.total:
        raise AccountingError(f"net {invoice.net} plus tax {invoice.tax} is not the total {invoice.total}: "
                              "the entry would not balance", retry=False, field="total")
    if invoice.total < 0:
        raise AccountingError("an invoice with a negative total is a credit note: cancel the invoice instead",
                              retry=False, field="total")


# ----------------------------------------------------------------------------------------------
# The connection


class HledgerConnection:
    """One configured connection to hledger-web; opens its HTTP client on first use."""

    def __init__(self, settings: HledgerSettings) -> None:
        self.settings = settings
        self._client: httpx.AsyncClient | None = None
        self._lock = asyncio.Lock()
        self._accounts: set[str] = set()
        self._verified: set[str] = set()  # currencies whose first entry was read back as written

    # -- HTTP ----------------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {"Accept": "application/json"}
            if urlsplit(self.settings.url).hostname in ("127.0.0.1", "::1", "localhost"):
                # Every look-up reads the whole journal; on loopback, gzip only costs both sides time.
                headers["Accept-Encoding"] = "identity"
            self._client = httpx.AsyncClient(base_url=self.settings.url, timeout=httpx.Timeout(self.settings.timeout),
                                             headers=headers, follow_redirects=False)
        return self._client

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        where = f"hledger-web at {self.settings.url}"
        try:
            response = await self._http().request(method, path, json=body)
        except httpx.TimeoutException:
            raise AccountingError(f"{where} did not answer within {self.settings.timeout:g} s", retry=True) from None
        except httpx.HTTPError as exc:
            detail = str(exc) or type(exc).__name__
            raise AccountingError(f"could not reach {where}: {detail}", retry=True) from None
        if response.status_code >= 500:
            raise AccountingError(f"{where} failed ({response.status_code}): {_said(response)}", retry=True)
        if response.status_code in (401, 403):
            raise AccountingError(f"{where} refused {method} {path} ({response.status_code}): {_said(response)}; "
                                  "it must run with --capabilities=view,add", retry=False)
        if response.status_code >= 400:
            raise AccountingError(f"{where} rejected {method} {path} ({response.status_code}): {_said(response)}",
                                  retry=False)
        if method == "PUT":
            return None
        try:
            return response.json()
        except ValueError:
            raise AccountingError(f"{where} answered {path} with something other than JSON: is it hledger-web "
                                  "started with --serve-api?", retry=False) from None

    async def _books(self) -> _Books:
        data = await self._request("GET", "/transactions")
        try:
            txns = _parse_txns(data)
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise AccountingError(f"hledger-web's transactions are not in the JSON of hledger-web 1.25 ({exc})",
                                  retry=False) from None
        return _Books(self.settings, txns)

    async def _require_accounts(self, accounts: Iterable[str]) -> None:
        wanted = set(accounts)
        if wanted <= self._accounts:
            return
        names = await self._request("GET", "/accountnames")
        if not isinstance(names, list):
            raise AccountingError("hledger-web's /accountnames is not a list", retry=False)
        self._accounts = {str(n) for n in names}
        missing = sorted(wanted - self._accounts)
        if missing:
            roles = {getattr(self.settings, r): r for r in ACCOUNT_ROLES}
            field_ = f"accounts.{roles[missing[0]]}" if missing[0] in roles else None
            raise AccountingError(f"the books have no account {', '.join(missing)}: declare it in the journal "
                                  f"(account {missing[0]}) or name another in the connection", retry=False,
                                  field=field_)

    async def _require_currency(self, books: _Books, currency: str) -> None:
        if currency in self.settings.currencies or books.style(currency) is not None:
            return
        known = await self._request("GET", "/commodities")
        if isinstance(known, list) and currency in known:
            return
        have = sorted(c for c in known if isinstance(c, str) and c != "AUTO") if isinstance(known, list) else []
        raise AccountingError(
            f"the books do not keep {currency} (they have amounts in {', '.join(have) or 'no currency'}): declare "
            f"it in the journal (commodity 1,000.00 {currency}) and list it in the connection's currencies",
            retry=False, field="currency")

    def _require_open(self, books: _Books, accounts: Iterable[str], day: date) -> None:
        closing = books.closing_after(accounts, day)
        if closing is not None:
            account, closed_on = closing
            raise AccountingError(
                f"the books are closed for {day.isoformat()}: a balance assertion on {account} dated "
                f"{closed_on.isoformat()} follows it (an entry before it would break the journal)", retry=False,
                field="issued")

    async def _add(self, entry: dict[str, Any]) -> None:
        """Append ``entry``: under the lock, a moment after the look-up's read (see ``_SETTLE``)."""
        await asyncio.sleep(_SETTLE)
        await self._request("PUT", "/add", entry)

    async def _locked(self, step: Callable[[], Awaitable[T]]) -> T:
        """``step`` under the connection's lock, again (look-up first) when hledger-web answers that
        the journal file is locked: two of its requests met on the file, nothing was written."""
        async with self._lock:
            for attempt in range(1, _BUSY_TRIES + 1):
                try:
                    return await step()
                except AccountingError as exc:
                    if not (exc.retry and "file is locked" in exc.message) or attempt == _BUSY_TRIES:
                        raise
                await asyncio.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    # -- the protocol --------------------------------------------------------------------------

    async def find_invoice(self, reference: str) -> RemoteInvoice | None:
        books = await self._books()
        found = books.invoice(reference) if isinstance(reference, str) else None
        return books.remote(found) if found is not None else None

    async def post_invoice(self, invoice: InvoiceRequest) -> RemoteInvoice:
        _check_invoice(invoice)
        return await self._locked(lambda: self._post(invoice))

    async def _post(self, invoice: InvoiceRequest) -> RemoteInvoice:
        s = self.settings
        reference = invoice.reference
        books = await self._books()
        found = books.invoice(reference)
        if found is not None:
            return books.remote(found)
        accounts = [s.receivable, s.revenue] + ([s.tax] if invoice.tax else [])
        await self._require_accounts(accounts)
        await self._require_currency(books, invoice.currency)
        self._require_open(books, accounts, invoice.issued)

        style = books.style(invoice.currency)

        def amount(q: Decimal) -> list[dict[str, Any]]:
            return [_amount_json(invoice.currency, q, style, s.decimal_mark)]

        postings = [_posting_json(s.receivable, amount(invoice.total))]
        for line in invoice.lines:
            note = _clean(f"{line.description}, {line.quantity.normalize():f} x {line.unit_price}")
            postings.append(_posting_json(s.revenue, amount(-line.net), note))
        if invoice.tax:
            postings.append(_posting_json(s.tax, amount(-invoice.tax), _clean(f"tax {invoice.tax_rate} %")))
        party = invoice.party
        comment = f"{s.tag}:{reference}"
        if _tag_value(party.reference):
            comment += f", {CUSTOMER_TAG}:{_tag_value(party.reference)}"
        description = f"{_clean(party.name, 120) or _tag_value(party.reference)} | Invoice {reference}"
        await self._add(_txn_json(invoice.issued, reference, description, comment, postings))
        booked = RemoteInvoice(remote_id=reference, reference=reference, currency=invoice.currency,
                               total=invoice.total, state="posted", issued=invoice.issued)
        if invoice.currency in self._verified:
            return booked

        # The first entry in a currency is read back: hledger parses amounts by the journal's
        # style, and an entry it read otherwise than meant must not pass unnoticed.
        books = await self._books()
        written = books.invoice(reference)
        if written is None:
            log.warning("hledger-web does not show the invoice %s it accepted: the journal may fail to load "
                        "(run hledger check), or another write met this one within a clock tick", reference)
            return booked
        expected = sorted([(s.receivable, invoice.currency, invoice.total)]
                          + [(s.revenue, invoice.currency, -line.net) for line in invoice.lines]
                          + ([(s.tax, invoice.currency, -invoice.tax)] if invoice.tax else []))
        if _shape(written.postings) != expected:
            got = ", ".join(f"{a} {q} {c}" for a, c, q in _shape(written.postings))
            raise AccountingError(
                f"hledger read the invoice {reference} back with other amounts ({got}): the journal's style "
                f"for {invoice.currency} differs (set decimalMark); the entry is in the books, correct it there",
                retry=False, field="decimalMark")
        self._verified.add(invoice.currency)
        return books.remote(written)

    async def cancel_invoice(self, reference: str, reason: str) -> RemoteInvoice | None:
        _check_reference(reference)
        return await self._locked(lambda: self._cancel(reference, reason))

    async def _cancel(self, reference: str, reason: str) -> RemoteInvoice | None:
        s = self.settings
        books = await self._books()
        invoice = books.invoice(reference)
        if invoice is None:
            return None
        remote = books.remote(invoice)
        if remote.state == "cancelled":
            return remote
        day = max(date.today(), invoice.date)
        self._require_open(books, [p.account for p in invoice.postings], day)
        # The invoice's own postings negated, amounts as the books parsed them, in their style.
        postings = []
        for p in invoice.postings:
            amounts = [_amount_json(c, -q, st, s.decimal_mark, price)
                       for (c, q), st, price in zip(p.amounts, p.styles, p.prices, strict=True)]
            postings.append(_posting_json(p.account, amounts))
        description = _clean(f"Reversal of {reference}" + (f", {reason}" if reason and reason.strip() else ""))
        await self._add(_txn_json(day, reference, description, f"{s.tag}:{reference}, {REVERSAL_TAG}:{reference}",
                                  postings))
        return RemoteInvoice(remote_id=remote.remote_id, reference=reference, currency=remote.currency,
                             total=remote.total, number=remote.number, state="cancelled", issued=remote.issued)

    async def payments_since(self, checkpoint: str | None) -> PaymentPage:
        """The payments after ``checkpoint``: it holds how many payments were read and a digest of
        their ids in the journal's order. When the journal still starts with those, what follows
        is new; when it does not (an entry edited, inserted or removed above), every payment is
        given again: the CRM records each id once, so an overlap is harmless and nothing is lost."""
        books = await self._books()
        payments = books.payments
        start = 0
        if checkpoint:
            try:
                version, count, digest = checkpoint.split(":")
                n = int(count)
            except ValueError:
                version, n, digest = "", 0, ""
            if version == "v1" and 0 <= n <= len(payments) and _digest(payments[:n]) == digest:
                start = n
        return PaymentPage(payments=list(payments[start:]), checkpoint=f"v1:{len(payments)}:{_digest(payments)}")

    async def invoices(self, start: date, end: date) -> Sequence[RemoteInvoice]:
        books = await self._books()
        return [books.remote(t) for t in books.invoices if start <= t.date <= end]

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


def _digest(payments: Sequence[RemotePayment]) -> str:
    h = hashlib.sha256()
    for p in payments:
        h.update(p.external_id.encode() + b"\n")
    return h.hexdigest()[:24]


def _said(response: httpx.Response) -> str:
    """The remote's own words from an error answer (a JSON string, or the text), shortened."""
    try:
        body = response.json()
        text = body if isinstance(body, str) else response.text
    except ValueError:
        text = response.text
    return " ".join(text.split())[:300] or response.reason_phrase


backend = HledgerBackend()
