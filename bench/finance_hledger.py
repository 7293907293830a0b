"""Orders synced per second through the hledger backend, against a real hledger-web.

    .venv/bin/python bench/finance_hledger.py [--orders 100] [--preload 0]

For each way below, starts a fresh hledger-web on a journal in a temporary directory (the test
counterpart, plugins/crm_finance/tests/counterparts/hledger.py) holding --preload invoices, then
post_invoice of --orders distinct orders (three lines, 19 % tax):
  in sequence         one after another on one connection;
  4 at a time         on one connection (its lock writes one at a time);
  4 connections       one order at a time on each of four connections at once.
Each post reads the whole journal (the look-up), waits 20 ms and adds (the first in a currency
is read back); a retryable failure is retried after 0.1 s, as the plugin's outbox would. Prints
orders per second and the median seconds per order, then what the books hold: entries per order
(must be one each) and hledger check --strict. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "plugins" / "crm_finance" / "tests"))

from counterparts.hledger import HledgerServer  # noqa: E402

from crm_finance.backends.hledger import HledgerBackend, HledgerConnection  # noqa: E402
from crm_graph.core.accounting import AccountingError, InvoiceLine, InvoiceRequest, Party  # noqa: E402

LINES = (("Machine", "2", "1250.00"), ("Service hours", "3", "99.90"), ("Spare part", "10", "15.50"))


def order(reference: str) -> InvoiceRequest:
    lines = [InvoiceLine(d, Decimal(q), Decimal(p), Decimal(q) * Decimal(p)) for d, q, p in LINES]
    net = sum((line.net for line in lines), Decimal(0))
    tax = (net * Decimal("0.19")).quantize(Decimal("0.01"))
    return InvoiceRequest(reference=reference, party=Party("CRM-C-1", "Müller GmbH"), currency="EUR",
                          issued=date(2026, 3, 2), lines=lines, net=net, tax_rate=Decimal(19), tax=tax,
                          total=net + tax)


def preload(server: HledgerServer, count: int) -> None:
    entry = ("\n2026-01-{day:02d} (OLD-{n}) Earlier customer | Invoice OLD-{n}  ; invoice:OLD-{n}\n"
             "    assets:receivable       119.00 EUR\n    revenue:sales          -100.00 EUR\n"
             "    liabilities:tax:vat     -19.00 EUR\n")
    with open(server.journal, "a", encoding="utf-8") as f:
        f.write("".join(entry.format(day=n % 28 + 1, n=n) for n in range(count)))


class Unseen(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


RETRIES = [0]


async def timed(conn: HledgerConnection, reference: str, latencies: list[float]) -> None:
    """post_invoice, and again after a retryable failure as the finance plugin's outbox would."""
    start = time.perf_counter()
    for attempt in range(10):
        try:
            await conn.post_invoice(order(reference))
            break
        except AccountingError as exc:
            if not exc.retry or attempt == 9:
                raise
            RETRIES[0] += 1
            await asyncio.sleep(0.1)
    latencies.append(time.perf_counter() - start)


async def run(label: str, conns: list[HledgerConnection], refs: list[str], at_once: int) -> None:
    """Post ``refs`` with ``at_once`` workers over ``conns`` (worker i uses connection i mod n)."""
    latencies: list[float] = []
    queue = list(refs)

    async def worker(conn: HledgerConnection) -> None:
        while queue:
            await timed(conn, queue.pop(0), latencies)

    start = time.perf_counter()
    if at_once == 1:
        await worker(conns[0])
    else:
        await asyncio.gather(*(worker(conns[i % len(conns)]) for i in range(at_once)))
    wall = time.perf_counter() - start
    print(f"  {label:16} {len(refs) / wall:7.1f} orders/s  (median {statistics.median(latencies) * 1000:6.1f} ms "
          f"per order, {len(refs)} orders in {wall:.2f} s)")


async def one_run(label: str, at_once: int, connections: int, args: argparse.Namespace) -> None:
    """A fresh hledger-web over a journal of --preload invoices, --orders posted, the books checked."""
    backend = HledgerBackend()
    unseen = Unseen()
    logger = logging.getLogger("crm_finance.backends.hledger")
    logger.addHandler(unseen)
    RETRIES[0] = 0
    with tempfile.TemporaryDirectory(prefix="crm-bench-hledger-") as tmp:
        server = HledgerServer(Path(tmp))
        preload(server, args.preload)
        server.start()
        try:
            conns = [backend.connect(server.config, {}) for _ in range(connections)]
            try:
                await conns[0].find_invoice("none")  # the first read (hledger-web parses the journal)
                refs = [f"SO-B-{i:04d}" for i in range(args.orders)]
                await run(label, conns, refs, at_once)
            finally:
                for conn in conns:
                    await conn.aclose()
            entries = await server.entries()
            counts = {r: 0 for r in refs}
            for e in entries:
                if e["kind"] == "invoice" and e["tags"].get("invoice") in counts:
                    counts[e["tags"]["invoice"]] += 1
            check = subprocess.run([str(server.hledger), "-f", str(server.journal), "check", "--strict"],
                                   capture_output=True, text=True)
            print(f"  {'':16} books: {len(entries)} entries, {min(counts.values())}-{max(counts.values())} per order; "
                  f"{RETRIES[0]} retries; {unseen.count} first writes not read back; hledger check --strict: "
                  f"{'ok' if check.returncode == 0 else check.stderr.strip()}")
        finally:
            server.stop()
            logger.removeHandler(unseen)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--preload", type=int, default=0, help="invoices already in the journal")
    args = parser.parse_args()
    print(f"post_invoice of {args.orders} distinct orders (3 lines, 19 % tax), each run on a fresh hledger-web "
          f"over a journal of {args.preload} invoices:")
    await one_run("in sequence", 1, 1, args)
    await one_run("4 at a time", 4, 1, args)
    await one_run("4 connections", 4, 4, args)


if __name__ == "__main__":
    asyncio.run(main())
