"""Every hook a plugin can implement. docs/plugin_hooks.md has one section per hook.

A plugin implements a hook by defining a function of the same name, marked with
``@hookimpl`` (``from crm_graph import hookimpl``). It may accept any subset of the arguments
listed here, by name; pluggy passes only the ones it asks for.

Two kinds of hooks:

- Registration hooks (``crm_register_*``) run once while the server or the CLI starts. What
  they return is checked; an error or a clash stops start-up with a message naming the plugin.
- Notification hooks (``crm_startup``, ``crm_shutdown``, ``crm_on_event``) and ``crm_validate``
  may be plain or ``async`` functions. The host calls each implementation on its own, with a
  timeout (``CRM_PLUGIN_HOOK_TIMEOUT``). One that raises, hangs or returns something unexpected
  is logged with its plugin's name and never breaks the request or another plugin; a failed
  ``crm_on_event`` delivery is retried from the outbox.
- Privacy hooks (``crm_export_customer_data``, ``crm_erase_customer_data``) are called the same
  way, inside the request's transaction, but fail closed: one that raises or hangs fails the
  export or the erasure (PLUGIN_FAILED), because a partial answer to a privacy request is wrong.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import AsyncSession
    from starlette.applications import Starlette
    from starlette.routing import BaseRoute

    from crm_graph.core.accounting import AccountingBackend
    from crm_graph.core.automation import AutomationAction
    from crm_graph.core.costs import SentMessages
    from crm_graph.core.actor import Actor
    from crm_graph.core.documents import Attachment, DocumentConverter, DocumentEngine
    from crm_graph.core.errors import FieldError
    from crm_graph.core.helpdesk import HelpdeskConnector
    from crm_graph.core.extensions import FilterCondition, TypeExtension
    from crm_graph.core.mail import MailTransport, MarketingProvider
    from crm_graph.core.subscribers import Subscriber
    from crm_graph.core.events import Event
    from crm_graph.db.session import Database
    from crm_graph.domains import SchemaPart
    from crm_graph.settings import Settings

hookspec = pluggy.HookspecMarker("crm_graph")


@dataclass(frozen=True)
class PluginMigrations:
    """What ``crm_register_migrations`` returns: a directory of Alembic revision files and,
    so that ``alembic check`` and autogenerate know the plugin's tables, their MetaData."""

    versions: Path | str
    metadata: sa.MetaData | None = None


@hookspec(historic=True)
def crm_configure(settings: Settings) -> None:
    """Receive the server's settings, once, before any other hook of the plugin runs.

    Historic: a plugin registered after the call still receives it. Read your own settings
    here (e.g. ``os.environ["CRM_MYPLUGIN_TOKEN"]``) and fail early when they are wrong.
    Synchronous; return nothing.
    """


@hookspec
def crm_startup(app: Starlette) -> Awaitable[None] | None:
    """Run when the server (or ``crm-graph worker``) starts, before the first request.

    ``app`` is the Starlette application: ``app.state.db`` is the ``Database``,
    ``app.state.settings`` the settings. Open connections or warm caches here. May be async.
    A failure is logged and the server starts anyway.
    """


@hookspec
def crm_shutdown(app: Starlette) -> Awaitable[None] | None:
    """Run when the server (or worker) stops, after the last request. Close what
    ``crm_startup`` opened. May be async; a failure is logged."""


@hookspec
def crm_register_schema() -> SchemaPart | Sequence[SchemaPart] | None:
    """Return what the plugin adds to the GraphQL schema: ``SchemaPart(query=..., mutation=...,
    types=[...])`` from ``crm_graph.domains`` (or a list of them).

    Query and mutation fields join the root types. A field whose name is taken, by the core or by
    another plugin, stops start-up with an error naming the plugin. Resolvers follow the house
    rules: mutations return ``{ <entity>, errors: [UserError!]! }``. Synchronous.
    """


@hookspec
def crm_register_routes() -> Sequence[BaseRoute] | None:
    """Return extra Starlette routes (inbound webhooks, file downloads, OAuth callbacks).

    Use paths under ``/plugins/<plugin name>/``; a path the core serves stops start-up. Handlers
    reach the database through ``request.app.state.db``. Synchronous.
    """


@hookspec
def crm_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``crm-graph`` command line: ``cli.add_command(...)`` or decorate
    with ``@cli.command()``. Prefer one group named after the plugin. Synchronous."""


@hookspec
def crm_register_migrations() -> PluginMigrations | Path | str | None:
    """Return the plugin's own Alembic version location (a directory of revision files), or a
    ``PluginMigrations`` with its MetaData as well.

    The plugin's revisions form their own branch (``down_revision = None`` and a
    ``branch_labels`` of the plugin's name); ``crm-graph db upgrade`` and ``serve`` upgrade every
    branch. Keep your tables on your own ``MetaData`` with a name prefix. Synchronous.
    """


@hookspec
def crm_on_event(event: Event, db: Database) -> Awaitable[None] | None:
    """Receive one domain event, after the transaction that raised it has committed.

    ``event`` is a ``crm_graph.core.events.Event`` (id, type, occurred_at, actor, entity_type,
    entity_id, data, changes). ``db`` is the ``Database`` of the dispatcher, for plugins that
    keep their own records. May be async. Return None.

    Delivery is at least once: an implementation that raises, hangs past the timeout or returns
    anything but None gets the same event again later (exponential backoff, then dead letter),
    so make it idempotent: dedupe by ``event.id``. Events of one entity arrive in order unless
    a retry intervenes; compare ``event.occurred_at`` when order matters.
    """


@hookspec
def crm_validate(
    entity: str, data: Mapping[str, Any], actor: Actor, session: AsyncSession
) -> FieldError | Sequence[FieldError] | Awaitable[Any] | None:
    """Approve or reject a write before it happens.

    ``entity`` names what is written ("customer", "activity", "opportunity", "order",
    "ticket", ...), ``data`` is the input (camelCase keys; an update includes ``id``), ``actor``
    who writes. ``session`` is the write transaction, for reads only (async implementations).

    Return None to approve, or a ``FieldError(field, code, message)`` (or a list) to reject: the
    client sees them as ``UserError``s and nothing is written. Raising ``ValidationFailed`` works
    too. May be async. An implementation that crashes or hangs is logged and ignored: the write
    goes ahead, so never rely on a crash to block one.
    """


@hookspec(firstresult=True)
def crm_actor_from_request(request: Any, settings: Settings) -> Actor | Awaitable[Actor | None] | None:
    """Say who sends ``request`` (a Starlette ``Request``): return an ``Actor``, or None when the
    request carries no credentials this plugin understands.

    The first implementation that returns something other than None decides. Return None
    *synchronously* for requests that are not yours (look at the headers first); return an
    awaitable only when you handle the request, e.g. to look a token up. Raise
    ``crm_graph.auth.authenticate.InvalidCredentials(message)`` for credentials that are yours
    but not valid: the client gets UNAUTHENTICATED with that message. The built-in bearer-token
    authentication (API keys and session tokens) is a core plugin implementing this hook,
    registered with ``trylast``, so a partner's plugin is asked first.
    """


@hookspec
def crm_scope_sql(actor: Actor, entity: str) -> sa.ColumnElement[bool] | None:
    """Narrow what ``actor`` may see of ``entity`` (a permission object: "customers",
    "opportunities", "quotes", "orders", "tickets", "activities", "products", "segments", ...).

    Return a SQLAlchemy condition on that entity's model (``crm_graph.core.access.guards()`` maps
    models to entities), or None. Conditions are ANDed with the built-in rules and with each
    other, so a plugin can only ever narrow a scope. They apply to every statement of a request,
    counts and nested lists included. Synchronous and pure; one that raises hides every row of
    the entity (fail closed).
    """


@hookspec
def crm_authorize(actor: Actor, action: str, entity: str | None, data: Mapping[str, Any]) -> bool | str | Awaitable[Any] | None:
    """Allow or refuse a mutation before it runs, after the role's permission allowed it.

    ``action`` and ``entity`` are the mutation's declared permission ("update", "customers");
    ``data`` holds ``operation`` (the mutation's name) and its arguments. Return None or True to
    allow, False or a message to refuse: the client gets FORBIDDEN, nothing is written and the
    refusal is audited. Fail-closed: an implementation that raises, hangs or returns anything
    else refuses. May be async.
    """


@hookspec
def crm_export_customer_data(
    customer_id: int, session: AsyncSession, entity_ids: Sequence[str]
) -> Mapping[str, Any] | Awaitable[Mapping[str, Any] | None] | None:
    """Add what the plugin holds on a customer to a data subject access request
    (``exportCustomerData``), inside that mutation's transaction.

    ``customer_id`` is the customer's primary key (its GraphQL ID is
    ``crm_graph.core.events.global_id("Customer", customer_id)``); ``entity_ids`` are the GraphQL
    IDs of the customer and of the records of it the export found (activities, opportunities,
    quotes, orders, tickets), for plugins that keep data by entity. ``session`` is the request's
    scoped session: read through it (async implementations), never write.

    Return a JSON-ready dict (or None for nothing): the export shows it under
    ``plugins.<plugin name>``. May be async. One that raises, hangs or returns anything else fails
    the export with PLUGIN_FAILED: an export that silently lacks a plugin's data would be wrong.
    """


@hookspec
def crm_erase_customer_data(customer_id: int, session: AsyncSession, entity_ids: Sequence[str]) -> Awaitable[None] | None:
    """Erase what the plugin holds on a customer (``eraseCustomer``), after the core erased its
    own data and in the same transaction.

    Arguments as for ``crm_export_customer_data``; ``entity_ids`` are every record of the customer
    whoever owns it. Delete or anonymise through ``session`` (async implementations) so the
    erasure commits or rolls back as a whole, and be idempotent: the request may be repeated.
    A remote system to clean is better served from the ``customer.erased`` event
    (``crm_on_event``), retried until it succeeds. Return None. May be async. One that raises or
    hangs fails the erasure with PLUGIN_FAILED and nothing is erased.
    """


@hookspec
def crm_merge_customers(
    session: AsyncSession, survivor_id: int, merged_ids: Sequence[int], dry_run: bool
) -> Mapping[str, Any] | Sequence[Any] | str | Awaitable[Any] | None:
    """Move what the plugin keeps on the merged customers to the survivor (``mergeCustomers``),
    inside the merge's transaction, after the core moved its rows.

    Rows of the plugin's tables that have a foreign key to ``customers.id`` are moved by the
    core already (found in the MetaData ``crm_register_migrations`` returns); this hook is for
    the rest (a ``customer_id`` column without a foreign key, remote records). ``survivor_id``
    and ``merged_ids`` are primary keys. With ``dry_run`` true, write nothing: only say what
    would move. Write through ``session`` (async implementations) so the merge commits or rolls
    back as a whole.

    Return a JSON-ready description of what moved (or would move), e.g. ``{"subscriptions": 2}``,
    or None for nothing: the merge shows it under ``plan.plugins.<plugin name>`` and keeps it in
    the merge record. May be async. One that raises or hangs fails the merge with PLUGIN_FAILED
    and nothing is merged. ``undoMerge`` puts back only the core's rows.
    """


@hookspec
def crm_register_type_extensions() -> TypeExtension | Sequence[TypeExtension] | None:
    """Return fields to add to core GraphQL types: ``TypeExtension(type_name, fields)`` from
    ``crm_graph.core.extensions`` (or a list of them).

    ``fields`` is a Strawberry type whose fields join the type named ``type_name`` (``Customer``,
    ``Order``, ``Opportunity``, ``Quote``, ``Ticket``, ``Segment``, ...). Resolvers get the core
    object as ``self`` (``self.pk`` is its primary key) and should batch through the request's
    loaders (``info.context.loader``). A field whose name the type has already, from the core or
    another plugin, stops start-up with an error naming the plugin. The core domains add their
    fields to ``Customer`` through this hook too. Synchronous.
    """


@hookspec
def crm_register_filters() -> FilterCondition | Sequence[FilterCondition] | None:
    """Return conditions to add to an entity's filter input: ``FilterCondition(entity, name,
    compile, input=..., description=..., prepare=...)`` from ``crm_graph.core.extensions``.

    ``entity`` is ``"Customer"`` (its input is ``CustomerFilter``). ``compile(ctx, value, path)``
    turns the condition's value into a SQLAlchemy condition on the entity's model; raise
    ``crm_graph.core.filters.FilterError(path, message)`` for a value it cannot compile, and the
    client gets the error with that path. The condition works in lists, in nested
    ``and``/``or``/``not`` and in dynamic segments, which store the filter as JSON and validate it
    by compiling it. A name already taken stops start-up with an error naming the plugin. The
    built-in behaviour conditions (``orders``, ``tickets``, ``rfm``, ...) are registered this way.
    Synchronous.
    """


@hookspec
def crm_register_subscribers(settings: Settings, plugins: pluggy.PluginManager) -> Subscriber | Sequence[Subscriber] | None:
    """Return event subscribers for the dispatcher: objects following the
    ``crm_graph.core.subscribers.Subscriber`` protocol (a ``kind``, ``fan_out``, ``servable``,
    ``deliver`` and ``aclose``).

    The dispatcher fans every outbox event out to each subscriber's targets as delivery rows
    (``<kind>:<target>``) and hands the due ones back to the subscriber to deliver, with retries,
    backoff and dead letters kept by the core. Plugins' ``crm_on_event`` and webhook
    subscriptions are subscribers of this kind (the latter registered by the webhooks plugin, so
    blocking it stops webhook delivery). ``plugins`` is the plugin manager, for a subscriber
    that asks other hooks (the documents plugin's asks for engines and converters). Synchronous.
    """


@hookspec
def crm_document_engines() -> DocumentEngine | Sequence[DocumentEngine] | None:
    """Return template engines: objects following ``crm_graph.core.documents.DocumentEngine``
    (a ``format`` such as ``"DOCX"``, ``inspect(template)`` and ``render(template, context,
    filters)``).

    The documents plugin fills each template with the engine of the template's format; uploads
    of that format are checked by its ``inspect``. The built-in DOCX (docxtpl) and XLSX
    (openpyxl) engines are registered this way. Two engines for one format stop start-up with
    an error naming both plugins. Synchronous.
    """


@hookspec
def crm_document_converters(settings: Settings) -> DocumentConverter | Sequence[DocumentConverter] | None:
    """Return document converters: objects following ``crm_graph.core.documents.DocumentConverter``
    (``name``, ``sources``, ``target`` and ``async convert(document, source, timeout=...)``).

    A document asked for in a format no engine writes (``PDF``) is made by the first converter
    whose ``target`` is that format and whose ``sources`` hold the template's format. The
    built-in LibreOffice converter is registered this way. The caller owns what it gets: it
    calls ``aclose()`` when done. Synchronous (the converter may start processes lazily).
    """


@hookspec
def crm_document_attachments(
    entity_type: str, entity_id: int, purpose: str, db: Database, settings: Settings, plugins: pluggy.PluginManager
) -> Sequence[Attachment] | Awaitable[Sequence[Attachment] | None] | None:
    """Return files to attach to a message about a record: ``crm_graph.core.documents.Attachment``
    (``file_name``, ``content_type``, ``content``).

    Called by whoever sends the message (an email plugin sending a quote asks with
    ``entity_type="Quote"`` and ``purpose="quote.sent"``); the documents plugin answers with the
    record's PDF, made from the default template when there is none yet. ``db`` is the server's
    ``Database``, ``settings`` and ``plugins`` the caller's. Every implementation is asked, each
    on its own; the answers are joined. May be async.
    """


@hookspec
def crm_accounting_backends() -> AccountingBackend | Sequence[AccountingBackend] | None:
    """Return accounting backends: objects following ``crm_graph.core.accounting.AccountingBackend``
    (a ``name`` such as ``"tryton"``, ``check_config(config)`` and ``connect(config, secrets)``).

    The finance plugin pushes orders to the books and reads payments back through the connection
    a backend makes; finance connections name their backend. The built-in Tryton, fava and
    hledger backends are registered this way. Two backends of one name stop start-up with an
    error naming both plugins. Synchronous.
    """


@hookspec
def crm_mail_transports() -> MailTransport | Sequence[MailTransport] | None:
    """Return mail transports: objects following ``crm_graph.core.mail.MailTransport`` (a ``name``
    such as ``"smtp"``, a ``description`` and ``async open(config)`` returning a session whose
    ``send(mail)`` hands one message over).

    The marketing plugin sends campaigns through the transport ``CRM_MARKETING_TRANSPORT`` names
    (``smtp`` by default: the built-in one on aiosmtplib). A partner adds an email service
    provider's API this way. Two transports of one name stop start-up with an error naming both
    plugins. Synchronous.
    """


@hookspec
def crm_marketing_providers() -> MarketingProvider | Sequence[MarketingProvider] | None:
    """Return marketing providers: objects following ``crm_graph.core.mail.MarketingProvider``
    (a ``name``, ``export_audience(name, members)`` giving the tool's list file, and
    ``parse_results(content)`` reading the tool's report of opens, clicks, unsubscribes,
    bounces and complaints).

    ``exportSegmentAudience`` and ``importMarketingResults`` name a provider; results are recorded
    once each by their ``external_id`` and act like the CRM's own tracking (an unsubscribe or a
    hard bounce suppresses the address). The built-in ``csv`` provider is registered this way.
    Two providers of one name stop start-up. Synchronous.
    """


@hookspec
def crm_helpdesk_connectors() -> HelpdeskConnector | Sequence[HelpdeskConnector] | None:
    """Return helpdesk connectors: objects following ``crm_graph.core.helpdesk.HelpdeskConnector``
    (a ``name`` such as ``"rt"``, ``secret_keys``, ``check_config(config)`` and
    ``connect(config, secrets)`` giving a client for one helpdesk).

    ``createHelpdeskConnection`` names a connector; the customer-service plugin then keeps the
    CRM's tickets and the helpdesk's in step through the client (tickets both ways by reference,
    status and priority, replies and comments once each, the customer card pushed). The
    built-in Request Tracker connector is registered this way. Two connectors of one name stop
    start-up with an error naming both plugins. Synchronous.
    """


@hookspec
def crm_automation_actions() -> AutomationAction | Sequence[AutomationAction] | None:
    """Return automation actions: objects following ``crm_graph.core.automation.AutomationAction``
    (a ``name`` such as ``"send_email"``, a ``description``, ``external`` and ``message`` flags,
    ``async validate(session, params)``, ``async run(ctx)`` and ``describe(params, customer)``).

    An ACTION step of a flow names its action; the engine runs it once per enrolment and step
    (a database action in the step's transaction, an outside one at most once), with retries,
    backoff and the dead letter. The built-in actions (``send_email``, ``create_task``,
    ``update_customer``, ...) are registered this way by ``crm_graph.automation.plugin``. Two
    actions of one name are a ``PluginError`` naming both plugins when the engine sets up.
    Synchronous.
    """


@hookspec
def crm_messages_sent() -> SentMessages | Sequence[SentMessages] | None:
    """Return where the plugin keeps the messages it sent to customers: ``crm_graph.core.costs.
    SentMessages`` (a ``name`` and ``select()`` building a select of ``customer_id`` and
    ``sent_at``, one row per message sent).

    ``Customer.profitability`` and ``Segment.profitability`` count a customer's messages in every
    source and charge ``CRM_INSIGHTS_MARKETING_COST_PER_MESSAGE`` for each. The email marketing
    plugin registers its campaign sends this way. Synchronous; called when profitability is read.
    """
