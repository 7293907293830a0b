"""The search index.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_graph.db.types


revision: str = '0013'
down_revision: str | Sequence[str] | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite: FTS5 tables with external content (search_entries), kept in step by triggers.
_SQLITE = [
    "CREATE VIRTUAL TABLE search_trigrams USING fts5(folded, plain, content='search_entries', "
    "content_rowid='id', tokenize='trigram case_sensitive 1')",
    "CREATE VIRTUAL TABLE search_tokens USING fts5(tokens, plain_tokens, content='search_entries', "
    "content_rowid='id', tokenize='ascii')",
    "CREATE TRIGGER search_entries_ai AFTER INSERT ON search_entries BEGIN "
    "INSERT INTO search_trigrams(rowid, folded, plain) VALUES (new.id, new.folded, new.plain); "
    "INSERT INTO search_tokens(rowid, tokens, plain_tokens) VALUES (new.id, new.tokens, new.plain_tokens); END",
    "CREATE TRIGGER search_entries_ad AFTER DELETE ON search_entries BEGIN "
    "INSERT INTO search_trigrams(search_trigrams, rowid, folded, plain) VALUES ('delete', old.id, old.folded, old.plain); "
    "INSERT INTO search_tokens(search_tokens, rowid, tokens, plain_tokens) "
    "VALUES ('delete', old.id, old.tokens, old.plain_tokens); END",
    "CREATE TRIGGER search_entries_au AFTER UPDATE ON search_entries BEGIN "
    "INSERT INTO search_trigrams(search_trigrams, rowid, folded, plain) VALUES ('delete', old.id, old.folded, old.plain); "
    "INSERT INTO search_tokens(search_tokens, rowid, tokens, plain_tokens) "
    "VALUES ('delete', old.id, old.tokens, old.plain_tokens); "
    "INSERT INTO search_trigrams(rowid, folded, plain) VALUES (new.id, new.folded, new.plain); "
    "INSERT INTO search_tokens(rowid, tokens, plain_tokens) VALUES (new.id, new.tokens, new.plain_tokens); END",
]

# PostgreSQL: pg_trgm (a trusted extension) over the ASCII keys, and token vectors.
_POSTGRES = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_search_entries_folded_key_trgm ON search_entries USING gin (folded_key gin_trgm_ops)",
    "CREATE INDEX ix_search_entries_plain_key_trgm ON search_entries USING gin (plain_key gin_trgm_ops)",
    "CREATE INDEX ix_search_entries_tokens_tsv ON search_entries USING gin (to_tsvector('simple'::regconfig, tokens))",
    "CREATE INDEX ix_search_entries_plain_tokens_tsv ON search_entries "
    "USING gin (to_tsvector('simple'::regconfig, plain_tokens))",
]


def upgrade() -> None:
    op.create_table('search_entries',
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('entity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('field', sa.String(length=32), nullable=False),
    sa.Column('weight', sa.SmallInteger(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('folded', sa.Text(), nullable=False),
    sa.Column('plain', sa.Text(), nullable=False),
    sa.Column('tokens', sa.Text(), nullable=False),
    sa.Column('plain_tokens', sa.Text(), nullable=False),
    sa.Column('folded_key', sa.Text(), nullable=True),
    sa.Column('plain_key', sa.Text(), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_search_entries'))
    )
    with op.batch_alter_table('search_entries', schema=None) as batch_op:
        batch_op.create_index('ix_search_entries_entity_entity_id', ['entity', 'entity_id'], unique=False)
    bind = op.get_bind()
    for statement in _SQLITE if bind.dialect.name == "sqlite" else _POSTGRES:
        op.execute(statement)
    # Records that exist already are indexed here, in the same transaction.
    _index_existing(bind)


def _index_existing(bind: sa.engine.Connection) -> None:
    from crm_graph.search import indexer

    for entity in indexer.SOURCES:
        ids = [row[0] for row in bind.execute(sa.text(f"SELECT id FROM {indexer.SOURCES[entity].table}"))]
        for start in range(0, len(ids), 1000):
            indexer.reindex_sync(bind, entity, ids[start:start + 1000])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for trigger in ("search_entries_ai", "search_entries_ad", "search_entries_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS search_trigrams")
        op.execute("DROP TABLE IF EXISTS search_tokens")
    else:
        for name in ("ix_search_entries_folded_key_trgm", "ix_search_entries_plain_key_trgm",
                     "ix_search_entries_tokens_tsv", "ix_search_entries_plain_tokens_tsv"):
            op.execute(f"DROP INDEX IF EXISTS {name}")
    with op.batch_alter_table('search_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_search_entries_entity_entity_id')
    op.drop_table('search_entries')
