"""Enums in the schema with a description on every value.

The domains' enums are plain Python enums that the models store, so their members cannot be
``strawberry.enum_value(...)``. ``graphql_enum`` registers such an enum with the schema and gives
each value its text; an enum member without a text (say, one added later) fails at import, so
the API reference cannot fall behind the code.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

import strawberry

E = TypeVar("E", bound=type[enum.Enum])


def graphql_enum(cls: E, description: str, values: Mapping[str, str], *, name: str | None = None) -> E:
    """``strawberry.enum(cls, description=...)`` plus ``values``: member name -> its description."""
    members = [member.name for member in cls]  # type: ignore[attr-defined]
    if set(values) != set(members):
        missing = [m for m in members if m not in values]
        unknown = [v for v in values if v not in members]
        raise TypeError(f"{cls.__name__}: values to describe: missing {missing}, unknown {unknown}")
    strawberry.enum(cls, name=name, description=description)
    for value in cls.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = values[value.name]
    return cls


__all__ = ["graphql_enum"]
