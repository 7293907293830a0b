"""Every hook has a section in docs/plugin_hooks.md and a test here (``test_hook_<name>...``), and
the section shows the hook's signature as its spec declares it.

A section starts with a level-two heading that is the hook's signature: the name and the spec's
argument names in order, separated by ", ", and nothing else (``## crm_on_event(event, db)``,
``## crm_register_schema()``). Its text names every argument in backticks, and an example
implementation in it may take only arguments the hook offers (pluggy refuses others at start-up).

Adding a hook spec without documenting and testing it fails this file, and so does changing a
spec's arguments without its section, the way Datasette keeps its plugin hooks honest.
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
DOCS = PROJECT_ROOT / "docs" / "plugin_hooks.md"
HEADING = re.compile(r"^## (crm_\w+)\((.*)\)$")


def _test_names() -> set[str]:
    names = set()
    for path in Path(__file__).parent.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                names.add(node.name)
    return names


def spec_arguments(hook: str) -> list[str]:
    return list(inspect.signature(getattr(hookspecs, hook)).parameters)


def signature(hook: str, arguments: list[str]) -> str:
    return f"{hook}({', '.join(arguments)})"


def sections(text: str) -> list[tuple[str, str]]:
    """``(heading, body)`` of every level-two section whose heading starts with ``crm_``."""
    out: list[tuple[str, str]] = []
    for chunk in re.split(r"^(?=## )", text, flags=re.MULTILINE):
        heading, _, body = chunk.partition("\n")
        if heading.startswith("## crm_"):
            out.append((heading.rstrip(), body))
    return out


def _documented(text: str) -> set[str]:
    return {m.group(1) for heading, _ in sections(text) if (m := HEADING.match(heading))}


def section_problems(hook: str, text: str) -> list[str]:
    """What is wrong with the section of ``hook`` in ``text`` (a plugin_hooks.md); [] when nothing."""
    found = [(heading, body) for heading, body in sections(text) if (m := HEADING.match(heading)) and m.group(1) == hook]
    expected = signature(hook, spec_arguments(hook))
    if not found:
        return [f"docs/plugin_hooks.md needs a section '## {expected}'"]
    if len(found) > 1:
        return [f"docs/plugin_hooks.md has {len(found)} sections for {hook}; keep one"]
    heading, body = found[0]
    problems = []
    if heading != f"## {expected}":
        problems.append(
            f"{hook}: docs/plugin_hooks.md documents '{heading[3:]}', but its spec in crm_graph/hookspecs.py is "
            f"'{expected}' (the heading lists the spec's argument names, in order)"
        )
    missing = [name for name in spec_arguments(hook) if f"`{name}`" not in body]
    if missing:
        problems.append(f"{hook}: its section never names the argument(s) {', '.join(f'`{n}`' for n in missing)}")
    return problems


def example_problems(text: str) -> list[str]:
    """Hook implementations in the python examples of ``text`` that take an argument the hook
    does not offer, or examples that are not Python."""
    problems = []
    for block in re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        try:
            tree = ast.parse(block)
        except SyntaxError as exc:
            problems.append(f"an example is not valid Python ({exc.msg}, line {exc.lineno}): {block[:60]!r}")
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in HOOKS:
                taken = [a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs) if a.arg != "self"]
                unknown = [name for name in taken if name not in spec_arguments(node.name)]
                if unknown:
                    problems.append(
                        f"{node.name}: an example takes {', '.join(unknown)}, which the hook does not offer "
                        f"({signature(node.name, spec_arguments(node.name))})"
                    )
    return problems


def test_the_hooks_are_found():
    assert {"crm_on_event", "crm_validate", "crm_register_schema"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_with_its_signature_in_the_docs(hook):
    problems = section_problems(hook, DOCS.read_text())
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    tests = _test_names()
    assert any(name.startswith("test_hook_") and hook in name for name in tests), (
        f"add a test named test_hook_{hook}_... in tests/plugins/"
    )


def test_every_hook_heading_is_a_signature_of_an_existing_hook():
    text = DOCS.read_text()
    malformed = [heading for heading, _ in sections(text) if not HEADING.match(heading)]
    assert malformed == [], f"write these headings as '## crm_hook(argument, argument)': {malformed}"
    assert _documented(text) <= set(HOOKS), f"documented, but no such hook: {_documented(text) - set(HOOKS)}"


def test_the_examples_take_only_arguments_their_hook_offers():
    problems = example_problems(DOCS.read_text())
    assert problems == [], "\n".join(problems)


def test_a_section_whose_signature_differs_from_the_spec_is_named():
    # The same check on a page that is wrong in the ways a page drifts: arguments swapped, one
    # renamed, one left out of the text, an example asking for an argument that does not exist.
    page = (
        "## crm_on_event(db, event)\n\n`event`, `db`\n\n"
        "## crm_validate(entity, payload, actor, session)\n\n`entity`, `data`, `actor`, `session`\n\n"
        "## crm_startup(app)\n\nThe application.\n\n"
        "```python\n@hookimpl\ndef crm_shutdown(app, settings):\n    ...\n```\n"
    )
    assert section_problems("crm_on_event", page) == [
        "crm_on_event: docs/plugin_hooks.md documents 'crm_on_event(db, event)', but its spec in "
        "crm_graph/hookspecs.py is 'crm_on_event(event, db)' (the heading lists the spec's argument names, in order)"
    ]
    assert "'crm_validate(entity, data, actor, session)'" in section_problems("crm_validate", page)[0]
    assert section_problems("crm_startup", page) == ["crm_startup: its section never names the argument(s) `app`"]
    assert section_problems("crm_configure", page) == ["docs/plugin_hooks.md needs a section '## crm_configure(settings)'"]
    assert example_problems(page) == ["crm_shutdown: an example takes settings, which the hook does not offer (crm_shutdown(app))"]
