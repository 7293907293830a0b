"""`make bench`: the benchmark suite. Every scenario on SQLite and on a throwaway PostgreSQL, in
interleaved rounds, each figure next to the best plain code doing the same work in the same run.

    .venv/bin/python bench/run.py [--customers 100000] [--orders 1000000] [--rounds 3]
                                  [--duration 5] [--databases sqlite,postgresql]

The data comes from crm_graph/benchdata.py (what `crm-graph bench generate` writes). The API
is signed in with an API key throughout, as users run it; its rate limit is off (one key sending
thousands of requests a second would be throttled, which is the limiter working, not speed).

Scenarios (the letters are the ones bench/RESULTS.md uses):
  a  nested page in-process: 100 customers with emails, tags and 5 opportunities each, through
     the whole ASGI app, vs the same JSON from hand-written Core queries (ms per page; lower wins)
  b  the same page over HTTP, one uvicorn worker each, wrk with 16 connections on loopback, vs
     bench/plain_app.py serving it from the same queries (requests/s)
  c  a tiny lookup, customer(id) { displayName }, the same way (requests/s)
  d  createCustomers with 100 customers vs a Core bulk insert of their rows (ms per batch)
  e  single createCustomer mutations over HTTP with 1, 8 and 32 connections vs the plain insert
     endpoint (requests/s; answers with errors are counted)
  f  rfmAnalysis recomputed over the orders vs the bare SQL aggregate (ms)
  g  a dynamic segment's size and first page (country + orders.totalSpent + tag) vs the same
     conditions written by hand in SQL (ms)
  h  event dispatch to a local webhook receiver (bench/dispatch_throughput.py; events/s)
  i  peak resident memory of the API server process during b, c and e (MB)
  j  the peer, on PostgreSQL: PostGraphile 4 (npm; bench/peer/package.json) serving the same
     page and lookup from the same database, requests/s beside ours from the same rounds. A
     comparison, not a dependency: it runs without sign-in (it has no API keys) and reads the
     tables as they are (its page does not leave out soft-deleted customers; none are generated)
Writes bench/results/latest.json and bench/RESULTS.md (with the machine's description).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench.common import bench_settings  # noqa: E402
from bench.plain_app import page_json  # noqa: E402
from crm_graph import benchdata  # noqa: E402
from crm_graph.customers.models import Customer, CustomerEmail, CustomerTag  # noqa: E402
from crm_graph.db.session import Database  # noqa: E402
from crm_graph.sales.models import Order  # noqa: E402
from crm_graph.testing.auth import make_key  # noqa: E402
from crm_graph.testing.client import asgi_client  # noqa: E402

SECRET = "bench-secret-key-of-at-least-thirty-two-characters"
PAGE = ("{ customers(first: 100, orderBy: [{field: CREATED_AT, direction: ASC}]) { edges { node { id displayName "
        "emails { address } tags opportunities(first: 5) { edges { node { stage { name } amount { amount currency } } } } } } } }")
LOOKUP = "query($id: ID!) { customer(id: $id) { displayName } }"
CREATE = ('mutation { createCustomer(input: {kind: PERSON, firstName: "Bench", lastName: "Client"}) '
          "{ customer { id } errors { code } } }")
CREATE_MANY = "mutation($inputs: [CreateCustomerInput!]!) { createCustomers(inputs: $inputs) { results { errors { code } } } }"
SEGMENT = ('{ previewSegment(first: 20, filter: {country: {eq: "DE"}, tags: {containsAny: ["vip"]}, '
           'orders: {windowDays: 365, totalSpent: {gt: "500"}}}) { size customers { edges { node { id displayName } } } } }')
RFM = "mutation { refreshRfmScores(input: {asOf: \"2026-11-01\", windowDays: 365, currency: \"EUR\"}) { analysis { run { customers } } errors { code } } }"
# The peer's form of PAGE and LOOKUP (PostGraphile's names for the same tables and relations).
PEER_PAGE = ("{ allCustomers(first: 100, orderBy: CREATED_AT_ASC) { nodes { id displayName "
             "customerEmailsByCustomerId { nodes { address } } customerTagsByCustomerId { nodes { tag } } "
             "opportunitiesByCustomerId(first: 5) { nodes { pipelineStageByStageId { name } amount currency } } } } }")
PEER_LOOKUP = "query($id: BigInt!) { customerById(id: $id) { displayName } }"  # its BigInt is a string
PEER = ROOT / "var/node/bench-peer/node_modules/.bin/postgraphile"
TARGETS = {"a": ("ratio", 3.0, "<="), "b": ("share", 0.5, ">="), "c": ("share", 0.6, ">="), "d": ("ratio", 3.0, "<="),
           "f": ("ratio", 1.5, "<="), "g": ("ratio", 2.0, "<="), "i": ("mb", 300.0, "<=")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def timed(work: Callable[[], Awaitable[Any]], runs: int) -> float:
    """Median milliseconds of ``runs`` calls after one warm-up call."""
    await work()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await work()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


# --- HTTP: servers in processes of their own, wrk as the load ----------------------------------


class Server:
    def __init__(self, args: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(args, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_ready(self, path: str) -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def peak_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) failed = 0 end
function response(status, headers, body)
  if status ~= 200 or (not string.find(body, '"data"', 1, true)) or string.find(body, '"errors":[{{', 1, true)
     or string.find(body, '"code"', 1, true) then failed = failed + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("failed") end
  io.write(string.format("FAILED %d\\n", total))
end
"""


def wrk(url: str, body: dict[str, Any], token: str, connections: int, duration: int) -> tuple[float, int]:
    """Requests per second and failed answers (not 200, or a GraphQL error, or an error code)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.format(body=json.dumps(json.dumps(body)), token=token))
    threads = max(1, min(2, connections))
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "60s", "-s", script.name, url],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    os.unlink(script.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    failed = int(re.search(r"FAILED (\d+)", out).group(1))  # type: ignore[union-attr]
    return rate, failed


# --- one database ------------------------------------------------------------------------------


async def prepare(name: str, args: argparse.Namespace) -> tuple[Any, Callable[[], None], dict[str, Any]]:
    """A new database of ``name``'s kind filled by ``crm-graph bench generate`` (what a user runs),
    in a process of its own: the databases are filled side by side, one per core, and measured
    one after the other."""
    settings, cleanup = await bench_settings("bench", name == "postgresql", secret_key=SECRET, rate_limit_capacity=0)
    start = time.perf_counter()
    command = [str(ROOT / ".venv/bin/crm-graph"), "bench", "generate", "--customers", str(args.customers),
               "--orders", str(args.orders), "--opportunities", str(args.opportunities), "--tickets", str(args.tickets)]
    process = await asyncio.create_subprocess_exec(
        *command, env={**os.environ, "CRM_DATABASE_URL": settings.database_url, "CRM_SECRET_KEY": SECRET},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = (await process.communicate())[0].decode(errors="replace")
    if process.returncode != 0:
        cleanup()
        raise RuntimeError(f"[{name}] bench generate failed:\n{output[-3000:]}")
    db = Database.from_settings(settings)
    async with db.engine.connect() as conn:
        await conn.exec_driver_sql("ANALYZE")
        await conn.commit()
    await db.dispose()
    summary = next((line.strip() for line in reversed(output.replace("\r", "\n").splitlines()) if " customers, " in line), "")
    data = {"seconds": round(time.perf_counter() - start, 1), "summary": summary}
    print(f"[{name}] data: {summary} ({data['seconds']} s with migrations and ANALYZE)", flush=True)
    return settings, cleanup, data


async def run_database(name: str, args: argparse.Namespace, settings: Any, cleanup: Callable[[], None],
                       data: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, Any] = {"data": data}
    try:
        db = Database.from_settings(settings)
        token, _ = await make_key(db, settings, role="ADMIN", email="bench@example.com")
        samples: dict[str, list[tuple[float, float]]] = {k: [] for k in "adfg"}
        from crm_graph.app import create_app

        from crm_graph.serving import tune_garbage_collector

        app = create_app(settings, db=db, dispatcher=False, jobs=False)
        tune_garbage_collector()  # as `crm-graph serve` does
        async with app.router.lifespan_context(app), asgi_client(app, token) as http:
            async def graphql(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
                answer = (await http.post("/graphql", json={"query": query, "variables": variables or {}})).json()
                if answer.get("errors"):
                    raise RuntimeError(answer["errors"])
                return answer["data"]

            batch_no = [0]

            def people() -> list[dict[str, Any]]:
                batch_no[0] += 1
                return [{"kind": "PERSON", "firstName": f"Batch{batch_no[0]}", "lastName": f"Person{i}",
                         "emails": [{"address": f"b{batch_no[0]}.{i}@batch.example"}]} for i in range(100)]

            async def core_batch() -> None:
                batch_no[0] += 1
                now = datetime.now(UTC)
                async with db.writer() as session, session.begin():
                    rows = [dict(kind="PERSON", first_name=f"Core{batch_no[0]}", last_name=f"Person{i}",
                                 display_name=f"Core{batch_no[0]} Person{i}", lifecycle_stage="LEAD", consent_status="UNKNOWN",
                                 version=1, created_at=now, updated_at=now) for i in range(100)]
                    ids = (await session.execute(Customer.__table__.insert().returning(Customer.id), rows)).scalars().all()
                    await session.execute(CustomerEmail.__table__.insert(), [
                        dict(customer_id=pk, address=f"c{batch_no[0]}.{i}@batch.example", is_primary=True, position=0)
                        for i, pk in enumerate(ids)])

            async def page_core() -> None:
                async with db.engine.connect() as conn:
                    json.dumps(await page_json(conn))

            async def segment_sql() -> None:
                cutoff = benchdata.NOW - timedelta(days=365)
                spent = (sa.select(sa.func.sum(Order.total)).where(Order.customer_id == Customer.id, Order.ordered_at >= cutoff,
                                                                   Order.status != "CANCELLED").scalar_subquery())
                where = sa.and_(Customer.deleted_at.is_(None), Customer.country == "DE", spent > 500,
                                sa.exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag.in_(["vip"])))
                async with db.engine.connect() as conn:
                    await conn.scalar(sa.select(sa.func.count()).select_from(Customer).where(where))
                    (await conn.execute(sa.select(Customer.id, Customer.display_name).where(where)
                                        .order_by(Customer.created_at, Customer.id).limit(20))).all()

            async def rfm_sql() -> None:
                from crm_graph.segments.values import in_window

                stmt = (sa.select(Order.customer_id, sa.func.max(Order.ordered_at), sa.func.count(), sa.func.sum(Order.total))
                        .where(in_window(benchdata.NOW.date(), 365, "EUR")).group_by(Order.customer_id))
                async with db.engine.connect() as conn:
                    (await conn.execute(stmt)).all()

            async def rfm_api() -> None:
                data = await graphql(RFM)
                assert not data["refreshRfmScores"]["errors"], data

            for round_no in range(args.rounds):
                samples["a"].append((await timed(lambda: graphql(PAGE), args.runs), await timed(page_core, args.runs)))
                samples["d"].append((await timed(lambda: graphql(CREATE_MANY, {"inputs": people()}), max(3, args.runs // 3)),
                                     await timed(core_batch, max(3, args.runs // 3))))
                samples["g"].append((await timed(lambda: graphql(SEGMENT), args.runs), await timed(segment_sql, args.runs)))
                samples["f"].append((await timed(rfm_api, 2), await timed(rfm_sql, 2)))
                print(f"[{name}] round {round_no + 1}: " + ", ".join(f"{k} {v[-1][0]:.1f}/{v[-1][1]:.1f} ms" for k, v in samples.items()),
                      flush=True)
        for key, pairs in samples.items():
            ours, plain = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
            figures[key] = {"ours_ms": round(ours, 2), "plain_ms": round(plain, 2), "ratio": round(ours / plain, 2)}

        # HTTP: the API and the plain app, each one uvicorn worker, loaded in turns.
        env = {"CRM_DATABASE_URL": settings.database_url, "CRM_SECRET_KEY": SECRET, "CRM_RATE_LIMIT_CAPACITY": "0",
               "CRM_LOG_LEVEL": "warning", "CRM_DATA_DIR": tempfile.mkdtemp(prefix="crm-bench-data-")}
        api_port, plain_port = free_port(), free_port()
        # The server serves; its periodic jobs run elsewhere, as docs/deployment.md lays a busy
        # deployment out (CRM_JOBS_ENABLED=false beside `crm-graph worker`). At these volumes the
        # jobs' first runs (the insights job's lifecycle and churn runs over 1M orders) hold the
        # SQLite write lock for minutes and would be measured instead of the API.
        api = Server([str(ROOT / ".venv/bin/crm-graph"), "serve", "--no-migrate", "--port", str(api_port)],
                     {**env, "CRM_SQLITE_BUSY_TIMEOUT": "30", "CRM_JOBS_ENABLED": "false"}, api_port)
        plain = Server([sys.executable, "-m", "uvicorn", "--factory", "bench.plain_app:create", "--port", str(plain_port),
                        "--log-level", "warning", "--no-access-log"], {**env, "PYTHONPATH": str(ROOT)}, plain_port)
        peer = None
        if name == "postgresql" and PEER.exists():
            peer_port = free_port()
            peer = Server([str(PEER), "-c", settings.database_url.replace("postgresql+asyncpg://", "postgres://"),
                           "--schema", "public", "--host", "127.0.0.1", "--port", str(peer_port), "--disable-query-log"],
                          {}, peer_port)
        try:
            api.wait_ready("/healthz")
            plain.wait_ready("/")
            if peer is not None:
                peer.wait_ready("/graphql")
            http_samples: dict[str, list[tuple[float, float]]] = {"b": [], "c": [], **{f"e{c}": [] for c in (1, 8, 32)}}
            failures: dict[str, int] = {}
            async with db.reader() as session:
                pk = await session.scalar(sa.select(sa.func.min(Customer.id)))
            from crm_graph.core.ids import encode

            # Warm up: the first requests fill the server's caches, which is not what a
            # long-running server spends its time on.
            wrk(f"http://127.0.0.1:{api_port}/graphql", {"query": LOOKUP, "variables": {"id": encode("Customer", pk)}}, token, 4, 3)
            wrk(f"http://127.0.0.1:{plain_port}/lookup", {"id": pk}, token, 4, 3)
            peer_samples: dict[str, list[tuple[float, float]]] = {"page": [], "lookup": []}
            if peer is not None:
                wrk(f"http://127.0.0.1:{peer_port}/graphql", {"query": PEER_PAGE}, token, 4, 3)
            for _ in range(args.rounds):
                cases = [("b", {"query": PAGE}, {}, 16), ("c", {"query": LOOKUP, "variables": {"id": encode("Customer", pk)}}, {"id": pk}, 16),
                         *((f"e{c}", {"query": CREATE}, {"firstName": "Bench", "lastName": "Client"}, c) for c in (1, 8, 32))]
                for key, api_body, plain_body, connections in cases:
                    route = {"b": "/page", "c": "/lookup"}.get(key, "/create")
                    ours, failed = wrk(f"http://127.0.0.1:{api_port}/graphql", api_body, token, connections, args.duration)
                    theirs, _ = wrk(f"http://127.0.0.1:{plain_port}{route}", plain_body, token, connections, args.duration)
                    http_samples[key].append((ours, theirs))
                    failures[key] = failures.get(key, 0) + failed
                    if peer is not None and key in ("b", "c"):
                        what = "page" if key == "b" else "lookup"
                        peer_body = {"query": PEER_PAGE} if key == "b" else {"query": PEER_LOOKUP, "variables": {"id": str(pk)}}
                        peer_rps, peer_failed = wrk(f"http://127.0.0.1:{peer_port}/graphql", peer_body, token, connections, args.duration)
                        peer_samples[what].append((ours, peer_rps))
                        failures[f"j {what}"] = failures.get(f"j {what}", 0) + peer_failed
                print(f"[{name}] http: " + ", ".join(f"{k} {v[-1][0]:.0f}/{v[-1][1]:.0f} req/s" for k, v in http_samples.items()), flush=True)
            for key, pairs in http_samples.items():
                ours, theirs = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
                figures[key] = {"ours_rps": round(ours, 1), "plain_rps": round(theirs, 1),
                                "share": round(ours / theirs, 3) if theirs else None,
                                "failed": failures[key]}
            figures["i"] = {"mb": round(api.peak_mb(), 1), "plain_mb": round(plain.peak_mb(), 1)}
            if peer is not None:
                figures["j"] = {}
                for what, pairs in peer_samples.items():
                    ours, theirs = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
                    figures["j"][what] = {"ours_rps": round(ours, 1), "peer_rps": round(theirs, 1),
                                          "share": round(ours / theirs, 3) if theirs else None,
                                          "peer_failed": failures.get(f"j {what}", 0)}
        finally:
            api.stop()
            plain.stop()
            if peer is not None:
                peer.stop()
        await db.dispose()
    finally:
        cleanup()
    figures["h"] = dispatch(name == "postgresql")
    return figures


def dispatch(postgresql: bool) -> dict[str, Any]:
    args = [sys.executable, str(ROOT / "bench/dispatch_throughput.py"), "--events", "2000", "--concurrency", "4"]
    out = subprocess.run([*args, *(["--postgresql"] if postgresql else [])], capture_output=True, text=True, timeout=900).stdout
    found = re.search(r"events/s\s+([\d,.]+)", out)
    return {"events_per_s": float(found.group(1).replace(",", "")) if found else None, "output": out.strip().splitlines()[-3:]}


# --- the report --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024 // 1024  # type: ignore[union-attr]
    pg = subprocess.run(["sh", "-c", "$(ls /usr/lib/postgresql/*/bin/postgres | tail -1) --version"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "postgresql": pg, "wrk": shutil.which("wrk") is not None}


def verdict(key: str, figure: dict[str, Any]) -> str:
    target = TARGETS.get(key)
    if target is None:
        return ""
    field, bound, op = target
    value = figure.get(field)
    if value is None:
        return "?"
    met = value <= bound if op == "<=" else value >= bound
    return f"{'met' if met else 'NOT met'} ({op} {bound:g})"


def report(results: dict[str, Any], path: Path) -> None:
    lines = ["# Benchmark results", "", f"Written by `make bench` (bench/run.py) on {results['date']}.", "",
             f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores, {results['machine']['memory_gb']} GB; "
             f"Python {results['machine']['python']}, SQLite {results['machine']['sqlite']}, {results['machine']['postgresql']}.", "",
             f"Volumes: {results['volumes']}; {results['rounds']} interleaved rounds, medians.", ""]
    labels = {"a": "a nested page in-process (ms)", "b": "b nested page over HTTP (req/s)", "c": "c tiny lookup over HTTP (req/s)",
              "d": "d createCustomers x100 (ms)", "e1": "e createCustomer, 1 client (req/s)", "e8": "e createCustomer, 8 clients (req/s)",
              "e32": "e createCustomer, 32 clients (req/s)", "f": "f rfmAnalysis (ms)", "g": "g dynamic segment (ms)",
              "h": "h event dispatch (events/s)", "i": "i peak server memory (MB)"}
    for name, figures in results["databases"].items():
        lines += [f"## {name}", "", f"Data: {figures['data'].get('summary', '')}; {figures['data']['seconds']} s with migrations "
                  "and ANALYZE (both databases are filled at once, each by its own `crm-graph bench generate`).", "",
                  "| scenario | ours | plain code | ratio | target |", "| --- | --- | --- | --- | --- |"]
        for key, label in labels.items():
            f = figures.get(key)
            if not f:
                continue
            if "ours_ms" in f:
                lines.append(f"| {label} | {f['ours_ms']} | {f['plain_ms']} | {f['ratio']}x | {verdict(key, f)} |")
            elif "ours_rps" in f:
                failed = f" ({f['failed']} failed)" if f.get("failed") else ""
                share = f"{f['share']:.0%}" if f["share"] is not None else "?"
                lines.append(f"| {label} | {f['ours_rps']}{failed} | {f['plain_rps']} | {share} | {verdict(key, f)} |")
            elif key == "h":
                lines.append(f"| {label} | {f['events_per_s']} | | | |")
            elif key == "i":
                lines.append(f"| {label} | {f['mb']} | {f['plain_mb']} | | {verdict(key, f)} |")
        peer = figures.get("j")
        if peer:
            lines += ["", "The peer (PostGraphile 4, same database, same rounds, the same wrk runs):", "",
                      "| scenario | ours (req/s) | PostGraphile (req/s) | ours / peer | target |", "| --- | --- | --- | --- | --- |"]
            for what, label in (("page", "j nested page over HTTP"), ("lookup", "j tiny lookup over HTTP")):
                f = peer[what]
                failed = f" ({f['peer_failed']} failed)" if f.get("peer_failed") else ""
                share = f"{f['share']:.0%}" if f["share"] is not None else "?"
                goal = (f"{'met' if (f['share'] or 0) >= 1 else 'NOT met'} (>= 1)") if what == "page" else ""
                lines.append(f"| {label} | {f['ours_rps']} | {f['peer_rps']}{failed} | {share} | {goal} |")
        lines.append("")
    if results.get("profile"):
        lines += ["## Profile", "", results["profile"], ""]
    path.write_text("\n".join(lines))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--opportunities", type=int, default=200_000)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=15, help="timed calls per in-process figure and round")
    parser.add_argument("--duration", type=int, default=5, help="seconds of each wrk run")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: `make bench` installs it (Debian package wrk)")
    started = time.perf_counter()
    results: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(), "rounds": args.rounds,
                               "volumes": {k: getattr(args, k) for k in ("customers", "orders", "opportunities", "tickets")},
                               "databases": {}}
    names = args.databases.split(",")
    prepared = await asyncio.gather(*(prepare(name, args) for name in names), return_exceptions=True)
    failed = [p for p in prepared if isinstance(p, BaseException)]
    if failed:
        for p in prepared:
            if not isinstance(p, BaseException):
                p[1]()  # the other database's server goes too
        raise failed[0]
    for name, (settings, cleanup, data) in zip(names, prepared, strict=True):
        results["databases"][name] = await run_database(name, args, settings, cleanup, data)
    results["seconds"] = round(time.perf_counter() - started)
    profile = ROOT / "bench" / "results" / "profile.md"
    results["profile"] = profile.read_text() if profile.exists() else ""
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "latest.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    report(results, ROOT / "bench" / "RESULTS.md")
    print((ROOT / "bench" / "RESULTS.md").read_text())
    print(f"bench: {results['seconds']} s")


if __name__ == "__main__":
    asyncio.run(main())
