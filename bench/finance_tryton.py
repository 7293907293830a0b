"""Orders synced per second into Tryton through the Tryton backend (post_invoice), one at a time
and four at a time, against a real Tryton 8.2 on loopback (the test fixture's set-up, fresh each
run: about 30-50 s before the first order).

    .venv/bin/python bench/finance_tryton.py [--orders 100] [--concurrency 4]

Each order has three lines and 19 % tax, a reference of its own and one of ten customers (so
parties are made, then found); a post is: the reference looked up, the party found or made, the
invoice created and posted (Tryton numbers it, writes its move and renders the invoice report).
Then the same orders are posted again (all found, nothing made). Prints orders per second;
nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins" / "crm_finance" / "tests"))

from counterparts.tryton import TrytonServer  # noqa: E402
from crm_finance.backends.tryton import TrytonBackend  # noqa: E402
from crm_graph.core.accounting import InvoiceLine, InvoiceRequest, Party  # noqa: E402


def order(reference: str, customer: int) -> InvoiceRequest:
    lines = [InvoiceLine(d, q, p, q * p) for d, q, p in (
        ("Drehmaschine DM-200", Decimal("2"), Decimal("1250.00")),
        ("Wartung", Decimal("3"), Decimal("99.90")),
        ("Kühlschmierstoff", Decimal("10"), Decimal("15.50")),
    )]
    net = sum((line.net for line in lines), Decimal(0))
    tax = (net * Decimal("0.19")).quantize(Decimal("0.01"))
    return InvoiceRequest(reference=reference, party=Party(f"CRM-C-{customer}", f"Müller {customer} GmbH"),
                          currency="EUR", issued=date.today(), lines=lines, net=net, tax_rate=Decimal("19"), tax=tax,
                          total=net + tax)


async def run(server: TrytonServer, references: list[str], concurrency: int) -> float:
    connection = TrytonBackend().connect(server.config, server.secrets)
    await connection.find_invoice("warm-up")  # login and the config's accounts, outside the timing
    queue = list(enumerate(references))

    async def worker() -> None:
        while queue:
            n, reference = queue.pop(0)
            await connection.post_invoice(order(reference, n % 10))

    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await connection.aclose()
    return len(references) / (time.perf_counter() - start)


async def main(orders: int, concurrency: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="crm-bench-tryton-"))
    server = TrytonServer(workdir)
    try:
        server.prepare()
        server.start()
        sequential = [f"SO-B1-{n:05d}" for n in range(orders)]
        parallel = [f"SO-B{concurrency}-{n:05d}" for n in range(orders)]
        one = await run(server, sequential, 1)
        many = await run(server, parallel, concurrency)
        again = await run(server, sequential, 1)
        await asyncio.to_thread(server.check)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"Tryton 8.2 (SQLite, werkzeug threaded server), {orders} orders of three lines, set-up "
          f"{server.setup_seconds:.1f} s:")
    print(f"  one at a time      {one:6.2f} orders/s ({1000 / one:.0f} ms per order)")
    print(f"  {concurrency} at a time       {many:6.2f} orders/s")
    print(f"  again (all found)  {again:6.2f} orders/s")
    print("  books consistent (trytond-admin --validate and the ledger checks)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.orders, args.concurrency))
