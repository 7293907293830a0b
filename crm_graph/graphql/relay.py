"""Relay plumbing: global IDs, the ``Node`` interface, connections and page arguments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.types import Info

from crm_graph.core import ids
from crm_graph.core.pagination import Page, PageArgs, SortKey, build_page, count_grouped, paginate_grouped
from crm_graph.graphql.errors import ClientError

T = TypeVar("T")

# async function(info, [pk, ...]) -> [object | None, ...]; each schema maps type names to them
# (``SchemaPart.nodes``, see ``crm_graph.core.extensions.NodeType``).
NodeResolver = Callable[[Info, list[int]], Awaitable[list[Any]]]


def node_resolver(key: Any, batch: Any, convert: Callable[[Any], Any]) -> NodeResolver:
    """A node resolver from a batch function (``batch(session, pks) -> {pk: model}``): the models
    come through the request's DataLoader ``key`` and are converted; unknown ones are None."""

    async def resolve(info: Info, pks: list[int]) -> list[Any]:
        models = await info.context.loader(key, batch).load_many(pks)
        return [convert(m) if m is not None else None for m in models]

    return resolve


def encode_global_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(ids.encode(type_name, pk))


def decode_global_id(global_id: str, expected: str | tuple[str, ...] | None = None) -> tuple[str, int]:
    """Split a global ID into (type name, primary key); ``ClientError`` if malformed or of another
    type. Whether the schema serves the type at all is ``resolve_nodes``' question."""
    try:
        type_name, number = ids.decode(global_id)
    except ValueError as exc:
        raise _malformed(global_id) from exc
    if expected is not None:
        allowed = (expected,) if isinstance(expected, str) else expected
        if type_name not in allowed:
            raise ClientError(f"ID {global_id[:64]!r} is a {type_name}, not a {' or '.join(allowed)}.", "INVALID_ID")
    return type_name, number


def try_decode_global_id(global_id: str, expected: str) -> int | None:
    """For mutation inputs: the primary key, or None when the ID is malformed or of another type."""
    try:
        return decode_global_id(global_id, expected)[1]
    except ClientError:
        return None


@strawberry.interface(description="An object with a globally unique, opaque ID; fetch any of them with `node(id)`.")
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque global ID.")


def _malformed(global_id: str) -> ClientError:
    return ClientError(f"Malformed ID {global_id[:64]!r}: pass an `id` exactly as the API returned it.", "INVALID_ID")


async def resolve_nodes(info: Info, ids: list[strawberry.ID]) -> list[Any]:
    """The objects of global IDs, through the node types of the schema being served."""
    resolvers: dict[str, NodeResolver] = info.schema.crm_nodes  # type: ignore[attr-defined]
    decoded = [decode_global_id(i) for i in ids]
    for global_id, (type_name, _) in zip(ids, decoded, strict=True):
        if type_name not in resolvers:
            raise _malformed(global_id)
    by_type: dict[str, list[int]] = {}
    for type_name, pk in decoded:
        by_type.setdefault(type_name, []).append(pk)
    found: dict[tuple[str, int], Any] = {}
    for type_name, pks in by_type.items():
        for pk, obj in zip(pks, await resolvers[type_name](info, pks), strict=True):
            found[(type_name, pk)] = obj
    return [found[key] for key in decoded]


@strawberry.type(description="Where a page sits in the whole list.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether rows follow this page (ask with `after: endCursor`).")
    has_previous_page: bool = strawberry.field(description="Whether rows precede this page (ask with `before: startCursor`).")
    _page: strawberry.Private[Page[Any]]

    # Cursors are encoded only when asked for: a page of 100 customers with their opportunities
    # is 101 connections, and most queries ask for no cursor at all.
    @strawberry.field(description="Cursor of the page's first row; null on an empty page.")
    def start_cursor(self) -> str | None:
        return self._page.start_cursor

    @strawberry.field(description="Cursor of the page's last row; null on an empty page.")
    def end_cursor(self) -> str | None:
        return self._page.end_cursor


@strawberry.type(description="One row of a list, with the cursor that marks its place.")
class Edge(Generic[T]):
    node: T = strawberry.field(description="The row itself.")
    _page: strawberry.Private[Page[Any]]
    _row: strawberry.Private[Any]

    @strawberry.field(description="Opaque cursor of this row; pass it to `after`/`before`.")
    def cursor(self) -> str:
        return self._page.cursor(self._row)


@strawberry.type(description="A page of a list: its rows in order, where the page sits, and how many rows match in all.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The page's rows, in the list's order.")
    page_info: PageInfo = strawberry.field(description="Whether there are rows before and after this page, and its cursors.")
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Number of rows matching the filter, across all pages.")
    async def total_count(self) -> int:
        return await self._count()

    @classmethod
    def from_page(cls, page: Page[Any], convert: Callable[[Any], T]) -> Any:
        return cls(
            edges=[Edge(node=convert(item), _page=page, _row=item) for item in page.items],
            page_info=PageInfo(has_next_page=page.has_next_page, has_previous_page=page.has_previous_page, _page=page),
            _count=page.count,
        )


def page_args(first: int | None, after: str | None, last: int | None, before: str | None) -> PageArgs:
    return PageArgs(first=first, after=after, last=last, before=before).validated()


async def grouped_connection(
    info: Info,
    key: Any,
    stmt: Any,
    entity: Any,
    group_column: Any,
    parent: int,
    keys: list[SortKey],
    args: PageArgs,
    connection: Any,
    convert: Callable[[Any], Any],
) -> Any:
    """A connection nested under many parents (each customer's activities, orders, tickets...),
    batched across every parent of the request by two DataLoaders: one page query and one count
    query in all, whatever the number of parents.

    ``key`` names the nested list and its arguments (parents asking with the same key share a
    batch). ``stmt`` is the unordered select of the child rows, or a function building it; a
    function runs once per batch rather than once per parent.
    """
    ctx = info.context

    def select() -> Any:
        return stmt() if callable(stmt) else stmt

    async def pages(session: Any, parents: Any) -> dict[int, list[Any]]:
        return await paginate_grouped(session, select(), entity, group_column, parents, keys, args)

    async def counts(session: Any, parents: Any) -> dict[int, int]:
        return await count_grouped(session, select(), group_column, parents)

    rows = await ctx.loader(("page", key), pages, list).load(parent)
    counter = ctx.loader(("count", key), counts, int)
    page = build_page(list(rows), keys, args, lambda: counter.load(parent))
    return connection.from_page(page, convert)
