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


def test_committed_api_reference_matches_the_schema_and_the_guide():
    from crm_graph.graphql import reference

    committed = (PROJECT_ROOT / "docs" / "api.md").read_text()
    assert committed == reference.current(), "docs/api.md is stale: edit docs/api-guide.md, run `make schema`, commit both"
    assert "#### CustomerKind" in committed and "- `PERSON`: " in committed  # the reference part is there
