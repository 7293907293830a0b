"""Request Tracker 5 as the helpdesk, over its REST2 API at ``<url>/REST/2.0/``.

Config (camelCase JSON):

- ``url``: RT's web address, ``https://rt.example.com`` (or with RT's web path, ``.../rt``); no
  user or password in it.
- ``username``: the RT user the CRM works as (with the ``password`` secret).
- ``queue`` (optional): the queue tickets are created in and whose changes are read, "General".
- ``referenceField`` (optional): the name of the custom fields holding the CRM's references,
  "CRM Reference": a ticket custom field (the CRM ticket number, ``T-000123``) and a transaction
  custom field of the same name (a reply's or comment's reference, ``crm-comment-45``), both
  "Enter one value" and applied to the queue. The user needs SeeCustomField and
  ModifyCustomField on them, besides ShowTicket, CreateTicket, ModifyTicket, ReplyToTicket and
  CommentOnTicket on the queue.
- ``customerField`` (optional): the ticket custom field for the customer card ("Fill in one text
  area"). Left out: "CRM Customer" when the queue has it, else the card goes in as a comment;
  ``null``: always a comment; a name: that field, which must exist.
- ``timeout`` (optional): seconds per request, 30.

Secret: ``password`` (basic auth), or ``token`` (an RT::Authen::Token auth token; no username).

How RT is used:

- Statuses (RT's default lifecycle): new, open, stalled, resolved are NEW, OPEN, PENDING,
  RESOLVED; rejected and deleted are CLOSED, and CLOSED is written as rejected. A status of
  another lifecycle reads as OPEN. RT creates tickets only as new, open or resolved: a PENDING or
  CLOSED ticket is created new, then set.
- Priorities are RT's numbers (REST2 reads and writes numbers; RT 5's labels are only a view):
  LOW, NORMAL, HIGH, URGENT are written as 0, 50, 80, 100 — the four labels of RT_Config's own
  ``%PriorityAsString`` example (Low, Medium, High, On Fire), which a site can set so agents see
  the same four (RT's default three show 80 as Medium) — and read back by range: below 25 LOW,
  below 65 NORMAL, below 90 HIGH, else URGENT. A label, should one come, is read by name.
- A ticket's reference is its ``referenceField`` value, looked up with TicketSQL before creating
  (REST2 never searches deleted tickets: a deleted one is made again).
- A message's reference is a transaction custom field, set with the reply or comment in the same
  REST2 call (``TxnCustomFields``), looked up with TransactionSQL first and checked after (RT
  skips a field the user may not modify without failing the call). Neither the content nor the
  subject would do: RT mails both to the requester, and agents edit what they quote. The Create
  transaction of a ticket the CRM made carries the ticket's reference (REST2 sets no
  transaction field at creation). RT records the REST user as a message's author: ``author`` is
  not sent.
- ``from_customer``: the transaction's creator is one of the ticket's requesters (mail in through
  rt-mailgate, the self-service pages).
- ``changed_since``: TicketSQL reads a date in the user's (or RT's) time zone, which REST2 does
  not tell, so the condition on LastUpdated is one day early (any zone is within ±14 h) and the
  tickets come newest first (LastUpdated as REST2 gives it, in UTC), read until one is older than
  ``since`` less a second (LastUpdated has whole seconds). Only the queue's tickets.
- ``push_customer``: the card as text in the customer field, written only when it differs. As a
  comment, its reference is ``crm-card-<hash of the text>`` and it is posted when the newest card
  comment of the ticket has another one.
- Errors: a refused login (401), missing rights (403), an unknown queue or custom field and RT's
  refusals are ``HelpdeskError(retry=False)`` saying what to fix; timeouts, dropped connections,
  429 and 5xx are ``retry=True``. No message holds the password or token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import httpx

from crm_graph.core.remote import base_url_problem, scrub
from crm_graph.core.helpdesk import (
    CustomerCard,
    HelpdeskError,
    RemoteMessage,
    RemoteTicket,
    TicketDraft,
)

DEFAULT_TIMEOUT = 30.0
DEFAULT_QUEUE = "General"
DEFAULT_REFERENCE_FIELD = "CRM Reference"
DEFAULT_CUSTOMER_FIELD = "CRM Customer"
PER_PAGE = 100  # REST2's largest page
ZONE_MARGIN = timedelta(days=1)
GRANULARITY = timedelta(seconds=1)

TO_CRM_STATUS = {"new": "NEW", "open": "OPEN", "stalled": "PENDING", "resolved": "RESOLVED", "rejected": "CLOSED",
                 "deleted": "CLOSED"}
TO_RT_STATUS = {"NEW": "new", "OPEN": "open", "PENDING": "stalled", "RESOLVED": "resolved", "CLOSED": "rejected"}
CREATABLE = frozenset({"new", "open", "resolved"})  # the default lifecycle's transitions from ""
TO_RT_PRIORITY = {"LOW": 0, "NORMAL": 50, "HIGH": 80, "URGENT": 100}
PRIORITY_RANGES = ((25, "LOW"), (65, "NORMAL"), (90, "HIGH"))
PRIORITY_LABELS = {"low": "LOW", "medium": "NORMAL", "normal": "NORMAL", "high": "HIGH", "urgent": "URGENT",
                   "critical": "URGENT", "on fire": "URGENT", "emergency": "URGENT"}
MESSAGE_TYPES = {"Create": True, "Correspond": True, "Comment": False}  # RT type: public
CARD_PREFIX = "crm-card-"
TICKET_FIELDS = {"fields": "Subject,Status,Priority,Requestor,CustomFields,Created,LastUpdated,Queue,Owner",
                 "fields[Requestor]": "Name,EmailAddress,RealName", "fields[Queue]": "Name"}


def to_crm_status(status: str | None) -> str:
    return TO_CRM_STATUS.get((status or "").lower(), "OPEN")


def to_crm_priority(priority: Any) -> str:
    text = str(priority if priority is not None else "").strip()
    try:
        number = int(float(text))
    except (ValueError, OverflowError):
        return PRIORITY_LABELS.get(text.lower(), "NORMAL")
    return next((name for limit, name in PRIORITY_RANGES if number < limit), "URGENT")


def card_text(card: CustomerCard) -> str:
    """The card as agents read it in RT."""
    lines = [f"{card.name} ({card.reference})"]
    if card.email:
        lines.append(f"E-mail: {card.email}")
    if card.lifetime_value:
        lines.append(f"Lifetime value: {card.lifetime_value}")
    orders = f"Open orders: {card.open_orders}"
    lines.append(f"{orders} ({card.open_order_value})" if card.open_orders and card.open_order_value else orders)
    lines.append(f"Open tickets: {card.tickets_open}")
    if card.rfm_group:
        lines.append(f"RFM group: {card.rfm_group}")
    if card.satisfaction_index is not None:
        lines.append(f"Satisfaction: {round(card.satisfaction_index * 100)} %")
    if card.last_opportunities:
        lines.append("Last opportunities:")
        lines.extend(f"- {item}" for item in card.last_opportunities)
    if card.url:
        lines.append(f"In the CRM: {card.url}")
    return "\n".join(lines)


def _normal(text: str | None) -> str:
    return "\n".join(line.rstrip() for line in (text or "").replace("\r\n", "\n").strip().split("\n"))


def _mapping(value: Any) -> Mapping[str, Any]:
    """A REST2 sub-record (an object, or "" where the user may not see it)."""
    return value if isinstance(value, Mapping) else {}


def _sql(value: str) -> str:
    """A TicketSQL / TransactionSQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _when(value: Any) -> datetime | None:
    """REST2's times are ISO 8601 in UTC; RT's "not set" is the epoch."""
    if not isinstance(value, str) or not value or value.startswith("1970-01-01"):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _requester(name: str | None, email: str) -> str:
    if not name:
        return email
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + f'" <{email}>'


class _Text(HTMLParser):
    """An HTML mail body as plain text (for a message that has no text/plain part)."""

    BREAKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self._skip = max(0, self._skip - 1)
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)

    @classmethod
    def of(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        parser.close()
        lines = [" ".join(line.split()) for line in "".join(parser.parts).split("\n")]
        out: list[str] = []
        for line in lines:
            if line or (out and out[-1]):
                out.append(line)
        return "\n".join(out).strip()


def _text(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


class RequestTracker:
    name = "rt"
    description = "Request Tracker 5 over REST2: tickets by CRM reference, replies and comments, the customer card"
    secret_keys = frozenset({"password", "token"})

    def check_config(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        if not isinstance(config, Mapping):
            return [("", "the RT config is an object with url and username")]
        problems: list[tuple[str, str]] = []
        url_problem = base_url_problem(config.get("url"), "https://rt.example.com")
        if url_problem:
            problems.append(("url", url_problem))
        for key in ("username", "queue", "referenceField"):
            if config.get(key) is not None and _text(config, key) is None:
                problems.append((key, "must be a non-empty string when given"))
        if config.get("customerField") is not None and _text(config, "customerField") is None:
            problems.append(("customerField", "must be a custom field's name, or null for a comment"))
        if config.get("timeout") is not None:
            timeout = config["timeout"]
            if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
                problems.append(("timeout", "must be a number of seconds above 0 and at most 600"))
        return problems

    def connect(self, config: Mapping[str, Any], secrets: Mapping[str, str]) -> RtClient:
        problems = self.check_config(config)
        if problems:
            key, message = problems[0]
            raise HelpdeskError(f"{key}: {message}", retry=False, field=key or None)
        token, password, username = secrets.get("token"), secrets.get("password"), _text(config, "username")
        if isinstance(token, str) and token:
            return RtClient(config, token=token)
        if not isinstance(password, str) or not password:
            raise HelpdeskError("the RT password (or an auth token) is missing", retry=False, field="password")
        if username is None:
            raise HelpdeskError("username: required with a password: the RT user to log in as", retry=False,
                                field="username")
        return RtClient(config, username=username, password=password)


@dataclass(frozen=True)
class _Queue:
    """The queue and the ids of the custom fields the config names (read once per client)."""

    id: int
    name: str
    reference: str  # ticket custom field id
    message_reference: str  # transaction custom field id
    customer: str | None  # ticket custom field id, None: the card goes in as a comment


class RtClient:
    def __init__(self, config: Mapping[str, Any], *, username: str | None = None, password: str | None = None,
                 token: str | None = None) -> None:
        self.base = config["url"].strip().rstrip("/")
        self.where = f"RT at {self.base}"
        self.username = username
        self.timeout = float(config.get("timeout") or DEFAULT_TIMEOUT)
        self.queue_name = _text(config, "queue") or DEFAULT_QUEUE
        self.reference_field = _text(config, "referenceField") or DEFAULT_REFERENCE_FIELD
        # customerField left out: the default field when the queue has it; null: comments only.
        self.customer_default = "customerField" not in config
        self.customer_field = DEFAULT_CUSTOMER_FIELD if self.customer_default else _text(config, "customerField")
        self._secrets = [secret for secret in (password, token) if secret]
        auth: httpx.Auth | None = httpx.BasicAuth(username, password) if username and password else None
        headers = {"Accept": "application/json", **({"Authorization": f"token {token}"} if token else {})}
        self._http = httpx.AsyncClient(base_url=f"{self.base}/REST/2.0/", auth=auth, headers=headers,
                                       timeout=httpx.Timeout(self.timeout))
        self._queue_info: _Queue | None = None
        self._queue_lock = asyncio.Lock()
        self._users: dict[str, dict[str, Any]] = {}

    # -- plumbing --

    def _fail(self, message: str, *, retry: bool, field: str | None = None) -> HelpdeskError:
        return HelpdeskError(scrub(message, self._secrets), retry=retry, field=field)

    def _who(self) -> str:
        return f"user {self.username!r}" if self.username else "the auth token's user"

    async def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                       json: Any = None, missing: str | None = None, missing_field: str | None = None) -> Any:
        """One REST2 call; its JSON answer. ``missing``: the message for a 404 (RT's "no such ...")."""
        try:
            response = await self._http.request(method, path, params=params, json=json)
        except httpx.TimeoutException:
            raise self._fail(f"{self.where} did not answer within {self.timeout:g} s", retry=True) from None
        except httpx.HTTPError as exc:
            raise self._fail(f"cannot reach {self.where}: {type(exc).__name__} {exc}".rstrip(), retry=True) from None
        status = response.status_code
        if status < 300:
            try:
                return response.json() if response.content else None
            except ValueError:
                raise self._fail(f"{self.where} answered something other than JSON to {method} {path}: is REST2 "
                                 f"at {self.base}/REST/2.0/?", retry=False, field="url") from None
        try:
            said = str(response.json().get("message") or "").strip()[:300]
        except (ValueError, AttributeError):
            said = ""
        detail = f": {said}" if said else ""
        if status == 404 and missing:
            raise self._fail(missing, retry=False, field=missing_field)
        if status == 401:
            raise self._fail(f"{self.where} refused the login of {self._who()} (HTTP 401): check the username and "
                             "password (or the token)", retry=False, field="token" if not self.username else "password")
        if status == 403:
            raise self._fail(f"{self.where} refused {method} {path} to {self._who()} (HTTP 403){detail}: grant the "
                             f"user the rights on queue {self.queue_name!r}", retry=False)
        if status == 404:
            raise self._fail(f"{self.where} has no {path} (HTTP 404): check the url", retry=False, field="url")
        if 300 <= status < 400:
            raise self._fail(f"{self.where} redirects to {response.headers.get('location', '?')}: use that address "
                             "as the url", retry=False, field="url")
        if status == 429 or status >= 500:
            raise self._fail(f"{self.where} failed with HTTP {status} on {method} {path}{detail}", retry=True)
        raise self._fail(f"{self.where} refused {method} {path} (HTTP {status}){detail}", retry=False)

    async def _pages(self, path: str, params: Mapping[str, Any], json: Any = None) -> AsyncIterator[dict[str, Any]]:
        page = 1
        while True:
            data = await self._request("POST" if json is not None else "GET", path, json=json,
                                       params={**params, "page": page, "per_page": PER_PAGE})
            items = (data.get("items") or []) if isinstance(data, dict) else []
            for item in items:
                yield item
            if not items or not data.get("next_page"):
                return
            page += 1

    async def _queue(self) -> _Queue:
        async with self._queue_lock:
            if self._queue_info is None:
                self._queue_info = await self._load_queue()
            return self._queue_info

    async def _load_queue(self) -> _Queue:
        data = await self._request("GET", f"queue/{quote(self.queue_name, safe='')}", missing_field="queue",
                                   missing=f"{self.where} has no queue {self.queue_name!r} that {self._who()} can see")

        def field(kind: str, name: str) -> str | None:
            return next((str(item["id"]) for item in data.get(kind) or []
                         if str(item.get("name", "")).casefold() == name.casefold()), None)

        fix = (f"create it (\"Enter one value\"), apply it to queue {self.queue_name!r} and let {self._who()} see and "
               "modify it")
        reference = field("TicketCustomFields", self.reference_field)
        if reference is None:
            raise self._fail(f"{self.where}: queue {self.queue_name!r} has no ticket custom field "
                             f"{self.reference_field!r} (the CRM ticket number): {fix}", retry=False,
                             field="referenceField")
        message_reference = field("TicketTransactionCustomFields", self.reference_field)
        if message_reference is None:
            raise self._fail(f"{self.where}: queue {self.queue_name!r} has no transaction custom field "
                             f"{self.reference_field!r} (the reference of the CRM's replies and comments): {fix}",
                             retry=False, field="referenceField")
        customer = field("TicketCustomFields", self.customer_field) if self.customer_field else None
        if customer is None and self.customer_field and not self.customer_default:
            raise self._fail(f"{self.where}: queue {self.queue_name!r} has no ticket custom field "
                             f"{self.customer_field!r} (the customer card): create it (\"Fill in one text area\") "
                             f"and apply it to the queue, or set customerField to null", retry=False,
                             field="customerField")
        return _Queue(int(data["id"]), str(data.get("Name") or self.queue_name), reference, message_reference,
                      customer)

    async def _user(self, entry: Mapping[str, Any]) -> Mapping[str, Any]:
        """A role member with its EmailAddress and RealName (searches expand them, a ticket does not)."""
        if "EmailAddress" in entry or not entry.get("id"):
            return entry
        key = str(entry["id"])
        if key not in self._users:
            try:
                self._users[key] = await self._request("GET", f"user/{quote(key, safe='')}",
                                                      missing=f"{self.where} has no user {key!r}")
            except HelpdeskError as exc:
                if exc.retry:
                    raise
                self._users[key] = {"Name": key}
        return {**self._users[key], "id": key}

    @staticmethod
    def _requesters(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The ticket's requesters (REST2 gives "" for what the user may not see)."""
        members = record.get("Requestor")
        return [entry for entry in members if isinstance(entry, Mapping)] if isinstance(members, list) else []

    @staticmethod
    def _field_value(record: Mapping[str, Any], field_id: str) -> str | None:
        for item in record.get("CustomFields") or []:
            if isinstance(item, Mapping) and str(item.get("id")) == field_id:
                values = item.get("values") or []
                return str(values[0]) if values else None
        return None

    async def _remote(self, record: Mapping[str, Any]) -> RemoteTicket:
        queue = await self._queue()
        requesters = [await self._user(entry) for entry in self._requesters(record)]
        first = requesters[0] if requesters else {}
        login = str(first.get("id") or "")  # RT names users made by mail after their address
        queue_data, owner = _mapping(record.get("Queue")), _mapping(record.get("Owner"))
        remote_id = str(record["id"])
        return RemoteTicket(
            remote_id=remote_id, subject=str(record.get("Subject") or ""), status=to_crm_status(record.get("Status")),
            priority=to_crm_priority(record.get("Priority")),
            requester_email=first.get("EmailAddress") or (login if "@" in login else None),
            requester_name=first.get("RealName") or None, reference=self._field_value(record, queue.reference),
            created_at=_when(record.get("Created")), updated_at=_when(record.get("LastUpdated")),
            extra={"queue": queue_data.get("Name") or (queue.name if str(queue_data.get("id")) == str(queue.id)
                                                        else queue_data.get("id")), "rt_status": record.get("Status"),
                   "rt_priority": record.get("Priority"), "owner": owner.get("id"),
                   "url": f"{self.base}/Ticket/Display.html?id={remote_id}"})

    def _number(self, remote_id: str) -> int:
        if not str(remote_id).isdigit():
            raise self._fail(f"not an RT ticket id: {remote_id!r}", retry=False)
        return int(remote_id)

    async def _record(self, remote_id: str) -> dict[str, Any]:
        return await self._request("GET", f"ticket/{self._number(remote_id)}",
                                   missing=f"{self.where} has no ticket {remote_id}")

    async def _search(self, query: str, **params: Any) -> AsyncIterator[RemoteTicket]:
        async with contextlib.aclosing(self._pages("tickets", {"query": query, **TICKET_FIELDS, **params})) as pages:
            async for record in pages:
                yield await self._remote(record)

    # -- tickets --

    async def find_ticket(self, reference: str) -> RemoteTicket | None:
        queue = await self._queue()
        async with contextlib.aclosing(self._search(f"'CF.{{{queue.reference}}}' = {_sql(reference)}",
                                                    orderby="id")) as found:
            async for ticket in found:
                if ticket.reference == reference:
                    return ticket
        return None

    async def create_ticket(self, draft: TicketDraft) -> RemoteTicket:
        existing = await self.find_ticket(draft.reference)
        if existing is not None:
            return existing
        queue = await self._queue()
        status = self._rt_status(draft.status)
        body: dict[str, Any] = {
            "Queue": queue.id, "Subject": draft.subject, "Priority": self._rt_priority(draft.priority),
            "Status": status if status in CREATABLE else "new", "CustomFields": {queue.reference: draft.reference}}
        if draft.requester_email:
            body["Requestor"] = _requester(draft.requester_name, draft.requester_email)
        if draft.description:
            body.update(Content=draft.description, ContentType="text/plain")
        made = await self._request("POST", "ticket", json=body)
        remote_id = str(made["id"])
        if status not in CREATABLE:
            return await self.update_ticket(remote_id, status=draft.status)
        return await self.get_ticket(remote_id)

    async def get_ticket(self, remote_id: str) -> RemoteTicket:
        return await self._remote(await self._record(remote_id))

    def _rt_status(self, status: str) -> str:
        if status not in TO_RT_STATUS:
            raise self._fail(f"no RT status for the CRM status {status!r}", retry=False)
        return TO_RT_STATUS[status]

    def _rt_priority(self, priority: str) -> int:
        if priority not in TO_RT_PRIORITY:
            raise self._fail(f"no RT priority for the CRM priority {priority!r}", retry=False)
        return TO_RT_PRIORITY[priority]

    async def update_ticket(self, remote_id: str, *, status: str | None = None,
                            priority: str | None = None) -> RemoteTicket:
        changes: dict[str, Any] = {}
        if status is not None:
            changes["Status"] = self._rt_status(status)
        if priority is not None:
            changes["Priority"] = self._rt_priority(priority)
        if not changes:
            return await self.get_ticket(remote_id)
        said = await self._request("PUT", f"ticket/{self._number(remote_id)}", json=changes,
                                   missing=f"{self.where} has no ticket {remote_id}")
        ticket = await self.get_ticket(remote_id)
        # REST2 answers 200 with RT's messages whether or not each change was made.
        if (status is not None and ticket.extra.get("rt_status") != changes["Status"]) or \
                (priority is not None and str(ticket.extra.get("rt_priority")) != str(changes["Priority"])):
            words = "; ".join(str(line) for line in said or []) or "no change made"
            raise self._fail(f"{self.where} did not update ticket {remote_id}: {words}", retry=False)
        return ticket

    async def changed_since(self, since: datetime | None) -> Sequence[RemoteTicket]:
        queue = await self._queue()
        query = f"Queue = {_sql(queue.name)}"
        floor: datetime | None = None
        if since is not None:
            since = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
            floor = since.replace(microsecond=0) - GRANULARITY
            query += f" AND LastUpdated >= '{floor - ZONE_MARGIN:%Y-%m-%d %H:%M:%S}'"
        found: dict[str, RemoteTicket] = {}
        async with contextlib.aclosing(self._search(query, orderby=["LastUpdated", "id"],
                                                    order=["DESC", "DESC"])) as newest_first:
            async for ticket in newest_first:
                if floor is not None and ticket.updated_at is not None and ticket.updated_at < floor:
                    break
                found.setdefault(ticket.remote_id, ticket)  # a ticket changed while paging shows twice
        epoch = datetime.min.replace(tzinfo=UTC)
        return sorted(found.values(), key=lambda t: (t.updated_at or epoch, int(t.remote_id)))

    # -- messages --

    async def _find_message(self, reference: str, *, ticket: str | None = None, newest: bool = False,
                            prefix: bool = False) -> tuple[str, str | None] | None:
        """The transaction carrying ``reference`` (or, with ``prefix``, the newest of the ticket's
        whose reference starts with it): (id, reference)."""
        queue = await self._queue()
        field = f"'CF.{{{queue.message_reference}}}'"
        query = f"ObjectType = 'RT::Ticket' AND {field} {'LIKE' if prefix else '='} {_sql(reference)}"
        if ticket is not None:
            query += f" AND ObjectId = {self._number(ticket)}"
        data = await self._request("GET", "transactions", params={
            "query": query, "fields": "CustomFields", "orderby": "id", "order": "DESC" if newest else "ASC",
            "per_page": 20})
        for item in (data or {}).get("items") or []:
            value = self._field_value(item, queue.message_reference)
            if value is not None and (value.startswith(reference) if prefix else value == reference):
                return str(item["id"]), value
        return None

    async def _post_message(self, remote_id: str, *, public: bool, body: str, reference: str) -> str:
        queue = await self._queue()
        said = await self._request("POST", f"ticket/{self._number(remote_id)}/{'correspond' if public else 'comment'}",
                                   missing=f"{self.where} has no ticket {remote_id}",
                                   json={"Content": body, "ContentType": "text/plain",
                                         "TxnCustomFields": {queue.message_reference: reference}})
        lines = [str(line) for line in said or []]
        if any("Unable to load transaction custom field" in line for line in lines):
            raise self._fail(f"{self.where} added the message to ticket {remote_id} without its reference: "
                             f"{'; '.join(lines)}", retry=False, field="referenceField")
        found = await self._find_message(reference)
        if found is None:
            raise self._fail(f"{self.where} added the message to ticket {remote_id} but not its reference "
                             f"{reference!r}: let {self._who()} modify the transaction custom field "
                             f"{self.reference_field!r}", retry=False, field="referenceField")
        return found[0]

    async def add_message(self, remote_id: str, *, public: bool, body: str, reference: str,
                          author: str | None = None) -> str:
        found = await self._find_message(reference)
        if found is not None:
            return found[0]
        return await self._post_message(remote_id, public=public, body=body, reference=reference)

    async def _bodies(self, remote_id: str) -> dict[str, str]:
        """Transaction id: its text (the first text/plain part that is no attached file, else the
        first text/html one as text)."""
        plain: dict[str, str] = {}
        html: dict[str, str] = {}
        parts = self._pages(f"ticket/{remote_id}/attachments",
                            {"fields": "TransactionId,ContentType,Filename,Content", "orderby": "id"},
                            json=[{"field": "ContentType", "operator": "LIKE", "value": "text/"}])
        async with contextlib.aclosing(parts) as items:
            async for part in items:
                if part.get("Filename"):
                    continue
                kind, txn = str(part.get("ContentType") or "").lower(), str(part.get("TransactionId"))
                content = part.get("Content")
                if not isinstance(content, str):
                    continue
                if kind == "text/plain":
                    plain.setdefault(txn, content)
                elif kind == "text/html":
                    html.setdefault(txn, content)
        return {**{txn: _Text.of(content) for txn, content in html.items()}, **plain}

    async def messages(self, remote_id: str) -> Sequence[RemoteMessage]:
        queue = await self._queue()
        record = await self._record(remote_id)
        ticket_id = str(record["id"])
        ticket_reference = self._field_value(record, queue.reference)
        requesters = {str(entry.get("id", "")).casefold() for entry in self._requesters(record)}
        history = self._pages(f"ticket/{ticket_id}/history",
                              {"fields": "Type,Creator,Created,CustomFields",
                               "fields[Creator]": "Name,EmailAddress,RealName", "orderby": "id"})
        async with contextlib.aclosing(history) as items:
            transactions = [item async for item in items if item.get("Type") in MESSAGE_TYPES]
        if not transactions:
            return []
        bodies = await self._bodies(ticket_id)
        out: list[RemoteMessage] = []
        for item in sorted(transactions, key=lambda txn: int(txn["id"])):
            creator = _mapping(item.get("Creator"))
            login = str(creator.get("id") or creator.get("Name") or "")
            reference = self._field_value(item, queue.message_reference)
            if reference is None and item["Type"] == "Create":
                reference = ticket_reference
            out.append(RemoteMessage(
                remote_id=str(item["id"]), ticket_remote_id=ticket_id, public=MESSAGE_TYPES[item["Type"]],
                body=bodies.get(str(item["id"]), "").rstrip(),
                author=str(creator.get("RealName") or creator.get("EmailAddress") or login or "RT"),
                from_customer=login.casefold() in requesters, reference=reference,
                created_at=_when(item.get("Created")) or datetime.now(UTC)))
        return out

    # -- the customer card --

    async def push_customer(self, remote_id: str, card: CustomerCard) -> None:
        queue = await self._queue()
        text = card_text(card)
        if queue.customer is not None:
            record = await self._record(remote_id)
            if _normal(self._field_value(record, queue.customer)) == _normal(text):
                return
            said = await self._request("PUT", f"ticket/{self._number(remote_id)}",
                                       json={"CustomFields": {queue.customer: text}})
            if _normal(self._field_value(await self._record(remote_id), queue.customer)) != _normal(text):
                words = "; ".join(str(line) for line in said or []) or "no change made"
                raise self._fail(f"{self.where} did not store the customer card on ticket {remote_id}: {words}",
                                 retry=False, field="customerField")
            return
        reference = CARD_PREFIX + hashlib.sha256(_normal(text).encode()).hexdigest()[:20]
        newest = await self._find_message(CARD_PREFIX, ticket=remote_id, newest=True, prefix=True)
        if newest is not None and newest[1] == reference:
            return
        await self._post_message(remote_id, public=False, reference=reference,
                                 body=f"Customer card from the CRM:\n\n{text}")

    async def aclose(self) -> None:
        await self._http.aclose()
