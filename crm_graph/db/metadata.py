"""The complete MetaData: every table of the core domains (and the outbox)."""

from __future__ import annotations

import sqlalchemy as sa


def target_metadata() -> sa.MetaData:
    import crm_graph.core.events  # noqa: F401  (the outbox table)
    from crm_graph.db.base import Base
    from crm_graph.domains import import_models

    import_models()
    return Base.metadata
