"""Where the time of the benchmark's operations goes: cProfile of each, in-process, with the
statements it runs. Writes bench/results/profile.md, which bench/run.py puts into bench/RESULTS.md.

    .venv/bin/python bench/hotspots.py [--customers 2000] [--runs 30] [--top 12]

Each operation runs through the whole ASGI app (middleware, sign-in by API key, GraphQL, the
database), as bench/run.py's in-process scenarios do, on SQLite and on a throwaway PostgreSQL.
The profile's own-time ("tottime") entries say which functions spend the CPU; waiting for the
database shows as the event loop's ``poll``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.common import bench_settings  # noqa: E402
from bench.run import CREATE_MANY, LOOKUP, PAGE, SECRET  # noqa: E402
from crm_graph import benchdata, plugins  # noqa: E402
from crm_graph.core.ids import encode  # noqa: E402
from crm_graph.customers.models import Customer  # noqa: E402
from crm_graph.db.session import Database  # noqa: E402
from crm_graph.testing.auth import make_key  # noqa: E402
from crm_graph.testing.client import asgi_client  # noqa: E402


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3.", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            return path.split("/", 1)[1] if marker == "/lib/python3." else path
    return path


PACKAGES = (("graphql-core", "site-packages/graphql/"), ("Strawberry", "site-packages/strawberry/"),
            ("SQLAlchemy", "site-packages/sqlalchemy/"), ("database driver", "site-packages/aiosqlite/"),
            ("database driver", "site-packages/asyncpg/"), ("Starlette and httpx", "site-packages/starlette/"),
            ("Starlette and httpx", "site-packages/httpx/"), ("crm_graph", str(ROOT / "crm_graph")),
            ("asyncio and waiting", "/asyncio/"), ("asyncio and waiting", "select.epoll"), ("asyncio and waiting", "selectors.py"))


def by_package(profile: cProfile.Profile) -> str:
    """Own time summed by where the code lives: which layer spends the CPU."""
    stats = pstats.Stats(profile, stream=io.StringIO())
    sums: dict[str, float] = {}
    for (path, _, name), row in stats.stats.items():  # type: ignore[attr-defined]
        where = path if path != "~" else name
        package = next((label for label, marker in PACKAGES if marker in where), "other (builtins, stdlib, greenlet)")
        sums[package] = sums.get(package, 0.0) + row[2]
    total = sum(sums.values()) or 1.0
    return ", ".join(f"{label} {value / total:.0%}" for label, value in sorted(sums.items(), key=lambda kv: -kv[1]))


def top_entries(profile: cProfile.Profile, count: int) -> list[str]:
    stats = pstats.Stats(profile, stream=io.StringIO())
    total = sum(row[2] for row in stats.stats.values()) or 1.0  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:count]  # type: ignore[attr-defined]
    out = []
    for (path, line, name), (_, calls, own, _cumulative, _) in rows:
        where = f"{_short(path)}:{line} {name}" if path != "~" else name
        out.append(f"| {where} | {calls} | {own * 1000:.0f} | {own / total:.0%} |")
    return out


async def profile_database(postgresql: bool, args: argparse.Namespace) -> list[str]:
    name = "postgresql" if postgresql else "sqlite"
    settings, cleanup = await bench_settings("profile", postgresql, secret_key=SECRET, rate_limit_capacity=0)
    lines = [f"### {name}", ""]
    try:
        await asyncio.to_thread(plugins.upgrade, settings)
        db = Database.from_settings(settings)
        await benchdata.generate(db, benchdata.Volumes(customers=args.customers, orders=args.customers * 5,
                                                       opportunities=args.customers, tickets=args.customers // 4))
        token, _ = await make_key(db, settings, role="ADMIN", email="bench@example.com")
        from crm_graph.app import create_app
        from crm_graph.serving import tune_garbage_collector

        app = create_app(settings, db=db, dispatcher=False, jobs=False)
        tune_garbage_collector()
        statements = [0]

        @sa.event.listens_for(db.engine.sync_engine, "before_cursor_execute")
        def count(*_: Any) -> None:
            statements[0] += 1

        async with app.router.lifespan_context(app), asgi_client(app, token) as http:
            async with db.reader() as session:
                pk = await session.scalar(sa.select(sa.func.min(Customer.id)))
            batch = [0]

            def people() -> list[dict[str, Any]]:
                batch[0] += 1
                return [{"kind": "PERSON", "firstName": f"Profile{batch[0]}", "lastName": f"Person{i}",
                         "emails": [{"address": f"p{batch[0]}.{i}@profile.example"}]} for i in range(100)]

            operations = {
                "a: the nested page (100 customers, emails, tags, 5 opportunities each)": lambda: {"query": PAGE},
                "c: the tiny lookup": lambda: {"query": LOOKUP, "variables": {"id": encode("Customer", pk)}},
                "d: createCustomers with 100 customers": lambda: {"query": CREATE_MANY, "variables": {"inputs": people()}},
            }
            for title, body in operations.items():
                runs = max(3, args.runs // 10) if title.startswith("d") else args.runs

                async def once(body: Any = body) -> None:
                    answer = (await http.post("/graphql", json=body())).json()
                    if answer.get("errors"):
                        raise RuntimeError(answer["errors"])

                for _ in range(3):
                    await once()
                statements[0] = 0
                profile = cProfile.Profile()
                start = time.perf_counter()
                profile.enable()
                for _ in range(runs):
                    await once()
                profile.disable()
                elapsed = (time.perf_counter() - start) / runs * 1000
                lines += [f"**{title}**: {elapsed:.1f} ms a call under the profiler, {statements[0] / runs:.0f} statements a call.",
                          "", f"Own time by layer: {by_package(profile)}.",
                          "", "| function (own time) | calls | ms | share |", "| --- | --- | --- | --- |",
                          *top_entries(profile, args.top), ""]
                print(f"[{name}] {title}: {elapsed:.1f} ms, {statements[0] / runs:.0f} statements", flush=True)
        await db.dispose()
    finally:
        cleanup()
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    lines = [f"Written by bench/hotspots.py: cProfile of each operation, {args.runs} calls (createCustomers: "
             f"{max(3, args.runs // 10)}) over {args.customers} generated customers, the top {args.top} functions by their "
             "own time. The profiler itself slows calls down; the ratios in the tables above are measured without it.", ""]
    for name in args.databases.split(","):
        lines += await profile_database(name == "postgresql", args)
    out = ROOT / "bench" / "results" / "profile.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    asyncio.run(main())
