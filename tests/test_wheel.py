"""An installed wheel, not only the checkout, migrates and serves.

The checkout's wheel (and the crm_audit plugin's, so plugin migrations are installed the same
way) goes into a fresh virtual environment outside the checkout; that environment's
``crm-graph db upgrade`` and ``crm-graph serve`` then run from a directory outside the checkout
with a data directory of their own, and answer a signed-in GraphQL request over HTTP, as they
would for someone who ran ``pip install``. On ``--db postgresql`` the server uses an empty
database of the run's PostgreSQL; on SQLite the default file in its data directory.

Cost: dependencies come from the package index as for any user (nothing is shared with
.venv). Two things keep the install to seconds (about 35 s down to 6-8 s here): the environment
is made without a pip of its own (the running pip installs into it with ``--python``, saving
the ensurepip bootstrap), and ``--no-compile`` skips compiling every module of every
dependency; the commands then compile and cache only what they import, as Python does by
default (this run's PYTHONDONTWRITEBYTECODE is not passed on).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from crm_graph.settings import PROJECT_ROOT
from crm_graph.testing.postgres import TemporaryPostgres, free_port

# What a source tree holds that a build must not see: local environments, build leftovers
# (setuptools reuses build/, so a stale file there would slip into the wheel) and data.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__", "*.pyc")
PLUGIN = Path("plugins") / "crm_audit"
CREATE = """mutation {
  createCustomer(input: {kind: PERSON, firstName: "Ada", lastName: "Lovelace", emails: [{address: "ada@example.com"}]}) {
    customer { id displayName }
    errors { field code message }
  }
}"""
LIST = "{ customers(first: 5) { totalCount edges { node { displayName primaryEmail } } } }"
HISTORY = "query ($id: ID!) { changeHistory(entityId: $id, first: 5) { totalCount edges { node { eventType } } } }"


class Steps:
    """Seconds each step took, shown with the test's output (figures, not assertions)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, name: str, args: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
        start = time.perf_counter()
        result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kwargs)
        self.seconds[name] = round(time.perf_counter() - start, 1)
        assert result.returncode == 0, f"{name} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        return result


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no setting of this test run, no path into the checkout."""
    dropped = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") and k not in dropped}
    return {**env, **extra}


@pytest.fixture
def database(postgres: TemporaryPostgres | None) -> Iterator[str | None]:
    """An empty database of the run's PostgreSQL (None on SQLite: the data directory's file)."""
    if postgres is None:
        yield None
        return
    import asyncio

    async def execute(statement: str) -> None:
        conn = await asyncpg.connect(postgres.dsn())
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(execute("CREATE DATABASE crm_wheel"))
    yield postgres.url("crm_wheel")
    asyncio.run(execute("DROP DATABASE crm_wheel WITH (FORCE)"))


def test_the_installed_wheel_migrates_and_serves(tmp_path: Path, database: str | None) -> None:
    steps = Steps()
    source, wheels, venv, elsewhere, data = (tmp_path / n for n in ("source", "wheels", "venv", "elsewhere", "data"))
    elsewhere.mkdir()
    shutil.copytree(PROJECT_ROOT, source, ignore=NOT_SOURCE)

    steps.run("build wheels", [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", wheels,
                               source, source / PLUGIN])
    (core,) = wheels.glob("crm_graph-*.whl")
    (plugin,) = wheels.glob("crm_graph_audit-*.whl")
    packaged = set(zipfile.ZipFile(core).namelist())
    revisions = {f"crm_graph/migrations/versions/{p.name}" for p in (PROJECT_ROOT / "crm_graph/migrations/versions").glob("*.py")}
    assert {"crm_graph/migrations/env.py", "crm_graph/migrations/script.py.mako"} | revisions <= packaged

    steps.run("create venv", [sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    steps.run("install", [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-compile",
                          core, plugin], cwd=elsewhere, env=_clean_env())

    # The environment runs its own copy: nothing of the checkout or .venv is on its path, and
    # outside a checkout the data directory defaults to the per-user one.
    probe = steps.run("probe", [python, "-c", (
        "import json, sys, crm_graph, crm_audit; from crm_graph.settings import Settings, source_checkout; "
        "print(json.dumps({'files': [crm_graph.__file__, crm_audit.__file__], 'path': sys.path, "
        "'checkout': str(source_checkout()), 'data_dir': str(Settings.from_env().data_dir)}))"
    )], cwd=elsewhere, env=_clean_env(XDG_DATA_HOME=str(tmp_path / "xdg")))
    seen = json.loads(probe.stdout)
    assert all(Path(f).is_relative_to(venv) for f in seen["files"])
    assert not [p for p in seen["path"] if p and Path(p).resolve().is_relative_to(PROJECT_ROOT)]
    assert (seen["checkout"], seen["data_dir"]) == ("None", str(tmp_path / "xdg" / "crm-graph"))

    env = _clean_env(CRM_DATA_DIR=str(data), **({"CRM_DATABASE_URL": database} if database else {}))
    crm_graph = venv / "bin" / "crm-graph"
    upgraded = steps.run("db upgrade", [crm_graph, "db", "upgrade"], cwd=elsewhere, env=env)
    assert "database upgraded to heads" in upgraded.stdout
    assert (data / "crm.sqlite3").is_file() == (database is None)

    port = free_port()
    log = tmp_path / "serve.log"
    start = time.perf_counter()
    with log.open("w") as out:
        server = subprocess.Popen([str(crm_graph), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                  cwd=elsewhere, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(server, f"{base}/readyz", log)
        steps.seconds["serve until ready"] = round(time.perf_counter() - start, 1)
        key = _printed_key(log)
        assert (data / "dev_admin_key").read_text().strip() == key and (data / "secret_key").is_file()

        with httpx.Client(base_url=base, timeout=30) as http:
            anonymous = http.post("/graphql", json={"query": LIST}).json()
            assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            http.headers["Authorization"] = f"Bearer {key}"
            created = _graphql(http, CREATE)["createCustomer"]
            assert created["errors"] == [] and created["customer"]["displayName"] == "Ada Lovelace"
            listed = _graphql(http, LIST)["customers"]
            assert listed["totalCount"] == 1
            assert listed["edges"][0]["node"] == {"displayName": "Ada Lovelace", "primaryEmail": "ada@example.com"}
            # The plugin's own table (its migrations came from its wheel) fills as events are delivered.
            history = _eventually(lambda: _graphql(http, HISTORY, {"id": created["customer"]["id"]})["changeHistory"])
            assert [e["node"]["eventType"] for e in history["edges"]] == ["customer.created"], log.read_text()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            pytest.fail(f"crm-graph serve did not stop on SIGINT:\n{log.read_text()}")
    assert server.returncode == 0, log.read_text()
    print(f"seconds per step: {steps.seconds}")


def _wait_ready(server: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"crm-graph serve exited with {server.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"crm-graph serve was not ready within 90 s:\n{log.read_text()}")


def _printed_key(log: Path) -> str:
    """The key `serve` prints on its own line after the "dev admin key" line, as a user copies it."""
    lines = log.read_text().splitlines()
    (at,) = [i for i, line in enumerate(lines) if line.startswith("dev admin key")]
    key = lines[at + 1].strip()
    assert key.startswith("crm_key_"), lines
    return key


def _graphql(http: httpx.Client, query: str, variables: dict[str, object] | None = None) -> dict[str, object]:
    response = http.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def _eventually(read: object, attempts: int = 300) -> dict[str, object]:
    """The first non-empty page ``read()`` returns, polling for up to ~60 s: delivery is asynchronous,
    and on a loaded machine a first attempt that fails is retried after the dispatcher's backoff."""
    for _ in range(attempts):
        page = read()  # type: ignore[operator]
        if page["edges"]:  # not totalCount: it is counted in a read of its own, maybe after delivery
            return page
        time.sleep(0.2)
    return page
