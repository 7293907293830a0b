"""Per-request DataLoaders of the sales API and the batched nested connection.

Kept apart from ``schema/`` so that ``customer_fields`` (imported while the Customer type is being
defined) can use them without importing the sales types.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import sqlalchemy as sa
from strawberry.types import Info

from crm_graph.core.pagination import (
    PageArgs,
    SortKey,
    build_page,
    count_grouped,
    paginate_grouped,
)
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


async def grouped_connection(
    info: Info,
    key: Hashable,
    stmt: sa.Select[Any],
    entity: Any,
    group_column: Any,
    parent: int,
    keys: list[SortKey],
    args: PageArgs,
    connection: Any,
    convert: Callable[[Any], Any],
) -> Any:
    """A connection nested under many parents (e.g. each customer's orders), one page query and
    one count query for all parents of the request, whatever their number."""

    async def pages(session: Any, parents: Any) -> dict[int, list[Any]]:
        return await paginate_grouped(session, stmt, entity, group_column, parents, keys, args)

    async def counts(session: Any, parents: Any) -> dict[int, int]:
        return await count_grouped(session, stmt, group_column, parents)

    rows = await loader(info, ("page", key), pages, list).load(parent)
    counter = loader(info, ("count", key), counts, int)
    page = build_page(list(rows), keys, args, lambda: counter.load(parent))
    return connection.from_page(page, convert)
