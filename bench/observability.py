"""What metrics and tracing cost on the tiny lookup, `customer(id) { displayName }`, signed in
with an API key: the same requests through three apps on one database, in interleaved rounds.

    .venv/bin/python bench/observability.py [--requests 3000] [--rounds 6] [--postgresql]

  plain     CRM_METRICS_ENABLED=false, no tracing (request ids and the request log line stay:
            they cannot be switched off);
  metrics   the default: every request and operation counted;
  tracing   metrics, and OpenTelemetry spans for the request, the operation and each SQL
            statement, handed to a batch span processor (its exporter keeps nothing, so what is
            measured is making the spans, not shipping them).
Requests go in-process through httpx's ASGI transport, one at a time, so the figure is the
server's own CPU per request. Log lines go to a null handler at INFO. Prints the median time
per request of each app and the ratios to plain. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402

from common import bench_settings  # noqa: E402
from crm_graph import plugins  # noqa: E402
from crm_graph.app import create_app  # noqa: E402
from crm_graph.db.session import Database  # noqa: E402
from crm_graph.observability import tracing  # noqa: E402
from crm_graph.testing.auth import make_key  # noqa: E402

LOOKUP = "query Lookup($id: ID!) { customer(id: $id) { displayName } }"


exported = [0]


class Discard(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        exported[0] += len(spans)  # type: ignore[arg-type]
        return SpanExportResult.SUCCESS


async def timed(http: httpx.AsyncClient, customer: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        answer = await http.post("/graphql", json={"query": LOOKUP, "variables": {"id": customer}})
        out.append(time.perf_counter() - started)
        assert answer.json()["data"]["customer"]["displayName"] == "Ada Lovelace", answer.text
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(handlers=[logging.NullHandler()], level=logging.INFO)

    settings, cleanup = await bench_settings("observability", args.postgresql, rate_limit_capacity=0)
    try:
        await asyncio.to_thread(plugins.upgrade, settings)
        db = Database.from_settings(settings)
        token, _ = await make_key(db, settings)
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=100_000))
        apps = {"plain": create_app(replace(settings, metrics_enabled=False), db=db, dispatcher=False, jobs=False),
                "metrics": create_app(settings, db=db, dispatcher=False, jobs=False)}
        traced_db = Database.from_settings(settings)  # its own engine: only its statements are traced
        tracing.install(provider)
        apps["tracing"] = create_app(settings, db=traced_db, dispatcher=False, jobs=False)
        tracing.uninstall()  # on only while the tracing app's requests run (the switch is per process)
        clients = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost",
                                           headers={"Authorization": f"Bearer {token}"}) for name, app in apps.items()}
        created = await clients["plain"].post("/graphql", json={
            "query": 'mutation { createCustomer(input: {kind: PERSON, firstName: "Ada", lastName: "Lovelace"}) { customer { id } } }'})
        customer = created.json()["data"]["createCustomer"]["customer"]["id"]
        per_round = args.requests // args.rounds
        times: dict[str, list[float]] = {name: [] for name in apps}
        async def run(name: str, n: int) -> list[float]:
            if name == "tracing":
                tracing.install(provider)
            try:
                return await timed(clients[name], customer, n)
            finally:
                tracing.uninstall()

        for name in apps:  # warm up: caches, the key's verification, the first connections
            await run(name, 50)
        for _ in range(args.rounds):
            for name in apps:
                times[name] += await run(name, per_round)
        for client in clients.values():
            await client.aclose()
        provider.shutdown()  # exports what the batch processor still holds
        spans = exported[0]
        await db.dispose()
        await traced_db.dispose()
    finally:
        cleanup()

    base = statistics.median(times["plain"])
    print(f"tiny lookup, {len(times['plain'])} requests each, {args.rounds} interleaved rounds, "
          f"{'PostgreSQL' if args.postgresql else 'SQLite'}")
    print(f"  spans made by the tracing app: {spans / (len(times['tracing']) + 50):.1f} a request")
    for name, values in times.items():
        median = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"  {name:8} median {median * 1000:6.2f} ms  p90 {p90 * 1000:6.2f} ms  ratio to plain {median / base:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
