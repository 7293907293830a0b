"""How long from a committed change to the clients subscribed to it?

    .venv/bin/python bench/live_latency.py [--postgresql] [--subscribers 50] [--rounds 40] [--poll 0.5]

Builds a fresh database (SQLite file, or a throwaway PostgreSQL with --postgresql), starts two
server processes A and B on 127.0.0.1 (uvicorn, ``create_app``), opens ``--subscribers``
graphql-transport-ws connections to A, each subscribed to ``events(types: ["customer.*"])``,
then creates customers over HTTP, alternately through A (the hub of A is woken by its own
commit) and through B (A notices on its next poll of the outbox, every ``--poll`` seconds).

Prints, per path, the median and 95th percentile of the time from sending the mutation to the
last subscriber's event, and their ratio. Nothing is asserted; it only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from gql import Client, GraphQLRequest  # noqa: E402
from gql.transport.websockets import WebsocketsTransport  # noqa: E402

from common import bench_settings  # noqa: E402
from crm_graph.db import migrate  # noqa: E402
from crm_graph.db.session import Database  # noqa: E402
from crm_graph.settings import PROJECT_ROOT, Settings  # noqa: E402
from crm_graph.testing.auth import make_key  # noqa: E402
from crm_graph.webhooks.receiver import free_port  # noqa: E402

SECRET = "bench-secret-key-of-at-least-thirty-two-characters"
EVENTS = 'subscription { events(types: ["customer.*"]) { id entityId } }'
CREATE = "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } errors { code } } }"


def start(settings: Settings, workdir: Path, poll: float) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    env = {
        **os.environ, "CRM_DATABASE_URL": settings.database_url, "CRM_SECRET_KEY": SECRET, "CRM_DATA_DIR": str(workdir),
        "CRM_DISPATCHER_ENABLED": "false", "CRM_JOBS_ENABLED": "false", "CRM_LIVE_POLL_INTERVAL": str(poll),
        "CRM_LIVE_MAX_SUBSCRIPTIONS": "20",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "crm_graph.app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=PROJECT_ROOT, env=env,
    )
    return f"http://127.0.0.1:{port}", process


async def ready(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(1200):
            try:
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit(f"{url} did not start")


async def subscriber(url: str, key: str, inbox: dict[str, list[float]], connected: asyncio.Event) -> None:
    transport = WebsocketsTransport(
        url=url.replace("http://", "ws://") + "/graphql",
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL], init_payload={"authorization": f"Bearer {key}"},
    )
    async with Client(transport=transport) as session:
        connected.set()
        async for result in session.subscribe(GraphQLRequest(EVENTS)):
            inbox.setdefault(result["events"]["entityId"], []).append(time.perf_counter())


async def run(args: argparse.Namespace, settings: Settings, workdir: Path) -> None:
    await asyncio.to_thread(migrate.upgrade, settings)
    db = Database.from_settings(settings)
    key, _ = await make_key(db, settings, role="ADMIN", email="bench@example.com")
    await db.dispose()
    servers = [start(settings, workdir, args.poll) for _ in range(2)]
    try:
        await asyncio.gather(*(ready(url) for url, _ in servers))
        (a, _), (b, _) = servers
        inbox: dict[str, list[float]] = {}
        flags = [asyncio.Event() for _ in range(args.subscribers)]
        tasks = [asyncio.create_task(subscriber(a, key, inbox, flag)) for flag in flags]
        await asyncio.gather(*(f.wait() for f in flags))
        timings: dict[str, list[float]] = {"same process (A)": [], "other process (B)": []}
        round_trips: list[float] = []
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:

            async def change(url: str, n: int) -> tuple[str, float]:
                sent = time.perf_counter()
                body = (await http.post(f"{url}/graphql", json={"query": CREATE, "variables": {
                    "input": {"kind": "PERSON", "lastName": f"Bench {n}"}}})).json()
                return body["data"]["createCustomer"]["customer"]["id"], sent

            async def arrival(gid: str) -> float:
                for _ in range(20_000):
                    if len(inbox.get(gid, [])) >= args.subscribers:
                        return max(inbox[gid])
                    await asyncio.sleep(0.001)
                raise SystemExit("events did not arrive")

            for _ in range(50):  # until every subscription is live (the protocol has no "subscribed")
                gid, _ = await change(a, 0)
                try:
                    await asyncio.wait_for(arrival(gid), 1.0)
                    break
                except TimeoutError:
                    continue
            rng = random.Random(7)
            for n in range(args.rounds):
                for label, url in (("same process (A)", a), ("other process (B)", b)):
                    await asyncio.sleep(rng.uniform(0, args.poll))  # changes at no fixed phase of the poll
                    gid, sent = await change(url, n)
                    timings[label].append(await arrival(gid) - sent)
                    answered = time.perf_counter()
                    round_trips.append(answered - sent)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for _, process in servers:
            process.terminate()
            process.wait(10)
    print(f"{settings.database_url.split(':')[0]}, {args.subscribers} subscribers on A, poll {args.poll}s, {args.rounds} rounds")
    medians = {}
    for label, values in timings.items():
        values.sort()
        medians[label] = statistics.median(values)
        p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
        print(f"  change through {label:<18} to the last subscriber's event: median {medians[label] * 1000:7.1f} ms, p95 {p95 * 1000:7.1f} ms")
    print(f"  (a mutation's own round trip: median {statistics.median(round_trips) * 1000:.1f} ms)")
    ratio = medians["other process (B)"] / max(medians["same process (A)"], 1e-9)
    print(f"  other process / same process (median): {ratio:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgresql", action="store_true")
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--poll", type=float, default=0.5)
    args = parser.parse_args()

    async def go() -> None:
        settings, cleanup = await bench_settings("live", args.postgresql, secret_key=SECRET)
        try:
            await run(args, settings, Path(tempfile.mkdtemp(prefix="crm-bench-live-")))
        finally:
            cleanup()

    asyncio.run(go())


if __name__ == "__main__":
    main()
