"""Events of a run, written to the outbox in one INSERT: a run may announce thousands of
customers, and flushed as objects each event would take an INSERT of its own on SQLite (which
cannot hand back the ids of a multi-row insert in order; nothing here needs them). The way
segment membership events are written."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.events import OutboxEvent


async def write_all(session: AsyncSession, events: Sequence[OutboxEvent]) -> None:
    """Insert ``events`` (made by ``record_event``, so added to the session) in one statement."""
    if not events:
        return
    for event in events:
        session.expunge(event)
    await session.flush()  # events recorded before these keep their place in the outbox
    columns = [a.key for a in sa.inspect(OutboxEvent).column_attrs if a.key != "id"]
    await session.execute(sa.insert(OutboxEvent), [{c: getattr(e, c) for c in columns} for e in events])
