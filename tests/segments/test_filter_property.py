"""Property: a filter selects in SQL exactly the customers the same predicate selects in Python.

Hypothesis draws filters (nested and/or/not over text, enums, tags, age and order behaviour);
each is compiled to SQL by the service that dynamic segments use, and compared with a plain
Python evaluation over the same rows.
"""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_graph.core.clock import frozen_clock
from crm_graph.customers import service as customers
from tests.segments.factories import NOW, TODAY, customer, days_ago, order

COUNTRIES = ["DE", "FR", "US", "JP"]
TAGS = ["vip", "eco", "b2b", "beta"]
STAGES = ["LEAD", "STABILITY", "DECLINE"]
LETTERS = "abcAB%_"


async def _population(db) -> list[dict[str, Any]]:
    rng = random.Random(5)
    people = []
    async with db.writer() as session, session.begin():
        with frozen_clock(NOW):
            for i in range(36):
                person: dict[str, Any] = {
                    "kind": rng.choice(["PERSON", "ORGANIZATION"]),
                    "name": "".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 4))) + str(i),
                    "country": rng.choice(COUNTRIES + [None]),
                    "tags": sorted(set(rng.sample(TAGS, rng.randint(0, 3)))),
                    "stage": rng.choice(STAGES),
                    "birthday": date(rng.randint(1950, 2010), rng.randint(1, 12), rng.randint(1, 28)) if rng.random() < 0.7 else None,
                    "orders": [(Decimal(rng.randint(1, 500)), rng.randint(0, 700)) for _ in range(rng.choice([0, 0, 1, 2, 4]))],
                }
                data = {"kind": person["kind"], "tags": person["tags"], "lifecycleStage": person["stage"],
                        "country": person["country"]}
                if person["kind"] == "PERSON":
                    data.update(lastName=person["name"], birthday=person["birthday"])
                else:
                    data["organizationName"] = person["name"]
                    person["birthday"] = None
                person["id"] = await customer(session, **data)
                for total, days in person["orders"]:
                    order(session, person["id"], total, days_ago(days))
                people.append(person)
    return people


def _age(birthday: date | None) -> int | None:
    if birthday is None:
        return None
    return TODAY.year - birthday.year - ((TODAY.month, TODAY.day) < (birthday.month, birthday.day))


def _text(value: str | None, ops: dict[str, Any]) -> bool:
    (op, arg), = ops.items()
    if op == "isNull":
        return (value is None) == arg
    if op == "neq":
        return value is None or value != arg
    if value is None:
        return False
    if op == "eq":
        return value == arg
    if op == "in":
        return value in arg
    if op == "contains":
        return arg.lower() in value.lower()
    return value.lower().startswith(arg.lower())


def _number(value: Any, ops: dict[str, Any]) -> bool:
    (op, arg), = ops.items()
    if op == "isNull":
        return (value is None) == arg
    if op == "neq":
        return value is None or value != arg
    if value is None:
        return False
    return {"eq": value == arg, "gt": value > arg, "gte": value >= arg, "lt": value < arg, "lte": value <= arg}[op]  # all cheap


def matches(p: dict[str, Any], f: dict[str, Any]) -> bool:
    result = True
    for key, ops in f.items():
        if key == "and":
            ok = all(matches(p, g) for g in ops)
        elif key == "or":
            ok = any(matches(p, g) for g in ops)
        elif key == "not":
            ok = not matches(p, ops)
        elif key == "displayName":
            ok = _text(p["name"], ops)
        elif key == "country":
            ok = _text(p["country"], ops)
        elif key == "kind":
            ok = _text(p["kind"], ops)
        elif key == "lifecycleStage":
            ok = _text(p["stage"], ops)
        elif key == "tags":
            (op, arg), = ops.items()
            have = set(p["tags"])
            ok = {"containsAny": lambda: bool(have & set(arg)), "containsAll": lambda: set(arg) <= have,
                  "isEmpty": lambda: (not have) == arg}[op]()
        elif key == "age":
            ok = _number(_age(p["birthday"]), ops)
        elif key == "orders":
            window = ops.get("windowDays")
            counted = [t for t, days in p["orders"] if window is None or days < window]
            ok = all(_number(len(counted) if name == "count" else sum(counted, Decimal(0)), cond)
                     for name, cond in ops.items() if name != "windowDays")
        else:
            raise AssertionError(key)
        result = result and ok
    return result


text_ops = st.one_of(
    st.builds(lambda v: {"eq": v}, st.text(LETTERS, min_size=1, max_size=2)),
    st.builds(lambda v: {"contains": v}, st.text(LETTERS, min_size=1, max_size=2)),
    st.builds(lambda v: {"startsWith": v}, st.text(LETTERS, min_size=1, max_size=2)),
)
country_ops = st.one_of(
    st.builds(lambda v: {"eq": v}, st.sampled_from(COUNTRIES)),
    st.builds(lambda v: {"neq": v}, st.sampled_from(COUNTRIES)),
    st.builds(lambda v: {"in": v}, st.lists(st.sampled_from(COUNTRIES), max_size=3)),
    st.builds(lambda v: {"isNull": v}, st.booleans()),
)
leaf = st.one_of(
    st.builds(lambda o: {"displayName": o}, text_ops),
    st.builds(lambda o: {"country": o}, country_ops),
    st.builds(lambda v: {"kind": {"eq": v}}, st.sampled_from(["PERSON", "ORGANIZATION"])),
    st.builds(lambda v: {"lifecycleStage": {"in": v}}, st.lists(st.sampled_from(STAGES), min_size=1, max_size=2)),
    st.builds(lambda op, v: {"tags": {op: v}}, st.sampled_from(["containsAny", "containsAll"]),
              st.lists(st.sampled_from(TAGS), min_size=1, max_size=3, unique=True)),
    st.builds(lambda v: {"tags": {"isEmpty": v}}, st.booleans()),
    st.builds(lambda op, v: {"age": {op: v}}, st.sampled_from(["eq", "gt", "gte", "lt", "lte", "neq"]), st.integers(10, 80)),
    st.builds(lambda v: {"age": {"isNull": v}}, st.booleans()),
    st.builds(lambda op, v, w: {"orders": {"count": {op: v}, **({"windowDays": w} if w else {})}},
              st.sampled_from(["eq", "gte", "lt"]), st.integers(0, 4), st.sampled_from([None, 30, 365])),
    st.builds(lambda op, v: {"orders": {"totalSpent": {op: Decimal(v)}}}, st.sampled_from(["gt", "lte"]), st.integers(0, 900)),
)
filters = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda xs: {"and": xs}, st.lists(inner, max_size=3)),
        st.builds(lambda xs: {"or": xs}, st.lists(inner, max_size=3)),
        st.builds(lambda x: {"not": x}, inner),
        st.builds(lambda a, b: {**a, **b}, inner, inner),
    ),
    max_leaves=6,
)

_population_cache: dict[str, list[dict[str, Any]]] = {}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filter=filters)
async def test_sql_membership_equals_python_predicate(db, database_url, filter):
    if database_url not in _population_cache:
        _population_cache[database_url] = await _population(db)
    people = _population_cache[database_url]
    with frozen_clock(NOW):
        async with db.reader() as session:
            stmt = await customers.customer_select(session, filter=filter)
            found = set((await session.scalars(stmt.with_only_columns(customers.read.Customer.id))).all())
    expected = {p["id"] for p in people if matches(p, filter)}
    assert found == expected, filter
