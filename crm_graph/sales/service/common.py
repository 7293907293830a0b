"""Validation and pricing shared by the sales services: text, numbers, money, line items, numbering."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import money
from crm_graph.core import text as core_text
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, FieldError, ValidationFailed
from crm_graph.sales import codes
from crm_graph.sales.models import NumberSequence, Product

E = TypeVar("E", bound=enum.Enum)

MAX_LINES = 100
MAX_QUANTITY = Decimal(10) ** 9
MAX_TAGS = 30
MAX_TAG_LENGTH = 64


class Invalid(ValueError):
    """One bad value: the code and message of the ``FieldError`` the caller records."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def fail(field: str | None, code: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field, code, message)])


def check(errors: ErrorCollector, field: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a validator; record its ``Invalid`` at ``field`` and return None instead."""
    try:
        return fn(*args, **kwargs)
    except Invalid as exc:
        errors.add(field, exc.code, str(exc))
        return None


def dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


# --- plain values -------------------------------------------------------------------------


def text(value: Any, limit: int, *, required: bool = False, what: str = "This field") -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Invalid(codes.REQUIRED, f"{what} is required.")
        return None
    if not isinstance(value, str):
        raise Invalid(codes.INVALID_VALUE, "Expected text.")
    try:
        value = core_text.clean(value.strip())
    except ValueError as exc:
        raise Invalid(codes.INVALID_VALUE, str(exc)) from None
    if len(value) > limit:
        raise Invalid(codes.INVALID_VALUE, f"At most {limit} characters.")
    return value


def enum_value(enum_type: type[E], value: Any) -> E:
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type[value]
    except (KeyError, TypeError):
        raise Invalid(codes.INVALID_VALUE, f"Expected one of {', '.join(enum_type.__members__)}.") from None


def number(value: Any, *, places: int = money.SCALE) -> Decimal:
    try:
        result = money.decimal(value)
    except (TypeError, ValueError):
        raise Invalid(codes.INVALID_VALUE, f"{str(value)[:40]!r} is not a decimal number.") from None
    if money.places(result.normalize()) > places:  # trailing zeros do not count: 1.5000 is 1.5
        raise Invalid(codes.TOO_PRECISE, f"At most {places} decimal places.")
    return result


def amount(value: Any, *, positive: bool = False, places: int = money.SCALE) -> Decimal:
    result = number(value, places=places)
    if result < 0 or (positive and result == 0):
        raise Invalid(codes.OUT_OF_RANGE, "The amount must be greater than zero." if positive else "The amount cannot be negative.")
    if result >= money.MAX_AMOUNT:
        raise Invalid(codes.OUT_OF_RANGE, f"The amount must be less than {money.MAX_AMOUNT:,}.")
    return result


def quantity(value: Any) -> Decimal:
    result = number(value)
    if result <= 0:
        raise Invalid(codes.OUT_OF_RANGE, "The quantity must be greater than zero.")
    if result >= MAX_QUANTITY:
        raise Invalid(codes.OUT_OF_RANGE, f"The quantity must be less than {MAX_QUANTITY:,}.")
    return result


def percent(value: Any) -> Decimal:
    result = number(value)
    if not 0 <= result <= 100:
        raise Invalid(codes.OUT_OF_RANGE, "A percentage is between 0 and 100.")
    return result


def probability(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(codes.INVALID_VALUE, "A probability is a whole number of percent.")
    if not 0 <= value <= 100:
        raise Invalid(codes.OUT_OF_RANGE, "A probability is between 0 and 100.")
    return value


def currency(value: Any) -> str:
    try:
        return money.currency_code(value)
    except money.InvalidCurrency as exc:
        raise Invalid(codes.INVALID_CURRENCY, str(exc)) from None


def money_input(
    data: Any, path: str, errors: ErrorCollector, *, positive: bool = False, places: int | None = None
) -> money.Money | None:
    """A ``MoneyInput`` mapping as ``Money``; errors at ``path.amount`` / ``path.currency``."""
    if not isinstance(data, Mapping):
        errors.add(path, codes.REQUIRED, "Give an amount and a currency.")
        return None
    code = check(errors, f"{path}.currency", currency, data.get("currency"))
    limit = money.SCALE if places is None or code is None else min(places, money.minor_units(code))
    value = check(errors, f"{path}.amount", amount, data.get("amount"), positive=positive, places=limit)
    if code is None or value is None:
        return None
    return money.Money(value, code)


def tags(values: Any) -> list[str]:
    """Trimmed, lower-cased, de-duplicated, order kept."""
    if not isinstance(values, list):
        raise Invalid(codes.INVALID_VALUE, "Tags are a list of strings.")
    clean: list[str] = []
    for raw in values:
        tag = raw.strip().lower() if isinstance(raw, str) else ""
        if not tag:
            raise Invalid(codes.INVALID_VALUE, "A tag cannot be empty.")
        if len(tag) > MAX_TAG_LENGTH:
            raise Invalid(codes.INVALID_VALUE, f"A tag has at most {MAX_TAG_LENGTH} characters.")
        if tag not in clean:
            clean.append(tag)
    if len(clean) > MAX_TAGS:
        raise Invalid(codes.TOO_MANY, f"At most {MAX_TAGS} tags.")
    return clean


def check_version(expected: int | None, actual: int) -> None:
    from crm_graph.core.errors import VersionConflict

    if expected is not None and expected != actual:
        raise VersionConflict(expected, actual)


# --- line items and totals ----------------------------------------------------------------


@dataclass
class PricedLine:
    """A validated line, priced in its document's currency."""

    product_id: int | None
    sku: str | None
    description: str
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal
    subtotal: Decimal = Decimal(0)
    discount: Decimal = Decimal(0)
    total: Decimal = Decimal(0)

    def priced(self, currency: str) -> PricedLine:
        self.subtotal = money.round_amount(self.quantity * self.unit_price, currency)
        self.discount = money.percent_of(self.subtotal, self.discount_percent, currency)
        self.total = self.subtotal - self.discount
        return self

    def columns(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "sku": self.sku,
            "description": self.description,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "discount_percent": self.discount_percent,
            "subtotal": self.subtotal,
            "discount": self.discount,
            "total": self.total,
        }

    def comparable(self) -> tuple[Any, ...]:
        """The line's identity for "did the payload change?" (numbers compared by value)."""
        return (self.product_id, self.sku, self.description, self.quantity, self.unit_price, self.discount_percent)

    @classmethod
    def from_row(cls, row: Any) -> PricedLine:
        return cls(
            product_id=row.product_id,
            sku=getattr(row, "sku", None),
            description=row.description,
            quantity=row.quantity,
            unit_price=row.unit_price,
            discount_percent=row.discount_percent,
            subtotal=row.subtotal,
            discount=row.discount,
            total=row.total,
        )


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    discount: Decimal
    tax_rate: Decimal
    tax: Decimal
    total: Decimal

    def columns(self) -> dict[str, Any]:
        return {"subtotal": self.subtotal, "discount": self.discount, "tax_rate": self.tax_rate, "tax": self.tax, "total": self.total}


def totals(lines: Sequence[PricedLine], tax_rate: Decimal, currency: str) -> Totals:
    """Subtotal and discount are sums of the rounded lines; tax is rounded once, on the net."""
    subtotal = sum((line.subtotal for line in lines), Decimal(0))
    discount = sum((line.discount for line in lines), Decimal(0))
    tax = money.percent_of(subtotal - discount, tax_rate, currency)
    return Totals(subtotal, discount, tax_rate, tax, subtotal - discount + tax)


async def products_for_lines(session: AsyncSession, items: Sequence[Mapping[str, Any]]) -> tuple[dict[int, Product], dict[str, Product]]:
    ids = {i["productId"] for i in items if isinstance(i, Mapping) and isinstance(i.get("productId"), int)}
    skus = {i["sku"].strip() for i in items if isinstance(i, Mapping) and isinstance(i.get("sku"), str) and not i.get("productId")}
    if not ids and not skus:
        return {}, {}
    rows = await session.scalars(sa.select(Product).where(sa.or_(Product.id.in_(ids), Product.sku.in_(skus))))
    found = list(rows)
    return {p.id: p for p in found}, {p.sku: p for p in found}


async def line_items(
    session: AsyncSession,
    items: Any,
    errors: ErrorCollector,
    *,
    currency: str | None,
    path: str = "lineItems",
    require_product: bool,
    allow_inactive: set[int] | frozenset[int] = frozenset(),
    check_active: bool = False,
) -> tuple[list[PricedLine], str | None]:
    """Validate line inputs and price them.

    The document's currency is ``currency`` when given, else the first line's (its explicit unit
    price, or its product's price). Every line must be in that currency: a unit price defaults to
    the product's, which then must be priced in the document's currency.
    """
    if not isinstance(items, list):
        errors.add(path, codes.INVALID_VALUE, "Line items are a list.")
        return [], currency
    if len(items) > MAX_LINES:
        errors.add(path, codes.TOO_MANY, f"At most {MAX_LINES} line items.")
        return [], currency
    by_id, by_sku = await products_for_lines(session, items)
    lines: list[PricedLine] = []
    for i, item in enumerate(items):
        here = f"{path}.{i}"
        if not isinstance(item, Mapping):
            errors.add(here, codes.INVALID_VALUE, "A line item is an object.")
            continue
        ok = True
        product: Product | None = None
        product_id = item.get("productId")
        sku = check(errors, f"{here}.sku", text, item.get("sku"), 64)
        if product_id is not None:
            product = by_id.get(product_id)
            if product is None:
                errors.add(f"{here}.productId", codes.NOT_FOUND, "The product was not found.")
                ok = False
            elif check_active and not product.active and product.id not in allow_inactive:
                errors.add(f"{here}.productId", codes.PRODUCT_INACTIVE, f"{product.name} is not for sale any more.")
                ok = False
        elif sku is not None:
            product = by_sku.get(sku)
        elif require_product:
            errors.add(f"{here}.productId", codes.REQUIRED, "Choose a product.")
            ok = False
        description = check(errors, f"{here}.description", text, item.get("description"), 300)
        if description is None and product is not None:
            description = product.name
        if description is None and ok and product is None:
            errors.add(f"{here}.description", codes.REQUIRED, "A line without a product needs a description.")
            ok = False
        qty = check(errors, f"{here}.quantity", quantity, _or(item.get("quantity"), Decimal(1)))
        discount = check(errors, f"{here}.discountPercent", percent, _or(item.get("discountPercent"), Decimal(0)))
        price: Decimal | None = None
        if item.get("unitPrice") is not None:
            given = money_input(item["unitPrice"], f"{here}.unitPrice", errors)
            if given is not None:
                if currency is None:
                    currency = given.currency
                if given.currency != currency:
                    errors.add(f"{here}.unitPrice.currency", codes.CURRENCY_MISMATCH,
                               f"This document is in {currency}; every line must be too.")
                else:
                    price = given.amount
        elif product is not None:
            if currency is None:
                currency = product.currency
            if product.currency != currency:
                errors.add(f"{here}.productId", codes.CURRENCY_MISMATCH,
                           f"{product.name} is priced in {product.currency}; give a unitPrice in {currency}.")
            else:
                price = product.unit_price
        elif ok:
            errors.add(f"{here}.unitPrice", codes.REQUIRED, "A line without a product needs a unit price.")
        if not ok or qty is None or discount is None or price is None or description is None:
            continue
        lines.append(
            PricedLine(
                product_id=product.id if product is not None else None,
                sku=sku if sku is not None else (product.sku if product is not None else None),
                description=description,
                quantity=qty,
                unit_price=price,
                discount_percent=discount,
            )
        )
    if currency is not None and not errors:
        lines = [line.priced(currency) for line in lines]
        for i, line in enumerate(lines):
            if line.subtotal >= money.MAX_AMOUNT:
                errors.add(f"{path}.{i}.quantity", codes.OUT_OF_RANGE, f"quantity x unit price must be less than {money.MAX_AMOUNT:,}.")
        total = sum((line.total for line in lines), Decimal(0))
        if total >= money.MAX_AMOUNT:
            errors.add(path, codes.OUT_OF_RANGE, f"The total must be less than {money.MAX_AMOUNT:,}.")
    return lines, currency


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


# --- document numbers ---------------------------------------------------------------------


async def next_number(session: AsyncSession, scope: str, prefix: str, width: int) -> str:
    """The next number of ``scope`` this year, e.g. ``Q-2026-0001``.

    One ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` on a counter row: on PostgreSQL the row
    lock makes concurrent writers take turns; on SQLite writers are serialised anyway. Numbers are
    unique and increasing; one may be skipped if the transaction that drew it rolls back.
    """
    year = utcnow().year
    table = NumberSequence.__table__
    insert = pg_insert if dialect(session) == "postgresql" else sqlite_insert
    stmt = (
        insert(table)
        .values(scope=scope, year=year, last_value=1)
        .on_conflict_do_update(index_elements=[table.c.scope, table.c.year], set_={"last_value": table.c.last_value + 1})
        .returning(table.c.last_value)
    )
    value = (await session.execute(stmt)).scalar_one()
    return f"{prefix}-{year}-{int(value):0{width}d}"
