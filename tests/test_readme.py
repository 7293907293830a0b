"""The README's GraphQL examples run as printed against the demo data, without errors.

Examples that need an ID from an earlier answer (written `<...>`) are skipped by design; the
rest must answer with no GraphQL error and no `UserError`.
"""

from __future__ import annotations

import re

from crm_graph.seed import seed_demo
from crm_graph.settings import PROJECT_ROOT

BLOCK = re.compile(r"```graphql\n(.*?)```", re.S)


def readme_examples() -> list[str]:
    blocks = BLOCK.findall((PROJECT_ROOT / "README.md").read_text())
    return [b for b in blocks if "<" not in b]


def payload_errors(data: object) -> list[object]:
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "errors" and isinstance(value, list):
                found.extend(value)
            else:
                found.extend(payload_errors(value))
    elif isinstance(data, list):
        for item in data:
            found.extend(payload_errors(item))
    return found


async def test_readme_examples_run_against_the_demo_data(settings, client):
    examples = readme_examples()
    assert len(examples) >= 10
    await seed_demo(settings, count=30)
    for example in examples:
        body = await client.post(example)
        assert "errors" not in body, (example, body["errors"])
        assert payload_errors(body["data"]) == [], (example, body["data"])
