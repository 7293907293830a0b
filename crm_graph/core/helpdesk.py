"""The contract between the customer-service plugin and helpdesk connectors
(``crm_helpdesk_connectors``).

A connector is one helpdesk program's adapter (Request Tracker through REST2 is built in). The
service plugin (``plugins/crm_service``) keeps the rest: which tickets are linked (a mapping
table of CRM ticket and remote ticket), which side owns which field, each message copied once,
retries. Nothing here imports a plugin.

The rules every connector follows, because a sync that is retried must never double anything:

- Every ticket the CRM creates remotely carries the CRM's ticket number as its ``reference``
  (``T-000123``), and ``create_ticket`` first looks that reference up remotely: a ticket already
  there (a retry after a lost answer) is returned, never made again.
- Every message the CRM adds remotely carries a ``reference`` (``crm-comment-45``) that
  ``add_message`` looks up first, the same way; messages read back say which reference they
  carry, so the CRM does not copy its own messages back.
- ``remote_id`` values are stable: the same ticket or message has the same id every time it is
  read, so the CRM records each once whatever the overlap between two reads.
- Statuses and priorities cross the contract as the CRM's names (``NEW``, ``OPEN``,
  ``PENDING``, ``RESOLVED``, ``CLOSED``; ``LOW`` .. ``URGENT``): the connector maps them to and
  from the program's own.
- A failure raises ``HelpdeskError``; ``retry=False`` for what no retry can fix (a refused
  login, an unknown queue), True for the rest (a timeout, a 500, a dropped connection). Its
  message is shown to the user: the remote's words, never a credential.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

STATUSES = ("NEW", "OPEN", "PENDING", "RESOLVED", "CLOSED")
PRIORITIES = ("LOW", "NORMAL", "HIGH", "URGENT")


class HelpdeskError(Exception):
    def __init__(self, message: str, *, retry: bool = True, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry = retry
        self.field = field  # for a configuration problem: the config key at fault ("queue")


@dataclass(frozen=True)
class CustomerCard:
    """What the CRM knows of a ticket's customer, pushed to the helpdesk for its agents."""

    reference: str  # the customer's stable reference, "CRM-C-42"
    name: str
    email: str | None = None
    lifetime_value: str | None = None  # "1234.50 EUR"
    open_orders: int = 0
    open_order_value: str | None = None
    last_opportunities: Sequence[str] = ()  # "Renewal 2027 (PROPOSAL, 12000.00 EUR)"
    rfm_group: str | None = None
    satisfaction_index: float | None = None  # 0..1, the mean over the customer's rated tickets
    tickets_open: int = 0
    url: str | None = None  # the JSON card's address at the CRM, when CRM_PUBLIC_URL is set

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["last_opportunities"] = list(self.last_opportunities)
        return out


@dataclass(frozen=True)
class TicketDraft:
    """A CRM ticket as it is created remotely."""

    reference: str  # the CRM ticket number, "T-000123"
    subject: str
    requester_email: str | None
    requester_name: str | None
    status: str
    priority: str
    description: str | None = None


@dataclass(frozen=True)
class RemoteTicket:
    remote_id: str
    subject: str
    status: str  # a CRM status name
    priority: str  # a CRM priority name
    requester_email: str | None
    requester_name: str | None = None
    reference: str | None = None  # the CRM ticket number it carries, if the CRM made it
    created_at: datetime | None = None
    updated_at: datetime | None = None
    rating: int | None = None  # 1..5 when the helpdesk records a satisfaction rating
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RemoteMessage:
    remote_id: str  # stable: the program's id of the reply or comment
    ticket_remote_id: str
    public: bool  # a reply the customer sees (True) or an internal comment (False)
    body: str  # plain text
    author: str  # a name or an address
    from_customer: bool  # written by the requester (mail in, a portal) rather than by an agent
    created_at: datetime
    reference: str | None = None  # the reference the CRM gave it, when the CRM wrote it


@runtime_checkable
class HelpdeskClient(Protocol):
    async def find_ticket(self, reference: str) -> RemoteTicket | None: ...

    async def create_ticket(self, draft: TicketDraft) -> RemoteTicket: ...

    async def get_ticket(self, remote_id: str) -> RemoteTicket: ...

    async def update_ticket(self, remote_id: str, *, status: str | None = None,
                            priority: str | None = None) -> RemoteTicket: ...

    async def add_message(self, remote_id: str, *, public: bool, body: str, reference: str,
                          author: str | None = None) -> str:
        """Add a reply or comment; returns its remote id (that of the one already there when the
        reference is found)."""
        ...

    async def messages(self, remote_id: str) -> Sequence[RemoteMessage]:
        """The ticket's replies and comments, oldest first."""
        ...

    async def changed_since(self, since: datetime | None) -> Sequence[RemoteTicket]:
        """Tickets created or changed at or after ``since`` (all of them for None), oldest first."""
        ...

    async def push_customer(self, remote_id: str, card: CustomerCard) -> None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class HelpdeskConnector(Protocol):
    name: str
    description: str
    secret_keys: frozenset[str]  # config keys that are credentials: stored encrypted, never shown

    def check_config(self, config: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
        """Problems with a connection's settings, as (config key, message); empty when fine."""
        ...

    def connect(self, config: Mapping[str, Any], secrets: Mapping[str, str]) -> HelpdeskClient: ...
