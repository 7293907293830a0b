"""The marketing plugin's settings, read from the environment.

The SMTP server, the sender and the public base of links are named ``CRM_SMTP_*``,
``CRM_MAIL_FROM`` and ``CRM_PUBLIC_URL`` (other mail-sending parts of a deployment read the
same ones); the rest is ``CRM_MARKETING_*``. See docs/marketing.md for each.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from crm_graph.mail.config import MailSettings, mail_settings
from crm_graph.settings import env_values


@dataclass(frozen=True)
class MarketingTuning:
    transport: str = "smtp"
    # Messages per second over all connections (0: no limit) and connections per recipient domain.
    rate: float = 0.0
    domain_concurrency: int = 2
    concurrency: int = 8
    batch_size: int = 100
    # Messages marked SENDING together and sent over one connection before their answers are
    # recorded (a sender killed mid-chunk leaves at most this many UNCONFIRMED per connection).
    chunk_size: int = 10
    # VERP: the local part and domain of return paths (bounces+<token>@<domain>); the domain
    # defaults to CRM_MAIL_FROM's.
    return_local: str = "bounces"
    return_domain: str = ""
    # A claimed message whose sender died is resolved after this many seconds.
    lease: float = 120.0
    # Seconds between two passes of the sender in `serve` and `worker` (0: only `crm-graph marketing send`).
    send_interval: float = 2.0
    # Seconds between two reads of the bounce mailbox (0: off); its IMAP account.
    bounce_interval: float = 0.0
    bounce_imap_host: str = ""
    bounce_imap_port: int = 143
    bounce_imap_username: str = ""
    bounce_imap_password: str = ""
    bounce_imap_folder: str = "INBOX"
    # A shared secret for POST /mail/bounces (raw DSNs posted by the MTA); empty: the route is off.
    inbound_secret: str = ""
    # Soft bounces within 30 days that suppress an address.
    soft_bounce_limit: int = 3
    # Days a double opt-in link stays valid, and days attributed outcomes count after a click.
    confirm_days: int = 7
    attribution_days: int = 7
    # The subscription form: sign-ups per client address per hour.
    form_rate: int = 10
    policy_text: str = "You agree to receive our newsletter. You can unsubscribe at any time."
    # DKIM (optional): the signing domain, selector and private key (PEM) file.
    dkim_domain: str = ""
    dkim_selector: str = ""
    dkim_key_file: str = ""


@dataclass(frozen=True)
class MarketingSettings:
    mail: MailSettings = field(default_factory=MailSettings)
    tuning: MarketingTuning = field(default_factory=MarketingTuning)

    @property
    def return_domain(self) -> str:
        if self.tuning.return_domain:
            return self.tuning.return_domain
        from email.utils import parseaddr

        address = parseaddr(self.mail.mail_from)[1]
        return address.rpartition("@")[2] or "localhost"


def marketing_settings(environ: Mapping[str, str] | None = None) -> MarketingSettings:
    env = os.environ if environ is None else environ
    mail = mail_settings(env)
    tuning = MarketingTuning(**env_values(MarketingTuning, "CRM_MARKETING_", env))  # type: ignore[arg-type]
    if tuning.rate < 0 or tuning.domain_concurrency < 1 or tuning.concurrency < 1 or tuning.batch_size < 1 \
            or tuning.chunk_size < 1:
        raise ValueError("CRM_MARKETING_RATE must be >= 0; CONCURRENCY, DOMAIN_CONCURRENCY, BATCH_SIZE and CHUNK_SIZE >= 1")
    if bool(tuning.dkim_domain) != bool(tuning.dkim_selector) or (tuning.dkim_domain and not tuning.dkim_key_file):
        raise ValueError("DKIM needs CRM_MARKETING_DKIM_DOMAIN, _SELECTOR and _KEY_FILE together")
    return MarketingSettings(mail=mail, tuning=tuning)
