"""The contract between mail-sending parts of the CRM and mail transports (``crm_mail_transports``)
and marketing providers (``crm_marketing_providers``).

A **transport** carries one finished message to a mail server or an email service provider. The
sender around it (the marketing plugin's queue, a helpdesk reply) keeps the rest: who gets what,
at most once per recipient, retries, suppression. The rules a transport follows:

- ``open(config)`` returns a session; ``session.send(mail)`` hands over one message and returns
  the server's answer (e.g. ``250 2.0.0 Ok: queued as 4F2``) only once the server accepted it.
- A failure raises ``MailError``. ``permanent=True`` when no retry can help (the recipient was
  refused with a 5xx: it goes on the suppression list as a bounce); ``permanent=False`` for the
  rest (a 4xx, a timeout, a dropped connection). ``accepted_maybe=True`` when the server may have
  taken the message before the failure (the connection dropped after the message's final dot):
  the sender then never sends it again.
- ``config`` is a plain mapping (``host``, ``port``, ``username``, ``password``, ``tls``,
  ``timeout`` for SMTP); a transport reads the keys it knows and ignores the others.

A **marketing provider** moves audiences and results between the CRM and an outside marketing
tool: ``export_audience`` turns a segment's members into the tool's list format (a file, or an
API call made by the provider), ``parse_results`` turns the tool's report into results the CRM
records once each (``external_id`` stays the same every time the same report row is read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


class MailError(Exception):
    def __init__(self, message: str, *, permanent: bool = False, code: int | None = None,
                 accepted_maybe: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code
        self.accepted_maybe = accepted_maybe


@dataclass(frozen=True)
class OutgoingMail:
    content: bytes  # the whole message as it is to be sent (CRLF line ends, any signature added)
    envelope_from: str  # the return path (a VERP address for marketing mail)
    recipients: Sequence[str]
    message_id: str = ""


@runtime_checkable
class MailSession(Protocol):
    async def send(self, mail: OutgoingMail) -> str: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class MailTransport(Protocol):
    name: str
    description: str

    async def open(self, config: Mapping[str, Any]) -> MailSession: ...


@dataclass(frozen=True)
class AudienceMember:
    customer_id: str  # the customer's global ID
    email: str
    display_name: str
    first_name: str | None = None
    last_name: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportedList:
    filename: str
    content_type: str
    content: bytes
    count: int


# What a provider reports: OPENED, CLICKED, UNSUBSCRIBED, BOUNCED, SOFT_BOUNCED, COMPLAINED.
RESULT_KINDS = ("OPENED", "CLICKED", "UNSUBSCRIBED", "BOUNCED", "SOFT_BOUNCED", "COMPLAINED")


@dataclass(frozen=True)
class ProviderResult:
    external_id: str
    email: str
    kind: str
    at: datetime
    url: str | None = None
    detail: str | None = None


class ProviderError(Exception):
    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@runtime_checkable
class MarketingProvider(Protocol):
    name: str
    description: str

    def export_audience(self, name: str, members: Sequence[AudienceMember]) -> ExportedList: ...

    def parse_results(self, content: bytes) -> Iterable[ProviderResult]: ...
