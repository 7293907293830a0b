"""schema.graphql is the public contract: it must equal what the code exports."""

from __future__ import annotations

import subprocess
import sys

from crm_graph.settings import PROJECT_ROOT


def test_committed_schema_matches_export():
    exported = subprocess.run(
        [sys.executable, "-m", "crm_graph.cli", "export-schema"], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT
    ).stdout
    committed = (PROJECT_ROOT / "schema.graphql").read_text()
    assert exported == committed, "schema.graphql is stale: run `make schema` and commit it"
