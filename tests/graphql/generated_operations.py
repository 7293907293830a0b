"""GraphQL operations that schemathesis generates from schema.graphql, for
test_generated_operations.py: ``COUNT`` of them, queries and mutations of every root field, from
a fixed hypothesis seed.

Generating costs about 30 ms of CPU per operation (hypothesis-graphql draws a choice for every
field of every type it visits and for every argument), a minute for 2,000: more than the test
may take. What is generated depends only on the schema, this module and the libraries' versions,
so it is generated once and kept under a digest of all of those (a changed schema or generator
generates anew): both database passes of a suite and every later run read the same file. The
operations of the committed schema are committed too (generated-operations.json.gz beside this
module, written by ``python -m tests.graphql.generated_operations --commit``), so a fresh clone
starts with them; when the schema changes and they are not regenerated, the suite makes its own
in var/generated-operations/, which costs a minute. A file lock makes a second process wait for the one generating rather than
generate again; two worker processes share the work, each with its own share of the root fields
and its own seed. tests/graphql/conftest.py starts the generation in the background when the
suite is collected, so it runs beside the tests before this one; ``python -m
tests.graphql.generated_operations`` runs it by hand.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import gzip
import hashlib
import json
import multiprocessing
import os
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from crm_graph.core import ids
from crm_graph.settings import PROJECT_ROOT

SCHEMA = PROJECT_ROOT / "schema.graphql"
CACHE = PROJECT_ROOT / "var" / "generated-operations"
COMMITTED = Path(__file__).with_name("generated-operations.json.gz")
COUNT = 2000
SEED = 20261203
WORKERS = 2
REAL_PKS = (1, 2, 3)  # primary keys the seeded rows (and the first rows mutations create) have

# Values of the schema's own scalars and some of the built-in ones: valid ones and ones the
# input contract refuses.
STRINGS = ["", " ", "a", "VIP", "EUR", "usd", "XTS", "LEAD", "ann@example.com", "not an email", "+14155550100",
           "Europe/Berlin", "Mars/Olympus", "customer.created", "FREQ=DAILY", "{{ customer.name }}", "x" * 300,
           "\u200b", "\u202e", "Ωmega", "名前", "'; DROP TABLE customers; --", "%", "_", "\\"]
INTS = [-2**31, -1, 0, 1, 2, 99, 100, 101, 1000, 1441, 2**31 - 1]
DECIMALS = ["0", "1", "10", "12.5", "99.99", "-3", "0.0001", "100000", "1e3", "12.34567", "0.00001", "9" * 30,
            "1e400", "-1E-400", "NaN", "-Infinity", "Infinity", "1,5", "", " 7 ", "abc"]
DATETIMES = ["2026-12-03T10:00:00Z", "2026-01-01T00:00:00+02:00", "2025-06-30T23:59:59.999999-07:00",
             "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00", "2026-12-03T10:00:00",
             "2026-12-03", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "now", "", "12:00"]
DATES = ["2026-12-03", "2024-02-29", "1900-01-01", "9999-12-31", "2026-02-30", "2026-12-03T10:00:00Z", "26-1-1", "", "tomorrow"]
TIMES = ["09:00", "09:00:00", "23:59:59.999", "00:00", "24:00", "25:00", "9am", "", "09:00+02:00"]
JSON_TEXTS = ["{}", "[]", "null", "1", '"x"', '{"a": 1}', '{"a": {"b": [1, 2, {"c": null}]}}', "[1, [2, [3, [4]]]]",
              '{"": ""}', "{", "NaN", "\u0000"]


def _string(values: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    from schemathesis.graphql import nodes

    return values.map(nodes.String)


def _json_value(value: Any) -> Any:
    """A JSON value as a GraphQL value literal."""
    import graphql
    from schemathesis.graphql import nodes

    if value is None:
        return nodes.Null
    if isinstance(value, bool):
        return nodes.Boolean(value)
    if isinstance(value, int):
        return nodes.Int(value)
    if isinstance(value, float):
        return nodes.Float(value)
    if isinstance(value, str):
        return nodes.String(value)
    if isinstance(value, list):
        return nodes.List([_json_value(v) for v in value])
    return nodes.Object([graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=_json_value(v))
                         for k, v in value.items() if k])


def nodes_int(value: int) -> Any:
    from schemathesis.graphql import nodes

    return nodes.Int(value)


def register_scalars(node_types: list[str]) -> None:
    """Strategies for IDs and for the schema's scalars (schemathesis keeps them in a registry of
    its own, so this runs in the worker processes only). A value is mostly one of a fixed list:
    one choice to draw, which keeps generation cheap."""
    import schemathesis

    real = [ids.encode(name, pk) for name in node_types for pk in REAL_PKS]
    scalar = schemathesis.graphql.scalar
    # Real IDs of every node type (half of them), random text, and real ones spelled otherwise.
    scalar("ID", _string(st.one_of(st.sampled_from(real), st.sampled_from(real), st.text(max_size=24),
                                   st.sampled_from(real).map(lambda i: i + "=="))))
    # Mostly printable text, so most operations get past the refusal of control characters.
    scalar("String", _string(st.one_of(
        st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=30),
        st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=30),
        st.sampled_from(STRINGS),
        st.text(max_size=12),  # any code point: control characters included
    )))
    # Mostly small numbers (page sizes, versions, minutes that are in range), and the edges.
    scalar("Int", st.one_of(st.integers(0, 5), st.integers(-3, 400), st.sampled_from(INTS)).map(nodes_int))
    scalar("Decimal", _string(st.sampled_from(DECIMALS)))
    scalar("DateTime", _string(st.sampled_from(DATETIMES)))
    scalar("Date", _string(st.sampled_from(DATES)))
    scalar("Time", _string(st.sampled_from(TIMES)))
    parsed = [json.loads(text) for text in JSON_TEXTS[:9]]
    scalar("JSON", st.one_of(st.sampled_from(parsed).map(_json_value), _string(st.sampled_from(JSON_TEXTS))))


def generate_part(part: int, parts: int, count: int) -> list[tuple[str, str]]:
    """``count`` operations of every ``parts``-th root field, from the ``part``-th on: (label, document)."""
    import schemathesis

    schema = schemathesis.graphql.from_path(SCHEMA)
    client_schema = schema.client_schema
    node_types = sorted(t.name for t in client_schema.get_implementations(client_schema.get_type("Node")).objects)
    register_scalars(node_types)
    operations = [result.ok() for result in schema.get_all_operations()][part::parts]
    strategy = st.one_of([operation.as_strategy() for operation in operations])
    cases: list[tuple[str, str]] = []

    @seed(SEED + part)
    @hypothesis_settings(max_examples=count, derandomize=True, database=None, phases=[Phase.generate],
                         suppress_health_check=list(HealthCheck), deadline=None)
    @given(strategy)
    def collect(case: Any) -> None:
        cases.append((case.operation.label, case.body))

    collect()
    return cases


def digest() -> str:
    """What the operations depend on: the schema, this generator, the libraries that generate."""
    h = hashlib.sha256()
    h.update(SCHEMA.read_bytes())
    h.update(Path(__file__).read_bytes())
    for package in ("schemathesis", "hypothesis", "hypothesis-graphql", "graphql-core"):
        h.update(f"{package}=={metadata.version(package)}\n".encode())
    return h.hexdigest()[:24]


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _generate() -> list[tuple[str, str]]:
    shares = [COUNT // WORKERS + (1 if k < COUNT % WORKERS else 0) for k in range(WORKERS)]
    context = multiprocessing.get_context("spawn")  # never fork a process that has an event loop and pools
    with concurrent.futures.ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
        parts = list(pool.map(generate_part, range(WORKERS), [WORKERS] * WORKERS, shares))
    # Interleaved, so the two halves of the root fields alternate in the order they are sent.
    operations = [op for ops in zip(*parts, strict=False) for op in ops]
    operations += [op for ops in parts for op in ops[min(map(len, parts)):]]
    return operations


def _committed() -> list[tuple[str, str]] | None:
    if not COMMITTED.is_file():
        return None
    stored = json.loads(gzip.decompress(COMMITTED.read_bytes()))
    if stored["digest"] != digest():
        return None
    return [(label, document) for label, document in stored["operations"]]


def commit() -> Path:
    """Write the committed copy for the current schema and generator."""
    generated = operations()
    body = json.dumps({"digest": digest(), "operations": generated}, separators=(",", ":")).encode()
    COMMITTED.write_bytes(gzip.compress(body, mtime=0))
    return COMMITTED


def operations() -> list[tuple[str, str]]:
    """The operations: the committed copy when it is of this schema, else those kept in
    var/generated-operations/, generated first if they are not there."""
    committed = _committed()
    if committed is not None:
        return committed
    with _locked():
        path = CACHE / f"{digest()}.json"
        if path.is_file():
            return [(label, document) for label, document in json.loads(path.read_text())]
        generated = _generate()
        for old in CACHE.glob("*.json"):
            old.unlink()
        staging = CACHE / f".{path.name}.{os.getpid()}"
        staging.write_text(json.dumps(generated))
        os.replace(staging, path)
        return generated


def cached() -> bool:
    return _committed() is not None or (CACHE / f"{digest()}.json").is_file()


if __name__ == "__main__":
    import sys

    if "--commit" in sys.argv:
        print(f"{len(operations())} operations in {commit()}")
    else:
        print(f"{len(operations())} operations ({'committed' if _committed() is not None else CACHE / (digest() + '.json')})")
