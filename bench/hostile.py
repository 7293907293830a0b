"""How a real server (one uvicorn process on SQLite, loopback) fares under the hostile requests of
crm_graph/testing/hostile.py: each family's answer time, a small query's latency alone and with
eight hostile clients firing beside it, and the server's memory (resident set, and its peak)
before, during and after.

    .venv/bin/python bench/hostile.py [--rounds 3]

The ratio that matters is the small query's latency under attack against its latency alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crm_graph import plugins  # noqa: E402
from crm_graph.settings import PROJECT_ROOT, Settings  # noqa: E402
from crm_graph.testing.auth import TEST_SECRET, bearer, make_key  # noqa: E402
from crm_graph.testing.hostile import hostile_requests  # noqa: E402

SMALL = {"query": "{ customers(first: 1) { totalCount } }"}


def memory_kib(pid: int) -> tuple[int, int]:
    """(resident, peak resident) of a process, in KiB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


async def start_server(database_url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = 18765
    env = {**os.environ, "CRM_DATABASE_URL": database_url, "CRM_SECRET_KEY": TEST_SECRET, "CRM_DATA_DIR": str(workdir),
           "CRM_DISPATCHER_ENABLED": "false", "CRM_JOBS_ENABLED": "false", "CRM_RATE_LIMIT_CAPACITY": "0"}
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "crm_graph.app:create_app", "--host", "127.0.0.1",
                                "--port", str(port), "--log-level", "warning"], cwd=PROJECT_ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return process, url
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the server did not start")


async def small_latencies(http: httpx.AsyncClient, url: str, seconds: float) -> list[float]:
    out: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        response = await http.post(f"{url}/graphql", json=SMALL)
        assert response.json()["data"]["customers"]["totalCount"] >= 0
        out.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    return out


async def send(http: httpx.AsyncClient, url: str, request) -> int:  # type: ignore[no-untyped-def]
    """The answer's status; 413 when the server closed the connection while a body over its
    limit was still being sent (it answers 413 and stops reading, as it should)."""
    try:
        response = await http.post(f"{url}/graphql", content=request.body, headers={"content-type": request.content_type})
    except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
        if request.size <= Settings.max_request_bytes:
            raise RuntimeError(f"{request.family}: the connection broke") from None
        return 413
    return response.status_code


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="crm-bench-hostile-"))
    settings = Settings(database_url=f"sqlite+aiosqlite:///{workdir}/bench.sqlite3", secret_key=TEST_SECRET)
    await asyncio.to_thread(plugins.upgrade, settings)
    from crm_graph.db.session import Database

    db = Database.from_settings(settings)
    token, _ = await make_key(db, settings, role="ADMIN", email="bench@example.com")
    await db.dispose()
    process, url = await start_server(settings.database_url, workdir)
    requests = list(hostile_requests())
    try:
        async with httpx.AsyncClient(headers=bearer(token), timeout=60) as http:
            await http.post(f"{url}/graphql", json=SMALL)
            rss_start, _ = memory_kib(process.pid)
            alone = await small_latencies(http, url, 3.0)

            by_family: dict[str, list[float]] = defaultdict(list)
            for _ in range(args.rounds):
                for request in requests:
                    started = time.perf_counter()
                    status = await send(http, url, request)
                    by_family[request.family].append(time.perf_counter() - started)
                    assert status < 500, request.family

            async def attacker(n: int) -> None:
                for _ in range(args.rounds):
                    for request in requests[n::8]:
                        await send(http, url, request)

            attack = asyncio.gather(*(attacker(n) for n in range(8)))
            beside = await small_latencies(http, url, 10.0)
            await attack
            rss_end, rss_peak = memory_kib(process.pid)
    finally:
        process.terminate()
        process.wait(10)

    print(f"{len(requests)} hostile requests x {args.rounds} rounds against one uvicorn worker on SQLite\n")
    print(f"{'family':22s} {'median ms':>10s} {'max ms':>8s}")
    for family, times in by_family.items():
        print(f"{family:22s} {statistics.median(times) * 1000:10.1f} {max(times) * 1000:8.1f}")
    print(f"\nsmall query alone:          p50 {pct(alone, 0.5):6.1f} ms  p99 {pct(alone, 0.99):6.1f} ms  ({len(alone)} requests)")
    print(f"small query beside 8 attackers: p50 {pct(beside, 0.5):6.1f} ms  p99 {pct(beside, 0.99):6.1f} ms  "
          f"max {max(beside) * 1000:6.1f} ms  ({len(beside)} requests)")
    print(f"ratio (p50 beside / alone): {pct(beside, 0.5) / pct(alone, 0.5):.1f}x")
    print(f"server memory: {rss_start / 1024:.0f} MiB at start, {rss_end / 1024:.0f} MiB after, peak {rss_peak / 1024:.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
