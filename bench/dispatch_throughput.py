"""How many events per second does the dispatcher deliver to a webhook receiver on loopback?

    .venv/bin/python bench/dispatch_throughput.py [--events 3000] [--postgresql] [--workers 1]
                                                  [--concurrency 16] [--batch-size 100] [--plugin]

Builds a fresh database (SQLite file, or a throwaway PostgreSQL with --postgresql), starts a
real HTTP receiver on 127.0.0.1 in a process of its own that checks every signature (so it
does not share the dispatcher's event loop), subscribes it to every event,
writes ``--events`` outbox events (as services do, in transactions of 500), then times the
dispatchers draining the outbox: fan-out, claims, signed POSTs, and recording each result.
With ``--plugin`` a no-op ``crm_on_event`` plugin is a second subscriber of every event. With
``--workers N`` that many dispatchers (each with its own connection pool) share the work.

Prints events delivered per second and deliveries (event x subscriber) per second. Nothing is
asserted; it only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from crm_graph import hookimpl  # noqa: E402
from crm_graph.core.actor import Actor  # noqa: E402
from crm_graph.core.dispatch import Dispatcher, Totals  # noqa: E402
from crm_graph.core.events import DeliveryStatus, EventDelivery, record_event  # noqa: E402
from crm_graph.db import migrate  # noqa: E402
from crm_graph.db.session import Database  # noqa: E402
from crm_graph.plugins import make_plugin_manager  # noqa: E402
from crm_graph.settings import Settings  # noqa: E402
from crm_graph.webhooks.receiver import free_port  # noqa: E402
from crm_graph.webhooks.service import WebhookConfig, create_subscription  # noqa: E402

SECRET = "whsec_bench_0123456789abcdef"


class NoOp:
    name = "noop"

    @hookimpl
    async def crm_on_event(self, event) -> None:  # noqa: ANN001
        return None


async def write_events(db: Database, count: int) -> None:
    actor = Actor("user", "bench")
    written = 0
    while written < count:
        chunk = min(500, count - written)
        async with db.writer() as session, session.begin():
            for i in range(written, written + chunk):
                record_event(
                    session,
                    type="customer.updated",
                    entity_type="Customer",
                    entity_id=i + 1,
                    actor=actor,
                    payload={"id": i + 1, "displayName": f"Customer {i + 1}", "tags": ["vip"], "version": 2},
                    changes={"fields": ["tags"], "before": {"tags": []}},
                )
        written += chunk


async def run(args: argparse.Namespace, settings: Settings) -> None:
    await asyncio.to_thread(migrate.upgrade, settings)
    db = Database.from_settings(settings)
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, "-m", "crm_graph.webhooks.receiver", "--port", str(port), "--secret", SECRET],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
    )
    receiver_url = f"http://127.0.0.1:{port}/hooks"
    workers: list[Dispatcher] = []
    try:
        assert receiver.stdout is not None and "listening" in receiver.stdout.readline()
        async with db.writer() as session, session.begin():
            await create_subscription(
                session, actor=Actor("user", "bench"), data={"url": receiver_url, "events": ["*"], "secret": SECRET},
                config=WebhookConfig(allow_private=True),
            )
        await write_events(db, args.events)
        plugins = [NoOp()] if args.plugin else []
        for n in range(args.workers):
            own = db if n == 0 else Database.from_settings(settings)
            pm = make_plugin_manager(settings, plugins=plugins, entry_points=False)
            workers.append(Dispatcher(own, settings, pm, name=f"bench-{n}"))

        started = time.perf_counter()
        results: list[Totals] = await asyncio.gather(*(w.drain() for w in workers))
        elapsed = time.perf_counter() - started

        async with db.reader() as session:
            delivered = await session.scalar(
                sa.select(sa.func.count()).select_from(EventDelivery).where(EventDelivery.status == DeliveryStatus.DELIVERED)
            )
        subscribers = 2 if args.plugin else 1
        with urllib.request.urlopen(receiver_url) as response:  # noqa: S310 - our own loopback receiver
            stats = json.load(response)
        print(f"database        {db.dialect}")
        print(f"workers         {args.workers} (batch {settings.dispatch_batch_size}, {settings.dispatch_concurrency} requests at once)")
        print(f"subscribers     webhook{' + no-op plugin' if args.plugin else ''}")
        print(f"events          {args.events}")
        print(f"deliveries      {delivered} of {args.events * subscribers} ({stats['received']} received and verified, {stats['distinct']} distinct)")
        print(f"rounds          {sum(r.rounds for r in results)}")
        print(f"elapsed         {elapsed:.2f} s")
        print(f"events/s        {args.events / elapsed:,.0f}")
        print(f"deliveries/s    {delivered / elapsed:,.0f}")
    finally:
        for worker in workers:
            await worker.aclose()
            if worker.db is not db:
                await worker.db.dispose()
        receiver.send_signal(signal.SIGINT)
        receiver.wait(30)
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--postgresql", action="store_true", help="use a throwaway PostgreSQL instead of SQLite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--plugin", action="store_true", help="add a no-op crm_on_event plugin as a second subscriber")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="crm-bench-dispatch-") as tmp:
        server = None
        if args.postgresql:
            import asyncpg

            from crm_graph.testing.postgres import TemporaryPostgres

            server = TemporaryPostgres().start()

            async def create() -> None:
                conn = await asyncpg.connect(server.dsn())
                await conn.execute("CREATE DATABASE bench")
                await conn.close()

            asyncio.run(create())
            url = server.url("bench")
        else:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}"
        settings = replace(
            Settings(database_url=url),
            webhook_allow_private=True,
            dispatch_concurrency=args.concurrency,
            dispatch_batch_size=args.batch_size,
        )
        try:
            asyncio.run(run(args, settings))
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
