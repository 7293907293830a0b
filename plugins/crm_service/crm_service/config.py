"""The customer-service plugin's settings, ``CRM_SERVICE_*`` from the environment (see
docs/service.md). Mailboxes and helpdesk connections themselves are records made through the
API; these are the limits and pacing that apply to all of them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from crm_graph.settings import env_values


@dataclass(frozen=True)
class ServiceSettings:
    # The transport replies go out through (crm_mail_transports); "smtp" is built in.
    transport: str = "smtp"
    # The domain of the Message-IDs of our outgoing mail (<crm.ticket.…@domain>); empty: each
    # channel's address domain.
    message_domain: str = ""
    # Attachments larger than this are listed on the comment but not stored; so are those past
    # the total per mail. Mails larger than max_message_bytes are not fetched whole: their ticket
    # or comment says so and the mail stays in the mailbox's processed folder.
    max_attachment_bytes: int = 10 * 2**20
    max_total_attachment_bytes: int = 25 * 2**20
    max_message_bytes: int = 60 * 2**20
    # Mails one sender may open or add to tickets within an hour; past it they are kept as FLOOD.
    flood_limit: int = 30
    # Mails fetched per IMAP round trip, and the IMAP timeout in seconds.
    fetch_batch: int = 20
    imap_timeout: float = 30.0
    # IDLE is re-issued after this many seconds (servers drop idle clients after 30 minutes).
    idle_seconds: float = 600.0
    # Reconnect backoff after a failure: from 1 s doubling up to this many seconds.
    max_backoff: float = 300.0
    # Mailboxes are watched with IDLE in `serve` and `crm-graph worker` when true.
    watch: bool = True
    # Seconds between two syncs of each helpdesk connection in `serve` and `worker` (0: off;
    # `crm-graph helpdesk sync` runs one).
    helpdesk_interval: float = 30.0
    # Seconds the remote changes are read back from before the last cursor (clock skew, second
    # granularity): overlap rather than miss; what was seen is recognised.
    helpdesk_overlap: float = 120.0


def service_settings(environ: Mapping[str, str] | None = None) -> ServiceSettings:
    env = os.environ if environ is None else environ
    out = ServiceSettings(**env_values(ServiceSettings, "CRM_SERVICE_", env))  # type: ignore[arg-type]
    if min(out.max_attachment_bytes, out.max_total_attachment_bytes, out.max_message_bytes, out.flood_limit,
           out.fetch_batch) < 1:
        raise ValueError("CRM_SERVICE_MAX_*_BYTES, FLOOD_LIMIT and FETCH_BATCH must be >= 1")
    if out.imap_timeout <= 0 or out.idle_seconds <= 0 or out.max_backoff < 1 or out.helpdesk_interval < 0:
        raise ValueError("CRM_SERVICE_IMAP_TIMEOUT and IDLE_SECONDS must be > 0, MAX_BACKOFF >= 1, "
                         "HELPDESK_INTERVAL >= 0")
    return out
