"""The built-in mail transport ``smtp`` (``crm_mail_transports``), used by the marketing and the
customer-service plugins; a partner's transport (an email service's API) registers the same way."""

from __future__ import annotations

from crm_graph import hookimpl
from crm_graph.mail.smtp import SmtpTransport


@hookimpl
def crm_mail_transports() -> SmtpTransport:
    return SmtpTransport()
