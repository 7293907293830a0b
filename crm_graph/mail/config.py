"""The outgoing mail server and sender every mail-sending part of a deployment shares:
``CRM_SMTP_*``, ``CRM_MAIL_FROM`` and ``CRM_PUBLIC_URL`` (the marketing plugin and automation
flows read the same ones)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crm_graph.settings import env_values


@dataclass(frozen=True)
class MailSettings:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    # none | starttls | tls (implicit TLS, port 465)
    smtp_tls: str = "none"
    smtp_timeout: float = 30.0
    mail_from: str = "CRM <marketing@example.com>"
    # The base of every link in mail (confirm, unsubscribe, open pixel, clicks): the address
    # recipients reach the server at. In production an https:// URL.
    public_url: str = "http://127.0.0.1:8000"

    def transport_config(self) -> dict[str, Any]:
        """The ``config`` a mail transport's ``open`` takes (crm_graph/core/mail.py)."""
        return {"host": self.smtp_host, "port": self.smtp_port, "username": self.smtp_username,
                "password": self.smtp_password, "tls": self.smtp_tls, "timeout": self.smtp_timeout}


def mail_settings(environ: Mapping[str, str] | None = None) -> MailSettings:
    env = os.environ if environ is None else environ
    mail = MailSettings(**env_values(MailSettings, "CRM_", env))  # type: ignore[arg-type]
    if mail.smtp_tls not in ("none", "starttls", "tls"):
        raise ValueError("CRM_SMTP_TLS must be none, starttls or tls")
    if not mail.public_url.startswith(("http://", "https://")):
        raise ValueError("CRM_PUBLIC_URL must be an http:// or https:// URL")
    return mail
