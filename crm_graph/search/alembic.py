"""Keep ``alembic check`` (autogenerate) away from the search indexes it cannot describe.

The migration makes FTS5 virtual tables (with their shadow tables) on SQLite and GIN indexes
with operator classes on PostgreSQL. Neither is in the models' metadata, so autogenerate would
ask to drop them. A comparator registered with Alembic's documented extension point, running
after the built-in ones, removes exactly those operations and nothing else.
"""

from __future__ import annotations

from typing import Any

FTS_TABLES = ("search_trigrams", "search_tokens")
POSTGRES_INDEXES = (
    "ix_search_entries_folded_key_trgm",
    "ix_search_entries_plain_key_trgm",
    "ix_search_entries_tokens_tsv",
    "ix_search_entries_plain_tokens_tsv",
)


def _ours(op: Any) -> bool:
    from alembic.operations import ops

    if isinstance(op, ops.DropTableOp):
        return any(op.table_name == t or op.table_name.startswith(f"{t}_") for t in FTS_TABLES)
    if isinstance(op, ops.DropIndexOp):
        return op.index_name in POSTGRES_INDEXES
    return False


def _leave_search_indexes(_context: Any, upgrade_ops: Any) -> Any:
    from alembic.operations import ops
    from alembic.util import PriorityDispatchResult

    kept = []
    for op in upgrade_ops.ops:
        if isinstance(op, ops.ModifyTableOps):
            op.ops = [o for o in op.ops if not _ours(o)]
            if not op.ops:
                continue
        elif _ours(op):
            continue
        kept.append(op)
    upgrade_ops.ops = kept
    return PriorityDispatchResult.CONTINUE


def _register() -> None:
    try:
        from alembic.autogenerate.compare import comparators
        from alembic.util import DispatchPriority
    except ImportError:  # pragma: no cover - Alembic is a dependency; older ones lack priorities
        return
    if getattr(comparators, "_crm_search_registered", False):
        return
    comparators.dispatch_for("autogenerate", priority=DispatchPriority.LAST)(_leave_search_indexes)
    comparators._crm_search_registered = True


_register()
