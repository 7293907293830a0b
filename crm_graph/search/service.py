"""Rules of search: the global search over customers, opportunities, tickets and products, and
``reindex`` for writers that bypass the ORM (docs/search.md).

A query is folded like the indexed text (``crm_graph.search.text``) and split on white space
into terms; every term must occur in the same field of a record. A term of three characters or
more is a substring, served by the trigram index; a shorter one is served by the token index: a
run of CJK characters as consecutive characters (张 finds 张伟, 北京 finds 北京字节跳动...), a
Latin word as the beginning of a word (``mü`` finds Müller, ``ll`` does not).

Ranking is the same on both databases: per field, ``weight * (0.6 * how + 0.4 * coverage)``,
where ``how`` is 1 when the field is the query, 0.6 when it starts with it and 0.2 when it
contains it, and ``coverage`` the share of the field the query covers; a record counts with its
best field. Records the session's scope cannot read are left out before ranking and counting.
"""

from __future__ import annotations

from collections.abc import Sequence
import enum
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.access import scope_of
from crm_graph.core.errors import INVALID_VALUE, FieldError, ValidationFailed
from crm_graph.core.filters import MAX_SEARCH_LENGTH
from crm_graph.core.text import control_character, shows_something
from crm_graph.search import indexer, text
from crm_graph.search.models import SearchEntry

MAX_FIRST = 100
MAX_TERMS = 8
ENTITIES = indexer.ENTITIES


class SearchKind(enum.Enum):
    """The kinds of record search covers (``value``: the entity name ``reindex`` takes)."""

    CUSTOMER = "customer"
    OPPORTUNITY = "opportunity"
    TICKET = "ticket"
    PRODUCT = "product"


@dataclass(frozen=True)
class Hit:
    entity: str  # customer, opportunity, ticket, product
    entity_id: int
    field: str  # the GraphQL field that matched best (displayName, emails, title, subject, sku...)
    value: str  # that field's value
    score: float


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    total: int  # records that match and the caller may read, over all pages


@dataclass(frozen=True)
class Query:
    """A parsed query: the whole folded text and its terms."""

    whole: str
    long_terms: tuple[str, ...]  # served by the trigram index
    short_terms: tuple[tuple[str, ...], ...]  # token sequences, served by the token index
    ignore_accents: bool


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field, INVALID_VALUE, message)])


def parse(query: str, *, ignore_accents: bool = False) -> Query:
    """``query`` as terms; ``ValidationFailed`` (field ``query``) when it cannot be searched for."""
    if len(query) > MAX_SEARCH_LENGTH:
        raise _invalid("query", f"A search query has at most {MAX_SEARCH_LENGTH} characters.")
    if control_character(query) is not None:
        raise _invalid("query", "A search query cannot hold control characters.")
    if not shows_something(query):
        raise _invalid("query", "Type something to search for: the query is empty or shows nothing.")
    folded = text.fold(query)
    if ignore_accents:
        folded = text.plain(folded)
    terms = folded.split()
    if len(terms) > MAX_TERMS:
        raise _invalid("query", f"A search query has at most {MAX_TERMS} words.")
    long_terms: list[str] = []
    short_terms: list[tuple[str, ...]] = []
    for term in dict.fromkeys(terms):
        if len(term) >= text.TRIGRAM:
            long_terms.append(term)
        else:
            tokens = tuple(text.token_list(term))
            if tokens:
                short_terms.append(tokens)
    if not long_terms and not short_terms:
        raise _invalid("query", "The query holds no letters or digits to search for.")
    return Query(" ".join(terms), tuple(long_terms), tuple(short_terms), ignore_accents)


def check_first(first: int) -> None:
    if not 1 <= first <= MAX_FIRST:
        raise _invalid("first", f"`first` must be 1 to {MAX_FIRST}.")


def _fts_phrase(tokens: Sequence[str]) -> str:
    phrase = '"' + " ".join(t.replace('"', '""') for t in tokens) + '"'
    return phrase + ("*" if not text.is_cjk(tokens[-1][-1]) else "")


def _ts_phrase(tokens: Sequence[str]) -> str:
    lexemes = ["'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in tokens]
    if not text.is_cjk(tokens[-1][-1]):
        lexemes[-1] += ":*"
    return "(" + " <-> ".join(lexemes) + ")"


def compared(plain: bool) -> sa.ColumnElement[str]:
    """The folded text a query is compared with: accent-free or not (``plain`` is empty where
    it would equal ``folded``)."""
    if not plain:
        return SearchEntry.folded
    return sa.case((SearchEntry.plain == "", SearchEntry.folded), else_=SearchEntry.plain)


def _match_conditions(dialect: str, q: Query) -> list[sa.ColumnElement[bool]]:
    e = SearchEntry
    conditions: list[sa.ColumnElement[bool]] = []
    plain = q.ignore_accents
    if dialect == "sqlite":
        # Accent-insensitive: either column (``plain`` is empty where it would equal ``folded``;
        # a query without accents found in ``folded`` is in ``plain`` too).
        if q.long_terms:
            column = "{folded plain}" if plain else "folded"
            match = " AND ".join(f'{column} : "{t.replace(chr(34), chr(34) * 2)}"' for t in q.long_terms)
            trigrams = sa.table("search_trigrams", sa.column("rowid"))
            conditions.append(e.id.in_(
                sa.select(trigrams.c.rowid).where(sa.literal_column("search_trigrams").op("MATCH")(match))
            ))
        if q.short_terms:
            column = "{tokens plain_tokens}" if plain else "tokens"
            match = " AND ".join(f"{column} : {_fts_phrase(t)}" for t in q.short_terms)
            tokens = sa.table("search_tokens", sa.column("rowid"))
            conditions.append(e.id.in_(
                sa.select(tokens.c.rowid).where(sa.literal_column("search_tokens").op("MATCH")(match))
            ))
        return conditions
    folded = compared(plain)
    for term in q.long_terms:
        # The key narrows through the trigram index; the folded text confirms.
        pattern = f"%{text.trigram_key(term)}%"
        conditions.append(sa.or_(e.folded_key.like(pattern), e.plain_key.like(pattern)) if plain else e.folded_key.like(pattern))
        conditions.append(sa.func.strpos(folded, term) > 0)
    if q.short_terms:
        query = " & ".join(_ts_phrase(t) for t in q.short_terms)
        conditions.append(sa.or_(_tsquery_condition(e.tokens, query), _tsquery_condition(e.plain_tokens, query))
                          if plain else _tsquery_condition(e.tokens, query))
    return conditions


def _tsquery_condition(tokens_column: Any, query: str) -> sa.ColumnElement[bool]:
    from sqlalchemy.dialects.postgresql import TSQUERY

    # The same expression as the GIN index: to_tsvector('simple'::regconfig, tokens).
    vector = sa.func.to_tsvector(sa.literal_column("'simple'::regconfig"), tokens_column)
    return vector.op("@@")(sa.cast(sa.cast(sa.literal(query, sa.Text), sa.Text), TSQUERY))


def _readable(session: AsyncSession, kinds: Sequence[str]) -> tuple[bool, sa.ColumnElement[bool] | None]:
    """Which entries the session's scope may see, by the records they come from: (whether any
    may be, the condition or None when all entries of every kind may be)."""
    scope = scope_of(session.sync_session)
    parts: list[sa.ColumnElement[bool]] = []
    whole: list[str] = []
    for kind in kinds:
        model = indexer.SOURCES[kind].model
        condition = scope.condition(model, "read") if scope is not None else None
        if condition is not None and condition.compare(sa.false()):
            continue
        if condition is None:
            whole.append(kind)
        else:
            parts.append(sa.and_(SearchEntry.entity == kind, SearchEntry.entity_id.in_(sa.select(model.id).where(condition))))
    if not parts and not whole:
        return False, None
    if not parts and set(whole) == set(ENTITIES):
        return True, None
    if whole:
        parts.append(SearchEntry.entity.in_(whole))
    return True, sa.or_(*parts)


def search_statement(session: AsyncSession, q: Query, *, first: int, kinds: Sequence[str] | None = None) -> sa.Select[Any] | None:
    """The one statement a search runs, or None when the caller can read none of ``kinds``."""
    kinds = list(dict.fromkeys(kinds or ENTITIES))
    dialect = session.get_bind().dialect.name
    any_readable, readable = _readable(session, kinds)
    if not any_readable:
        return None
    e = SearchEntry
    column = compared(q.ignore_accents)
    length = len(q.whole)
    how = sa.case(
        (column == q.whole, 1.0),
        (sa.func.substr(column, 1, length) == q.whole, 0.6),
        else_=0.2,
    )
    coverage = sa.case(
        (sa.func.length(column) <= length, 1.0),
        else_=sa.cast(length, sa.Float) / sa.func.length(column),
    )
    score = sa.cast(e.weight, sa.Float) / 100.0 * (0.6 * how + 0.4 * coverage)
    conditions = _match_conditions(dialect, q)
    scored = (
        sa.select(e.entity, e.entity_id, e.field, e.value, score.label("score"),
                  sa.func.row_number().over(partition_by=(e.entity, e.entity_id),
                                            order_by=(score.desc(), e.weight.desc(), e.id)).label("rank"))
        .where(*([readable] if readable is not None else []), *conditions)
        .subquery("scored")
    )
    return (
        sa.select(scored.c.entity, scored.c.entity_id, scored.c.field, scored.c.value, scored.c.score,
                  sa.func.count().over().label("total"))
        .where(scored.c.rank == 1)
        .order_by(scored.c.score.desc(), scored.c.entity, scored.c.entity_id)
        .limit(first)
    )


async def search(
    session: AsyncSession, *, query: str, first: int = 20, kinds: Sequence[str] | None = None, ignore_accents: bool = False
) -> SearchResult:
    """The records best matching ``query`` that the session's scope may read, best first."""
    check_first(first)
    q = parse(query, ignore_accents=ignore_accents)
    stmt = search_statement(session, q, first=first, kinds=kinds)
    if stmt is None:
        return SearchResult([], 0)
    # Writes of this transaction not yet in the index (it is brought up to date at commit).
    await session.run_sync(indexer.apply_pending)
    # The statement carries the scope's conditions itself (``_readable``): run it as Core, without
    # the ORM's per-statement work on rows that are plain tuples anyway.
    connection = await session.connection()
    rows = (await connection.execute(stmt)).all()
    hits = [Hit(r.entity, r.entity_id, r.field, r.value, round(float(r.score), 6)) for r in rows]
    return SearchResult(hits, rows[0].total if rows else 0)


async def explain(
    session: AsyncSession, *, query: str, first: int = 20, kinds: Sequence[str] | None = None, ignore_accents: bool = False
) -> str:
    """The database's plan for the statement ``search`` runs with these arguments (for tests
    and benches): EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL."""
    q = parse(query, ignore_accents=ignore_accents)
    stmt = search_statement(session, q, first=first, kinds=kinds)
    assert stmt is not None
    connection = await session.connection()
    sqlite = connection.dialect.name == "sqlite"

    def run(sync: sa.Connection) -> str:
        compiled = stmt.compile(dialect=sync.dialect, compile_kwargs={"render_postcompile": True})
        params = compiled.positiontup and tuple(compiled.params[n] for n in compiled.positiontup)
        prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
        rows = sync.exec_driver_sql(prefix + str(compiled), params or ()).all()
        return "\n".join(" ".join(str(c) for c in row) for row in rows)

    return await connection.run_sync(run)


async def reindex(session: AsyncSession, entity: str, ids: Sequence[int]) -> None:
    """Rebuild the search entries of records ``ids`` of ``entity`` ("customer", "opportunity",
    "ticket" or "product") from their rows, in the session's transaction. For writers that
    bypass the ORM (Core inserts of a bulk import): ORM writes keep the index by themselves."""
    if not ids:
        return
    connection = await session.connection()
    await connection.run_sync(indexer.reindex_sync, entity, list(ids))
