"""One writer at a time per kind of insights run, on PostgreSQL: a transaction-scoped advisory
lock (waited for, released at commit). Two runs of one kind at once would both insert the rows
of customers new to it; SQLite serialises write transactions anyway."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

# Arbitrary fixed keys, away from the RFM job's (core/jobs.py).
LIFECYCLE = 7_402_131
CHURN = 7_402_132


async def serialise(session: AsyncSession, key: int) -> None:
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
