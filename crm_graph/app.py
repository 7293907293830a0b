"""The ASGI application: ``create_app(settings)`` builds everything; no module-level state."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from crm_graph.db.session import Database
from crm_graph.graphql.schema import build_schema
from crm_graph.graphql.view import GraphQLView
from crm_graph.settings import Settings

log = logging.getLogger("crm_graph")


def create_app(settings: Settings | None = None, db: Database | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    database = db or Database.from_settings(settings)
    owns_db = db is None
    schema = build_schema(settings)
    graphql = GraphQLView(schema, settings=settings, db=database)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            async with database.reader() as session:
                await session.execute(sa.text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means "not ready"; details go to the log
            log.exception("readiness check failed")
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": database.dialect})

    async def index(_: Request) -> Response:
        return RedirectResponse("/graphql")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owns_db:
                await database.dispose()

    app = Starlette(
        debug=False,
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/", index),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = database
    app.state.schema = schema
    return app
