"""fava (beancount 3) on loopback for the finance tests: ``fava_server``, started once per session.

The ledger is written into a temporary directory: title "CRM Books" (slug ``crm-books``),
operating currency EUR, commodities EUR and USD, and these accounts:

- ``Assets:Receivables``, ``Assets:Bank``, ``Income:Sales``, ``Liabilities:VAT`` (the config's
  receivable, bank, revenue, tax; any currency);
- ``Income:Consulting`` takes USD only; ``Income:Legacy`` closed on 2024-12-31;
- a balance assertion ``2026-01-01 balance Assets:Receivables 0 EUR``: the books are closed
  for anything dated before 2026 on the receivable account;
- one invoice typed in by the accountant, with no CRM order (2026-02-10, 59.50 EUR): a stray.

The helpers act as the accountant, through fava's own JSON API (``pay``) or its files
(``check`` runs bean-check). fava is found in ``var/counterparts/fava`` (``CRM_FAVA_HOME``
overrides); ``make test`` installs it there.
"""

from __future__ import annotations

import copy
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[4]
FAVA_HOME = Path(os.environ.get("CRM_FAVA_HOME", ROOT / "var" / "counterparts" / "fava"))
INSTALL = (
    f"python3 -m venv {FAVA_HOME} && {FAVA_HOME}/bin/pip install 'beancount>=3' 'fava>=1.30'"
)

SLUG = "crm-books"
ACCOUNTS = {
    "receivable": "Assets:Receivables",
    "revenue": "Income:Sales",
    "tax": "Liabilities:VAT",
    "bank": "Assets:Bank",
}

LEDGER = """\
option "title" "CRM Books"
option "operating_currency" "EUR"

2020-01-01 commodity EUR
2020-01-01 commodity USD

2020-01-01 open Assets:Receivables
2020-01-01 open Assets:Bank
2020-01-01 open Income:Sales
2020-01-01 open Liabilities:VAT
2020-01-01 open Income:Consulting USD
2020-01-01 open Income:Legacy
2024-12-31 close Income:Legacy

; Nothing on the receivable account before 2026: the period up to 2025 is closed.
2026-01-01 balance Assets:Receivables 0 EUR

2026-02-10 * "Walk-in customer" "Cash sale, invoice 7"
  Assets:Receivables   59.50 EUR
  Income:Sales        -50.00 EUR
  Liabilities:VAT      -9.50 EUR
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _amount(text: str) -> tuple[Decimal, str]:
    number, currency = text.split()[:2]
    return Decimal(number), currency


class FavaServer:
    """One fava process over one ledger file in ``directory``; ``start``/``stop`` keep the port."""

    def __init__(self, directory: Path, home: Path = FAVA_HOME) -> None:
        self.fava = home / "bin" / "fava"
        self.bean_check = home / "bin" / "bean-check"
        missing = [str(p) for p in (self.fava, self.bean_check) if not os.access(p, os.X_OK)]
        if missing:
            raise RuntimeError(f"fava is not installed ({', '.join(missing)} missing): `make test` installs it "
                               f"({INSTALL})")
        self.directory = directory
        self.ledger = directory / "books.beancount"
        self.ledger.write_text(LEDGER, encoding="utf-8")
        self.log = directory / "fava.log"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.url}/{SLUG}/api"
        self.secrets: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> dict[str, Any]:
        """The backend's connection config (a fresh copy each time)."""
        return {"url": self.url, "ledger": SLUG, "accounts": copy.deepcopy(ACCOUNTS), "timeout": 10}

    # -- process --------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [str(self.fava), "--host", "127.0.0.1", "--port", str(self.port), str(self.ledger)],
                cwd=self.directory, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"fava exited with {self._process.returncode}: {self._log_tail()}")
            try:
                if httpx.get(f"{self.api}/changed", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"fava did not answer on {self.url} within {timeout:g} s: {self._log_tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    # -- the accountant -------------------------------------------------------------------

    async def _get(self, path: str, **params: str) -> Any:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.get(f"{self.api}/{path}", params=params)
        response.raise_for_status()
        return response.json()["data"]

    async def add_entries(self, entries: list[dict[str, Any]]) -> None:
        """Enter transactions as fava's own editor does (``PUT api/add_entries``)."""
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.put(f"{self.api}/add_entries", json={"entries": entries})
        if response.status_code != 200:
            raise RuntimeError(f"fava refused the entries ({response.status_code}): {response.text[:500]}")

    async def pay(self, reference: str, amount: Decimal, currency: str = "EUR", paid_on: date | None = None, *,
                  payee: str = "Customer", bank: str = ACCOUNTS["bank"]) -> None:
        """Enter the customer's payment of the invoice ``reference``: bank to receivable, linked."""
        await self.add_entries([{
            "t": "Transaction", "date": (paid_on or date.today()).isoformat(), "flag": "*",
            "payee": payee, "narration": f"Payment {reference}", "tags": [], "links": [reference], "meta": {},
            "postings": [
                {"account": bank, "amount": f"{amount:f} {currency}"},
                {"account": ACCOUNTS["receivable"], "amount": f"{-amount:f} {currency}"},
            ],
        }])

    async def entries_for(self, reference: str) -> list[dict[str, Any]]:
        """The transactions with the link ``^reference``, postings' amounts as (Decimal, currency)."""
        found = []
        for entry in await self._get("journal", filter=f"^{reference}"):
            if entry.get("t") != "Transaction":
                continue
            postings = [{"account": p["account"], "amount": _amount(p["amount"]), "meta": p.get("meta", {})}
                        for p in entry["postings"]]
            found.append({**entry, "postings": postings})
        return found

    @staticmethod
    def _revenue_sum(entry: dict[str, Any]) -> Decimal:
        return sum((p["amount"][0] for p in entry["postings"] if p["account"].startswith("Income:")), Decimal(0))

    async def invoices_for(self, reference: str) -> list[dict[str, Any]]:
        """The linked entries that credit an income account: the invoices the books hold for it."""
        return [e for e in await self.entries_for(reference) if self._revenue_sum(e) < 0]

    async def reversals_for(self, reference: str) -> list[dict[str, Any]]:
        """The linked entries that debit an income account: credit notes, reversals."""
        return [e for e in await self.entries_for(reference) if self._revenue_sum(e) > 0]

    def check(self) -> None:
        """bean-check on the ledger file; raises with its output when the books have errors."""
        result = subprocess.run([str(self.bean_check), str(self.ledger)], capture_output=True, text=True,
                                timeout=120, check=False)
        if result.returncode != 0:
            raise AssertionError(f"bean-check failed ({result.returncode}):\n{result.stdout}{result.stderr}")

    def source(self) -> str:
        return self.ledger.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def fava_server() -> Iterator[FavaServer]:
    with tempfile.TemporaryDirectory(prefix="crm-fava-") as directory:
        missing: str | None = None
        try:
            server = FavaServer(Path(directory))
        except RuntimeError as exc:
            missing = str(exc)
        if missing is not None:
            pytest.fail(missing, pytrace=False)
        try:
            server.start()
            yield server
        finally:
            server.stop()
