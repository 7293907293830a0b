"""The GraphQL modules form no import cycle: every import counts, the ones inside functions too
(a cycle held together by function-level imports is still a cycle; it only fails later).

Domains reach each other's types through the registries (``crm_register_type_extensions``,
``crm_register_filters``), so a domain's schema may import the schemas it builds on (sales
imports customers) but never the other way round.
"""

from __future__ import annotations

import ast
from pathlib import Path

import crm_graph

PACKAGE = Path(crm_graph.__file__).parent


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The crm_graph modules ``name`` imports, anywhere in its body. ``from pkg import sub`` of a
    submodule counts as importing the submodule (a package's own ``__init__`` is not a cycle)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            subs = [f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in known]
            found.update(subs)
            if len(subs) < len(node.names):
                found.add(module)
    out = set()
    for target in found:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)
    return out


def is_graphql_module(name: str) -> bool:
    return (
        name.startswith("crm_graph.graphql")
        or ".schema" in name
        or name.endswith(("customer_fields", "filter_inputs", ".plugin"))
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def graphql_graph() -> dict[str, set[str]]:
    known = modules()
    selected = {n for n in known if is_graphql_module(n)}
    return {n: imports(n, known[n], known) & selected for n in selected}


def test_the_graphql_modules_form_no_import_cycle():
    graph = graphql_graph()
    assert len(graph) > 40  # the schema modules of every domain, the graphql package, the plugins
    assert cycles(graph) == []


def test_the_customer_schema_imports_no_other_domain_schema():
    graph = graphql_graph()
    others = {"sales", "support", "segments", "activities"}
    assert not {m for m in graph["crm_graph.customers.schema"] if m.split(".")[1] in others}


def test_the_cycle_finder_finds_a_cycle_held_by_a_function_level_import(tmp_path):
    # the shape of the old customer schema: a top-level import one way, a lazy one back
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from a import x\n")
    known = {"a": tmp_path / "a.py", "b": tmp_path / "b.py"}
    graph = {n: imports(n, p, known) for n, p in known.items()}
    assert cycles(graph) == [["a", "b"]]
