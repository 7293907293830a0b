"""Two-way sync of tickets with a helpdesk program, through a connector (``crm_helpdesk_connectors``).

Which side owns what (the conflict rule):

- **Tickets** exist once on each side, linked by the mapping table (connection, CRM ticket,
  remote id). A CRM ticket is created remotely with its number as reference; a remote ticket
  the CRM has not seen becomes a CRM ticket for the customer with the requester's address
  (a new customer, source EMAIL, when there is none).
- **Status and priority**: the side that changed since the last sync wins; when both changed,
  the helpdesk wins (its agents work the ticket there). The mapping row keeps the values last
  agreed, which is how a change is told from an echo.
- **Replies and comments** are append-only: each is copied once, either way, recorded in
  ``crm_service_helpdesk_messages`` in the same transaction as the comment it made (remote to
  CRM) or right after the remote call (CRM to remote; the call carries a reference the
  connector looks up before adding, so a retry after a lost answer finds it).
- **Ratings** come from the helpdesk; the **customer link and the customer card** from the CRM.

Pushing runs from the outbox (deliveries ``service:helpdesk.<connection id>`` of ticket events);
pulling runs every ``CRM_SERVICE_HELPDESK_INTERVAL`` seconds and with ``crm-graph helpdesk
sync``, reading the remote changes since the last cursor less ``CRM_SERVICE_HELPDESK_OVERLAP``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import errors as codes
from crm_graph.core.actor import SYSTEM
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import DomainError, ErrorCollector
from crm_graph.core.helpdesk import (
    HelpdeskClient,
    HelpdeskConnector,
    HelpdeskError,
    RemoteMessage,
    RemoteTicket,
    TicketDraft,
)
from crm_graph.core.sealed import SealedError, seal, unseal
from crm_graph.customers.models import Customer
from crm_graph.plugins import collect_by_key
from crm_graph.settings import Settings
from crm_graph.support.models import Ticket, TicketComment, TicketStatus
from crm_graph.support.service import (
    TRANSITIONS,
    change_ticket_status,
    create_ticket,
    rate_ticket,
    reply_to_ticket,
    update_ticket,
)
from crm_service.card import card_hash, customer_card, primary_email, public_url
from crm_service.config import ServiceSettings
from crm_service.intake import customer_by_email
from crm_service.models import HelpdeskConnection, HelpdeskMessage, HelpdeskTicket, MessageDirection

log = logging.getLogger("crm_service.helpdesk")

SEAL_PURPOSE = "crm_service helpdesk connection"


def connectors_of(plugins: Any) -> dict[str, HelpdeskConnector]:
    return collect_by_key(plugins, "crm_helpdesk_connectors", protocol=HelpdeskConnector, key=lambda c: c.name,
                          what=lambda name: f"helpdesk connector {name!r}")


# The connection setting the sync itself reads (the connector never sees it): a text put before
# every reference the CRM gives ("prod/" makes "prod/T-000123"), for two CRM installations that
# share one helpdesk (a staging and a production one): each then knows its own tickets.
PREFIX_KEY = "referencePrefix"
PREFIX_CHARS = re.compile(r"[A-Za-z0-9._:/-]{0,40}")


def prefix_of(connection: HelpdeskConnection) -> str:
    return str((connection.config or {}).get(PREFIX_KEY) or "")


def connector_config(connection: HelpdeskConnection) -> dict[str, Any]:
    return {k: v for k, v in (connection.config or {}).items() if k != PREFIX_KEY}


def ticket_reference(connection: HelpdeskConnection, number: str) -> str:
    return f"{prefix_of(connection)}{number}"


def comment_reference(connection: HelpdeskConnection, comment_id: int) -> str:
    return f"{prefix_of(connection)}crm-comment-{comment_id}"


def system_of(connection: HelpdeskConnection) -> str:
    """The external-reference system of the connection's tickets (``rt:Support desk``)."""
    return f"{connection.connector}:{connection.name}"[:64]


# --- connections ----------------------------------------------------------------------------------


async def create_helpdesk_connection(session: AsyncSession, settings: Settings, plugins: Any,
                                     data: Mapping[str, Any]) -> HelpdeskConnection:
    errors = ErrorCollector()
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 200:
        errors.add("name", codes.REQUIRED if not name else codes.INVALID_VALUE, "name is 1 to 200 characters.")
    connectors = connectors_of(plugins)
    connector = connectors.get(data.get("connector"))  # type: ignore[arg-type]
    if connector is None:
        errors.add("connector", codes.INVALID_VALUE,
                   f"connector is one of {', '.join(sorted(connectors)) or 'none (no connector is loaded)'}.")
    config = data.get("config") or {}
    if not isinstance(config, Mapping):
        errors.add("config", codes.INVALID_VALUE, "config is a JSON object.")
        config = {}
    prefix = config.get(PREFIX_KEY, "")
    if not isinstance(prefix, str) or not PREFIX_CHARS.fullmatch(prefix):
        errors.add(f"config.{PREFIX_KEY}", codes.INVALID_VALUE, "referencePrefix is up to 40 letters, digits and ._:/-")
    config = {k: v for k, v in config.items() if k != PREFIX_KEY}
    if connector is not None:
        for key, message in connector.check_config(config):
            errors.add(f"config.{key}", codes.INVALID_VALUE, message)
    errors.raise_if_any()
    assert connector is not None and isinstance(name, str)
    if await session.scalar(sa.select(HelpdeskConnection.id).where(HelpdeskConnection.name == name.strip())):
        errors.add("name", codes.DUPLICATE, f"A helpdesk connection named {name.strip()!r} exists.")
        errors.raise_if_any()
    plain = {k: v for k, v in config.items() if k not in connector.secret_keys}
    if prefix:
        plain[PREFIX_KEY] = prefix
    given = {k: str(v) for k, v in config.items() if k in connector.secret_keys and v}
    connection = HelpdeskConnection(name=name.strip(), connector=connector.name, config=plain,
                                    secrets=seal(settings, SEAL_PURPOSE, given) if given else None,
                                    active=data.get("active", True) is not False, cursor=None, created_at=utcnow())
    session.add(connection)
    await session.flush()
    return connection


def client_of(settings: Settings, plugins: Any, connection: HelpdeskConnection) -> HelpdeskClient:
    connector = connectors_of(plugins).get(connection.connector)
    if connector is None:
        raise HelpdeskError(f"the helpdesk connector {connection.connector!r} is not loaded", retry=False)
    try:
        secrets = unseal(settings, SEAL_PURPOSE, connection.secrets) if connection.secrets else {}
    except SealedError as exc:
        raise HelpdeskError(str(exc), retry=False) from exc
    return connector.connect(connector_config(connection), secrets)


# --- CRM to helpdesk ------------------------------------------------------------------------------


async def push_ticket(db: Any, settings: Settings, service: ServiceSettings, plugins: Any, connection_id: int,
                      ticket_id: int) -> str:
    """Bring the remote ticket in line with the CRM's: create or find it, send the status and
    priority the CRM changed, the comments not copied yet, the customer card when it changed."""
    async with db.reader() as session:
        connection = await session.get(HelpdeskConnection, connection_id)
        ticket = await session.get(Ticket, ticket_id)
        if connection is None or not connection.active or ticket is None:
            return "nothing to push"
        link = await _link(session, connection_id, ticket_id=ticket_id)
        customer = await session.get(Customer, ticket.contact_id or ticket.customer_id)
        email = await primary_email(session, customer.id) if customer else None
        card = await customer_card(session, ticket.customer_id, public_url=public_url())
        done = set(await session.scalars(sa.select(HelpdeskMessage.comment_id).where(
            HelpdeskMessage.connection_id == connection_id, HelpdeskMessage.ticket_id == ticket_id)))
        comments = [c for c in await session.scalars(sa.select(TicketComment).where(
            TicketComment.ticket_id == ticket_id).order_by(TicketComment.created_at, TicketComment.id))
            if c.id not in done]
        draft = TicketDraft(reference=ticket_reference(connection, ticket.number), subject=ticket.subject, requester_email=email,
                            requester_name=customer.display_name if customer else None, status=ticket.status.name,
                            priority=ticket.priority.name, description=ticket.description)
        status, priority = ticket.status.name, ticket.priority.name
    client = client_of(settings, plugins, connection)
    try:
        if link is None:
            remote = await client.create_ticket(draft)
            link = await _store_link(db, connection, ticket_id, remote)
        changes: dict[str, str] = {}
        if status != link.synced_status:
            changes["status"] = status
        if priority != link.synced_priority:
            changes["priority"] = priority
        if changes:
            await client.update_ticket(link.remote_id, **changes)
            await _agreed(db, link.id, status=status, priority=priority)
        for comment in comments:
            remote_id = await client.add_message(link.remote_id, public=comment.public, body=comment.body,
                                                 reference=comment_reference(connection, comment.id),
                                                 author=comment.author)
            await _copied(db, connection_id, ticket_id, comment.id, remote_id, MessageDirection.OUT)
        if card is not None and card_hash(card) != link.card_hash:
            await client.push_customer(link.remote_id, card)
            await _agreed(db, link.id, card=card_hash(card))
    finally:
        await client.aclose()
    return f"{ticket.number} pushed ({len(comments)} messages{', ' + ', '.join(changes) if changes else ''})"


async def _link(session: AsyncSession, connection_id: int, *, ticket_id: int | None = None,
                remote_id: str | None = None) -> HelpdeskTicket | None:
    where = HelpdeskTicket.ticket_id == ticket_id if ticket_id is not None else HelpdeskTicket.remote_id == remote_id
    return await session.scalar(sa.select(HelpdeskTicket).where(HelpdeskTicket.connection_id == connection_id, where))


async def _store_link(db: Any, connection: HelpdeskConnection, ticket_id: int, remote: RemoteTicket) -> HelpdeskTicket:
    """Record the link (the remote ticket was made, or found by its reference); the remote
    values are what was agreed."""
    from crm_graph.support.models import TicketExternalRef

    async with db.writer() as session, session.begin():
        link = await _link(session, connection.id, ticket_id=ticket_id)
        if link is None:
            link = HelpdeskTicket(connection_id=connection.id, ticket_id=ticket_id, remote_id=remote.remote_id,
                                  synced_status=remote.status, synced_priority=remote.priority,
                                  synced_rating=remote.rating, card_hash=None, synced_at=utcnow())
            session.add(link)
            known = await session.scalar(sa.select(TicketExternalRef.id).where(
                TicketExternalRef.ticket_id == ticket_id, TicketExternalRef.system == system_of(connection)))
            if known is None:
                session.add(TicketExternalRef(ticket_id=ticket_id, system=system_of(connection), external_id=remote.remote_id))
            await session.flush()
        session.expunge(link)
        return link


async def _agreed(db: Any, link_id: int, *, status: str | None = None, priority: str | None = None,
                  rating: int | None = None, card: str | None = None) -> None:
    values: dict[str, Any] = {"synced_at": utcnow()}
    for key, value in (("synced_status", status), ("synced_priority", priority), ("synced_rating", rating),
                       ("card_hash", card)):
        if value is not None:
            values[key] = value
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(HelpdeskTicket).where(HelpdeskTicket.id == link_id).values(**values))


async def _copied(db: Any, connection_id: int, ticket_id: int, comment_id: int | None, remote_id: str,
                  direction: MessageDirection) -> None:
    async with db.writer() as session, session.begin():
        exists = await session.scalar(sa.select(HelpdeskMessage.id).where(
            HelpdeskMessage.connection_id == connection_id,
            sa.or_(HelpdeskMessage.remote_id == remote_id,
                   HelpdeskMessage.comment_id == comment_id if comment_id is not None else sa.false())))
        if exists is None:
            session.add(HelpdeskMessage(connection_id=connection_id, ticket_id=ticket_id, comment_id=comment_id,
                                        remote_id=remote_id, direction=direction, created_at=utcnow()))


# --- helpdesk to CRM ------------------------------------------------------------------------------


@dataclass
class PullResult:
    connection: str
    tickets_seen: int = 0
    tickets_created: int = 0
    messages: int = 0
    status_changes: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = (f"{self.connection}: {self.tickets_seen} remote tickets read, {self.tickets_created} new in the CRM, "
                f"{self.messages} messages copied, {self.status_changes} status or priority changes")
        return text + (f"; {len(self.errors)} failed: {'; '.join(self.errors[:3])}" if self.errors else "")


async def pull(db: Any, settings: Settings, service: ServiceSettings, plugins: Any, connection_id: int) -> PullResult:
    """Read the helpdesk's changes since the cursor and apply them (see the module's note)."""
    async with db.reader() as session:
        connection = await session.get(HelpdeskConnection, connection_id)
        if connection is None:
            raise LookupError(f"helpdesk connection {connection_id} is gone")
        since = connection.cursor - timedelta(seconds=service.helpdesk_overlap) if connection.cursor else None
    result = PullResult(connection.name)
    started = utcnow()
    client = client_of(settings, plugins, connection)
    try:
        try:
            remotes = await client.changed_since(since)
        except HelpdeskError as exc:
            await _pulled(db, connection_id, None, exc.message)
            raise
        for remote in remotes:
            result.tickets_seen += 1
            try:
                await _pull_ticket(db, client, connection, remote, result)
            except (HelpdeskError, DomainError) as exc:
                message = exc.message if isinstance(exc, HelpdeskError) else str(exc)
                log.warning("%s: remote ticket %s: %s", connection.name, remote.remote_id, message)
                result.errors.append(f"{remote.remote_id}: {message}")
    finally:
        await client.aclose()
    # A ticket that failed is read again next time: the cursor stays where it was.
    await _pulled(db, connection_id, None if result.errors else started,
                  "; ".join(result.errors)[:2000] if result.errors else None)
    return result


async def _pulled(db: Any, connection_id: int, cursor: datetime | None, error: str | None) -> None:
    values: dict[str, Any] = {"last_sync_at": utcnow(), "last_error": error}
    if cursor is not None:
        values["cursor"] = cursor
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(HelpdeskConnection).where(HelpdeskConnection.id == connection_id).values(**values))


async def _pull_ticket(db: Any, client: HelpdeskClient, connection: HelpdeskConnection, remote: RemoteTicket,
                       result: PullResult) -> None:
    messages = list(await client.messages(remote.remote_id))
    async with db.writer() as session, session.begin():
        link = await _link(session, connection.id, remote_id=remote.remote_id)
        if link is None:
            link, created = await _adopt(session, connection, remote, messages)
            result.tickets_created += created
        ticket = await session.get(Ticket, link.ticket_id)
        if ticket is None:
            return  # deleted in the CRM: nothing to apply it to
        seen = set(await session.scalars(sa.select(HelpdeskMessage.remote_id).where(
            HelpdeskMessage.connection_id == connection.id, HelpdeskMessage.ticket_id == ticket.id)))
        for message in messages:
            if message.remote_id in seen or message.reference is not None:
                continue  # copied before, or one the CRM wrote
            await _copy_in(session, connection, ticket, message)
            result.messages += 1
        result.status_changes += await _apply_fields(session, ticket, link, remote)


async def _adopt(session: AsyncSession, connection: HelpdeskConnection, remote: RemoteTicket,
                 messages: list[RemoteMessage]) -> tuple[HelpdeskTicket, int]:
    """Link a remote ticket: to the CRM ticket its reference names, or to a new CRM ticket."""
    from crm_graph.support.models import parse_ticket_number

    ticket = None
    prefix = prefix_of(connection)
    ours = remote.reference is not None and remote.reference.startswith(prefix)
    number = parse_ticket_number(remote.reference[len(prefix):]) if ours and remote.reference else None
    if number is not None:
        ticket = await session.get(Ticket, number)
    created = 0
    first = messages[0] if messages else None
    if ticket is None:
        customer = await _requester(session, remote)
        ticket = await create_ticket(session, actor=SYSTEM, data={
            "customerId": customer.id, "subject": (remote.subject or "(no subject)")[:300],
            "description": (first.body if first else None) or None, "channel": "EMAIL",
            "priority": remote.priority, "externalRefs": [{"system": system_of(connection), "externalId": remote.remote_id}]})
        created = 1
    link = HelpdeskTicket(connection_id=connection.id, ticket_id=ticket.id, remote_id=remote.remote_id,
                          synced_status=ticket.status.name, synced_priority=ticket.priority.name, synced_rating=None,
                          card_hash=None, synced_at=utcnow())
    session.add(link)
    if created and first is not None:
        # The first message is the new ticket's description, not a comment.
        session.add(HelpdeskMessage(connection_id=connection.id, ticket_id=ticket.id, comment_id=None,
                                    remote_id=first.remote_id, direction=MessageDirection.IN, created_at=utcnow()))
    await session.flush()
    return link, created


async def _requester(session: AsyncSession, remote: RemoteTicket) -> Customer:
    from crm_graph.customers.service import ServiceConfig, create_customer

    address = (remote.requester_email or "").strip().lower()
    customer = await customer_by_email(session, address) if address else None
    if customer is not None:
        return customer
    name = (remote.requester_name or "").strip() or (address.partition("@")[0] if address else "Helpdesk requester")
    data: dict[str, Any] = {"kind": "PERSON", "source": "EMAIL", "lastName": name[:100]}
    if address:
        data["emails"] = [{"address": address, "primary": True}]
    return await create_customer(session, actor=SYSTEM, config=ServiceConfig(), data=data)


async def _copy_in(session: AsyncSession, connection: HelpdeskConnection, ticket: Ticket, message: RemoteMessage) -> None:
    if ticket.status is TicketStatus.CLOSED:
        return
    _, comment = await reply_to_ticket(session, actor=SYSTEM, ticket_id=ticket.id, data={
        "body": message.body.strip()[:100_000] or "(empty)", "public": message.public or message.from_customer,
        "from": "CUSTOMER" if message.from_customer else "AGENT", "author": (message.author or "helpdesk")[:200]})
    session.add(HelpdeskMessage(connection_id=connection.id, ticket_id=ticket.id, comment_id=comment.id,
                                remote_id=message.remote_id, direction=MessageDirection.IN, created_at=utcnow()))
    await session.flush()


async def _apply_fields(session: AsyncSession, ticket: Ticket, link: HelpdeskTicket, remote: RemoteTicket) -> int:
    """Status, priority and rating the helpdesk changed since the last sync (it wins a tie)."""
    changed = 0
    if remote.priority != link.synced_priority and ticket.status is not TicketStatus.CLOSED:
        if remote.priority != ticket.priority.name:
            await update_ticket(session, actor=SYSTEM, ticket_id=ticket.id, data={"priority": remote.priority},
                                expected_version=None)
            changed += 1
        link.synced_priority = remote.priority
    if remote.status != link.synced_status:
        for step in _path(ticket.status.name, remote.status):
            await change_ticket_status(session, actor=SYSTEM, ticket_id=ticket.id, status=step, expected_version=None)
            changed += 1
        link.synced_status = remote.status
    if remote.rating is not None and remote.rating != link.synced_rating \
            and ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        await rate_ticket(session, actor=SYSTEM, ticket_id=ticket.id, data={"rating": remote.rating})
        link.synced_rating = remote.rating
    link.synced_at = utcnow()
    return changed


def _path(current: str, target: str) -> list[str]:
    """The statuses to pass through from ``current`` to ``target`` (RESOLVED before CLOSED; a
    NEW on the remote side is OPEN here once work began); empty when there is no way."""
    if target == "NEW":
        target = "OPEN" if current != "NEW" else "NEW"
    if current == target:
        return []
    allowed = {s.name: {t.name for t in TRANSITIONS[s]} for s in TRANSITIONS}
    if target in allowed[current]:
        return [target]
    for middle in ("RESOLVED", "OPEN"):
        if middle in allowed[current] and target in allowed[middle]:
            return [middle, target]
    return []


async def connection_ids(db: Any) -> list[int]:
    async with db.reader() as session:
        return list(await session.scalars(sa.select(HelpdeskConnection.id).where(HelpdeskConnection.active.is_(True))
                                          .order_by(HelpdeskConnection.id)))
