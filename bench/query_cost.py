"""How long the cost analysis (crm_graph/graphql/cost.py) takes on hostile documents.

Nested fragment fan-out (n fragments, each spreading the next twice: 2**n copies of the last)
must cost time linear in n, not in 2**n; the figures print parse, validation and analysis
times per level count and the ratio between the largest and the smallest.

    .venv/bin/python bench/query_cost.py
"""

from __future__ import annotations

import statistics
import time

from graphql import parse, validate

from crm_graph.graphql.cost import measure
from crm_graph.graphql.schema import build_schema
from crm_graph.plugins import make_plugin_manager
from crm_graph.settings import Settings


def fan_out(levels: int) -> str:
    fragments = [f"fragment F{i} on Customer {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on Customer {{ id organization {{ id }} }}")
    return "{ customers(first: 100) { edges { node { ...F0 } } } }\n" + "\n".join(fragments)


def timed(fn, runs: int = 20) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    settings = Settings(secret_key="bench-secret-key-of-at-least-thirty-two-characters")
    schema = build_schema(settings, make_plugin_manager(settings))._schema
    rows = []
    for levels in (10, 20, 30, 60, 120):
        text = fan_out(levels)
        document = parse(text)
        rows.append((levels, timed(lambda: parse(text)), timed(lambda: validate(schema, document)),
                     timed(lambda: measure(schema, document)), measure(schema, document).cost))
    print(f"{'fragments':>9} {'parse ms':>9} {'validate ms':>12} {'analyse ms':>11}  cost")
    for levels, p, v, a, cost in rows:
        print(f"{levels:>9} {p:>9.2f} {v:>12.2f} {a:>11.3f}  {cost:.3g}")
    print(f"analysis time, 120 vs 10 fragments: {rows[-1][3] / rows[0][3]:.1f}x for 12x the fragments "
          f"(and 2**110 times the copies)")


if __name__ == "__main__":
    main()
