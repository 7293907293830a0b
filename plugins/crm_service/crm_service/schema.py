"""GraphQL of the customer-service plugin: mail channels, the email thread of a ticket
(``Ticket.messages``), inbound mails (the unknown-sender queue), helpdesk connections. Thin: the
work is in channels.py, reader.py, intake.py and helpdesk/sync.py. Mailboxes and connections
are configuration: ``settings:read`` shows them, ``settings:update`` changes them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from crm_graph.core import ids
from crm_graph.core.errors import DomainError, FieldError, ValidationFailed
from crm_graph.core.extensions import NodeType, TypeExtension
from crm_graph.core.helpdesk import HelpdeskError
from crm_graph.domains import SchemaPart
from crm_graph.graphql.access import mutation, query
from crm_graph.graphql.context import Context
from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.errors import UserError, user_errors
from crm_graph.graphql.mutations import after_commit, unit_of_work
from crm_graph.graphql.relay import Node, encode_global_id
from crm_graph.mail.imap import MailboxError
from crm_service import channels as channel_service
from crm_service import models as m
from crm_service.config import service_settings
from crm_service.helpdesk import sync

MailUnknownSenders = graphql_enum(
    m.UnknownSenders,
    "What a mail from an address no customer has does.",
    {
        "CREATE": "Creates a customer (source EMAIL) with the address, and a ticket.",
        "QUEUE": "Waits as a QUEUED inbound mail until an agent assigns it (`assignInboundMail`).",
    },
    name="MailUnknownSenders",
)
InboundMailOutcome = graphql_enum(
    m.InboundOutcome,
    "What an incoming mail made.",
    {
        "TICKET": "Opened a ticket.",
        "COMMENT": "Added a comment to a ticket.",
        "QUEUED": "From an unknown sender, waiting for an agent to assign it.",
        "ASSIGNED": "Was QUEUED; an agent made it a ticket or a comment.",
        "AUTO_REPLY": "An out-of-office or other automatic answer: nothing made.",
        "BOUNCE": "A delivery failure report: nothing made.",
        "OWN": "Our own outgoing mail come back: nothing made.",
        "FLOOD": "Its sender was over the hourly limit (CRM_SERVICE_FLOOD_LIMIT): nothing made.",
        "FAILED": "Could not be taken (the server log says why); the mail is kept.",
    },
    name="InboundMailOutcome",
)
MailDirection = graphql_enum(
    m.MessageDirection,
    "Whether an email came in or went out.",
    {"IN": "Received from the mailbox.", "OUT": "An agent's reply, sent from the mailbox."},
    name="MailDirection",
)
MailStatus = graphql_enum(
    m.MessageStatus,
    "An email's state: RECEIVED for incoming mail; PENDING, SENDING, SENT, FAILED or UNCONFIRMED for an agent's reply.",
    {
        "RECEIVED": "An incoming mail.",
        "PENDING": "A reply waiting to be sent.",
        "SENDING": "Handed to the SMTP server; its answer is not recorded yet.",
        "SENT": "Accepted by the SMTP server.",
        "FAILED": "Refused for good; `error` says why.",
        "UNCONFIRMED": "The connection dropped after the reply was handed over: maybe delivered, never sent again.",
    },
    name="MailStatus",
)


@strawberry.type(description="A support mailbox: read over IMAP (processed mail moved to `processedFolder`), replies "
                 "sent by SMTP from `address`. Passwords are never shown.")
class MailChannel(Node):
    name: str = strawberry.field(description="Unique among the mailboxes.")
    address: str = strawberry.field(description="The support address: replies are sent from it.")
    imap_host: str = strawberry.field(description="The IMAP server mail is read from.")
    imap_port: int = strawberry.field(description="The IMAP server's TCP port.")
    imap_username: str = strawberry.field(description="The IMAP account.")
    imap_folder: str = strawberry.field(description="The folder read.")
    processed_folder: str = strawberry.field(description="The folder read mail is moved to.")
    imap_tls: str = strawberry.field(description="none or tls.")
    smtp_host: str = strawberry.field(description="The SMTP server replies are sent through.")
    smtp_port: int = strawberry.field(description="The SMTP server's TCP port.")
    smtp_username: str | None = strawberry.field(description="The SMTP account; null: no SMTP login.")
    smtp_tls: str = strawberry.field(description="none, starttls or tls.")
    unknown_senders: MailUnknownSenders = strawberry.field(description="What a mail from an unknown address "
                                                           "does.")  # type: ignore[valid-type]
    active: bool = strawberry.field(description="Whether the mailbox is read.")
    last_polled_at: datetime | None = strawberry.field(description="When the mailbox was last read, successfully or not "
                                                       "(UTC); null if never.")
    last_error: str | None = strawberry.field(description="Why the last read failed; null after a good one.")
    created_at: datetime = strawberry.field(description="When the mailbox was added (UTC).")

    @classmethod
    def from_model(cls, c: m.MailChannel) -> MailChannel:
        return cls(id=encode_global_id("MailChannel", c.id), name=c.name, address=c.address, imap_host=c.imap_host,
                   imap_port=c.imap_port, imap_username=c.imap_username, imap_folder=c.imap_folder,
                   processed_folder=c.processed_folder, imap_tls=c.imap_tls, smtp_host=c.smtp_host, smtp_port=c.smtp_port,
                   smtp_username=c.smtp_username, smtp_tls=c.smtp_tls, unknown_senders=c.unknown_senders, active=c.active,
                   last_polled_at=c.last_polled_at, last_error=c.last_error, created_at=c.created_at)


@strawberry.type(description="A file of an email. `stored` is false when it was over the size limit (`dropped` says so).")
class MailAttachment:
    filename: str = strawberry.field(description="The file's name, as the mail gave it.")
    content_type: str = strawberry.field(description="The file's media type, e.g. image/png.")
    size: int = strawberry.field(description="Bytes, also when the file was not stored.")
    inline: bool = strawberry.field(description="Shown inside the HTML (an image referenced by `contentId`).")
    content_id: str | None = strawberry.field(description="The Content-ID the HTML refers to it by; null without one.")
    stored: bool = strawberry.field(description="Whether the file itself was kept.")
    dropped: str | None = strawberry.field(description='Why it was not kept, e.g. "larger than 10 MB"; null when '
                                           'stored.')


@strawberry.type(description="One email of a ticket's thread, incoming or an agent's reply.")
class TicketMessage:
    direction: MailDirection = strawberry.field(description="Incoming, or an agent's reply.")  # type: ignore[valid-type]
    status: MailStatus = strawberry.field(description="RECEIVED, or where a reply is in sending.")  # type: ignore[valid-type]
    message_id: str = strawberry.field(description="The Message-ID header.")
    in_reply_to: str | None = strawberry.field(description="The In-Reply-To header: the Message-ID it answers.")
    references: list[str] = strawberry.field(description="The References header: the Message-IDs of the thread.")
    from_address: str | None = strawberry.field(description="The sender's address.")
    from_name: str | None = strawberry.field(description="The sender's display name, when given.")
    to: list[str] = strawberry.field(description="The To addresses.")
    cc: list[str] = strawberry.field(description="The Cc addresses.")
    subject: str = strawberry.field(description="The Subject header.")
    text: str = strawberry.field(description="The whole text, quoted earlier mail included (the comment has the reply alone).")
    html: str | None = strawberry.field(description="The HTML part, sanitised.")
    headers: JSON = strawberry.field(description="The headers that matter for threading and loops (Auto-Submitted, "
                                     "Precedence, List-Id, Reply-To, ...).")
    sent_at: datetime | None = strawberry.field(description="The Date header of incoming mail; when a reply was handed over.")
    created_at: datetime = strawberry.field(description="When it was recorded (UTC).")
    error: str | None = strawberry.field(description="Why a reply failed or is UNCONFIRMED.")
    comment_id: strawberry.ID | None = strawberry.field(description="The TicketComment it is (null for the mail that "
                                                        "opened the ticket: that is the description).")
    attachments: list[MailAttachment] = strawberry.field(description="Its files, inline images included.")


@strawberry.type(description="A mail read from a mailbox and what it made.")
class InboundMail:
    id: strawberry.ID = strawberry.field(description="Its global ID, for `assignInboundMail`.")
    channel: str = strawberry.field(description="The name of the mailbox it was read from.")
    from_address: str | None = strawberry.field(description="The sender's address.")
    subject: str = strawberry.field(description="The Subject header.")
    outcome: InboundMailOutcome = strawberry.field(description="What it made.")  # type: ignore[valid-type]
    ticket_id: strawberry.ID | None = strawberry.field(description="Global ID of the Ticket it opened or was added to; "
                                                       "null when it made none.")
    received_at: datetime = strawberry.field(description="When it was read from the mailbox (UTC).")


@strawberry.type(description="A helpdesk program tickets sync with both ways. Credentials are never shown.")
class HelpdeskConnection(Node):
    name: str = strawberry.field(description="Unique among the helpdesk connections.")
    connector: str = strawberry.field(description="rt (Request Tracker), or a partner's connector.")
    config: JSON = strawberry.field(description="The connection's settings, without credentials.")
    active: bool = strawberry.field(description="Whether tickets sync with it.")
    last_sync_at: datetime | None = strawberry.field(description="When its changes were last read, successfully or not "
                                                     "(UTC); null if never.")
    last_error: str | None = strawberry.field(description="What failed in the last sync; null after a good one.")
    created_at: datetime = strawberry.field(description="When the connection was added (UTC).")

    @classmethod
    def from_model(cls, c: m.HelpdeskConnection) -> HelpdeskConnection:
        return cls(id=encode_global_id("HelpdeskConnection", c.id), name=c.name, connector=c.connector,
                   config=c.config, active=c.active, last_sync_at=c.last_sync_at, last_error=c.last_error,
                   created_at=c.created_at)


@strawberry.input(description="A support mailbox. `unknownSenders`: CREATE makes a customer (source EMAIL) for an "
                  "unknown address, QUEUE keeps the mail in `inboundMails(outcome: QUEUED)` for an agent.")
class CreateMailChannelInput:
    name: str = strawberry.field(description="1 to 200 characters, unique (else DUPLICATE).")
    address: str = strawberry.field(description="The support address replies are sent from (INVALID_EMAIL if it is "
                                    "none).")
    imap_host: str = strawberry.field(description="The IMAP server to read.")
    imap_port: int = strawberry.field(description="The IMAP server's TCP port, 1 to 65535.")
    imap_username: str = strawberry.field(description="The IMAP account.")
    imap_password: str = strawberry.field(description="The IMAP password; stored encrypted, never shown.")
    smtp_host: str = strawberry.field(description="The SMTP server to send replies through.")
    smtp_port: int = strawberry.field(description="The SMTP server's TCP port, 1 to 65535.")
    imap_folder: str | None = strawberry.field(default="INBOX", description="The folder to read.")
    processed_folder: str | None = strawberry.field(default="Processed", description="The folder read mail is moved to; "
                                                    "not the one read.")
    imap_tls: str | None = strawberry.field(default="none", description="none or tls.")
    smtp_username: str | None = strawberry.field(default=None, description="The SMTP account; default: no SMTP login.")
    smtp_password: str | None = strawberry.field(default=None, description="The SMTP password; stored encrypted, never "
                                                 "shown.")
    smtp_tls: str | None = strawberry.field(default="none", description="none, starttls or tls.")
    unknown_senders: MailUnknownSenders | None = strawberry.field(default=None, description="What a mail from an unknown "
                                                                  "address does; default: CREATE.")  # type: ignore[valid-type]
    active: bool | None = strawberry.field(default=True, description="Whether the mailbox is read.")


@strawberry.input(description="Changes to a mailbox; absent fields stay. Another IMAP account or folder starts reading "
                  "it from the beginning (mails read before are recognised).")
class UpdateMailChannelInput:
    name: str | None = strawberry.field(default=strawberry.UNSET, description="1 to 200 characters, unique.")
    address: str | None = strawberry.field(default=strawberry.UNSET, description="The support address replies are sent from.")
    imap_host: str | None = strawberry.field(default=strawberry.UNSET, description="The IMAP server to read.")
    imap_port: int | None = strawberry.field(default=strawberry.UNSET, description="The IMAP server's TCP port, 1 to 65535.")
    imap_username: str | None = strawberry.field(default=strawberry.UNSET, description="The IMAP account.")
    imap_password: str | None = strawberry.field(default=strawberry.UNSET, description="A new IMAP password; null "
                                                 "keeps the stored one.")
    imap_folder: str | None = strawberry.field(default=strawberry.UNSET, description="The folder to read; null: INBOX.")
    processed_folder: str | None = strawberry.field(default=strawberry.UNSET, description="The folder read mail is "
                                                    "moved to; null: Processed.")
    imap_tls: str | None = strawberry.field(default=strawberry.UNSET, description="none or tls; null: none.")
    smtp_host: str | None = strawberry.field(default=strawberry.UNSET, description="The SMTP server to send replies through.")
    smtp_port: int | None = strawberry.field(default=strawberry.UNSET, description="The SMTP server's TCP port, 1 to 65535.")
    smtp_username: str | None = strawberry.field(default=strawberry.UNSET, description="The SMTP account; null: no SMTP login.")
    smtp_password: str | None = strawberry.field(default=strawberry.UNSET, description="A new SMTP password; null "
                                                 "keeps the stored one.")
    smtp_tls: str | None = strawberry.field(default=strawberry.UNSET, description="none, starttls or tls; null: none.")
    unknown_senders: MailUnknownSenders | None = strawberry.field(  # type: ignore[valid-type]
        default=strawberry.UNSET, description="What a mail from an unknown address does; null: CREATE."
    )
    active: bool | None = strawberry.field(default=strawberry.UNSET, description="Whether the mailbox is read (true or false).")


@strawberry.input(description="A helpdesk. `config` is the connector's JSON; for `rt`: url, username, password, queue, "
                  "referenceField (see docs/service.md). The password is stored encrypted.")
class CreateHelpdeskConnectionInput:
    name: str = strawberry.field(description="1 to 200 characters, unique (else DUPLICATE).")
    connector: str = strawberry.field(description="A loaded connector's name, e.g. rt.")
    config: JSON = strawberry.field(description="A JSON object of the connector's settings; errors name its keys "
                                    "(`config.url`).")


@strawberry.type(description="The result of `createMailChannel` or `updateMailChannel`.")
class MailChannelPayload:
    mail_channel: MailChannel | None = strawberry.field(description="The mailbox as saved; null when `errors` is not "
                                                        "empty.")
    errors: list[UserError]


@strawberry.type(description="What one read of a mailbox did.")
class MailPollPayload:
    read: int = strawberry.field(description="New mails taken (mails read before are not counted).")
    tickets: int = strawberry.field(description="Tickets opened.")
    comments: int = strawberry.field(description="Comments added to tickets.")
    queued: int = strawberry.field(description="Mails from unknown senders queued for an agent.")
    ignored: int = strawberry.field(description="Auto-replies, bounces, our own mail, floods.")
    failed: int = strawberry.field(description="Mails that could not be taken (kept as FAILED).")
    errors: list[UserError]


@strawberry.type(description="The result of `createHelpdeskConnection`.")
class HelpdeskConnectionPayload:
    helpdesk_connection: HelpdeskConnection | None = strawberry.field(description="The new connection; null when "
                                                                      "`errors` is not empty.")
    errors: list[UserError]


@strawberry.type(description="What one sync with a helpdesk did.")
class HelpdeskSyncPayload:
    tickets_seen: int = strawberry.field(description="Remote tickets changed since the last sync.")
    tickets_created: int = strawberry.field(description="Tickets created in the CRM for them.")
    messages: int = strawberry.field(description="Replies and comments copied into the CRM.")
    status_changes: int = strawberry.field(description="Status or priority changes applied.")
    errors: list[UserError]


@strawberry.type(description="The result of `assignInboundMail`.")
class AssignInboundMailPayload:
    ticket_id: strawberry.ID | None = strawberry.field(description="Global ID of the Ticket the mail opened or was "
                                                       "added to; null when `errors` is not empty.")
    errors: list[UserError]


def _data(input: object) -> dict[str, object]:
    out = {}
    for key, value in vars(input).items():
        if value is strawberry.UNSET:
            continue
        camel = key.split("_")[0] + "".join(w.title() for w in key.split("_")[1:])
        out[camel] = value.name if isinstance(value, (m.UnknownSenders,)) else value
    return out


def _pk(value: strawberry.ID, kind: str, field: str) -> int:
    try:
        return ids.decode_as(str(value), kind)
    except ValueError:
        raise ValidationFailed([FieldError(field, "INVALID_VALUE", f"{field} is not the ID of a {kind}.")]) from None


async def _messages_for(session: object, ticket_ids: Sequence[int]) -> dict[int, list[TicketMessage]]:
    rows = list(await session.scalars(sa.select(m.TicketMessage).where(m.TicketMessage.ticket_id.in_(list(ticket_ids)))  # type: ignore[attr-defined]
                                      .order_by(m.TicketMessage.created_at, m.TicketMessage.id)))
    files: dict[int, list[m.Attachment]] = defaultdict(list)
    if rows:
        for a in await session.scalars(sa.select(m.Attachment).where(  # type: ignore[attr-defined]
                m.Attachment.message_id.in_([r.id for r in rows])).order_by(m.Attachment.id)):
            files[a.message_id].append(a)
    out: dict[int, list[TicketMessage]] = defaultdict(list)
    for r in rows:
        out[r.ticket_id].append(TicketMessage(
            direction=r.direction, status=r.status, message_id=r.message_id, in_reply_to=r.in_reply_to,
            references=list(r.references or []), from_address=r.from_address, from_name=r.from_name, to=list(r.to or []),
            cc=list(r.cc or []), subject=r.subject, text=r.text, html=r.html, headers=r.headers or {}, sent_at=r.sent_at,
            created_at=r.created_at, error=r.error,
            comment_id=strawberry.ID(encode_global_id("TicketComment", r.comment_id)) if r.comment_id else None,
            attachments=[MailAttachment(filename=a.filename, content_type=a.content_type, size=a.size, inline=a.inline,
                                        content_id=a.content_id, stored=a.data is not None, dropped=a.dropped)
                         for a in files[r.id]]))
    return out


@strawberry.type
class TicketMail:
    @strawberry.field(description="The ticket's email thread, oldest first: the mails that came in and the agents' "
                      "replies sent from its mailbox. Empty for a ticket that did not come by mail.")
    async def messages(self, info: Info) -> list[TicketMessage]:
        return await info.context.loader("crm_service.messages", _messages_for, list).load(self.pk)  # type: ignore[attr-defined]


@strawberry.type
class ServiceQuery:
    @query("settings", description="The support mailboxes, oldest first.")
    async def mail_channels(self, info: Info) -> list[MailChannel]:
        async with info.context.db.reader() as session:
            rows = await session.scalars(sa.select(m.MailChannel).order_by(m.MailChannel.id))
            return [MailChannel.from_model(c) for c in rows]

    @query("tickets", "update", description="Mails read from the mailboxes, newest first; `outcome: QUEUED` is the queue "
           "of mails from unknown senders waiting for an agent. For those who work tickets (`tickets:update`): it "
           "shows every mailbox's senders and subjects.")
    async def inbound_mails(
        self, info: Info,
        outcome: Annotated[
            InboundMailOutcome | None,  # type: ignore[valid-type]
            strawberry.argument(description="Only mails with this outcome."),
        ] = None,
        # Not a page argument: a plain limit, so it says its own range.
        first: Annotated[int, strawberry.argument(description="How many mails, newest first: 1 to 200 (values outside "
                                                  "are brought into range).")] = 50,
    ) -> list[InboundMail]:
        first = max(1, min(first, 200))
        async with info.context.db.reader() as session:
            stmt = sa.select(m.InboundMail, m.MailChannel.name).join(m.MailChannel, m.MailChannel.id == m.InboundMail.channel_id)
            if outcome is not None:
                stmt = stmt.where(m.InboundMail.outcome == outcome)
            rows = (await session.execute(stmt.order_by(m.InboundMail.id.desc()).limit(first))).all()
        return [InboundMail(id=strawberry.ID(encode_global_id("InboundMail", r.id)), channel=name, from_address=r.from_address,
                            subject=r.subject, outcome=r.outcome, received_at=r.received_at,
                            ticket_id=strawberry.ID(encode_global_id("Ticket", r.ticket_id)) if r.ticket_id else None)
                for r, name in rows]

    @query("settings", description="The helpdesk connections, oldest first.")
    async def helpdesk_connections(self, info: Info) -> list[HelpdeskConnection]:
        async with info.context.db.reader() as session:
            rows = await session.scalars(sa.select(m.HelpdeskConnection).order_by(m.HelpdeskConnection.id))
            return [HelpdeskConnection.from_model(c) for c in rows]


@strawberry.type
class ServiceMutation:
    @mutation("settings", "update", description="Add a support mailbox. `serve` and `crm-graph worker` start "
              "watching it (IMAP IDLE) within 15 seconds; `crm-graph mail poll` and `pollMailChannel` read it at once.")
    async def create_mail_channel(
        self, info: Info, input: Annotated[CreateMailChannelInput, strawberry.argument(description="The new mailbox.")],
    ) -> MailChannelPayload:
        ctx: Context = info.context
        model, errors = await unit_of_work(info, lambda s: channel_service.create_mail_channel(s, ctx.settings, _data(input)))
        return MailChannelPayload(mail_channel=MailChannel.from_model(model) if model else None, errors=errors)

    @mutation("settings", "update", description="Change a support mailbox; absent fields stay.")
    async def update_mail_channel(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the MailChannel.")],
        input: Annotated[UpdateMailChannelInput, strawberry.argument(description="The fields to change.")],
    ) -> MailChannelPayload:
        ctx: Context = info.context

        async def work(session: object) -> m.MailChannel:
            return await channel_service.update_mail_channel(session, ctx.settings, _pk(id, "MailChannel", "id"), _data(input))  # type: ignore[arg-type]

        model, errors = await unit_of_work(info, work)
        return MailChannelPayload(mail_channel=MailChannel.from_model(model) if model else None, errors=errors)

    @mutation("tickets", "create", description="Read a mailbox now: one pass, like `crm-graph mail poll`.")
    async def poll_mail_channel(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the MailChannel; MAILBOX_FAILED when "
                                                         "the mailbox cannot be read.")],
    ) -> MailPollPayload:
        from crm_service.reader import read_channel

        ctx: Context = info.context
        empty = {"read": 0, "tickets": 0, "comments": 0, "queued": 0, "ignored": 0, "failed": 0}
        try:
            result = await read_channel(ctx.db, ctx.settings, service_settings(), _pk(id, "MailChannel", "id"))
        except DomainError as exc:
            return MailPollPayload(**empty, errors=user_errors(exc))
        except LookupError:
            return MailPollPayload(**empty, errors=[UserError(field="id", code="NOT_FOUND", message="The mail channel was not found.")])
        except MailboxError as exc:
            return MailPollPayload(**empty, errors=[UserError(field="id", code="MAILBOX_FAILED", message=str(exc))])
        await after_commit(ctx)
        return MailPollPayload(read=result.read, tickets=result.tickets, comments=result.comments, queued=result.queued,
                               ignored=result.ignored, failed=result.failed, errors=[])

    @mutation("tickets", "create", description="Make a queued mail (from an unknown sender) a ticket of a customer; the "
              "sender's address is not added to the customer.")
    async def assign_inbound_mail(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of a QUEUED InboundMail (else "
                                                         "INVALID_STATE).")],
        customer_id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the Customer it is from.")],
    ) -> AssignInboundMailPayload:
        from crm_service.intake import assign_queued

        async def work(session: object) -> int:
            return await assign_queued(session, service_settings(), _pk(id, "InboundMail", "id"),  # type: ignore[arg-type]
                                       _pk(customer_id, "Customer", "customerId"))

        ticket_id, errors = await unit_of_work(info, work)
        return AssignInboundMailPayload(ticket_id=strawberry.ID(encode_global_id("Ticket", ticket_id)) if ticket_id else None,
                                        errors=errors)

    @mutation("settings", "update", description="Add a helpdesk to sync tickets with (connector `rt`: Request Tracker).")
    async def create_helpdesk_connection(
        self, info: Info,
        input: Annotated[CreateHelpdeskConnectionInput, strawberry.argument(description="The helpdesk: name, connector "
                                                                            "and settings.")],
    ) -> HelpdeskConnectionPayload:
        ctx: Context = info.context
        data = {"name": input.name, "connector": input.connector, "config": input.config}
        model, errors = await unit_of_work(info, lambda s: sync.create_helpdesk_connection(s, ctx.settings, ctx.plugins, data))
        return HelpdeskConnectionPayload(helpdesk_connection=HelpdeskConnection.from_model(model) if model else None,
                                         errors=errors)

    @mutation("tickets", "update", description="Read a helpdesk's changes now (the server also does it every "
              "CRM_SERVICE_HELPDESK_INTERVAL seconds), like `crm-graph helpdesk sync`.")
    async def sync_helpdesk_connection(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the HelpdeskConnection; "
                                                         "HELPDESK_FAILED when the helpdesk cannot be read.")],
    ) -> HelpdeskSyncPayload:
        ctx: Context = info.context
        empty = {"tickets_seen": 0, "tickets_created": 0, "messages": 0, "status_changes": 0}
        try:
            result = await sync.pull(ctx.db, ctx.settings, service_settings(), ctx.plugins,
                                     _pk(id, "HelpdeskConnection", "id"))
        except DomainError as exc:
            return HelpdeskSyncPayload(**empty, errors=user_errors(exc))
        except LookupError:
            return HelpdeskSyncPayload(**empty, errors=[UserError(field="id", code="NOT_FOUND", message="The helpdesk connection was not found.")])
        except HelpdeskError as exc:
            return HelpdeskSyncPayload(**empty, errors=[UserError(field="id", code="HELPDESK_FAILED", message=exc.message)])
        await after_commit(ctx)
        return HelpdeskSyncPayload(tickets_seen=result.tickets_seen, tickets_created=result.tickets_created,
                                   messages=result.messages, status_changes=result.status_changes,
                                   errors=[UserError(field="id", code="HELPDESK_FAILED", message=e) for e in result.errors])


def _settings_loader(model: Any, graphql_type: Any) -> Any:
    """The node loader of a configuration record: only those who may read the settings find it."""

    async def load(info: Info, pks: list[int]) -> list[Any]:
        if not info.context.actor.can("settings", "read"):
            return [None] * len(pks)
        async with info.context.db.reader() as session:
            rows = {r.id: r for r in await session.scalars(sa.select(model).where(model.id.in_(pks)))}
        return [graphql_type.from_model(rows[pk]) if pk in rows else None for pk in pks]

    return load


SCHEMA = SchemaPart(query=ServiceQuery, mutation=ServiceMutation,
                    nodes=[NodeType("MailChannel", _settings_loader(m.MailChannel, MailChannel), MailChannel),
                           NodeType("HelpdeskConnection", _settings_loader(m.HelpdeskConnection, HelpdeskConnection),
                                    HelpdeskConnection)])
EXTENSIONS = [TypeExtension("Ticket", TicketMail)]
