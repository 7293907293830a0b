"""One marketing message as sent: headers, the two parts, the VERP return path, DKIM.

- ``Message-ID`` is made from the campaign and the recipient (``<c12.r345.@domain>``-like), so the
  same message keeps the same id whatever happens to its sending.
- ``List-Unsubscribe`` has the HTTPS one-click URL and ``List-Unsubscribe-Post:
  List-Unsubscribe=One-Click`` (RFC 8058); the URL works without sign-in (POST /mail/u/...).
- The return path is ``bounces+<VERP token>@<return domain>``: a bounce names its recipient.
- Campaign mail is sent on a person's decision, so it has no ``Auto-Submitted``; the double opt-in
  mail, sent by the system in answer to a form, has ``Auto-Submitted: auto-generated``.
- With DKIM configured the signature covers From, To, Subject, Date, Message-ID and both
  unsubscribe headers (a receiver can then trust the one-click URL).
"""

from __future__ import annotations

from collections.abc import Mapping
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

import dkim

from crm_graph.core.clock import utcnow
from crm_marketing.config import MarketingSettings

SIGNED_HEADERS = (b"From", b"To", b"Subject", b"Date", b"Message-ID", b"List-Unsubscribe",
                  b"List-Unsubscribe-Post", b"List-Id", b"Reply-To", b"MIME-Version", b"Content-Type")


def message_id(config: MarketingSettings, campaign_id: int, recipient_id: int) -> str:
    return f"<crm.c{campaign_id}.r{recipient_id}@{config.return_domain}>"


def build(
    config: MarketingSettings,
    *,
    from_address: str,
    to_address: str,
    to_name: str | None,
    subject: str,
    html: str,
    text: str,
    msgid: str | None = None,
    reply_to: str | None = None,
    unsubscribe_url: str | None = None,
    list_id: str | None = None,
    feedback_id: str | None = None,
    auto_submitted: bool = False,
    extra: Mapping[str, str] | None = None,
) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = from_address
    msg["To"] = formataddr((to_name or "", to_address)) if to_name else to_address
    msg["Subject"] = subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = msgid or make_msgid(domain=config.return_domain)
    msg["MIME-Version"] = "1.0"
    if reply_to:
        msg["Reply-To"] = reply_to
    if unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if list_id:
        msg["List-Id"] = list_id
    if feedback_id:
        msg["Feedback-ID"] = feedback_id
    if auto_submitted:
        msg["Auto-Submitted"] = "auto-generated"
    else:
        msg["Precedence"] = "bulk"
    for name, value in (extra or {}).items():
        msg[name] = value
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    content = msg.as_bytes(policy=SMTP)
    return sign(config, content)


def sign(config: MarketingSettings, content: bytes) -> bytes:
    tuning = config.tuning
    if not tuning.dkim_domain:
        return content
    key = Path(tuning.dkim_key_file).read_bytes()
    present = {line.split(b":", 1)[0].strip().lower() for line in content.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
               if b":" in line and not line[:1].isspace()}
    headers = [h for h in SIGNED_HEADERS if h.lower() in present]
    signature = dkim.sign(content, tuning.dkim_selector.encode(), tuning.dkim_domain.encode(), key,
                          include_headers=headers, linesep=b"\r\n")
    return signature + content


def return_path(config: MarketingSettings, token: str) -> str:
    return f"{config.tuning.return_local}+{token}@{config.return_domain}"


def address_of(value: str) -> str:
    from email.utils import parseaddr

    return parseaddr(value)[1]


def formatted(name: str | None, address: str) -> str:
    return formataddr((name or "", address)) if name else address
