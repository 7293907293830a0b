"""Small helpers shared by the support services: enum and text parsing, version checks."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, TypeVar

from crm_graph.core import errors as codes
from crm_graph.core.errors import ErrorCollector, VersionConflict
from crm_graph.customers import validation as v

E = TypeVar("E", bound=enum.Enum)

InvalidValue = v.InvalidValue


def enum_value(enum_type: type[E], value: Any) -> E:
    """An enum member from a member or its name; ``InvalidValue`` otherwise."""
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str) and value in enum_type.__members__:
        return enum_type[value]
    raise InvalidValue(f"{value!r} is not one of {', '.join(enum_type.__members__)}.")


def enum_names(enum_type: type[enum.Enum], values: Any, field: str, errors: ErrorCollector) -> list[str]:
    """A de-duplicated list of member names, in the enum's own order."""
    if values is None:
        return []
    if not isinstance(values, list):
        errors.add(field, codes.INVALID_VALUE, "Expected a list.")
        return []
    names: set[str] = set()
    for i, value in enumerate(values):
        try:
            names.add(enum_value(enum_type, value).name)
        except InvalidValue as exc:
            errors.add(f"{field}.{i}", codes.INVALID_VALUE, str(exc))
    return [name for name in enum_type.__members__ if name in names]


def text(data: Mapping[str, Any], key: str, limit: int, errors: ErrorCollector, *, required: bool = False) -> str | None:
    try:
        return v.text(data.get(key), limit, required=required)
    except InvalidValue as exc:
        missing = data.get(key) is None or (isinstance(data.get(key), str) and not data[key].strip())
        errors.add(key, codes.REQUIRED if required and missing else codes.INVALID_VALUE, str(exc))
        return None


def check_version(expected: int | None, actual: int) -> None:
    if expected is not None and expected != actual:
        raise VersionConflict(expected, actual)
