"""The marketing plugin's periodic jobs in `serve` and `crm-graph worker`: the sender (campaigns
due to start, recipients due to send) and, when configured, the bounce mailbox."""

from __future__ import annotations

import logging
from typing import Any

from crm_graph.core.jobs import Job
from crm_marketing.runtime import Runtime, runtime_of

log = logging.getLogger("crm_marketing")


async def send(db: Any, runtime: Runtime) -> str:
    from crm_marketing.sender import send_pending

    return str(await send_pending(db, runtime))


async def read_bounces(db: Any, runtime: Runtime) -> str:
    from crm_marketing.bounces import classify, read_mailbox
    from crm_marketing.consent import apply_bounce

    tuning = runtime.config.tuning

    async def handle(raw: bytes) -> None:
        # The same source as POST /mail/bounces: a DSN that arrives both ways counts once.
        await apply_bounce(db, runtime, classify(raw, return_local=tuning.return_local), source="dsn")

    count = await read_mailbox(tuning.bounce_imap_host, tuning.bounce_imap_port, tuning.bounce_imap_username,
                               tuning.bounce_imap_password, folder=tuning.bounce_imap_folder, handle=handle)
    return f"{count} messages read"


def jobs_of(app: Any) -> list[Job]:
    runtime = runtime_of(app.state.settings, app.state.plugins)
    tuning = runtime.config.tuning
    out = []
    if tuning.send_interval:
        out.append(Job("marketing-send", tuning.send_interval, lambda: send(app.state.db, runtime)))
    if tuning.bounce_interval and tuning.bounce_imap_host:
        out.append(Job("marketing-bounces", tuning.bounce_interval, lambda: read_bounces(app.state.db, runtime)))
    return out
