"""Orders synced per second into beancount through the fava backend (post_invoice), one at a time
and four at a time, against a real fava on loopback (the test fixture's ledger, fresh each run).

    .venv/bin/python bench/finance_fava.py [--orders 100] [--concurrency 4]

Each order has three lines and 19 % tax and a reference of its own; a post is: the link looked up
(fava reloads the changed file), the file checked on disk, the accounts, currencies and balance
assertions queried, the entry added. Then the same orders are posted again (all found, nothing
added). Prints orders per second and the ledger's size; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins" / "crm_finance" / "tests"))

from counterparts.fava import FavaServer  # noqa: E402
from crm_finance.backends.fava import FavaBackend  # noqa: E402
from crm_graph.core.accounting import InvoiceLine, InvoiceRequest, Party  # noqa: E402


def order(reference: str) -> InvoiceRequest:
    lines = [InvoiceLine(d, q, p, q * p) for d, q, p in (
        ("Drehmaschine DM-200", Decimal("2"), Decimal("1250.00")),
        ("Wartung", Decimal("3"), Decimal("99.90")),
        ("Kühlschmierstoff", Decimal("10"), Decimal("15.50")),
    )]
    net = sum((line.net for line in lines), Decimal(0))
    tax = (net * Decimal("0.19")).quantize(Decimal("0.01"))
    return InvoiceRequest(reference=reference, party=Party("CRM-C-1", "Müller GmbH"), currency="EUR",
                          issued=date(2026, 3, 2), lines=lines, net=net, tax_rate=Decimal("19"), tax=tax,
                          total=net + tax)


async def run(server: FavaServer, references: list[str], concurrency: int) -> float:
    connection = FavaBackend().connect(server.config, {})
    queue = list(references)

    async def worker() -> None:
        while queue:
            await connection.post_invoice(order(queue.pop(0)))

    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await connection.aclose()
    return len(references) / (time.perf_counter() - start)


async def main(orders: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory(prefix="crm-bench-fava-") as directory:
        server = FavaServer(Path(directory))
        server.start()
        try:
            sequential = [f"SO-2026-{n:05d}" for n in range(orders)]
            parallel = [f"SO-2026-{n:05d}" for n in range(orders, 2 * orders)]
            rates = {
                "new, one at a time": await run(server, sequential, 1),
                f"new, {concurrency} at a time": await run(server, parallel, concurrency),
                "again (found), one at a time": await run(server, sequential, 1),
                f"again (found), {concurrency} at a time": await run(server, parallel, concurrency),
            }
            check_start = time.perf_counter()
            server.check()
            check = time.perf_counter() - check_start
            for label, rate in rates.items():
                print(f"{label:34} {rate:7.1f} orders/s")
            size = server.ledger.stat().st_size
            print(f"ledger: {2 * orders} invoices, {size / 1024:.0f} KiB; bean-check {check:.2f} s")
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.orders, args.concurrency))
