"""Tables of search: ``search_entries``, one row per indexed field value of a record.

The row keeps the value as stored and its folded forms (``crm_graph.search.text``). The indexes
that serve queries are the database's own and are made by the migration, not declared here:

- SQLite: two FTS5 tables over this one (external content, kept in step by triggers):
  ``search_trigrams`` (trigram tokenizer over ``folded`` and ``plain``) and ``search_tokens``
  (ascii tokenizer over ``tokens`` and ``plain_tokens``, where each CJK character is a word).
- PostgreSQL: GIN ``gin_trgm_ops`` indexes over ``folded_key`` and ``plain_key`` (pg_trgm), and
  GIN indexes over ``to_tsvector('simple', tokens)`` and ``to_tsvector('simple', plain_tokens)``.

Neither kind is something Alembic can compare, so ``crm_graph.search.alembic`` tells its
autogenerate (``alembic check``) to leave them alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_graph.db.base import Base, IdMixin
from crm_graph.db.types import IdType


class SearchEntry(IdMixin, Base):
    __tablename__ = "search_entries"

    entity: Mapped[str] = mapped_column(sa.String(16))  # customer, opportunity, ticket, product
    entity_id: Mapped[int] = mapped_column(IdType)
    field: Mapped[str] = mapped_column(sa.String(32))  # the GraphQL field it comes from
    weight: Mapped[int] = mapped_column(sa.SmallInteger)  # percent: how much a match here counts
    value: Mapped[str] = mapped_column(sa.Text)
    folded: Mapped[str] = mapped_column(sa.Text)
    plain: Mapped[str] = mapped_column(sa.Text)
    tokens: Mapped[str] = mapped_column(sa.Text)
    plain_tokens: Mapped[str] = mapped_column(sa.Text)
    # PostgreSQL only (null on SQLite): the ASCII spelling pg_trgm indexes on any cluster.
    folded_key: Mapped[str | None] = mapped_column(sa.Text)
    plain_key: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (sa.Index("ix_search_entries_entity_entity_id", "entity", "entity_id"),)


# Registered with the models, so every process that has the tables keeps the index (and Alembic
# leaves its database-specific parts alone).
from crm_graph.search import alembic as _alembic  # noqa: E402,F401
from crm_graph.search import indexer as _indexer  # noqa: E402,F401
