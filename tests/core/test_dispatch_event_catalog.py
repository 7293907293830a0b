"""Every event type a service records is in the catalogue that webhook subscriptions are checked
against (and that docs/events.md documents)."""

from __future__ import annotations

import ast
import importlib

import pytest

from crm_graph.core.events import EVENT_TYPES, known_pattern, register_event_type
from crm_graph.settings import PROJECT_ROOT


def recorded_types() -> dict[str, str]:
    """type -> file, for every ``record_event(..., type="...")`` with a literal type."""
    found = {}
    for path in (PROJECT_ROOT / "crm_graph").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "record_event":
                for keyword in node.keywords:
                    if keyword.arg == "type" and isinstance(keyword.value, ast.Constant):
                        found[keyword.value.value] = str(path.relative_to(PROJECT_ROOT))
    return found


def test_the_services_record_events():
    assert {"customer.created", "activity.created"} <= set(recorded_types())


def test_every_recorded_event_type_is_in_the_catalogue():
    # Domains that register event types of their own do it in their events module.
    for path in (PROJECT_ROOT / "crm_graph").glob("*/events.py"):
        importlib.import_module(f"crm_graph.{path.parent.name}.events")
    missing = {t: f for t, f in recorded_types().items() if t not in EVENT_TYPES}
    assert not missing, f"add these to EVENT_TYPES in crm_graph/core/events.py and docs/events.md: {missing}"


def test_every_catalogued_type_is_documented():
    text = (PROJECT_ROOT / "docs" / "events.md").read_text()
    undocumented = sorted(t for t in EVENT_TYPES if f"`{t}`" not in text)
    assert not undocumented, f"docs/events.md does not list {undocumented}"


def test_patterns_match_whole_families_or_single_types():
    assert known_pattern("*") and known_pattern("ticket.*") and known_pattern("order.paid")
    assert not known_pattern("tickets.*") and not known_pattern("order.shipped") and not known_pattern("*.created")


def test_plugins_can_add_event_types():
    register_event_type("crm_test_invoice.synced", "An invoice reached the finance system.")
    try:
        assert known_pattern("crm_test_invoice.*")
    finally:
        EVENT_TYPES.pop("crm_test_invoice.synced")
    with pytest.raises(ValueError):
        register_event_type("Invoice Synced", "no")
