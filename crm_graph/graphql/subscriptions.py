"""Live updates over WebSocket: the ``Subscription`` root type and the context of a connection.

Clients speak graphql-transport-ws at ``/graphql`` and sign in with their ``connection_init``
payload, ``{"authorization": "Bearer <key or session token>"}``: the same
``crm_actor_from_request`` hook as HTTP answers, and an anonymous or refused init closes the
socket with 4403. Events come from ``crm_graph.core.live`` (this process's tail of the outbox);
each is delivered only if the connection's actor may read its record at that moment. See
docs/api.md, "Live updates", for what clients may rely on.

Deleted records: a soft-deleted record keeps its owner and team, so its ``*.deleted`` event goes
to whoever could read it; a record that is gone from the table (erased) can no longer be checked
and its events go only to actors who see everything, as for webhooks.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.requests import HTTPConnection
from strawberry.exceptions import ConnectionRejectionError
from strawberry.scalars import JSON
from strawberry.types import ExecutionResult, Info

from crm_graph.core.events import Event, known_pattern
from crm_graph.core.live import LiveEnded, Listener
from crm_graph.graphql import access
from crm_graph.graphql.context import Context
from crm_graph.graphql.errors import ClientError
from crm_graph.graphql.relay import Node, decode_global_id, resolve_nodes

log = logging.getLogger("crm_graph.live")

MAX_TYPES = 20  # patterns one `events` subscription may name
MAX_CREDENTIAL = 4096  # characters of the init payload's `authorization`
TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"


class ConnectionContext(Context):
    """The context of one WebSocket connection, shared by its subscriptions for as long as the
    socket is open. Anonymous until ``connection_init`` (``sign_in``). DataLoaders do not cache
    here: a connection lives for hours and every event must be read afresh."""

    def __init__(self, *, view: Any, live: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view = view  # the GraphQLView: ``authenticate`` and ``scope_for``, as for HTTP
        self.live = live  # the process's LiveHub
        self.connection_params: dict[str, Any] | None = None  # set by Strawberry from the init
        self.subscriptions = 0  # live subscriptions open on this connection
        self._credentials: HTTPConnection | None = None

    def loader(self, *args: Any, **kwargs: Any) -> Any:
        found = super().loader(*args, **kwargs)
        found.cache = False
        return found

    async def sign_in(self) -> None:
        """Authenticate the connection from its init payload; ``ConnectionRejectionError`` (4403)
        when it carries no valid credentials."""
        params = self.connection_params or {}
        given = params.get("authorization")
        if given is not None and not (isinstance(given, str) and 0 < len(given) <= MAX_CREDENTIAL and given.isascii()):
            log.info("websocket connection refused: malformed authorization in connection_init")
            raise ConnectionRejectionError()
        self._credentials = with_authorization(self.request, given)
        actor, failure = await self.view.authenticate(self._credentials)
        if failure is not None or not actor.authenticated:
            log.info("websocket connection refused: %s", failure or "no credentials")
            raise ConnectionRejectionError()
        await self._become(actor)

    async def current_scope(self) -> Any:
        """The connection's scope now, or None when its credentials no longer hold. The live hub
        asks before each batch; verified tokens are cached for CRM_AUTH_CACHE_SECONDS, so a revoked
        key or an ended session stops receiving within that time."""
        if self._credentials is None:
            return None
        actor, failure = await self.view.authenticate(self._credentials)
        if failure is not None or not actor.authenticated:
            return None
        sharing = await self.view.sharing(self._credentials)
        if actor != self.actor or (sharing is not None and sharing != self.scope.sharing):
            await self._become(actor)
        return self.scope

    async def _become(self, actor: Any) -> None:
        scope = await self.view.scope_for(self._credentials, actor)
        self.actor, self.scope, self.db = actor, scope, self.base_db.scoped(scope)


def over_http(query: Any, operation_name: str | None, max_tokens: int) -> ExecutionResult | None:
    """The answer to a subscription sent as a plain HTTP request (a clear error), or None when
    the request is no subscription. Only documents that mention ``subscription`` are parsed."""
    if not isinstance(query, str) or "subscription" not in query:
        return None
    if _operation_type(query, operation_name, max_tokens) is not OperationType.SUBSCRIPTION:
        return None
    message = "Subscriptions run over a WebSocket at /graphql (subprotocol graphql-transport-ws), not over HTTP."
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions={"code": "BAD_REQUEST"})])


@functools.lru_cache(maxsize=256)
def _operation_type(query: str, operation_name: str | None, max_tokens: int) -> OperationType | None:
    # The type only, not the node: a node keeps its whole document's tokens alive in the cache.
    try:
        operation = get_operation_ast(parse(query, max_tokens=max_tokens), operation_name)
    except GraphQLError:
        return None  # Strawberry reports the syntax error
    return operation.operation if operation is not None else None


def with_authorization(connection: HTTPConnection, authorization: str | None) -> HTTPConnection:
    """The handshake as the authentication hook sees it: its headers, with the init payload's
    ``authorization`` in place of an ``Authorization`` header (when the payload has one)."""
    if authorization is None:
        return connection
    headers = [(k, v) for k, v in connection.scope["headers"] if k.lower() != b"authorization"]
    headers.append((b"authorization", authorization.encode("ascii")))
    return HTTPConnection({**connection.scope, "headers": headers})


@strawberry.type(description="An event as a live subscription delivers it: the facts a webhook receiver gets.")
class LiveEvent:
    id: strawberry.ID = strawberry.field(
        description="The event's own id, the same as a webhook body's `id` and `DomainEvent.eventId`: dedupe by it."
    )
    type: str = strawberry.field(description='E.g. "ticket.updated"; see `eventTypes`.')
    entity_type: str = strawberry.field(description='The kind of entity, e.g. "ticket" or "customer".')
    entity_id: strawberry.ID = strawberry.field(description="Global ID of the entity; `node(id:)` fetches it.")
    occurred_at: datetime = strawberry.field(description="When the change was committed (UTC).")
    actor: str = strawberry.field(description='Who caused it, e.g. "user:42" or "system".')
    data: JSON = strawberry.field(description="The entity as the API showed it after the change.")
    changes: JSON | None = strawberry.field(description="What changed (`fields`, and `before` for updates), if known.")

    @classmethod
    def of(cls, event: Event) -> LiveEvent:
        return cls(
            id=strawberry.ID(event.id), type=event.type, entity_type=event.entity_type,
            entity_id=strawberry.ID(event.entity_id), occurred_at=event.occurred_at, actor=event.actor,
            data=dict(event.data), changes=dict(event.changes) if event.changes is not None else None,
        )


@contextlib.asynccontextmanager
async def listening(info: Info, **options: Any) -> AsyncIterator[Listener]:
    """A listener of the process's live hub for one subscription of this connection, within the
    connection's limit; ``LiveEnded`` becomes a client error with its code."""
    ctx = info.context
    if not isinstance(ctx, ConnectionContext) or ctx.live is None:
        raise ClientError("Subscriptions run over a WebSocket at /graphql (subprotocol graphql-transport-ws).")
    limit = ctx.settings.live_max_subscriptions
    if ctx.subscriptions >= limit:
        raise ClientError(
            f"At most {limit} subscriptions at once on one connection; complete one or open another connection.",
            TOO_MANY_SUBSCRIPTIONS,
        )
    ctx.subscriptions += 1
    listener = None
    try:
        listener = await ctx.live.listen(scope=ctx.current_scope, **options)
        yield listener
    except LiveEnded as ended:
        raise ClientError(str(ended), ended.code) from None
    finally:
        ctx.subscriptions -= 1
        if listener is not None:
            listener.close()


def event_types(types: list[str]) -> list[str]:
    if not 1 <= len(types) <= MAX_TYPES:
        raise ClientError(f"`types` takes 1 to {MAX_TYPES} patterns, such as \"ticket.*\" or \"*\".", "INVALID_EVENT_TYPES")
    unknown = [t for t in types if not known_pattern(t)]
    if unknown:
        raise ClientError(
            f"No event type matches {unknown[0][:100]!r}: use a type from `eventTypes`, \"<entity>.*\" or \"*\".",
            "UNKNOWN_EVENT_TYPE",
        )
    return list(dict.fromkeys(types))


async def follow(info: Info, global_id: strawberry.ID, expected: str | None = None) -> AsyncGenerator[Any, None]:
    """The object of ``global_id``, read again after each batch of events about it. Null once it
    is gone or hidden from the connection (once; nothing while it stays so, and nothing for an
    object the connection never saw, so following an ID tells nothing about a hidden record)."""
    type_name, pk = decode_global_id(global_id, expected)
    async with listening(info, entity=(type_name, str(pk)), records=False) as listener:
        visible = (await resolve_nodes(info, [global_id]))[0] is not None
        while True:
            await listener.batch()
            found = (await resolve_nodes(info, [global_id]))[0]
            if found is not None or visible:
                visible = found is not None
                yield found


@strawberry.type
class LiveSubscription:
    @access.signed_in(
        "subscription",
        description=f"Events as they commit, of the types matching `types` (1 to {MAX_TYPES} patterns: "
        '"ticket.*", "order.paid", "*"), for records you may read at that moment. Live and best-effort: '
        "what happens while you are disconnected is not replayed (webhooks are the reliable channel).",
    )
    async def events(
        self, info: Info,
        types: Annotated[list[str], strawberry.argument(description='Event type patterns: a type, "domain.*" or "*".')],
    ) -> AsyncGenerator[LiveEvent, None]:
        patterns = event_types(types)
        async with listening(info, types=patterns) as listener:
            async for event in listener:
                yield LiveEvent.of(event)

    @access.signed_in(
        "subscription",
        description="Any object by global ID, read again each time an event about it commits; null once it "
        "is gone or no longer visible to you.",
    )
    async def entity_changed(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The object's global ID.")]
    ) -> AsyncGenerator[Node | None, None]:
        async with contextlib.aclosing(follow(info, id)) as found:
            async for node in found:
                yield node
