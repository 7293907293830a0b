"""Keyset pagination for every connection.

A cursor is the opaque, URL-safe encoding of the sort-key values of one row plus its id, so a
page boundary stays put when rows are inserted before it (unlike offsets). Page sizes default
to 20 and are capped at 100. Bad arguments raise ``PaginationError`` with a message meant for
the client.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
import sqlalchemy.orm
from sqlalchemy.ext.asyncio import AsyncSession

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Far more than any cursor this module writes (a few sort values); longer input is not decoded.
MAX_CURSOR_LENGTH = 1024

T = TypeVar("T")


class PaginationError(ValueError):
    """Invalid page arguments or a malformed cursor; the message is safe to show a client."""


@dataclass(frozen=True)
class PageArgs:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def validated(self) -> PageArgs:
        if self.first is not None and self.last is not None:
            raise PaginationError("Pass either `first` or `last`, not both.")
        for name in ("first", "last"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise PaginationError(f"`{name}` must not be negative.")
            if value is not None and value > MAX_PAGE_SIZE:
                raise PaginationError(f"`{name}` must be at most {MAX_PAGE_SIZE}.")
        return self

    @property
    def backwards(self) -> bool:
        return self.last is not None or (self.before is not None and self.first is None)

    @property
    def size(self) -> int:
        if self.backwards:
            return self.last if self.last is not None else DEFAULT_PAGE_SIZE
        return self.first if self.first is not None else DEFAULT_PAGE_SIZE


@dataclass(frozen=True)
class SortKey:
    """One column of an ordering. ``parse`` turns a cursor's JSON value back into a Python value."""

    column: sa.ColumnElement[Any]
    attr: str
    descending: bool = False
    parse: Callable[[Any], Any] = lambda v: v


def _dump(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def parse_datetime(value: Any) -> datetime:
    return datetime.fromisoformat(value)


def _signature(keys: Sequence[SortKey]) -> str:
    """Names the list (its table) and the ordering a cursor belongs to, so a cursor from another
    list or ordering is refused rather than read as a position it never was."""
    return ",".join(("-" if key.descending else "") + _table_of(key) + key.attr for key in keys)


def _table_of(key: SortKey) -> str:
    table = getattr(key.column, "table", None)
    name = getattr(table, "name", None)
    return f"{name}." if isinstance(name, str) else ""


def _encode(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encode_cursor(row: Any, keys: Sequence[SortKey]) -> str:
    return _encode([_signature(keys), *(_dump(getattr(row, key.attr)) for key in keys)])


def decode_cursor(cursor: str, keys: Sequence[SortKey]) -> list[Any]:
    """The sort values of a cursor this list issued; only its canonical spelling is accepted (the
    one ``encode_cursor`` writes), so one position has one cursor."""
    try:
        if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("length")
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(decoded, list) or len(decoded) != len(keys) + 1 or decoded[0] != _signature(keys):
            raise ValueError("shape")
        if _encode(decoded) != cursor:
            raise ValueError("not canonical")
        values = decoded[1:]
        return [key.parse(value) for key, value in zip(keys, values, strict=True)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise PaginationError(
            "Malformed cursor: pass a cursor exactly as this list returned it, with the same orderBy."
        ) from exc


def keyset_condition(keys: Sequence[SortKey], values: Sequence[Any], *, after: bool) -> sa.ColumnElement[bool]:
    """Rows strictly after (or before) the row whose sort values are ``values``."""
    alternatives = []
    for i, key in enumerate(keys):
        equal_prefix = [keys[j].column == values[j] for j in range(i)]
        greater = (not key.descending) == after  # after+ASC and before+DESC look for larger values
        step = key.column > values[i] if greater else key.column < values[i]
        alternatives.append(sa.and_(*equal_prefix, step))
    return sa.or_(*alternatives)


def order_clauses(keys: Sequence[SortKey], *, reverse: bool = False) -> list[sa.ColumnElement[Any]]:
    clauses = []
    for key in keys:
        descending = key.descending != reverse
        clauses.append(key.column.desc() if descending else key.column.asc())
    return clauses


@dataclass
class Page(Generic[T]):
    items: list[T]
    keys: Sequence[SortKey]
    has_next_page: bool
    has_previous_page: bool
    count: Callable[[], Awaitable[int]] = field(repr=False)

    def cursor(self, item: T) -> str:
        """Encoded on demand: most clients never ask for the cursor of every edge."""
        return encode_cursor(item, self.keys)

    @property
    def start_cursor(self) -> str | None:
        return self.cursor(self.items[0]) if self.items else None

    @property
    def end_cursor(self) -> str | None:
        return self.cursor(self.items[-1]) if self.items else None


def apply_page(stmt: sa.Select[Any], keys: Sequence[SortKey], args: PageArgs) -> sa.Select[Any]:
    """Add the cursor condition, ordering and limit (size + 1, to see if more rows exist)."""
    args = args.validated()
    if args.after is not None:
        stmt = stmt.where(keyset_condition(keys, decode_cursor(args.after, keys), after=True))
    if args.before is not None:
        stmt = stmt.where(keyset_condition(keys, decode_cursor(args.before, keys), after=False))
    return stmt.order_by(*order_clauses(keys, reverse=args.backwards)).limit(args.size + 1)


def build_page(rows: list[T], keys: Sequence[SortKey], args: PageArgs, count: Callable[[], Awaitable[int]]) -> Page[T]:
    size = args.size
    more = len(rows) > size
    rows = rows[:size]
    if args.backwards:
        rows.reverse()
        has_previous, has_next = more, args.before is not None
    else:
        has_next, has_previous = more, args.after is not None
    return Page(
        items=rows,
        keys=keys,
        has_next_page=has_next,
        has_previous_page=has_previous,
        count=count,
    )


async def paginate(
    sessionmaker: Callable[[], AsyncSession],
    stmt: sa.Select[Any],
    keys: Sequence[SortKey],
    args: PageArgs,
) -> Page[Any]:
    """Run one page of ``stmt`` (a select of one entity). ``totalCount`` runs only if asked for."""
    paged = apply_page(stmt, keys, args)
    async with sessionmaker() as session:
        rows = list((await session.scalars(paged)).all())

    async def count() -> int:
        count_stmt = sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())
        async with sessionmaker() as session:
            return int((await session.scalar(count_stmt)) or 0)

    return build_page(rows, keys, args, _memo(count))


def _memo(fn: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[int]]:
    cache: list[int] = []

    async def wrapper() -> int:
        if not cache:
            cache.append(await fn())
        return cache[0]

    return wrapper


async def paginate_grouped(
    session: AsyncSession,
    stmt: sa.Select[Any],
    entity: Any,
    group_column: sa.ColumnElement[Any],
    group_ids: Sequence[int],
    keys: Sequence[SortKey],
    args: PageArgs,
) -> dict[int, list[Any]]:
    """One page per group (e.g. the first 3 activities of each of 100 customers) in one statement.

    ``ROW_NUMBER() OVER (PARTITION BY group ...)`` numbers each group's rows in page order; rows
    past ``size + 1`` are dropped in SQL. Returns the raw rows per group; ``build_page`` trims.
    """
    args = args.validated()
    if args.after is not None:
        stmt = stmt.where(keyset_condition(keys, decode_cursor(args.after, keys), after=True))
    if args.before is not None:
        stmt = stmt.where(keyset_condition(keys, decode_cursor(args.before, keys), after=False))
    row_number = sa.func.row_number().over(
        partition_by=group_column, order_by=order_clauses(keys, reverse=args.backwards)
    ).label("page_row")
    inner = stmt.where(group_column.in_(group_ids)).add_columns(row_number).subquery()
    alias = sa.orm.aliased(entity, inner)
    query = sa.select(alias).where(inner.c.page_row <= args.size + 1).order_by(inner.c.page_row)
    out: dict[int, list[Any]] = {gid: [] for gid in group_ids}
    group_attr = group_column.key
    for row in (await session.scalars(query)).all():
        out[getattr(row, group_attr)].append(row)
    return out


async def count_grouped(
    session: AsyncSession, stmt: sa.Select[Any], group_column: sa.ColumnElement[Any], group_ids: Sequence[int]
) -> dict[int, int]:
    """``totalCount`` of many nested connections in one ``GROUP BY``."""
    inner = stmt.where(group_column.in_(group_ids)).subquery()
    column = inner.c[group_column.key]
    rows = await session.execute(sa.select(column, sa.func.count()).group_by(column))
    counts = {gid: 0 for gid in group_ids}
    counts.update({gid: n for gid, n in rows.all()})
    return counts
