"""Products: the catalogue that line items price from."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.actor import Actor
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, NotFound
from crm_graph.core.events import record_event
from crm_graph.core.filters import compile_filter
from crm_graph.core.hooks import validate_with_plugins
from crm_graph.sales import codes
from crm_graph.sales.filters import PRODUCT_FILTER
from crm_graph.sales.models import Product, ProductTag
from crm_graph.sales.service.common import (
    Invalid,
    check,
    check_version,
    fail,
    money_input,
    tags,
    text,
)

_SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")


def _sku(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Invalid(codes.REQUIRED, "A product needs a SKU.")
    if not isinstance(value, str) or not _SKU.match(value.strip()):
        raise Invalid(codes.INVALID_VALUE, "A SKU has 1 to 64 letters, digits, dots, dashes, slashes or underscores.")
    return value.strip()


async def get_product(session: AsyncSession, product_id: int, *, lock: bool = False) -> Product | None:
    """One product; ``lock`` takes a row lock (PostgreSQL) so concurrent updates run one at a time."""
    stmt = sa.select(Product).where(Product.id == product_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(stmt)


async def products_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Product]:
    rows = await session.scalars(sa.select(Product).where(Product.id.in_(ids)))
    return {p.id: p for p in rows}


async def tags_for(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[str]]:
    rows = await session.scalars(
        sa.select(ProductTag).where(ProductTag.product_id.in_(ids)).order_by(ProductTag.product_id, ProductTag.tag)
    )
    out: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        out[row.product_id].append(row.tag)
    return out


def product_select(filter: Mapping[str, Any] | None = None) -> sa.Select[tuple[Product]]:
    stmt = sa.select(Product)
    if filter:
        stmt = stmt.where(compile_filter(PRODUCT_FILTER, filter))
    return stmt


async def product_payload(session: AsyncSession, product: Product) -> dict[str, Any]:
    return {
        "id": product.id,
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "unitPrice": {"amount": product.unit_price, "currency": product.currency},
        "active": product.active,
        "tags": (await tags_for(session, [product.id])).get(product.id, []),
        "version": product.version,
    }


async def create_product(session: AsyncSession, *, actor: Actor, data: Mapping[str, Any]) -> Product:
    now = utcnow()
    product = Product(active=True, version=1, created_at=now, updated_at=now)
    new_tags = await _apply(session, product, data, creating=True)
    await validate_with_plugins(session, entity="product", data=data, actor=actor)
    session.add(product)
    await _flush_unique_sku(session, product)
    if new_tags is not None:
        session.add_all(ProductTag(product_id=product.id, tag=t) for t in new_tags)
        await session.flush()
    record_event(session, type="product.created", entity_type="Product", entity_id=product.id, actor=actor,
                 payload=await product_payload(session, product))
    return product


async def update_product(
    session: AsyncSession, *, actor: Actor, product_id: int, data: Mapping[str, Any], expected_version: int | None
) -> Product:
    product = await get_product(session, product_id, lock=True)
    if product is None:
        raise NotFound("Product")
    check_version(expected_version, product.version)
    before = await product_payload(session, product)
    new_tags = await _apply(session, product, data, creating=False)
    await validate_with_plugins(session, entity="product", data={**data, "id": product_id}, actor=actor)
    if new_tags is not None:
        await session.execute(sa.delete(ProductTag).where(ProductTag.product_id == product.id))
        session.add_all(ProductTag(product_id=product.id, tag=t) for t in new_tags)
    product.updated_at = utcnow()
    await _flush_unique_sku(session, product)
    after = await product_payload(session, product)
    changed = sorted(k for k in after if after[k] != before.get(k) and k != "version")
    record_event(session, type="product.updated", entity_type="Product", entity_id=product.id, actor=actor,
                 payload=after, changes={"fields": changed, "before": {k: before[k] for k in changed}})
    return product


async def _flush_unique_sku(session: AsyncSession, product: Product) -> None:
    """Flush; a concurrent request that took the SKU first makes this a DUPLICATE, not a crash."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise fail("sku", codes.DUPLICATE, f"Another product has SKU {product.sku}.") from None


async def _apply(session: AsyncSession, product: Product, data: Mapping[str, Any], *, creating: bool) -> list[str] | None:
    """Validate ``data`` onto ``product``; returns the new tag list (None: unchanged). Raises on errors."""
    errors = ErrorCollector()
    if creating or "sku" in data:
        sku = check(errors, "sku", _sku, data.get("sku"))
        if sku is not None and sku != product.sku:
            taken = await session.scalar(sa.select(Product.id).where(Product.sku == sku))
            if taken is not None:
                errors.add("sku", codes.DUPLICATE, f"Another product has SKU {sku}.")
            product.sku = sku
    if creating or "name" in data:
        name = check(errors, "name", text, data.get("name"), 200, required=True, what="A product name")
        if name is not None:
            product.name = name
    if "description" in data:
        description = check(errors, "description", text, data.get("description"), 10_000)
        if not errors:
            product.description = description
    if creating or "unitPrice" in data:
        price = money_input(data.get("unitPrice"), "unitPrice", errors)
        if price is not None:
            product.unit_price, product.currency = price.amount, price.currency
    if "active" in data:
        if not isinstance(data["active"], bool):
            errors.add("active", codes.INVALID_VALUE, "active is true or false.")
        else:
            product.active = data["active"]
    new_tags = None
    if "tags" in data:
        new_tags = check(errors, "tags", tags, data.get("tags") or [])
    errors.raise_if_any()
    return new_tags
