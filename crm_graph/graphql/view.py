"""The ASGI GraphQL endpoint: builds each request's context."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.asgi import GraphQL

from crm_graph.core.actor import ANONYMOUS
from crm_graph.db.session import Database
from crm_graph.graphql import ide
from crm_graph.graphql.context import Context
from crm_graph.settings import Settings


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

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL, with its files served by this server when ``make serve`` fetched them."""
        return HTMLResponse(ide.local_page(self.graphql_ide_html, ide.assets_dir(self.settings)))

    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        return Context(
            db=self.db,
            settings=self.settings,
            actor=ANONYMOUS,
            request=request,
            plugins=self.plugins,
            dispatcher=self.dispatcher,
        )
