"""Shared GraphQL inputs: the filter operators every list uses, ordering, and input conversion."""

from __future__ import annotations

import dataclasses
import enum
from datetime import date, datetime
from decimal import Decimal, DecimalException, InvalidOperation
from collections.abc import Iterator, Mapping
from typing import Any

import strawberry
from graphql import GraphQLError, StringValueNode, Visitor, visit
from strawberry.types.unset import UNSET
from strawberry.utils.str_converters import to_camel_case

from crm_graph.core import text as core_text


@strawberry.enum(description="Sort direction.")
class OrderDirection(enum.Enum):
    ASC = strawberry.enum_value("ASC", description="Ascending: smallest, earliest or alphabetically first at the top.")
    DESC = strawberry.enum_value("DESC", description="Descending: largest, latest or alphabetically last at the top.")


# The operators every filter input shares. All the conditions given in one input must hold.
_EQ = "Equal to this value."
_NEQ = "Not equal to this value; rows without a value match too."
_IN = "Equal to one of these values (at most 1,000)."
_GT, _GTE, _LT, _LTE = "Greater than this.", "This or greater.", "Less than this.", "This or less."
_IS_NULL = "true: only rows without a value; false: only rows with one."


def _op(description: str, **kwargs: Any) -> Any:
    return strawberry.field(default=None, description=description, **kwargs)


@strawberry.input(description="Conditions on a text field. `contains` and `startsWith` ignore case; `eq`, `neq` and `in` are exact.")
class StringFilter:
    eq: str | None = _op(_EQ + " Exact, case included.")
    neq: str | None = _op(_NEQ)
    in_: list[str] | None = _op(_IN, name="in")
    contains: str | None = _op("Contains this text anywhere, ignoring case (at most 200 characters).")
    starts_with: str | None = _op("Starts with this text, ignoring case (at most 200 characters).")
    is_null: bool | None = _op(_IS_NULL)


@strawberry.input(description="Conditions on a timestamp (ISO 8601; compared in UTC).")
class DateTimeFilter:
    eq: datetime | None = _op("At exactly this instant. A timestamp needs its time zone or offset.")
    gt: datetime | None = _op("After this instant.")
    gte: datetime | None = _op("At or after this instant.")
    lt: datetime | None = _op("Before this instant.")
    lte: datetime | None = _op("At or before this instant.")
    is_null: bool | None = _op(_IS_NULL)


@strawberry.input(description="Conditions on a calendar date.")
class DateFilter:
    eq: date | None = _op("On this day (`YYYY-MM-DD`).")
    gt: date | None = _op("After this day.")
    gte: date | None = _op("On or after this day.")
    lt: date | None = _op("Before this day.")
    lte: date | None = _op("On or before this day.")
    is_null: bool | None = _op(_IS_NULL)


@strawberry.input(description="Conditions on a number.")
class DecimalFilter:
    eq: Decimal | None = _op(_EQ + " Send numbers as strings (`\"19.99\"`).")
    neq: Decimal | None = _op(_NEQ)
    gt: Decimal | None = _op(_GT)
    gte: Decimal | None = _op(_GTE)
    lt: Decimal | None = _op(_LT)
    lte: Decimal | None = _op(_LTE)
    is_null: bool | None = _op(_IS_NULL)


@strawberry.input(description="Conditions on a whole number.")
class IntFilter:
    eq: int | None = _op(_EQ)
    neq: int | None = _op(_NEQ)
    in_: list[int] | None = _op(_IN, name="in")
    gt: int | None = _op(_GT)
    gte: int | None = _op(_GTE)
    lt: int | None = _op(_LT)
    lte: int | None = _op(_LTE)
    is_null: bool | None = _op(_IS_NULL)


@strawberry.input(description="Conditions on a list of tags. Tags compare without regard to case.")
class TagsFilter:
    contains_any: list[str] | None = strawberry.field(default=None, description="At least one of these tags.")
    contains_all: list[str] | None = strawberry.field(default=None, description="Every one of these tags.")
    is_empty: bool | None = strawberry.field(default=None, description="true: no tags at all; false: at least one.")


def to_plain(value: Any, *, keep_null: bool = False) -> Any:
    """Turn a Strawberry input (recursively) into the plain mapping the services understand.

    Keys become their GraphQL (camelCase) names and enums their names. Unset fields vanish; null
    fields vanish too unless ``keep_null`` (updates, where null means "clear").
    Dates and numbers stay Python objects; ``json_ready`` makes a stored copy.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        definition = getattr(type(value), "__strawberry_definition__", None)
        names = {f.python_name: f.graphql_name or to_camel_case(f.python_name) for f in definition.fields} if definition else {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is UNSET or (item is None and not keep_null):
                continue
            out[names.get(f.name, to_camel_case(f.name))] = to_plain(item)
        return out
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.name
    return value


def enum_filter(enum_type: type[enum.Enum], name: str) -> type:
    """An input ``<name> { eq neq in isNull }`` over one enum, e.g. ``CustomerKindFilter``."""
    annotations = {
        "eq": enum_type | None,
        "neq": enum_type | None,
        "in_": list[enum_type] | None,  # type: ignore[valid-type]
        "is_null": bool | None,
    }
    namespace: dict[str, Any] = {
        "__annotations__": annotations,
        "eq": _op(_EQ),
        "neq": _op(_NEQ),
        "in_": _op(_IN, name="in"),
        "is_null": _op(_IS_NULL),
    }
    cls = type(name, (), namespace)
    return strawberry.input(cls, description=f"Conditions on a value of {enum_type.__name__}.")


def order_input(field_enum: type[enum.Enum], name: str) -> type:
    """An ordering input ``<name> { field: <field_enum>!, direction: OrderDirection = ASC }``."""
    namespace: dict[str, Any] = {
        "__annotations__": {"field": field_enum, "direction": OrderDirection},
        "field": strawberry.field(description="What to sort by."),
        "direction": strawberry.field(default=OrderDirection.ASC, description="ASC (the default) or DESC."),
    }
    description = "One sort key. List several for ties; the ID breaks the last tie, in the last key's direction."
    return strawberry.input(type(name, (), namespace), description=description)


# --- text in a request ------------------------------------------------------------------------


def control_character_errors(document: Any, variables: Mapping[str, Any] | None) -> list[GraphQLError]:
    """A request error for the first control character (``crm_graph.core.text``) in a string
    literal of ``document`` or in a value of ``variables``: refused before anything runs, so no
    domain can store one (PostgreSQL cannot even hold U+0000) and no SQL ever sees one."""
    for node in _string_literals(document) if document is not None else ():
        char = core_text.control_character(node.value)
        if char is not None:
            return [_control_error(f"A string in the document contains the control character {core_text.describe(char)}", node)]
    for name, value in (variables or {}).items():
        found = _control_in_value(value, f"${name}")
        if found is not None:
            where, char = found
            return [_control_error(f"{where} contains the control character {core_text.describe(char)}", None)]
    return []


def _control_error(what: str, node: Any) -> GraphQLError:
    return GraphQLError(f"{what}; text may hold tabs and line breaks, no other control characters.",
                        nodes=node, extensions={"code": "INVALID_TEXT"})


def _string_literals(document: Any) -> Iterator[StringValueNode]:
    found: list[StringValueNode] = []

    class Strings(Visitor):
        def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
            found.append(node)

    visit(document, Strings())
    return iter(found)


def _control_in_value(value: Any, where: str) -> tuple[str, str] | None:
    """(path, character) of the first control character in a JSON value, depth first."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            char = core_text.control_character(item)
            if char is not None:
                return path, char
        elif isinstance(item, Mapping):
            for key, inner in item.items():
                if isinstance(key, str) and (char := core_text.control_character(key)) is not None:
                    return f"{path} (a key)", char
                stack.append((inner, f"{path}.{key}"))
        elif isinstance(item, list):
            stack.extend((inner, f"{path}.{i}") for i, inner in enumerate(item))
    return None


# --- numbers --------------------------------------------------------------------------------


def _finite_decimal(text: str) -> Decimal:
    number = Decimal(text)
    if not number.is_finite():
        raise InvalidOperation("NaN and infinities are no amounts")
    return number


def finite_decimal_scalar() -> Any:
    """The ``Decimal`` scalar as Strawberry has it, but refusing NaN and infinities when an input
    is read, for every field at once (each field still checks its own places and range)."""
    from strawberry.schema.types.base_scalars import DecimalDefinition, wrap_parser

    return dataclasses.replace(DecimalDefinition, parse_value=wrap_parser(
        _finite_decimal, "Decimal", exceptions=(DecimalException,), include_error=False, accept_non_string=True))
