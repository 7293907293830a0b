"""The generated operations of test_generated_operations.py take a minute of CPU to generate the
first time (tests/graphql/generated_operations.py): when that test is in the run and they are
not generated yet, they are generated in the background from the start, beside the tests that
run before it, so that test finds them ready (or waits for the rest). Not at a lower priority:
on a machine busy with other work a niced generator would hardly advance, and the test would
wait for it all the longer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from crm_graph.settings import PROJECT_ROOT

_background: list[subprocess.Popen[bytes]] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    if not any(item.path.name == "test_generated_operations.py" for item in session.items):
        return
    from tests.graphql import generated_operations

    if generated_operations.cached():
        return
    generated_operations.CACHE.mkdir(parents=True, exist_ok=True)
    with open(generated_operations.CACHE / "background.log", "wb") as log:
        _background.append(subprocess.Popen(
            [sys.executable, "-m", "tests.graphql.generated_operations"],
            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        ))


def pytest_sessionfinish(session: pytest.Session) -> None:
    for process in _background:  # a run that ended before the test: the half-done work is dropped
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)
