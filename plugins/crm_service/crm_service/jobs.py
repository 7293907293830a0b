"""The plugin's work in `serve` and `crm-graph worker`: the mailbox watchers (IDLE, started and
stopped as channels come and go) and the periodic pull of each helpdesk connection."""

from __future__ import annotations

import logging
from typing import Any

from crm_graph.core.jobs import Job
from crm_service.config import service_settings
from crm_service.helpdesk import sync
from crm_service.reader import Watchers

log = logging.getLogger("crm_service")


async def pull_helpdesks(app: Any) -> str:
    settings = service_settings()
    out = []
    for connection_id in await sync.connection_ids(app.state.db):
        try:
            out.append(str(await sync.pull(app.state.db, app.state.settings, settings, app.state.plugins, connection_id)))
        except Exception as exc:  # noqa: BLE001 - one helpdesk down does not stop the others
            out.append(f"connection {connection_id}: {exc}")
    return "; ".join(out) or "no helpdesk connections"


def jobs_of(app: Any) -> list[Job]:
    settings = service_settings()
    out = []
    if settings.watch:
        watchers = Watchers(app.state.db, app.state.settings, settings)
        app.state.crm_service_watchers = watchers
        out.append(Job("mail-watch", 15.0, watchers.sync))
    if settings.helpdesk_interval:
        out.append(Job("helpdesk-pull", settings.helpdesk_interval, lambda: pull_helpdesks(app)))
    return out


async def stop(app: Any) -> None:
    watchers = getattr(app.state, "crm_service_watchers", None)
    if watchers is not None:
        await watchers.aclose()
