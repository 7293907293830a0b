"""Per-request DataLoaders of the sales API and the batched nested connection.

Kept apart from ``schema/`` so that ``customer_fields`` (imported while the Customer type is being
defined) can use them without importing the sales types.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from strawberry.types import Info

from crm_graph.graphql import relay
from crm_graph.graphql.context import BatchFn, Context


def loader(info: Info, key: Hashable, batch: BatchFn, default: Callable[[], Any] = lambda: None) -> Any:
    ctx: Context = info.context
    return ctx.loader(("sales",) + (key if isinstance(key, tuple) else (key,)), batch, default)


async def load_one(info: Info, key: Hashable, batch: BatchFn, pk: int | None) -> Any:
    if pk is None:
        return None
    return await loader(info, key, batch).load(pk)


async def load_list(info: Info, key: Hashable, batch: BatchFn, pk: int) -> list[Any]:
    return list(await loader(info, key, batch, list).load(pk))


async def grouped_connection(info: Info, key: Hashable, stmt: Any, *rest: Any) -> Any:
    """``crm_graph.graphql.relay.grouped_connection`` with the sales key prefix."""
    return await relay.grouped_connection(info, ("sales", key), stmt, *rest)
