"""The filter language, compiled to SQL.

A filter is a plain mapping shaped like the GraphQL input (camelCase keys, enum values by
name), e.g. ``{"or": [{"displayName": {"contains": "acme"}}, {"tags": {"containsAny": ["vip"]}}]}``.
Keeping it plain data lets dynamic segments store a filter as JSON and compile it later.

Each list declares a ``FilterSpec``: field name -> handler. A handler receives the operator
mapping and the field's path and returns a SQL expression. ``and``, ``or`` and ``not`` are
handled here for every list.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

Handler = Callable[[Mapping[str, Any], str], sa.ColumnElement[bool]]
FilterSpec = Mapping[str, Handler]

MAX_DEPTH = 10
MAX_IN_VALUES = 1000


class FilterError(ValueError):
    """A filter that cannot be compiled; ``path`` is the camelCase path of the offending part."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}")


def compile_filter(spec: FilterSpec, data: Mapping[str, Any] | None, path: str = "filter") -> sa.ColumnElement[bool]:
    return _compile(spec, data or {}, path, 0)


def _compile(spec: FilterSpec, data: Mapping[str, Any], path: str, depth: int) -> sa.ColumnElement[bool]:
    if depth > MAX_DEPTH:
        raise FilterError(path, f"filters nest at most {MAX_DEPTH} levels deep")
    if not isinstance(data, Mapping):
        raise FilterError(path, "expected an object")
    clauses: list[sa.ColumnElement[bool]] = []
    for key, value in data.items():
        if value is None:
            continue
        here = f"{path}.{key}"
        if key == "and":
            clauses.append(sa.and_(sa.true(), *(_compile(spec, v, f"{here}.{i}", depth + 1) for i, v in enumerate(as_list(value, here)))))
        elif key == "or":
            parts = [_compile(spec, v, f"{here}.{i}", depth + 1) for i, v in enumerate(as_list(value, here))]
            clauses.append(sa.or_(sa.false(), *parts))
        elif key == "not":
            # SQL's NOT keeps NULL as NULL: `NOT (country = 'DE')` would drop customers with no
            # country. Treating "unknown" as false first makes `not` the plain complement.
            inner = _compile(spec, value, here, depth + 1)
            clauses.append(sa.not_(sa.func.coalesce(inner, sa.false())))
        elif key in spec:
            clauses.append(spec[key](value, here))
        else:
            raise FilterError(here, "unknown filter field")
    return sa.and_(sa.true(), *clauses)


def as_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise FilterError(path, "expected a list")
    return value


def check_in(values: Any, path: str) -> list[Any]:
    values = as_list(values, path)
    if len(values) > MAX_IN_VALUES:
        raise FilterError(path, f"at most {MAX_IN_VALUES} values")
    return values


def operators(ops: Mapping[str, Any], path: str, allowed: Iterable[str]) -> dict[str, Any]:
    if not isinstance(ops, Mapping):
        raise FilterError(path, "expected an object of operators")
    allowed = set(allowed)
    present = {k: v for k, v in ops.items() if v is not None}
    for key in present:
        if key not in allowed:
            raise FilterError(f"{path}.{key}", f"unknown operator (use one of {', '.join(sorted(allowed))})")
    return present


def aware_datetime(value: Any) -> datetime:
    """A timestamp from a filter: a datetime, or an ISO 8601 string from a stored filter."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamps need a time zone (e.g. 2026-01-31T00:00:00Z)")
    return parsed


def iso_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# Longest text a `contains`, `startsWith` or `search` looks for: longer is refused before it
# reaches SQL (no name or email is that long, and SQLite refuses LIKE patterns past 50,000 bytes).
MAX_SEARCH_LENGTH = 200


def search_text(value: str, path: str) -> str:
    """``value`` as a text to search for; ``FilterError`` when it is longer than anything stored."""
    if len(value) > MAX_SEARCH_LENGTH:
        raise FilterError(path, f"at most {MAX_SEARCH_LENGTH} characters")
    return value


# --- case-insensitive comparison of text: Unicode case folding, the same on both databases ----------

def fold_text(value: str | None) -> str | None:
    """NFKC, then Unicode case folding, then NFKC again (folding can leave decomposed letters):
    ``MÜLLER``, ``Müller`` and ``ＭＵＬＬＥＲ`` with accents alike fold to ``müller``, ``STRASSE``
    and ``Straße`` to ``strasse``. SQLite calls it as ``crm_fold`` (``crm_graph.db.session``)."""
    if value is None:
        return None
    if value.isascii():
        return value.lower()
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())


class folded(sa.sql.functions.FunctionElement[str]):  # noqa: N801  (used like a SQL function)
    """``fold_text`` of a text column, in SQL. SQLite: the ``crm_fold`` function registered on
    every connection. PostgreSQL: ``lower(upper(...))`` under the ICU root collation, which folds
    by Unicode whatever the cluster's LC_CTYPE (a cluster made with the C locale lowers only
    ASCII), with NFKC before and after (``ß`` -> ``SS`` -> ``ss`` as case folding does)."""

    type = sa.Text()
    name = "crm_fold"
    inherit_cache = True


@compiles(folded)
def _folded_default(element: folded, compiler: Any, **kw: Any) -> str:
    return f"crm_fold({compiler.process(element.clauses, **kw)})"


@compiles(folded, "postgresql")
def _folded_postgresql(element: folded, compiler: Any, **kw: Any) -> str:
    inner = compiler.process(element.clauses, **kw)
    return f'normalize(lower(upper(normalize({inner}, NFKC) COLLATE "und-x-icu")), NFKC)'


STRING_OPS = ("eq", "neq", "in", "contains", "startsWith", "isNull")
COMPARABLE_OPS = ("eq", "neq", "in", "gt", "gte", "lt", "lte", "isNull")
ENUM_OPS = ("eq", "neq", "in", "isNull")


def string_condition(column: sa.ColumnElement[Any], ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    """eq/neq/in are exact; contains and startsWith ignore case by Unicode case folding."""
    clauses = []
    for op, value in operators(ops, path, STRING_OPS).items():
        if op == "isNull":
            clauses.append(column.is_(None) if value else column.is_not(None))
        elif op == "in":
            clauses.append(column.in_(check_in(value, f"{path}.in")))
        elif not isinstance(value, str):
            raise FilterError(f"{path}.{op}", "expected a string")
        elif op == "eq":
            clauses.append(column == value)
        elif op == "neq":
            clauses.append(sa.or_(column != value, column.is_(None)))
        elif op == "contains":
            value = search_text(value, f"{path}.{op}")
            clauses.append(folded(column).like(f"%{escape_like(fold_text(value) or '')}%", escape="\\"))
        elif op == "startsWith":
            value = search_text(value, f"{path}.{op}")
            clauses.append(folded(column).like(f"{escape_like(fold_text(value) or '')}%", escape="\\"))
    return sa.and_(sa.true(), *clauses)


def comparable_condition(
    column: sa.ColumnElement[Any],
    ops: Mapping[str, Any],
    path: str,
    parse: Callable[[Any], Any] = lambda v: v,
    allowed: Iterable[str] = COMPARABLE_OPS,
) -> sa.ColumnElement[bool]:
    """Numbers, dates and timestamps. ``parse`` converts a JSON value (e.g. an ISO string)."""
    clauses = []
    for op, value in operators(ops, path, allowed).items():
        if op == "isNull":
            clauses.append(column.is_(None) if value else column.is_not(None))
            continue
        try:
            parsed = [parse(v) for v in check_in(value, f"{path}.in")] if op == "in" else parse(value)
        except (TypeError, ValueError, ArithmeticError) as exc:
            # A parser's own words when it gave some ("timestamps need a time zone"), not the
            # Python repr of the value the GraphQL layer already converted.
            said = str(exc) if type(exc) is ValueError and str(exc) else f"invalid value {value!r}"
            raise FilterError(f"{path}.{op}", said) from exc
        if op == "in":
            clauses.append(column.in_(parsed))
        elif op == "neq":
            clauses.append(sa.or_(column != parsed, column.is_(None)))
        else:
            operator = {"eq": "__eq__", "gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}[op]
            clauses.append(getattr(column, operator)(parsed))
    return sa.and_(sa.true(), *clauses)


def enum_condition(
    column: sa.ColumnElement[Any], ops: Mapping[str, Any], path: str, choices: Iterable[str]
) -> sa.ColumnElement[bool]:
    choices = set(choices)

    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError(value)
        return value

    return comparable_condition(column, ops, path, parse, allowed=ENUM_OPS)


def column_string(column: sa.ColumnElement[Any]) -> Handler:
    return lambda ops, path: string_condition(column, ops, path)


def column_comparable(column: sa.ColumnElement[Any], parse: Callable[[Any], Any] = lambda v: v) -> Handler:
    return lambda ops, path: comparable_condition(column, ops, path, parse)


def column_enum(column: sa.ColumnElement[Any], choices: Iterable[str]) -> Handler:
    names = tuple(choices)
    return lambda ops, path: enum_condition(column, ops, path, names)


def related_string(
    exists: Callable[[sa.ColumnElement[bool]], sa.ColumnElement[bool]], column: sa.ColumnElement[Any]
) -> Handler:
    """A string filter over a to-many relation: true when *any* related row matches.

    ``neq`` means no related row equals the value; ``isNull: true`` means there are none.
    ``exists(cond)`` must return ``EXISTS (related rows of this parent WHERE cond)``.
    """

    def handler(ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
        clauses = []
        for op, value in operators(ops, path, STRING_OPS).items():
            if op == "isNull":
                clauses.append(sa.not_(exists(sa.true())) if value else exists(sa.true()))
            elif op == "neq":
                clauses.append(sa.not_(exists(string_condition(column, {"eq": value}, path))))
            else:
                clauses.append(exists(string_condition(column, {op: value}, path)))
        return sa.and_(sa.true(), *clauses)

    return handler


# --- helpers for conditions that look beyond the entity's row (crm_register_filters) ------------------

MAX_WINDOW_DAYS = 36600


def whole_number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected a whole number")
    return value


def decimal_number(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise ValueError("expected a decimal number")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError("expected a decimal number") from None


def window_start(ops: Mapping[str, Any], path: str, now: datetime) -> datetime | None:
    """``windowDays`` of a condition: the start of the last N days before ``now``, or None."""
    days = ops.get("windowDays")
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_WINDOW_DAYS:
        raise FilterError(f"{path}.windowDays", f"windowDays is a whole number of days from 1 to {MAX_WINDOW_DAYS}")
    return now - timedelta(days=days)


def mentions(data: Any, keys: set[str]) -> bool:
    """Whether a filter document uses any of ``keys`` as a field, at any depth."""
    if isinstance(data, Mapping):
        return any(k in keys for k in data) or any(mentions(v, keys) for v in data.values())
    if isinstance(data, list):
        return any(mentions(v, keys) for v in data)
    return False
