"""Every hook has a section in docs/plugin_hooks.md and a test here (``test_hook_<name>...``).

Adding a hook spec without documenting and testing it fails this file, the way Datasette keeps
its plugin hooks honest.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from crm_graph import hookspecs
from crm_graph.settings import PROJECT_ROOT

HOOKS = sorted(
    name
    for name, obj in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(obj, "crm_graph_spec")
)


def _test_names() -> set[str]:
    names = set()
    for path in Path(__file__).parent.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                names.add(node.name)
    return names


def _documented() -> set[str]:
    text = (PROJECT_ROOT / "docs" / "plugin_hooks.md").read_text()
    return set(re.findall(r"^## (crm_\w+)\(", text, flags=re.MULTILINE))


def test_the_hooks_are_found():
    assert {"crm_on_event", "crm_validate", "crm_register_schema"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_in_the_docs(hook):
    assert hook in _documented(), f"docs/plugin_hooks.md needs a section '## {hook}(...)'"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    tests = _test_names()
    assert any(name.startswith("test_hook_") and hook in name for name in tests), (
        f"add a test named test_hook_{hook}_... in tests/plugins/"
    )


def test_the_docs_describe_no_hook_that_does_not_exist():
    assert _documented() <= set(HOOKS)
