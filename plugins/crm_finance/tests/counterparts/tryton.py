"""A real Tryton 8.2 for the tests: ``tryton_server`` starts it once per test session on 127.0.0.1
and a free port, in a temporary directory, and stops it at the end.

The set-up (about 30 s) makes a SQLite database with ``account_invoice`` activated, a company
booking in EUR, the universal chart of accounts, VAT taxes of 19 % and 7 % on 6.3.4, fiscal years
for last year and this one (with invoice and credit-note sequences) and one for 2020 whose periods
are closed, USD with a rate and GBP without one, and a "Bank transfer" payment method on the cash
account 1.1.1. Tryton's strict numbering wants a fiscal year's invoices posted in date order: an
invoice dated before the last one posted in its year is refused.

The server object also acts as the accountant, straight through Tryton's JSON-RPC (not through
the backend under test): ``pay``, ``invoices_for``, ``book_invoice`` and ``check``.

Tryton is installed under ``var/counterparts/tryton`` (a venv) by ``make test``; this module
can also be used outside pytest (``bench/finance_tryton.py``)::

    server = TrytonServer(Path(tempfile.mkdtemp()))
    server.prepare(); server.start(); ...; server.stop()
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[4]
TRYTON_HOME = ROOT / "var" / "counterparts" / "tryton"
DATABASE = "crm"
MODULES = ("account_invoice",)

# Run by the Tryton venv's Python (proteus on trytond, no server yet): argv = config, database, year.
SETUP = r'''
import datetime as dt
import json
import sys
from decimal import Decimal

from proteus import Model, Wizard, config

conf, database, year = sys.argv[1], sys.argv[2], int(sys.argv[3])
config.set_trytond(database, config_file=conf)

Currency = Model.get("currency.currency")
Rate = Model.get("currency.currency.rate")
def currency(code, name, symbol, rate):
    made = Currency(name=name, symbol=symbol, code=code, rounding=Decimal("0.01"), digits=2)
    made.save()
    if rate is not None:
        Rate(currency=made, date=dt.date(2000, 1, 1), rate=Decimal(rate)).save()
    return made
eur = currency("EUR", "Euro", "€", "1")
currency("USD", "US Dollar", "$", "1.08")
currency("GBP", "Pound Sterling", "£", None)

Party = Model.get("party.party")
owner = Party(name="CRM Test Books GmbH")
owner.save()
wizard = Wizard("company.company.config")
wizard.execute("company")
wizard.form.party = owner
wizard.form.currency = eur
wizard.execute("add")
config.get_config()._context = Model.get("res.user").get_preferences(True, {})
company, = Model.get("company.company").find()

Data = Model.get("ir.model.data")
chart = Wizard("account.create_chart")
chart.execute("account")
chart.form.account_template = Model.get("account.account.template")(Data.get_id("account", "account_template_root_en", {}))
chart.form.company = company
chart.execute("create_account")
Account = Model.get("account.account")
def account(*domain):
    found, = Account.find([("company", "=", company.id), ("closed", "!=", True), *domain], limit=1)
    return found
receivable = account(("type.receivable", "=", True))
payable = account(("type.payable", "=", True))
revenue = account(("code", "=", "4.1.1"))
expense = account(("type.expense", "=", True))
cash = account(("code", "=", "1.1.1"))
vat = account(("code", "=", "6.3.4"))
chart.form.account_receivable = receivable
chart.form.account_payable = payable
chart.form.category_account_expense = expense
chart.form.category_account_revenue = revenue
chart.execute("create_properties")

settings = Model.get("account.configuration")(1)
settings.currency_exchange_credit_account = account(("code", "=", "6.1.1"))
settings.currency_exchange_debit_account = account(("code", "=", "5.2.1"))
settings.save()

Tax = Model.get("account.tax")
for rate in ("19", "7"):
    Tax(name=f"VAT {rate} %", description=f"VAT {rate} %", type="percentage", rate=Decimal(rate) / 100,
        invoice_account=vat, credit_note_account=vat).save()

Strict = Model.get("ir.sequence.strict")
Kind = Model.get("ir.sequence.type")
move_kind, = Kind.find([("name", "=", "Account Move")], limit=1)
invoice_kind, = Kind.find([("name", "=", "Invoice")], limit=1)
def fiscal_year(y):
    year_ = Model.get("account.fiscalyear")(name=str(y), start_date=dt.date(y, 1, 1), end_date=dt.date(y, 12, 31),
                                           company=company)
    year_.move_sequence = Strict(name=f"Moves {y}", sequence_type=move_kind, company=company)
    year_.move_sequence.save()
    invoices = Strict(name=f"Invoices {y}", sequence_type=invoice_kind, company=company, prefix=f"INV/{y}/")
    credits = Strict(name=f"Credit notes {y}", sequence_type=invoice_kind, company=company, prefix=f"CN/{y}/")
    invoices.save()
    credits.save()
    numbering, = year_.invoice_sequences
    numbering.out_invoice_sequence = numbering.in_invoice_sequence = invoices
    numbering.out_credit_note_sequence = numbering.in_credit_note_sequence = credits
    year_.save()
    year_.click("create_period")
    return year_
fiscal_year(year - 1)
fiscal_year(year)
for period in fiscal_year(2020).periods:
    period.click("close")

cash_journal, = Model.get("account.journal").find([("type", "=", "cash")], limit=1)
Model.get("account.invoice.payment.method")(name="Bank transfer", journal=cash_journal, credit_account=cash,
                                            debit_account=cash).save()
print(json.dumps({"receivable": receivable.code, "revenue": revenue.code, "tax": vat.code, "bank": cash.code}))
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": format(value, "f")}
    if isinstance(value, datetime):
        raise TypeError("datetimes are not needed here")
    if isinstance(value, date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    raise TypeError(type(value).__name__)


def _decode(obj: dict[str, Any]) -> Any:
    if obj.get("__class__") == "Decimal":
        return Decimal(obj["decimal"])
    if obj.get("__class__") == "date":
        return date(obj["year"], obj["month"], obj["day"])
    if obj.get("__class__") == "datetime":
        return datetime(obj["year"], obj["month"], obj["day"], obj["hour"], obj["minute"], obj["second"],
                        obj.get("microsecond", 0))
    return obj


class TrytonServer:
    """One Tryton database in ``workdir`` and its server process."""

    def __init__(self, workdir: Path, home: Path = TRYTON_HOME, year: int | None = None) -> None:
        self.home = home
        self.workdir = workdir
        self.year = year or date.today().year
        self.port = free_port()
        self.password = secrets.token_urlsafe(12)
        self.url = f"http://127.0.0.1:{self.port}"
        self.accounts: dict[str, str] = {}
        self.setup_seconds = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._auth: str | None = None
        self._context: dict[str, Any] | None = None

    # -- life cycle --

    def _bin(self, name: str) -> Path:
        path = self.home / "bin" / name
        if not path.exists():
            raise RuntimeError(f"Tryton is not installed: {path} is missing; `make test` installs it under "
                               f"{self.home} (a venv with trytond, trytond-account-invoice, proteus)")
        return path

    @property
    def conf(self) -> Path:
        return self.workdir / "trytond.conf"

    def prepare(self) -> None:
        """Make the database, the company and its books (once)."""
        admin, python = self._bin("trytond-admin"), self._bin("python")
        self._bin("trytond")
        started = time.monotonic()
        (self.workdir / "db").mkdir(parents=True, exist_ok=True)
        (self.workdir / "db" / f"{DATABASE}.sqlite").touch()
        self.conf.write_text(f"[database]\nuri = sqlite://\npath = {self.workdir / 'db'}\n"
                             f"[web]\nlisten = 127.0.0.1:{self.port}\n[session]\nmax_attempt = 50\n")
        passfile = self.workdir / "passfile"
        passfile.write_text(self.password + "\n")
        env = dict(os.environ, TRYTONPASSFILE=str(passfile))
        self._run([str(admin), "-c", str(self.conf), "-d", DATABASE, "--all", "--email", "admin@crm.test",
                   "-u", *MODULES, "--activate-dependencies"], env)
        script = self.workdir / "setup_books.py"
        script.write_text(SETUP)
        out = self._run([str(python), str(script), str(self.conf), DATABASE, str(self.year)], env)
        self.accounts = json.loads(out.strip().splitlines()[-1])
        self.setup_seconds = time.monotonic() - started

    def _run(self, argv: list[str], env: dict[str, str]) -> str:
        done = subprocess.run(argv, cwd=self.workdir, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done.stdout

    def start(self) -> None:
        if self._process is not None:
            return
        log = open(self.workdir / "trytond.log", "ab")  # noqa: SIM115 - the server writes to it until stop()
        self._process = subprocess.Popen([str(self._bin("trytond")), "-c", str(self.conf), "-d", DATABASE],
                                         cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        atexit.register(self.stop)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = (self.workdir / "trytond.log").read_text(errors="replace")[-3000:]
                self._process = None
                raise RuntimeError(f"trytond exited at start:\n{tail}")
            try:
                httpx.post(f"{self.url}/{DATABASE}/rpc/", timeout=2,
                           json={"id": 0, "method": "common.db.login",
                                 "params": ["admin", {"password": self.password}, "en"]}).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("trytond did not answer within 60 s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass

    @property
    def config(self) -> dict[str, Any]:
        return {"url": self.url, "database": DATABASE, "username": "admin", "timeout": 10,
                "accounts": {key: self.accounts[key] for key in ("receivable", "revenue", "tax")}}

    @property
    def secrets(self) -> dict[str, str]:
        return {"password": self.password}

    # -- the accountant, through Tryton's JSON-RPC --

    def _call(self, method: str, *params: Any, context: dict[str, Any] | None = None) -> Any:
        if self._auth is None:
            user_id, key = self._post("common.db.login", ["admin", {"password": self.password}, "en"], None)[:2]
            self._auth = "Session " + base64.b64encode(f"admin:{user_id}:{key}".encode()).decode()
            self._context = None
            prefs = self._post("model.res.user.get_preferences", [True, {}], self._auth)
            self._context = {key: value for key, value in prefs.items() if key != "locale"}
        assert self._context is not None
        if method.startswith(("model.", "wizard.")):
            params = (*params, dict(self._context, **(context or {})))
        return self._post(method, list(params), self._auth)

    def _post(self, method: str, params: list[Any], auth: str | None) -> Any:
        headers = {"Content-Type": "application/json", **({"Authorization": auth} if auth else {})}
        response = httpx.post(f"{self.url}/{DATABASE}/rpc/", headers=headers, timeout=60,
                              content=json.dumps({"id": 1, "method": method, "params": params}, default=_encode))
        if response.status_code == 401 and auth:
            self._auth = None
            return self._call(method, *params[:-1]) if method.startswith(("model.", "wizard.")) else \
                self._call(method, *params)
        response.raise_for_status()
        body = json.loads(response.text, object_hook=_decode)
        if body.get("error"):
            raise RuntimeError(f"Tryton: {method}: {str(body['error'])[:500]}")
        return body["result"]

    def read(self, model: str, domain: list[Any], fields: list[str],
             order: list[Any] | None = None) -> list[dict[str, Any]]:
        return self._call(f"model.{model}.search_read", domain, 0, None, order or [("id", "ASC")], fields)

    def _invoice(self, reference: str) -> dict[str, Any]:
        rows = self.read("account.invoice", [("reference", "=", reference), ("state", "in", ["posted", "paid"])],
                         ["currency.code", "amount_to_pay"])
        if len(rows) != 1:
            raise AssertionError(f"{len(rows)} posted invoices for {reference}")
        return rows[0]

    def _pay(self, reference: str, amount: Decimal, currency: str, paid_on: date) -> None:
        invoice = self._invoice(reference)
        if invoice["currency."]["code"] != currency:
            raise AssertionError(f"{reference} is in {invoice['currency.']['code']}, not {currency}")
        (method,) = self._call("model.account.invoice.payment.method.search", [("name", "=", "Bank transfer")], 0, 1, None)
        context = {"active_model": "account.invoice", "active_id": invoice["id"], "active_ids": [invoice["id"]]}
        session = self._call("wizard.account.invoice.pay.create")[0]
        try:
            view = self._call("wizard.account.invoice.pay.execute", session, {}, "start", context=context)
            start = {k: v for k, v in view["view"]["defaults"].items() if "." not in k}
            start.update(amount=amount, payment_method=method, date=paid_on, description=f"Payment {reference}")
            answer = self._call("wizard.account.invoice.pay.execute", session, {"start": start}, "choice", context=context)
            if answer.get("view"):  # Tryton asks what the difference is: a partial payment (or an overpayment)
                ask = {k: v for k, v in answer["view"]["defaults"].items() if "." not in k}
                ask["type"] = "partial" if amount < invoice["amount_to_pay"] else "overpayment"
                self._call("wizard.account.invoice.pay.execute", session, {"start": start, "ask": ask}, "pay",
                           context=context)
        finally:
            self._call("wizard.account.invoice.pay.delete", session)

    async def pay(self, reference: str, amount: Decimal, currency: str, paid_on: date) -> None:
        """Enter a payment for the posted invoice of ``reference`` (Tryton's pay wizard, by bank
        transfer; less than the amount due is a partial payment)."""
        await asyncio.to_thread(self._pay, reference, amount, currency, paid_on)

    def _move_lines(self, move: int | None) -> list[dict[str, Any]]:
        if not move:
            return []
        rows = self.read("account.move.line", [("move", "=", move)], ["account.code", "debit", "credit", "party"])
        return [{"account": row["account."]["code"], "debit": row["debit"], "credit": row["credit"]} for row in rows]

    def _invoices_for(self, reference: str) -> list[dict[str, Any]]:
        fields = ["number", "state", "reference", "currency.code", "untaxed_amount", "tax_amount", "total_amount",
                  "invoice_date", "move", "move.state", "lines", "description", "amount_to_pay", "party.code"]
        out = []
        for row in self.read("account.invoice", [("reference", "=", reference)], fields):
            lines = self.read("account.invoice.line", [("invoice", "=", row["id"])],
                              ["description", "quantity", "unit_price", "amount", "account.code", "taxes"])
            notes = self.read("account.invoice", [("lines.origin", "in", [f"account.invoice.line,{line['id']}"
                                                                          for line in lines] or ["none"])],
                              ["number", "state", "total_amount", "move", "description"])
            out.append({
                "id": row["id"], "number": row["number"], "state": row["state"], "reference": row["reference"],
                "party": row["party."]["code"], "currency": row["currency."]["code"], "untaxed": row["untaxed_amount"],
                "tax": row["tax_amount"], "total": row["total_amount"], "invoice_date": row["invoice_date"],
                "amount_to_pay": row["amount_to_pay"], "move_state": (row.get("move.") or {}).get("state"),
                "move_lines": self._move_lines(row["move"]),
                "lines": [{"description": line["description"], "quantity": line["quantity"],
                           "unit_price": line["unit_price"], "amount": line["amount"],
                           "account": line["account."]["code"], "taxes": line["taxes"]} for line in lines],
                "credit_notes": [{"number": note["number"], "state": note["state"], "total": note["total_amount"],
                                  "description": note["description"], "move_lines": self._move_lines(note["move"])}
                                 for note in notes],
            })
        return out

    async def invoices_for(self, reference: str) -> list[dict[str, Any]]:
        """Every customer invoice of ``reference`` (any state), with its lines, its move's lines
        (``account`` code, ``debit``, ``credit``) and the credit notes crediting it."""
        return await asyncio.to_thread(self._invoices_for, reference)

    def _book_invoice(self, amount: Decimal, invoice_date: date, reference: str | None) -> str:
        company = self._context["company"] if self._context else self._call("model.res.user.get_preferences", True)
        (party,) = self.read("party.party", [("code", "=", "WALK-IN")], ["addresses"]) or [None]
        if party is None:
            self._call("model.party.party.create", [{"name": "Walk-in customer", "code": "WALK-IN",
                                                     "addresses": [["create", [{}]]]}])
            (party,) = self.read("party.party", [("code", "=", "WALK-IN")], ["addresses"])
        accounts = {row["code"]: row["id"] for row in self.read(
            "account.account", [("code", "in", [self.accounts["receivable"], self.accounts["revenue"]])], ["code"])}
        (journal,) = self._call("model.account.journal.search", [("type", "=", "revenue")], 0, 1, None)
        (eur,) = self._call("model.currency.currency.search", [("code", "=", "EUR")], 0, 1, None)
        (invoice,) = self._call("model.account.invoice.create", [{
            "type": "out", "company": company, "party": party["id"], "invoice_address": party["addresses"][0],
            "currency": eur, "account": accounts[self.accounts["receivable"]], "journal": journal,
            "invoice_date": invoice_date, "reference": reference,
            "lines": [["create", [{"type": "line", "company": company, "currency": eur, "description": "Counter sale",
                                   "quantity": 1.0, "unit_price": amount,
                                   "account": accounts[self.accounts["revenue"]]}]]]}])
        self._call("model.account.invoice.post", [invoice])
        return self.read("account.invoice", [("id", "=", invoice)], ["number"])[0]["number"]

    async def book_invoice(self, amount: Decimal, invoice_date: date, reference: str | None = None) -> str:
        """Book and post a customer invoice by hand (no tax, a walk-in customer); its number."""
        return await asyncio.to_thread(self._book_invoice, amount, invoice_date, reference)

    VALIDATED = ("account.move", "account.move.line", "account.invoice", "account.invoice.line", "account.invoice.tax",
                 "account.move.reconciliation", "party.party")

    def check(self) -> None:
        """The books' consistency: Tryton's own record validation (``trytond-admin --validate``
        over moves, move lines, reconciliations, invoices and parties, each record against every
        constraint of its model), then from Tryton's figures every move balanced, every numbered
        invoice with a posted move whose receivable line is its total, no reference booked twice,
        and each fiscal year's trial balance even. Raises AssertionError listing what is wrong."""
        problems: list[str] = []
        done = subprocess.run([str(self._bin("trytond-admin")), "-c", str(self.conf), "-d", DATABASE,
                               "--validate", *self.VALIDATED], cwd=self.workdir, capture_output=True, text=True,
                              timeout=300)
        problems += [line for line in done.stderr.splitlines() if ": KO " in line]
        if done.returncode != 0:
            problems.append(f"trytond-admin --validate failed ({done.returncode}): {done.stderr[-2000:]}")
        sums: dict[int, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for line in self.read("account.move.line", [], ["move", "debit", "credit"]):
            sums[line["move"]][0] += line["debit"]
            sums[line["move"]][1] += line["credit"]
        problems += [f"move {move} unbalanced: debit {d}, credit {c}" for move, (d, c) in sums.items() if d != c]
        receivable = self.accounts["receivable"]
        seen: dict[str, str] = {}
        for inv in self.read("account.invoice", [("type", "=", "out"), ("state", "in", ["posted", "paid", "cancelled"]),
                                                 ("number", "!=", None)],
                             ["number", "reference", "total_amount", "move", "move.state", "currency.code"]):
            if not inv["move"] or (inv.get("move.") or {}).get("state") != "posted":
                problems.append(f"{inv['number']} has no posted move")
                continue
            if inv["currency."]["code"] == "EUR":
                due = sum(line["debit"] - line["credit"] for line in self._move_lines(inv["move"])
                          if line["account"] == receivable)
                if due != inv["total_amount"]:
                    problems.append(f"{inv['number']}: receivable {due}, total {inv['total_amount']}")
            if inv["reference"] and inv["total_amount"] > 0:
                if inv["reference"] in seen:
                    problems.append(f"{inv['reference']} booked twice: {seen[inv['reference']]}, {inv['number']}")
                seen[inv["reference"]] = inv["number"]
        roots = self._call("model.account.account.search", [("parent", "=", None)], 0, None, None)
        for year in self.read("account.fiscalyear", [], ["name"]):
            for row in self._call("model.account.account.read", roots, ["debit", "credit"],
                                  context={"fiscalyear": year["id"]}):
                if row["debit"] != row["credit"]:
                    problems.append(f"trial balance {year['name']}: debit {row['debit']}, credit {row['credit']}")
        if problems:
            raise AssertionError("Tryton's books are inconsistent:\n" + "\n".join(problems))


@pytest.fixture(scope="session")
def tryton_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonServer]:
    server = TrytonServer(tmp_path_factory.mktemp("tryton"))
    try:
        server.prepare()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()
