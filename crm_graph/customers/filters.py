"""``CustomerFilter`` compiled to SQL, full-text-ish ``search``, and the sort orders of the list."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import filters as f
from crm_graph.core.clock import utcnow
from crm_graph.core.extensions import FilterCondition, FilterContext, registry_of
from crm_graph.core.pagination import SortKey, parse_datetime
from crm_graph.customers.models import (
    AcquisitionChannel,
    ConsentStatus,
    CustomFieldDefinition,
    CustomFieldType,
    Customer,
    CustomerEmail,
    CustomerFieldValue,
    CustomerKind,
    CustomerPhone,
    CustomerTag,
    Gender,
    LifecycleStage,
)
from crm_graph.customers.validation import InvalidValue, custom_date, custom_number


def _exists(model: Any) -> Any:
    def build(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
        return sa.exists().where(model.customer_id == Customer.id, condition)

    return build


def _tags(ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    clauses = []
    for op, values in f.operators(ops, path, ("containsAny", "containsAll", "isEmpty")).items():
        if op == "isEmpty":
            any_tag = _exists(CustomerTag)(sa.true())
            clauses.append(sa.not_(any_tag) if values else any_tag)
            continue
        tags = sorted({str(t).strip().lower() for t in f.check_in(values, f"{path}.{op}")})
        if not tags:
            clauses.append(sa.true() if op == "containsAll" else sa.false())
        elif op == "containsAny":
            clauses.append(_exists(CustomerTag)(CustomerTag.tag.in_(tags)))
        else:
            matched = (
                sa.select(sa.func.count())
                .where(CustomerTag.customer_id == Customer.id, CustomerTag.tag.in_(tags))
                .scalar_subquery()
            )
            clauses.append(matched == len(tags))
    return sa.and_(sa.true(), *clauses)


CUSTOM_OPS = ("eq", "neq", "in", "contains", "startsWith", "gt", "gte", "lt", "lte", "isNull")


def _custom_fields(definitions: Mapping[str, CustomFieldDefinition]) -> f.Handler:
    def handler(items: Any, path: str) -> sa.ColumnElement[bool]:
        clauses = []
        for i, item in enumerate(f.as_list(items, path)):
            here = f"{path}.{i}"
            if not isinstance(item, Mapping) or "key" not in item:
                raise f.FilterError(here, "each custom field condition needs a `key`")
            definition = definitions.get(item["key"])
            if definition is None:
                raise f.FilterError(f"{here}.key", f"no custom field is defined with key {item['key']!r}")
            ops = {k: v for k, v in item.items() if k != "key"}
            clauses.append(_custom_condition(definition, ops, here))
        return sa.and_(sa.true(), *clauses)

    return handler


def _custom_condition(definition: CustomFieldDefinition, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    ops = f.operators(ops, path, CUSTOM_OPS)
    value_row = sa.exists().where(
        CustomerFieldValue.customer_id == Customer.id,
        CustomerFieldValue.definition_id == definition.id,
    )
    kind = definition.type
    column: Any
    parse: Any
    if kind in (CustomFieldType.TEXT, CustomFieldType.SELECT):
        column, parse = CustomerFieldValue.value_text, str
    elif kind is CustomFieldType.NUMBER:
        column, parse = CustomerFieldValue.value_number, lambda v: custom_number(v, definition.key)
    elif kind is CustomFieldType.DATE:
        column, parse = CustomerFieldValue.value_date, lambda v: custom_date(v, definition.key)
    else:
        column, parse = CustomerFieldValue.value_bool, _boolean
    clauses = []
    for op, value in ops.items():
        if op == "isNull":
            has = value_row.where(column.is_not(None))
            clauses.append(sa.not_(has) if value else has)
            continue
        if op in ("contains", "startsWith"):
            if column is not CustomerFieldValue.value_text:
                raise f.FilterError(f"{path}.{op}", f"{op} applies to TEXT and SELECT fields only")
            condition = f.string_condition(column, {op: value}, path)
        elif op == "neq":
            clauses.append(sa.not_(value_row.where(column == _parse(parse, value, f"{path}.neq"))))
            continue
        elif op == "in":
            condition = column.in_([_parse(parse, v, f"{path}.in") for v in f.check_in(value, f"{path}.in")])
        else:
            condition = f.comparable_condition(column, {op: _parse(parse, value, f"{path}.{op}")}, path)
        clauses.append(value_row.where(condition))
    return sa.and_(sa.true(), *clauses)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue("expected true or false")
    return value


def _parse(parse: Any, value: Any, path: str) -> Any:
    try:
        return parse(value)
    except (InvalidValue, ValueError, TypeError) as exc:
        raise f.FilterError(path, str(exc) or f"invalid value {value!r}") from exc


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def age_condition(today: date, ops: Mapping[str, Any], path: str) -> sa.ColumnElement[bool]:
    """Age in whole years, compiled to a range on ``birthday`` (so the birthday index serves it)."""
    birthday = Customer.birthday

    def at_least(n: int) -> sa.ColumnElement[bool]:
        return birthday <= _years_before(today, n)

    def at_most(n: int) -> sa.ColumnElement[bool]:
        return birthday > _years_before(today, n + 1)

    clauses = []
    for op, value in f.operators(ops, path, f.COMPARABLE_OPS).items():
        if op == "isNull":
            clauses.append(birthday.is_(None) if value else birthday.is_not(None))
            continue
        try:
            numbers = [f.whole_number(v) for v in f.check_in(value, f"{path}.in")] if op == "in" else [f.whole_number(value)]
        except ValueError as exc:
            raise f.FilterError(f"{path}.{op}", str(exc)) from None
        if any(n < 0 or n > 200 for n in numbers):
            raise f.FilterError(f"{path}.{op}", "an age is between 0 and 200")
        n = numbers[0]
        if op == "eq":
            clauses.append(sa.and_(at_least(n), at_most(n)))
        elif op == "neq":
            clauses.append(sa.or_(sa.not_(sa.and_(at_least(n), at_most(n))), birthday.is_(None)))
        elif op == "in":
            clauses.append(sa.or_(sa.false(), *(sa.and_(at_least(k), at_most(k)) for k in numbers)))
        elif op == "gte":
            clauses.append(at_least(n))
        elif op == "gt":
            clauses.append(at_least(n + 1))
        elif op == "lte":
            clauses.append(at_most(n))
        else:
            clauses.append(at_most(n - 1))
    return sa.and_(sa.true(), *clauses)


def customer_filter_spec(definitions: Mapping[str, CustomFieldDefinition], today: date) -> f.FilterSpec:
    """The fields of the customer row itself (registered conditions are added by ``build_condition``)."""
    names = lambda e: [m.name for m in e]  # noqa: E731
    return {
        "age": partial(age_condition, today),
        "displayName": f.column_string(Customer.display_name),
        "firstName": f.column_string(Customer.first_name),
        "lastName": f.column_string(Customer.last_name),
        "jobTitle": f.column_string(Customer.job_title),
        "email": f.related_string(_exists(CustomerEmail), CustomerEmail.address),
        "phone": f.related_string(_exists(CustomerPhone), CustomerPhone.number),
        "tags": _tags,
        "kind": f.column_enum(Customer.kind, names(CustomerKind)),
        "lifecycleStage": f.column_enum(Customer.lifecycle_stage, names(LifecycleStage)),
        "source": f.column_enum(Customer.source, names(AcquisitionChannel)),
        "consentStatus": f.column_enum(Customer.consent_status, names(ConsentStatus)),
        "gender": f.column_enum(Customer.gender, names(Gender)),
        "locale": f.column_string(Customer.locale),
        "country": f.column_string(Customer.country),
        "region": f.column_string(Customer.region),
        "city": f.column_string(Customer.city),
        "birthday": f.column_comparable(Customer.birthday, f.iso_date),
        "createdAt": f.column_comparable(Customer.created_at, f.aware_datetime),
        "updatedAt": f.column_comparable(Customer.updated_at, f.aware_datetime),
        "customFields": _custom_fields(definitions),
    }


async def build_condition(
    session: AsyncSession, data: Mapping[str, Any] | None, path: str = "filter", *, within_segment: int | None = None
) -> sa.ColumnElement[bool]:
    """Compile a ``CustomerFilter`` (as plain data) to SQL, reading first what the compiler needs.

    The fields of the customer row are this module's; the conditions that look beyond it
    (``orders``, ``tickets``, ``rfm``, ``segment``, and any plugin's) come from the application's
    registry (``crm_register_filters``). Each condition the filter mentions is prepared first,
    and so are the stored filters a preparation reaches (dynamic segments), so compiling itself
    needs no database. ``within_segment`` is the segment whose own filter this is (cycles).
    """
    if not data:
        return sa.true()
    conditions = registry_of(session).conditions("Customer")
    ctx = FilterContext(now=utcnow(), within=within_segment)
    documents: list[Mapping[str, Any]] = [data]
    need_definitions = False
    for _ in range(MAX_PREPARED):
        if not documents:
            break
        document = documents.pop()
        need_definitions = need_definitions or f.mentions(document, {"customFields"})
        for name, condition in conditions.items():
            if condition.prepare is not None and f.mentions(document, {name}):
                documents.extend(await condition.prepare(session, ctx, document) or [])
    definitions: dict[str, CustomFieldDefinition] = {}
    if need_definitions:
        definitions = {d.key: d for d in await session.scalars(sa.select(CustomFieldDefinition))}
    spec: dict[str, f.Handler] = {**customer_filter_spec(definitions, ctx.now.date())}
    for name, condition in conditions.items():
        spec[name] = partial(_registered, condition, ctx)
    ctx.compile = lambda stored: f.compile_filter(spec, stored)
    return f.compile_filter(spec, data, path)


# A filter reaches at most this many stored filters (segments within segments) while preparing.
MAX_PREPARED = 1000


def _registered(condition: FilterCondition, ctx: FilterContext, ops: Any, path: str) -> sa.ColumnElement[bool]:
    return condition.compile(ctx, ops, path)


def search_condition(text: str) -> sa.ColumnElement[bool]:
    """``search``: any word-part of the name, an email, or (for 4+ digits) a phone number."""
    text = f.search_text(text.strip(), "search")
    if not text:
        return sa.true()
    like = f"%{f.escape_like(text.lower())}%"
    options = [
        sa.func.lower(Customer.display_name).like(like, escape="\\"),
        _exists(CustomerEmail)(CustomerEmail.address.like(like, escape="\\")),
    ]
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 4:
        options.append(_exists(CustomerPhone)(CustomerPhone.number.like(f"%{digits}%")))
    return sa.or_(*options)


ORDER_COLUMNS: dict[str, tuple[Any, str, Any]] = {
    "DISPLAY_NAME": (Customer.display_name, "display_name", str),
    "CREATED_AT": (Customer.created_at, "created_at", parse_datetime),
    "UPDATED_AT": (Customer.updated_at, "updated_at", parse_datetime),
}


def sort_keys(order_by: list[Mapping[str, Any]] | None) -> list[SortKey]:
    """The requested ordering plus the id as a final tie-breaker; newest first by default."""
    order_by = order_by or [{"field": "CREATED_AT", "direction": "DESC"}]
    keys: list[SortKey] = []
    seen: set[str] = set()
    for item in order_by:
        name = item["field"]
        if name in seen:
            continue
        seen.add(name)
        column, attr, parse = ORDER_COLUMNS[name]
        keys.append(SortKey(column, attr, item.get("direction", "ASC") == "DESC", parse))
    keys.append(SortKey(Customer.id, "id", keys[-1].descending, int))
    return keys
