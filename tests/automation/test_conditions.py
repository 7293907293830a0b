"""Payload conditions of event triggers, as a flow's definition is checked and then matched."""

from __future__ import annotations

import pytest

from crm_graph.automation.definition import _check_conditions, event_matches
from crm_graph.core.errors import ErrorCollector

pytestmark = pytest.mark.one_pass


def checked(*conditions: dict) -> list[dict]:
    errors = ErrorCollector()
    out = _check_conditions(list(conditions), "trigger.conditions", errors)
    assert not errors.errors, errors.errors
    return out


def test_exists_without_a_value_means_the_path_is_there():
    spec = {"eventType": "order.paid", "conditions": checked({"path": "couponCode", "op": "EXISTS"})}
    assert event_matches(spec, "order.paid", {"couponCode": "WELCOME"}, None)
    assert not event_matches(spec, "order.paid", {"total": {"amount": "10"}}, None)
    absent = {"eventType": "order.paid", "conditions": checked({"path": "couponCode", "op": "EXISTS", "value": False})}
    assert event_matches(absent, "order.paid", {"total": {"amount": "10"}}, None)
    assert not event_matches(absent, "order.paid", {"couponCode": "WELCOME"}, None)


def test_a_stored_exists_condition_without_a_value_matches_the_same():
    stored = {"eventType": "order.paid", "conditions": [{"path": "couponCode", "op": "EXISTS", "value": None}]}
    assert event_matches(stored, "order.paid", {"couponCode": "WELCOME"}, None)
    assert not event_matches(stored, "order.paid", {}, None)


def test_exists_takes_only_true_or_false():
    errors = ErrorCollector()
    assert _check_conditions([{"path": "couponCode", "op": "EXISTS", "value": "yes"}], "trigger.conditions", errors) == []
    (error,) = errors.errors
    assert error.field == "trigger.conditions.0.value" and error.code == "INVALID_VALUE"
