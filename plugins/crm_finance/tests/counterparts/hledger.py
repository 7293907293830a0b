"""The real hledger-web for the tests: one per session, on 127.0.0.1 and a free port, over a
journal in a temporary directory; stopped at the end.

    from counterparts.hledger import hledger_server  # noqa: F401

The object yielded acts as the accountant: ``await server.pay(reference, amount, currency,
paid_on)`` enters a payment through hledger-web's add, ``server.append(text)`` and ``server.edit(change)``
edit the journal file by hand, ``await server.entries_for(reference)`` and ``await server.invoices_for(reference)``
read what the journal file holds (through the hledger command, not hledger-web), ``server.check()``
runs ``hledger check --strict``, ``server.stop()`` / ``server.start()`` restart it on the same port.

The binaries are ``var/counterparts/hledger/bin/hledger`` and ``hledger-web`` (links to Debian's
``/usr/bin`` programs, made by ``make test``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[4]
BIN = ROOT / "var" / "counterparts" / "hledger" / "bin"
TAG = "invoice"

ACCOUNTS = {
    "receivable": "assets:receivable",
    "revenue": "revenue:sales",
    "tax": "liabilities:tax:vat",
    "bank": "assets:bank:checking",
}

# The books: the accounts and currencies declared (hledger check --strict wants both), CHF with a
# decimal comma and an amount in it, and 2025 closed by a balance assertion as `hledger close` does.
JOURNAL = """\
; crm-graph test books
commodity 1,000.00 EUR
commodity 1.000,00 CHF
commodity 1,000.00 USD

account assets:receivable
account assets:bank:checking
account revenue:sales
account revenue:other
account liabilities:tax:vat
account equity:opening

2025-01-01 Opening balances
    assets:bank:checking        1.000,00 CHF
    equity:opening

2025-12-31 Closing 2025
    assets:receivable                  0 EUR = 0 EUR
    equity:opening                     0 EUR
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _quantity(raw: dict[str, Any]) -> Decimal:
    return Decimal(raw["decimalMantissa"]).scaleb(-raw["decimalPlaces"])


class HledgerServer:
    def __init__(self, directory: Path, capabilities: str = "view,add") -> None:
        self.hledger = BIN / "hledger"
        self.hledger_web = BIN / "hledger-web"
        for program in (self.hledger, self.hledger_web):
            if not os.access(program, os.X_OK):
                pytest.fail(f"{program} is missing: `make test` installs hledger and hledger-web (Debian packages) "
                            f"and links them into {BIN}", pytrace=False)
        self.directory = directory
        self.capabilities = capabilities
        self.journal = directory / "books.journal"
        self.journal.write_text(JOURNAL, encoding="utf-8")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config: dict[str, Any] = {"url": self.url, "timeout": 10, "accounts": dict(ACCOUNTS),
                                       "referenceTag": TAG}
        self.secrets: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory / "hledger-web.log"

    # -- the process ---------------------------------------------------------------------------

    def start(self) -> None:
        if self.process is not None:
            return
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(self.hledger_web), "-f", str(self.journal), "--serve-api", "--host", "127.0.0.1",
                 "--port", str(self.port), f"--capabilities={self.capabilities}"],
                cwd=self.directory, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                pytest.fail(f"hledger-web exited at start:\n{self.log.read_text(errors='replace')}", pytrace=False)
            try:
                if httpx.get(f"{self.url}/version", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"hledger-web did not answer within 30 s:\n{self.log.read_text(errors='replace')}", pytrace=False)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    # -- the accountant ------------------------------------------------------------------------

    def check(self) -> None:
        """hledger's own check of the journal file: parses, balances, assertions hold, every
        account and commodity declared. Raises AssertionError with hledger's words."""
        result = subprocess.run([str(self.hledger), "-f", str(self.journal), "check", "--strict"],
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise AssertionError(f"hledger check --strict failed:\n{result.stdout}{result.stderr}")

    def append(self, text: str) -> None:
        """Edit the journal as an accountant in an editor would: ``text`` added at the end."""
        time.sleep(0.02)  # after hledger-web's last read by more than a clock tick, so it reloads
        with open(self.journal, "a", encoding="utf-8") as f:
            f.write("\n" + text.rstrip("\n") + "\n")

    def edit(self, change: Callable[[str], str]) -> None:
        """Rewrite the journal file as an accountant in an editor would (anywhere in it)."""
        time.sleep(0.02)
        self.journal.write_text(change(self.journal.read_text(encoding="utf-8")), encoding="utf-8")

    async def pay(self, reference: str, amount: Decimal, currency: str, paid_on: date) -> None:
        """Enter a payment in hledger-web (its add): the bank up, the receivable down, tagged
        with the invoice's reference."""
        def amt(q: Decimal) -> list[dict[str, Any]]:
            places = max(0, -int(q.as_tuple().exponent))
            return [{"acommodity": currency, "aprice": None,
                     "aquantity": {"decimalMantissa": int(q.scaleb(places)), "decimalPlaces": places},
                     "astyle": {"ascommodityside": "R", "ascommodityspaced": True, "asdecimalpoint": ".",
                                "asdigitgroups": None, "asprecision": places}}]

        def posting(account: str, q: Decimal) -> dict[str, Any]:
            return {"paccount": account, "pamount": amt(q), "pdate": None, "pdate2": None, "pstatus": "Unmarked",
                    "pcomment": "", "ptype": "RegularPosting", "ptags": [], "pbalanceassertion": None,
                    "ptransaction_": "0", "poriginal": None}

        pos = {"sourceName": "", "sourceLine": 1, "sourceColumn": 1}
        entry = {"tindex": 0, "tsourcepos": [pos, pos], "tdate": paid_on.isoformat(), "tdate2": None,
                 "tstatus": "Cleared", "tcode": "", "tdescription": f"Bank transfer | {reference}",
                 "tcomment": f"{TAG}:{reference}", "ttags": [], "tprecedingcomment": "",
                 "tpostings": [posting(ACCOUNTS["bank"], amount), posting(ACCOUNTS["receivable"], -amount)]}
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            # A read first, then a pause: hledger-web re-reads a changed journal before adding, and
            # an entry written within the clock tick of that read would stay unseen.
            (await client.get("/transactions")).raise_for_status()
            await asyncio.sleep(0.02)
            response = await client.put("/add", json=entry)
            response.raise_for_status()

    async def entries(self) -> list[dict[str, Any]]:
        """Every transaction in the journal file as hledger itself reads it (``hledger print``),
        simplified: date, code, description, tags, postings (account, commodity, Decimal amount)
        and kind: "reversal" (tagged reverses), "payment" (a bank posting) or "invoice"."""
        process = await asyncio.create_subprocess_exec(
            str(self.hledger), "-f", str(self.journal), "print", "-O", "json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        if process.returncode != 0:
            raise AssertionError(f"hledger print failed: {err.decode(errors='replace')}")
        entries = []
        for t in json.loads(out):
            tags = {k: v for k, v in t["ttags"]}
            postings = [{"account": p["paccount"], "commodity": a["acommodity"], "amount": _quantity(a["aquantity"]),
                         "tags": {k: v for k, v in p["ptags"]}}
                        for p in t["tpostings"] for a in p["pamount"]]
            kind = ("reversal" if "reverses" in tags
                    else "payment" if any(p["account"].startswith(ACCOUNTS["bank"]) for p in postings)
                    else "invoice")
            entries.append({"date": date.fromisoformat(t["tdate"]), "code": t["tcode"],
                            "description": t["tdescription"], "comment": t["tcomment"], "tags": tags,
                            "postings": postings, "kind": kind})
        return entries

    async def entries_for(self, reference: str) -> list[dict[str, Any]]:
        return [e for e in await self.entries()
                if e["tags"].get(TAG) == reference or any(p["tags"].get(TAG) == reference for p in e["postings"])]

    async def invoices_for(self, reference: str) -> list[dict[str, Any]]:
        """The invoice entries the journal holds for ``reference`` (to prove there is one)."""
        return [e for e in await self.entries_for(reference) if e["kind"] == "invoice"]


@pytest.fixture(scope="session")
def hledger_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HledgerServer]:
    server = HledgerServer(tmp_path_factory.mktemp("hledger"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
