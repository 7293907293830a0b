"""The periodic pull of payments (a job of the app's scheduler)."""

from __future__ import annotations

import logging
from typing import Any

from crm_finance import service
from crm_graph.core.accounting import AccountingError
from crm_graph.core.jobs import Job

log = logging.getLogger("crm_finance")


async def pull_all(db: Any, settings: Any, backends: Any) -> str:
    async with db.reader() as session:
        active = await service.connections(session, active=True)
    parts = []
    for connection in active:
        try:
            result = await service.pull_payments(db, settings, backends, connection.id)
        except AccountingError as exc:
            log.warning("finance connection %s: payments could not be read: %s", connection.name, exc.message)
            parts.append(f"{connection.name}: failed")
            continue
        parts.append(f"{connection.name}: {result.applied} new of {result.seen}")
    return "; ".join(parts) or "no connection"


def pull_job(app: Any) -> Job | None:
    interval = service.finance_settings().pull_interval
    if not interval:
        return None
    from crm_finance.subscriber import FinanceSync
    from crm_graph.core.subscribers import find_subscriber

    backends = find_subscriber(app.state.dispatcher, FinanceSync).backends
    return Job("finance-pull", interval, lambda: pull_all(app.state.db, app.state.settings, backends))
