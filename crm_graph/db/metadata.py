"""The complete MetaData: importing this module imports every model of the core domains."""

from __future__ import annotations

import sqlalchemy as sa


def target_metadata() -> sa.MetaData:
    # Import for the side effect of registering each domain's tables on Base.metadata.
    import crm_graph.activities.models  # noqa: F401
    import crm_graph.core.events  # noqa: F401
    import crm_graph.customers.models  # noqa: F401
    from crm_graph.db.base import Base

    return Base.metadata
