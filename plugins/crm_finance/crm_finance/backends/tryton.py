"""Tryton (8.2, modules ``account_invoice``) as the books, over its JSON-RPC at ``<url>/<database>/rpc/``.

Config (camelCase JSON):

- ``url``: the server's root, ``http://127.0.0.1:8000`` (no user or password in it).
- ``database``: the Tryton database, ``crm``.
- ``username``: the Tryton user; its current company is the one booked to.
- ``accounts``: ``{"receivable": ..., "revenue": ..., "tax": ...}``, each an open account's code or
  name: the receivable debited with the total, the revenue credited with each line's net, and the
  account the tax books to.
- ``tax`` (optional): the customer tax (``account.tax``) by name. Without it, the percentage tax
  of the order's rate that books to ``accounts.tax`` is used; an order at 0 % has no tax.
- ``journal`` (optional): the revenue journal by code or name; the first revenue journal otherwise.
- ``timeout`` (optional): seconds per request, 30.

Secret: ``password`` (or ``passwordEnv``, handled by the plugin).

How the books are used:

- An order is a customer invoice whose ``reference`` is the CRM order number, with one line per
  order line on the revenue account and the tax, posted (numbered, with its move). It is looked up
  by reference first; a draft left by an interrupted call is posted rather than made again. A
  draft that cannot be posted (closed period, date before the last numbered invoice) is cancelled,
  never deleted, so a later attempt starts from the order as it is then.
- Amounts go as decimals. Tryton rounds tax half-even and the CRM half-up: where they differ by a
  cent the invoice's tax line is set to the CRM's amount before posting.
- ``cancel_invoice`` runs Tryton's own credit wizard: a credit note, reconciled with the invoice
  (which goes to "cancelled") when nothing was paid yet, else posted beside it. The credit note
  is found through its lines' origin, so twice credits once. Such credit notes are not listed by
  ``invoices``: their invoice shows as "cancelled".
- Payments are the invoice's payment lines and the lines reconciled with it, less other invoices'
  moves (credit notes) and write-offs; ``external_id`` is ``move-line:<id>``. The checkpoint is
  the newest modification time of the invoices read, with the payments seen in the last few
  minutes before it (transactions commit late), so nothing is missed and nothing comes twice.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import httpx

from crm_graph.core.remote import base_url_problem, scrub
from crm_graph.core.accounting import (
    AccountingError,
    InvoiceLine,
    InvoiceRequest,
    Party,
    PaymentPage,
    RemoteInvoice,
    RemotePayment,
)

DEFAULT_TIMEOUT = 30.0
PRICE_DIGITS = 4  # Tryton's default ``[product] price_decimal``
CHECKPOINT_WINDOW = timedelta(minutes=10)
BATCH = 200
LIVE = ["OR", ("state", "!=", "cancelled"), ("number", "!=", None)]  # not an abandoned draft
BOOKED = ("posted", "paid", "cancelled")
INVOICE_FIELDS = ["reference", "number", "state", "total_amount", "currency", "invoice_date", "lines", "type"]


# -- JSON-RPC ---------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": format(value, "f")}
    if isinstance(value, datetime):
        return {"__class__": "datetime", "year": value.year, "month": value.month, "day": value.day,
                "hour": value.hour, "minute": value.minute, "second": value.second, "microsecond": value.microsecond}
    if isinstance(value, date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot send {type(value).__name__} to Tryton")


def _decode(obj: dict[str, Any]) -> Any:
    kind = obj.get("__class__")
    if kind == "Decimal":
        return Decimal(obj["decimal"])
    if kind == "datetime":
        return datetime(obj["year"], obj["month"], obj["day"], obj["hour"], obj["minute"], obj["second"],
                        obj.get("microsecond", 0))
    if kind == "date":
        return date(obj["year"], obj["month"], obj["day"])
    return obj


class _Rpc:
    """One Tryton session over one ``httpx.AsyncClient``: login on first use and again when the
    session expired (Tryton drops idle sessions after five minutes)."""

    def __init__(self, url: str, database: str, username: str, password: str, timeout: float) -> None:
        self.endpoint = f"{url.rstrip('/')}/{quote(database, safe='')}/rpc/"
        self.where = f"Tryton at {url.rstrip('/')} (database {database!r})"
        self.database = database
        self.username = username
        self._password = password
        self.timeout = timeout
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout))
        self._auth: str | None = None
        self._session_key: str | None = None
        self._login_lock = asyncio.Lock()
        self._ids = 0

    def _scrub(self, text: str) -> str:
        return scrub(text, (self._password or "", self._session_key or ""))

    def _fail(self, message: str, *, retry: bool, field: str | None = None) -> AccountingError:
        return AccountingError(self._scrub(message), retry=retry, field=field)

    async def _post(self, method: str, params: list[Any], auth: str | None) -> httpx.Response:
        self._ids += 1
        body = json.dumps({"id": self._ids, "method": method, "params": params}, default=_encode)
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = auth
        try:
            return await self._client.post(self.endpoint, content=body, headers=headers)
        except httpx.TimeoutException:
            raise self._fail(f"{self.where} did not answer within {self.timeout:g} s", retry=True) from None
        except httpx.HTTPError as exc:
            raise self._fail(f"cannot reach {self.where}: {type(exc).__name__} {exc}".rstrip(), retry=True) from None

    def _http_error(self, response: httpx.Response, method: str) -> AccountingError:
        status = response.status_code
        if status >= 500:
            return self._fail(f"{self.where} failed with HTTP {status} on {method}", retry=True)
        if status == 429:
            return self._fail(f"{self.where} refuses logins for now (too many attempts)", retry=True)
        if status == 404:
            return self._fail(f"{self.where}: no such database", retry=False, field="database")
        if status in (401, 403):
            return self._fail(f"{self.where} refused the login of user {self.username!r}", retry=False,
                              field="password")
        return self._fail(f"{self.where} answered HTTP {status} to {method}", retry=False)

    def _remote_error(self, error: Any) -> AccountingError:
        """Tryton's own errors: ``["UserError", [message, description, domain]]`` (a rule of the
        books: no retry fixes it), ``["UserWarning", [name, message, description]]`` (needs a
        person to confirm), ``["ConcurrencyException", message]``, or ``[str(exception), traceback]``
        for an unexpected failure of the server."""
        if isinstance(error, list) and error:
            kind, args = error[0], error[1] if len(error) > 1 else None
            if kind == "UserError" and isinstance(args, list) and args:
                text = " ".join(str(part) for part in args[:2] if part)
                return self._fail(f"Tryton: {text}", retry=False)
            if kind == "UserWarning" and isinstance(args, list) and len(args) > 1:
                text = " ".join(str(part) for part in args[1:3] if part)
                return self._fail(f"Tryton asks for confirmation: {text}", retry=False)
            if kind == "ConcurrencyException":
                return self._fail(f"Tryton: {args}", retry=True)
            if kind == "LoginException":
                return self._fail(f"{self.where} asks for more than a password to log in", retry=False,
                                  field="password")
            return self._fail(f"Tryton failed: {str(kind)[:300]}", retry=True)  # not the traceback
        return self._fail(f"Tryton failed: {str(error)[:300]}", retry=True)

    def _parse(self, response: httpx.Response, method: str) -> Any:
        try:
            payload = json.loads(response.text, object_hook=_decode)
        except ValueError:
            raise self._fail(f"{self.where} answered something other than JSON-RPC to {method}", retry=True) from None
        if not isinstance(payload, dict):
            raise self._fail(f"{self.where} answered something other than JSON-RPC to {method}", retry=True)
        if payload.get("error") is not None:
            raise self._remote_error(payload["error"])
        return payload.get("result")

    async def _login(self) -> None:
        async with self._login_lock:
            if self._auth is not None:
                return
            response = await self._post("common.db.login", [self.username, {"password": self._password}, "en"], None)
            if response.status_code != 200:
                raise self._http_error(response, "the login")
            result = self._parse(response, "the login")
            try:
                user_id, key = result[0], result[1]
            except (TypeError, IndexError, KeyError):
                raise self._fail(f"{self.where} gave no session at login", retry=True) from None
            self._session_key = str(key)
            token = base64.b64encode(f"{self.username}:{user_id}:{key}".encode()).decode()
            self._auth = f"Session {token}"

    async def call(self, method: str, *params: Any) -> Any:
        for attempt in (1, 2):
            if self._auth is None:
                await self._login()
            auth = self._auth
            response = await self._post(method, list(params), auth)
            if response.status_code == 401 and attempt == 1:
                if self._auth == auth:  # the session expired: log in once more
                    self._auth = None
                continue
            if response.status_code != 200:
                raise self._http_error(response, method)
            return self._parse(response, method)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        try:
            if self._auth is not None:
                await self._client.post(self.endpoint, headers={"Authorization": self._auth},
                                        content=json.dumps({"id": 0, "method": "common.db.logout", "params": []}))
        except httpx.HTTPError:
            pass
        finally:
            self._auth = None
            await self._client.aclose()


# -- the backend ------------------------------------------------------------------------------


def _text(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


class TrytonBackend:
    name = "tryton"
    description = "Tryton 8 (account_invoice): customer invoices by order number, credit notes, payments, over JSON-RPC"
    secret_keys = frozenset({"password"})

    def check_config(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        if not isinstance(config, Mapping):
            return [("", "the Tryton config is an object with url, database, username and accounts")]
        problems: list[tuple[str, str]] = []
        url_problem = base_url_problem(config.get("url"), "http://127.0.0.1:8000")
        if url_problem:
            problems.append(("url", url_problem))
        for key, what in (("database", "the Tryton database name"), ("username", "the Tryton user to log in as")):
            if key not in config:
                problems.append((key, f"required: {what}"))
            elif _text(config, key) is None:
                problems.append((key, f"must be a non-empty string: {what}"))
        accounts = config.get("accounts")
        if accounts is None:
            problems.append(("accounts", "required: {receivable, revenue, tax}, each an account's code or name"))
        elif not isinstance(accounts, Mapping):
            problems.append(("accounts", "must be an object {receivable, revenue, tax}"))
        else:
            for key in ("receivable", "revenue", "tax"):
                if key not in accounts:
                    problems.append((f"accounts.{key}", "required: the account's code or name in Tryton"))
                elif _text(accounts, key) is None:
                    problems.append((f"accounts.{key}", "must be a non-empty string: the account's code or name"))
        for key in ("tax", "journal"):
            if key in config and config[key] is not None and _text(config, key) is None:
                problems.append((key, "must be a non-empty string when given"))
        if "timeout" in config and config["timeout"] is not None:
            timeout = config["timeout"]
            if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
                problems.append(("timeout", "must be a number of seconds above 0 and at most 600"))
        return problems

    def connect(self, config: Mapping[str, Any], secrets: Mapping[str, str]) -> TrytonConnection:
        problems = self.check_config(config)
        if problems:
            key, message = problems[0]
            raise AccountingError(f"{key}: {message}", retry=False, field=key or None)
        password = secrets.get("password")
        if not isinstance(password, str) or not password:
            raise AccountingError("the Tryton password is missing", retry=False, field="password")
        return TrytonConnection(config, password)


@dataclass
class _Books:
    """What the config names, as Tryton's ids (read once per connection)."""

    company: int
    currency: int  # the company's
    receivable: int
    revenue: int
    tax_account: int
    journal: int
    tax: int | None
    tax_rate: Decimal | None
    currencies: dict[str, tuple[int, int]] = field(default_factory=dict)  # code: (id, digits)
    codes: dict[int, str] = field(default_factory=dict)  # currency id: code
    taxes: dict[Decimal, int] = field(default_factory=dict)  # rate (0.19): tax id


class TrytonConnection:
    def __init__(self, config: Mapping[str, Any], password: str) -> None:
        self._config = config
        accounts = config["accounts"]
        self._account_names = {key: str(accounts[key]).strip() for key in ("receivable", "revenue", "tax")}
        self._tax_name = _text(config, "tax")
        self._journal_name = _text(config, "journal")
        timeout = float(config.get("timeout") or DEFAULT_TIMEOUT)
        self._rpc = _Rpc(config["url"].strip(), config["database"].strip(), config["username"].strip(), password, timeout)
        self._context: dict[str, Any] | None = None
        self._books_cache: _Books | None = None
        self._setup_lock = asyncio.Lock()

    # -- plumbing --

    async def _ctx(self) -> dict[str, Any]:
        if self._context is None:
            prefs = await self._rpc.call("model.res.user.get_preferences", True, {})
            if not isinstance(prefs, dict) or not prefs.get("company"):
                raise AccountingError(f"the Tryton user {self._rpc.username!r} has no current company", retry=False,
                                      field="username")
            self._context = {key: value for key, value in prefs.items() if key != "locale"}
        return self._context

    async def _call(self, model: str, method: str, *params: Any, context: Mapping[str, Any] | None = None) -> Any:
        ctx = dict(await self._ctx())
        if context:
            ctx.update(context)
        return await self._rpc.call(f"model.{model}.{method}", *params, ctx)

    async def _search_read(self, model: str, domain: list[Any], fields: list[str], *, order: list[Any] | None = None,
                           limit: int | None = None, context: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return await self._call(model, "search_read", domain, 0, limit, order, fields, context=context)

    async def _read(self, model: str, ids: Sequence[int], fields: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), BATCH):
            out += await self._call(model, "read", list(ids[start:start + BATCH]), fields)
        return out

    async def _books(self) -> _Books:
        if self._books_cache is not None:
            return self._books_cache
        async with self._setup_lock:
            if self._books_cache is None:
                self._books_cache = await self._resolve()
        return self._books_cache

    async def _resolve(self) -> _Books:
        ctx = await self._ctx()
        company = int(ctx["company"])
        (company_row,) = await self._read("company.company", [company], ["currency"])
        ids = {}
        for key, kind in (("receivable", "receivable"), ("revenue", "revenue"), ("tax", None)):
            ids[key] = await self._account(company, key, kind)
        journal = await self._journal()
        books = _Books(company=company, currency=int(company_row["currency"]), receivable=ids["receivable"],
                       revenue=ids["revenue"], tax_account=ids["tax"], journal=journal, tax=None, tax_rate=None)
        if self._tax_name:
            rows = await self._search_read(
                "account.tax", [("company", "=", company), ("name", "=", self._tax_name), ("parent", "=", None)],
                ["type", "rate", "invoice_account"])
            if len(rows) != 1:
                found = "no" if not rows else "more than one"
                raise AccountingError(f"Tryton has {found} tax named {self._tax_name!r}", retry=False, field="tax")
            (row,) = rows
            if row["type"] != "percentage":
                raise AccountingError(f"the Tryton tax {self._tax_name!r} is not a percentage", retry=False, field="tax")
            books.tax, books.tax_rate = int(row["id"]), Decimal(row["rate"])
        return books

    async def _account(self, company: int, key: str, kind: str | None) -> int:
        wanted = self._account_names[key]
        domain = [("company", "=", company), ("closed", "!=", True), ["OR", ("code", "=", wanted), ("name", "=", wanted)]]
        rows = await self._search_read("account.account", domain,
                                       ["code", "name", "type", "type.receivable", "type.revenue"])
        by_code = [row for row in rows if row.get("code") == wanted]
        rows = by_code or rows
        where = f"accounts.{key}"
        if not rows:
            raise AccountingError(f"Tryton has no open account with code or name {wanted!r} ({where})", retry=False,
                                  field=where)
        if len(rows) > 1:
            raise AccountingError(f"more than one Tryton account is named {wanted!r} ({where}): give its code",
                                  retry=False, field=where)
        (row,) = rows
        label = f"{row.get('code') or ''} {row.get('name') or ''}".strip()
        if not row.get("type"):
            raise AccountingError(f"the Tryton account {label} is a view, not one to book to ({where})", retry=False,
                                  field=where)
        if kind and not (row.get("type.") or {}).get(kind):
            raise AccountingError(f"the Tryton account {label} is not of a {kind} type ({where})", retry=False,
                                  field=where)
        return int(row["id"])

    async def _journal(self) -> int:
        if self._journal_name:
            domain: list[Any] = [("type", "=", "revenue"),
                                 ["OR", ("code", "=", self._journal_name), ("name", "=", self._journal_name)]]
        else:
            domain = [("type", "=", "revenue")]
        rows = await self._search_read("account.journal", domain, ["code"], order=[("id", "ASC")], limit=1)
        if not rows:
            what = f"no revenue journal {self._journal_name!r}" if self._journal_name else "no revenue journal"
            raise AccountingError(f"Tryton has {what}", retry=False, field="journal" if self._journal_name else None)
        return int(rows[0]["id"])

    async def _currency(self, books: _Books, code: str, on: date) -> tuple[int, int]:
        if code not in books.currencies:
            rows = await self._search_read("currency.currency", [("code", "=", code)], ["digits"],
                                           context={"active_test": False})
            if not rows:
                raise AccountingError(f"Tryton has no currency {code}: add it (with a rate) before booking in it",
                                      retry=False)
            books.currencies[code] = (int(rows[0]["id"]), int(rows[0].get("digits") or 2))
            books.codes[int(rows[0]["id"])] = code
        currency_id, digits = books.currencies[code]
        if currency_id != books.currency:
            (row,) = await self._call("currency.currency", "read", [currency_id], ["rate"], context={"date": on})
            if not row.get("rate"):
                raise AccountingError(f"Tryton has no exchange rate for {code} on {on.isoformat()}", retry=False)
        return currency_id, digits

    async def _code(self, books: _Books, currency_id: int) -> str:
        if currency_id not in books.codes:
            (row,) = await self._read("currency.currency", [currency_id], ["code"])
            books.codes[currency_id] = row["code"]
        return books.codes[currency_id]

    async def _tax_for(self, books: _Books, percent: Decimal) -> int | None:
        rate = percent / 100
        if books.tax is not None:
            if books.tax_rate != rate:
                raise AccountingError(
                    f"the order's tax is {percent.normalize():f} % but the Tryton tax {self._tax_name!r} is "
                    f"{(books.tax_rate or 0) * 100:.4g} %", retry=False, field="tax")
            return books.tax
        if not percent:
            return None
        if rate not in books.taxes:
            rows = await self._search_read(
                "account.tax", [("company", "=", books.company), ("type", "=", "percentage"), ("rate", "=", rate),
                                ("invoice_account", "=", books.tax_account), ("parent", "=", None)],
                ["name"], order=[("id", "ASC")], limit=1)
            if not rows:
                raise AccountingError(
                    f"Tryton has no {percent.normalize():f} % tax booking to {self._account_names['tax']!r} "
                    f"(accounts.tax); create one or name it in the config (tax)", retry=False, field="tax")
            books.taxes[rate] = int(rows[0]["id"])
        return books.taxes[rate]

    async def _party(self, books: _Books, party: Party) -> tuple[int, int]:
        """The party whose code is the CRM's customer reference, and its invoice address."""
        for attempt in (1, 2):
            rows = await self._search_read("party.party", [("code", "=", party.reference)], ["addresses"],
                                           context={"active_test": False}, limit=1)
            if rows:
                party_id = int(rows[0]["id"])
                if rows[0]["addresses"]:
                    return party_id, int(rows[0]["addresses"][0])
                (address,) = await self._call("party.address", "create", [{"party": party_id}])
                return party_id, int(address)
            address: dict[str, Any] = {}
            if party.address_lines:
                address["street"] = "\n".join(party.address_lines)
            if party.country:
                countries = await self._search_read("country.country", [("code", "=", party.country.upper())], [], limit=1)
                if countries:
                    address["country"] = countries[0]["id"]
            values: dict[str, Any] = {"name": party.name, "code": party.reference, "addresses": [["create", [address]]]}
            if party.email:
                values["contact_mechanisms"] = [["create", [{"type": "email", "value": party.email}]]]
            try:
                await self._call("party.party", "create", [values])
            except AccountingError:
                if attempt == 2:
                    raise
                # Made meanwhile by another call (the code is unique): read it on the next turn.
        raise AssertionError("unreachable")

    # -- invoices --

    async def _find(self, reference: str) -> dict[str, Any] | None:
        books = await self._books()
        rows = await self._search_read(
            "account.invoice", [("company", "=", books.company), ("type", "=", "out"), ("reference", "=", reference),
                                LIVE], INVOICE_FIELDS, order=[("id", "ASC")])
        if not rows:
            return None
        booked = [row for row in rows if row["state"] in BOOKED]
        return (booked or rows)[0]

    async def _credit_notes(self, invoices: Iterable[dict[str, Any]], states: Sequence[str] = ("posted", "paid")
                            ) -> dict[int, list[int]]:
        """The credit notes (in ``states``) crediting each invoice: the invoices whose lines' origin
        is one of its lines."""
        owner = {int(line): int(inv["id"]) for inv in invoices for line in inv.get("lines") or ()}
        found: dict[int, list[int]] = {}
        origins = [f"account.invoice.line,{line}" for line in owner]
        for start in range(0, len(origins), BATCH):
            rows = await self._search_read(
                "account.invoice.line",
                [("origin", "in", origins[start:start + BATCH]), ("invoice.state", "in", list(states))],
                ["origin", "invoice"])
            for row in rows:
                origin = row.get("origin") or ""
                invoice = owner.get(int(origin.rsplit(",", 1)[1])) if "," in origin else None
                if invoice is not None and row.get("invoice") and int(row["invoice"]) not in found.setdefault(invoice, []):
                    found[invoice].append(int(row["invoice"]))
        return found

    async def _remote(self, rows: Sequence[dict[str, Any]]) -> list[RemoteInvoice]:
        books = await self._books()
        credited = await self._credit_notes([row for row in rows if row["state"] in ("posted", "paid")])
        out = []
        for row in rows:
            state = row["state"]
            if state == "cancelled" or credited.get(int(row["id"])):
                state = "cancelled"
            elif state != "paid":
                state = "posted"
            out.append(RemoteInvoice(
                remote_id=str(row["id"]), reference=row.get("reference") or "",
                currency=await self._code(books, int(row["currency"])), total=Decimal(row["total_amount"]),
                number=row.get("number"), state=state, issued=row.get("invoice_date")))
        return out

    async def find_invoice(self, reference: str) -> RemoteInvoice | None:
        row = await self._find(reference)
        if row is None or row["state"] not in BOOKED:
            return None  # a draft is not in the books yet
        return (await self._remote([row]))[0]

    @staticmethod
    def _check_request(invoice: InvoiceRequest) -> None:
        def bad(message: str, where: str | None = None) -> AccountingError:
            return AccountingError(f"order {invoice.reference or '(no number)'}: {message}", retry=False, field=where)

        if not invoice.reference.strip():
            raise bad("an invoice needs the order number as its reference", "reference")
        if not invoice.party.reference.strip() or not invoice.party.name.strip():
            raise bad("the customer needs a reference and a name", "party")
        if not invoice.lines:
            raise bad("an invoice needs at least one line", "lines")
        if len(invoice.currency) != 3 or not invoice.currency.isalpha():
            raise bad(f"not a currency code: {invoice.currency!r}", "currency")
        try:
            if sum((line.net for line in invoice.lines), Decimal(0)) != invoice.net:
                raise bad(f"the lines add up to {sum(line.net for line in invoice.lines)}, not the net {invoice.net}")
            if invoice.net + invoice.tax != invoice.total:
                raise bad(f"net {invoice.net} + tax {invoice.tax} is not the total {invoice.total}")
            if invoice.tax_rate < 0 or (not invoice.tax_rate and invoice.tax):
                raise bad(f"a tax of {invoice.tax} at {invoice.tax_rate} %")
        except (InvalidOperation, TypeError):
            raise bad("amounts must be decimals") from None

    @staticmethod
    def _line_values(line: InvoiceLine, digits: int) -> tuple[float, Decimal, str]:
        """Quantity, unit price and description such that Tryton's amount (quantity x price, rounded
        half-even to the currency) is the CRM's net exactly. Tryton keeps quantities as floats and
        prices to four places: a quantity a float cannot hold, or a discounted line whose net is not
        quantity x a four-place price, goes as one unit at the net."""
        cent = Decimal(1).scaleb(-digits)

        def fits(quantity: Decimal, price: Decimal) -> bool:
            return (price == price.quantize(Decimal(1).scaleb(-PRICE_DIGITS))
                    and Decimal(repr(float(quantity))) == quantity and quantity != 0
                    and (quantity * price).quantize(cent, ROUND_HALF_EVEN) == line.net)

        quantity, price = Decimal(line.quantity), Decimal(line.unit_price)
        if fits(quantity, price):
            return float(quantity), price, line.description
        if quantity and Decimal(repr(float(quantity))) == quantity:
            per_unit = line.net / quantity
            if fits(quantity, per_unit):
                return float(quantity), per_unit.quantize(Decimal(1).scaleb(-PRICE_DIGITS)), line.description
        return 1.0, line.net, f"{line.description} ({quantity.normalize():f} x {price.normalize():f})"

    async def post_invoice(self, invoice: InvoiceRequest) -> RemoteInvoice:
        self._check_request(invoice)
        row = await self._find(invoice.reference)
        if row is not None and row["state"] in BOOKED:
            return (await self._remote([row]))[0]
        books = await self._books()
        currency, digits = await self._currency(books, invoice.currency, invoice.issued)
        if row is not None:  # a draft of an earlier attempt: post it if it is this order
            if int(row["currency"]) == currency and Decimal(row["total_amount"]) == invoice.total:
                return await self._post_draft(int(row["id"]), invoice.reference)
            await self._call("account.invoice", "cancel", [int(row["id"])])
        tax = await self._tax_for(books, invoice.tax_rate)
        party, address = await self._party(books, invoice.party)
        lines = []
        for line in invoice.lines:
            quantity, price, description = self._line_values(line, digits)
            values: dict[str, Any] = {"type": "line", "company": books.company, "currency": currency,
                                      "description": description, "quantity": quantity, "unit_price": price,
                                      "account": books.revenue}
            if tax is not None:
                values["taxes"] = [["add", [tax]]]
            lines.append(values)
        (invoice_id,) = await self._call("account.invoice", "create", [{
            "type": "out", "company": books.company, "party": party, "invoice_address": address,
            "currency": currency, "account": books.receivable, "journal": books.journal,
            "invoice_date": invoice.issued, "reference": invoice.reference,
            "description": f"CRM order {invoice.reference}", "lines": [["create", lines]]}])
        await self._match_tax(int(invoice_id), invoice)
        return await self._post_draft(int(invoice_id), invoice.reference)

    async def _match_tax(self, invoice_id: int, invoice: InvoiceRequest) -> None:
        """Tryton rounds tax half-even, the CRM half-up: set the tax line to the CRM's amount when
        they differ by a cent. A bigger difference is another tax and stops the booking."""
        (row,) = await self._read("account.invoice", [invoice_id], ["untaxed_amount", "tax_amount", "taxes"])
        untaxed, tax = Decimal(row["untaxed_amount"]), Decimal(row["tax_amount"])
        problem = None
        if untaxed != invoice.net:
            problem = f"Tryton makes the net {untaxed}, the order {invoice.net}"
        elif tax != invoice.tax:
            taxes = row.get("taxes") or []
            if len(taxes) == 1 and abs(tax - invoice.tax) <= Decimal("0.01"):
                await self._call("account.invoice.tax", "write", [int(taxes[0])], {"amount": invoice.tax})
                return
            problem = f"Tryton makes the tax {tax}, the order {invoice.tax}"
        if problem:
            await self._call("account.invoice", "cancel", [invoice_id])
            raise AccountingError(f"order {invoice.reference}: {problem}", retry=False)

    async def _post_draft(self, invoice_id: int, reference: str) -> RemoteInvoice:
        try:
            await self._call("account.invoice", "post", [invoice_id])
        except AccountingError as exc:
            if not exc.retry:  # a rule of the books: leave no draft behind to be posted by a later attempt
                try:
                    await self._call("account.invoice", "cancel", [invoice_id])
                except AccountingError:
                    pass
                raise AccountingError(f"order {reference}: {exc.message}", retry=False, field=exc.field) from None
            raise
        (row,) = await self._read("account.invoice", [invoice_id], INVOICE_FIELDS)
        books = await self._books()
        return RemoteInvoice(  # just posted: nothing can have credited it yet
            remote_id=str(row["id"]), reference=row.get("reference") or "",
            currency=await self._code(books, int(row["currency"])), total=Decimal(row["total_amount"]),
            number=row.get("number"), state="paid" if row["state"] == "paid" else "posted", issued=row.get("invoice_date"))

    async def cancel_invoice(self, reference: str, reason: str) -> RemoteInvoice | None:
        row = await self._find(reference)
        if row is None:
            return None
        invoice_id = int(row["id"])
        if row["state"] not in BOOKED:  # never posted: cancelling the draft keeps it out of the books
            await self._call("account.invoice", "cancel", [invoice_id])
            return None
        if row["state"] != "cancelled":
            any_state = ("draft", "validated", "posted", "paid")
            notes = (await self._credit_notes([row], states=any_state)).get(invoice_id, [])
            if not notes:
                await self._credit(invoice_id)
                notes = (await self._credit_notes([row], states=any_state)).get(invoice_id, [])
            if not notes:
                raise AccountingError(f"Tryton made no credit note for {reference}", retry=True)
            for note in await self._read("account.invoice", notes, ["state", "description"]):
                description = f"Cancels {row.get('number') or reference} ({reference}): {reason}".strip()
                if note["state"] in ("draft", "validated"):
                    await self._call("account.invoice", "write", [int(note["id"])], {"description": description})
                    await self._call("account.invoice", "post", [int(note["id"])])
                elif note.get("description") != description:
                    try:  # a posted credit note's description needs an accounting administrator
                        await self._call("account.invoice", "write", [int(note["id"])], {"description": description})
                    except AccountingError:
                        pass
        rows = await self._read("account.invoice", [invoice_id], INVOICE_FIELDS)
        return (await self._remote(rows))[0]

    async def _credit(self, invoice_id: int) -> None:
        """Tryton's credit wizard: with refund (the credit note posted and reconciled, the invoice
        cancelled) when Tryton allows it, i.e. the invoice is posted and nothing paid; else a draft
        credit note that is posted next."""
        ctx = await self._ctx()
        wizard_ctx = dict(ctx, active_model="account.invoice", active_id=invoice_id, active_ids=[invoice_id])
        session, _, _ = await self._rpc.call("wizard.account.invoice.credit.create", ctx)
        try:
            start = await self._rpc.call("wizard.account.invoice.credit.execute", session, {}, "start", wizard_ctx)
            defaults = ((start or {}).get("view") or {}).get("defaults") or {}
            refund = bool(defaults.get("with_refund") and defaults.get("with_refund_allowed"))
            form = {"with_refund": refund, "with_refund_allowed": bool(defaults.get("with_refund_allowed")),
                    "invoice_date": None}
            await self._rpc.call("wizard.account.invoice.credit.execute", session, {"start": form}, "credit", wizard_ctx)
        finally:
            try:
                await self._rpc.call("wizard.account.invoice.credit.delete", session, ctx)
            except AccountingError:
                pass

    async def invoices(self, start: date, end: date) -> Sequence[RemoteInvoice]:
        books = await self._books()
        rows = await self._search_read(
            "account.invoice", [("company", "=", books.company), ("type", "=", "out"), ("invoice_date", ">=", start),
                                ("invoice_date", "<=", end), ("state", "in", list(BOOKED)), ("number", "!=", None)],
            INVOICE_FIELDS, order=[("invoice_date", "ASC"), ("id", "ASC")])
        # A credit note of a CRM invoice is told by that invoice's "cancelled" state, not listed.
        notes = {int(row["id"]) for row in rows if not row.get("reference") and Decimal(row["total_amount"]) < 0}
        skip: set[int] = set()
        if notes:
            note_lines = [int(line) for row in rows if int(row["id"]) in notes for line in row.get("lines") or ()]
            credited: dict[int, int] = {}  # the credited invoice line: the credit note
            for line in await self._read("account.invoice.line", note_lines, ["origin", "invoice"]):
                origin = line.get("origin") or ""
                if origin.startswith("account.invoice.line,"):
                    credited[int(origin.split(",", 1)[1])] = int(line["invoice"])
            invoice_of = {int(line["id"]): int(line["invoice"])
                          for line in await self._read("account.invoice.line", list(credited), ["invoice"])
                          if line.get("invoice")}
            references = {int(row["id"]): row.get("reference")
                          for row in await self._read("account.invoice", sorted(set(invoice_of.values())), ["reference"])}
            skip = {note for line, note in credited.items() if references.get(invoice_of.get(line, -1))}
        return await self._remote([row for row in rows if int(row["id"]) not in skip])

    # -- payments --

    @staticmethod
    def _checkpoint(checkpoint: str | None) -> tuple[datetime | None, set[int]]:
        if checkpoint is None:
            return None, set()
        try:
            data = json.loads(checkpoint)
            since = datetime.fromisoformat(data["t"]) if data.get("t") else None
            return since, {int(line) for line in data.get("seen", [])}
        except (ValueError, TypeError, KeyError, AttributeError):
            raise AccountingError(f"not a Tryton payments checkpoint: {checkpoint[:80]!r}", retry=False) from None

    async def payments_since(self, checkpoint: str | None) -> PaymentPage:
        since, seen = self._checkpoint(checkpoint)
        books = await self._books()
        domain: list[Any] = [("company", "=", books.company), ("type", "=", "out"), ("reference", "not in", [None, ""]),
                             ("state", "in", list(BOOKED))]
        if since is not None:
            domain.append(("last_modified_at", ">", since - CHECKPOINT_WINDOW))
        fields = ["reference", "currency", "payment_lines", "reconciliation_lines", "move", "cancel_move",
                  "additional_moves", "last_modified_at"]
        invoices = await self._search_read("account.invoice", domain, fields,
                                           order=[("last_modified_at", "ASC"), ("id", "ASC")])
        owner: dict[int, dict[str, Any]] = {}
        for invoice in invoices:
            own = {invoice.get("move"), invoice.get("cancel_move"), *(invoice.get("additional_moves") or ())}
            invoice["_own_moves"] = {int(move) for move in own if move}
            for line in [*(invoice.get("payment_lines") or ()), *(invoice.get("reconciliation_lines") or ())]:
                owner.setdefault(int(line), invoice)
        lines = await self._read("account.move.line", list(owner), ["debit", "credit", "amount_second_currency",
                                                                    "second_currency", "move", "date", "journal.type"])
        moves = sorted({int(line["move"]) for line in lines})
        invoice_moves: set[int] = set()
        for start in range(0, len(moves), BATCH):
            chunk = moves[start:start + BATCH]
            for row in await self._search_read("account.invoice", [("move", "in", chunk)], ["move"],
                                               context={"active_test": False}):
                invoice_moves.add(int(row["move"]))
        newest = since
        for invoice in invoices:
            if invoice.get("last_modified_at") and (newest is None or invoice["last_modified_at"] > newest):
                newest = invoice["last_modified_at"]
        payments: list[tuple[date, int, RemotePayment]] = []
        keep: set[int] = set()
        for line in lines:
            line_id, invoice = int(line["id"]), owner[int(line["id"])]
            move = int(line["move"])
            if move in invoice_moves or move in invoice["_own_moves"]:
                continue  # a credit note or the invoice's own cancellation, not money received
            if ((line.get("journal.") or {}).get("type")) == "write-off":
                continue
            currency = await self._code(books, int(invoice["currency"]))
            if line.get("second_currency") and int(line["second_currency"]) == int(invoice["currency"]):
                amount = -Decimal(line["amount_second_currency"])
            else:
                amount = Decimal(line["credit"]) - Decimal(line["debit"])
                currency = await self._code(books, books.currency)
            if newest is not None and invoice.get("last_modified_at") and \
                    invoice["last_modified_at"] > newest - CHECKPOINT_WINDOW:
                keep.add(line_id)
            if line_id in seen:
                continue
            paid_on: date = line["date"]
            payments.append((paid_on, line_id, RemotePayment(
                external_id=f"move-line:{line_id}", reference=invoice["reference"], amount=amount, currency=currency,
                paid_at=datetime.combine(paid_on, time(0), UTC))))
        payments.sort(key=lambda item: (item[0], item[1]))
        token = json.dumps({"t": newest.isoformat() if newest else None, "seen": sorted(keep)}, separators=(",", ":"))
        return PaymentPage(payments=[payment for _, _, payment in payments], checkpoint=token)

    async def aclose(self) -> None:
        await self._rpc.aclose()


backend = TrytonBackend()
