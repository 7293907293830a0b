"""The ASGI GraphQL endpoint: builds each request's context."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

import logging

from crm_graph.audit.recording import record_denial
from crm_graph.auth.authenticate import InvalidCredentials
from crm_graph.core.access import Scope
from crm_graph.core.actor import ANONYMOUS, Actor
from crm_graph.core.hooks import actor_from_request, scope_narrowing
from crm_graph.db.session import Database
from crm_graph.graphql import ide
from crm_graph.graphql.context import Context
from crm_graph.graphql.subscriptions import ConnectionContext, over_http
from crm_graph.settings import Settings


log = logging.getLogger("crm_graph.auth")


class GraphQLView(GraphQL):
    # A WebSocket must sign in (``connection_init``) this soon after it opens, or it is closed.
    connection_init_wait_timeout = timedelta(seconds=10)

    def __init__(
        self, schema: Any, *, settings: Settings, db: Database, plugins: Any = None, dispatcher: Any = None
    ) -> None:
        super().__init__(
            schema,
            # GraphiQL in development only; queries over GET are off so a link cannot run a mutation
            # and caches cannot replay a query.
            graphql_ide=None if settings.is_production else "graphiql",
            allow_queries_via_get=False,
            # Live updates speak graphql-transport-ws only (crm_graph/graphql/subscriptions.py).
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            # Operations in flight on one socket; subscriptions alone are held to
            # `live_max_subscriptions`, with a clearer error, by the subscription fields.
            max_subscriptions_per_connection=2 * settings.live_max_subscriptions,
            connection_init_wait_timeout=self.connection_init_wait_timeout,
        )
        self.settings = settings
        self.db = db
        self.plugins = plugins
        self.dispatcher = dispatcher
        self.narrow = scope_narrowing(plugins)  # plugins are fixed once the app is built

    # Headers GraphiQL starts with (dev: the dev administrator's key, set by ``crm-graph serve``).
    ide_headers: dict[str, str] | None = None

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL, with its files served by this server when ``make serve`` fetched them."""
        page = ide.local_page(self.graphql_ide_html, ide.assets_dir(self.settings))
        return HTMLResponse(ide.with_headers(page, self.ide_headers))

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:  # type: ignore[override]
        """Who is asking (``crm_actor_from_request``), and the access scope of everything the
        request reads and writes (``core/access.py``). A WebSocket signs in later, with its
        ``connection_init`` (``on_ws_connect``)."""
        if isinstance(request, WebSocket):
            return ConnectionContext(
                view=self, live=getattr(request.app.state, "live", None), db=self.db.scoped(Scope(ANONYMOUS)),
                settings=self.settings, actor=ANONYMOUS, request=request, plugins=self.plugins, dispatcher=self.dispatcher,
            )
        actor, failure = await self.authenticate(request)
        ctx = Context(
            db=self.db.scoped(await self.scope_for(request, actor)),
            settings=self.settings,
            actor=actor,
            request=request,
            plugins=self.plugins,
            dispatcher=self.dispatcher,
        )
        ctx.auth_failure = failure
        ctx.on_denied = record_denial  # refused requests go to the audit log (crm_graph/audit)
        return ctx

    async def execute_single(self, request: Any, request_adapter: Any, sub_response: Any, context: Any, root_value: Any, request_data: Any) -> Any:  # noqa: PLR0917
        """As Strawberry's, but a subscription sent over HTTP gets a clear error (not a 500)."""
        refused = over_http(request_data.query, request_data.operation_name, self.settings.max_tokens)
        if refused is not None:
            return refused
        return await super().execute_single(request, request_adapter, sub_response, context, root_value, request_data)

    async def on_ws_connect(self, context: ConnectionContext) -> UnsetType:  # type: ignore[override]
        """``connection_init``: sign the connection in, or close it with 4403."""
        await context.sign_in()
        context.on_denied = record_denial
        return UNSET

    async def authenticate(self, request: HTTPConnection) -> tuple[Actor, str | None]:
        """The actor of a request or handshake, and why its credentials were refused (if so)."""
        actor, failure = ANONYMOUS, None
        try:
            found = await actor_from_request(self.plugins, request, self.settings) if self.plugins is not None else None
            if found is not None:
                actor = found
        except InvalidCredentials as exc:
            failure = str(exc)
        except Exception:  # noqa: BLE001 - an authentication plugin's bug must not let anyone in
            log.exception("authentication failed")
            failure = "The credentials could not be checked."
        return actor, failure

    async def sharing(self, request: HTTPConnection) -> Mapping[str, Any] | None:
        auth = getattr(request.app.state, "auth", None)
        return await auth.sharing() if auth is not None else None

    async def scope_for(self, request: HTTPConnection, actor: Actor) -> Scope:
        sharing = await self.sharing(request)
        return Scope(actor, narrow=self.narrow, **({"sharing": sharing} if sharing else {}))
