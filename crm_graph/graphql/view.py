"""The ASGI GraphQL endpoint: builds each request's context."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.asgi import GraphQL

import logging

from crm_graph.audit.recording import record_denial
from crm_graph.auth.authenticate import InvalidCredentials
from crm_graph.core.access import Scope
from crm_graph.core.actor import ANONYMOUS
from crm_graph.core.hooks import actor_from_request, scope_narrowing
from crm_graph.db.session import Database
from crm_graph.graphql import ide
from crm_graph.graphql.context import Context
from crm_graph.settings import Settings


log = logging.getLogger("crm_graph.auth")


class GraphQLView(GraphQL):
    def __init__(
        self, schema: Any, *, settings: Settings, db: Database, plugins: Any = None, dispatcher: Any = None
    ) -> None:
        super().__init__(
            schema,
            # GraphiQL in development only; queries over GET are off so a link cannot run a mutation
            # and caches cannot replay a query.
            graphql_ide=None if settings.is_production else "graphiql",
            allow_queries_via_get=False,
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

    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        """Who is asking (``crm_actor_from_request``), and the access scope of everything the
        request reads and writes (``core/access.py``)."""
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
        auth = getattr(request.app.state, "auth", None)
        sharing = await auth.sharing() if auth is not None else None
        scope = Scope(actor, narrow=self.narrow, **({"sharing": sharing} if sharing else {}))
        ctx = Context(
            db=self.db.scoped(scope),
            settings=self.settings,
            actor=actor,
            request=request,
            plugins=self.plugins,
            dispatcher=self.dispatcher,
        )
        ctx.auth_failure = failure
        ctx.on_denied = record_denial  # refused requests go to the audit log (crm_graph/audit)
        return ctx
