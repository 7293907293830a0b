"""The mail transports the plugins register (``crm_mail_transports``), by name: what every part
that sends mail (automation flows, agents' replies, campaigns) picks its transport from."""

from __future__ import annotations

from typing import Any

from crm_graph.core.mail import MailTransport


def transports_of(plugins: Any) -> dict[str, MailTransport]:
    """Every registered transport by its ``name``; two of one name stop start-up."""
    from crm_graph.plugins import collect_by_key

    return collect_by_key(plugins, "crm_mail_transports", protocol=MailTransport, key=lambda t: t.name,
                          what=lambda name: f"mail transport {name!r}")
