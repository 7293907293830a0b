"""The ASGI application: ``create_app(settings)`` builds everything; no module-level state."""

from __future__ import annotations

import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute

from crm_graph import dashboard
from crm_graph import plugins as plugin_registry
from crm_graph.auth.authenticate import Authenticator
from crm_graph.core.dispatch import Dispatcher
from crm_graph.core.hooks import notify
from crm_graph.core.jobs import Scheduler, default_jobs
from crm_graph.core.live import LiveHub
from crm_graph.db.session import Database
from crm_graph.files import routes as files_routes
from crm_graph.graphql import http, ide
from crm_graph.graphql.schema import build_schema
from crm_graph.graphql.view import GraphQLView
from crm_graph.observability import tracing
from crm_graph.observability.metrics import Metrics
from crm_graph.observability.requests import ObservedRequests, Routes
from crm_graph.settings import Settings

log = logging.getLogger("crm_graph")

CORE_PATHS = ("/graphql", "/graphql/ide", "/healthz", "/readyz", "/metrics", "/", dashboard.PATH, files_routes.service.ROUTE)


# Answer headers a page may read: the rate limit's (crm_graph/graphql/ratelimit.py).
EXPOSED_HEADERS = ["Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]


def middleware(settings: Settings, observed: list[Middleware] | None = None) -> list[Middleware]:
    """``observed`` outermost (the trace's request span, then the request id, metrics and log
    line, so even a refused request is seen), then the host check (a request for another host
    name is refused before anything else runs), then CORS. Credentials travel in the
    Authorization header, never in cookies, so no origin is allowed credentials."""
    hosts = [f"[{h}]" if ":" in h and not h.startswith("[") else h for h in settings.allowed_hosts]
    origins = list(settings.cors_origins)
    cors: dict[str, Any] = {"allow_origins": origins} if origins or settings.is_production else {"allow_origin_regex": http.DEV_ORIGINS}
    return [
        *(observed or ()),
        Middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False),
        Middleware(CORSMiddleware, allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type", "Accept"],
                   expose_headers=EXPOSED_HEADERS, max_age=600, **cors),
    ]


def create_app(
    settings: Settings | None = None,
    db: Database | None = None,
    *,
    plugins: Any = None,
    dispatcher: bool | None = None,
    jobs: bool | None = None,
) -> Starlette:
    """Build the application.

    ``plugins`` is a ``PluginManager``; by default one is made from the installed plugins
    (``crm_graph.plugins.make_plugin_manager``). ``dispatcher`` says whether the lifespan runs
    the event dispatcher (default: ``settings.dispatcher_enabled``), ``jobs`` whether it runs the
    periodic jobs of ``crm_graph.core.jobs`` (default: ``settings.jobs_enabled``). Plugin start-up and
    shutdown hooks and the dispatcher run in the ASGI lifespan, so a client that does not run
    the lifespan (``httpx.ASGITransport``) gets the API without them.

    Raises ``PluginError`` when a plugin cannot join (a clashing schema field or route).
    """
    settings = settings or Settings.from_env()
    pm = plugins if plugins is not None else plugin_registry.make_plugin_manager(settings)
    schema = build_schema(settings, pm)
    extra_routes = plugin_registry.routes(pm, taken=CORE_PATHS)
    database = db or Database.from_settings(settings)
    database.use_extensions(schema.crm_registry)
    metrics = Metrics() if settings.metrics_enabled else None
    if metrics is not None:
        metrics.watch_database(database)
    traced = tracing.configure(settings)
    tracing.instrument_engine(database.engine)
    owns_db = db is None
    events = Dispatcher(database, settings, pm)
    run_dispatcher = settings.dispatcher_enabled if dispatcher is None else dispatcher
    auth = Authenticator(database, settings)
    live = LiveHub(database, settings)  # runs only while a client of this process is subscribed
    graphql = GraphQLView(schema, settings=settings, db=database, plugins=pm, dispatcher=events)
    scheduler = Scheduler(default_jobs(database, settings, events.wake))
    events.metrics = scheduler.metrics = graphql.metrics = metrics
    run_jobs = settings.jobs_enabled if jobs is None else jobs

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

    async def metrics_page(request: Request) -> Response:
        """Prometheus's text format. With CRM_METRICS_TOKEN set, only for `Authorization: Bearer
        <token>`; without it, open in dev and absent in production."""
        if metrics is None:
            return JSONResponse(http.error_body("Not found.", "NOT_FOUND"), status_code=404)
        if settings.metrics_token:
            sent = request.headers.get("authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {settings.metrics_token}".encode()):
                return JSONResponse(http.error_body("Send the metrics token: Authorization: Bearer <CRM_METRICS_TOKEN>.",
                                                    "UNAUTHENTICATED"), status_code=401, headers={"WWW-Authenticate": "Bearer"})
        elif settings.is_production:
            return JSONResponse(http.error_body("Not found.", "NOT_FOUND"), status_code=404)
        body, content_type = await metrics.exposition()
        return Response(body, media_type=content_type)

    async def index(_: Request) -> Response:
        return RedirectResponse("/graphql")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        timeout = settings.plugin_hook_timeout
        await notify(pm, "crm_startup", timeout, app=app)
        if run_dispatcher:
            events.start()
        if run_jobs:
            scheduler.start()
        try:
            yield
        finally:
            try:
                await live.stop()
                await scheduler.stop()
                await events.stop()
                await notify(pm, "crm_shutdown", timeout, app=app)
                await auth.drain()
            finally:
                if owns_db:
                    await database.dispose()

    core_routes = [
        Route("/graphql", graphql),  # every method: the view answers 405 (in JSON) for the others
        WebSocketRoute("/graphql", graphql),  # subscriptions (crm_graph/graphql/subscriptions.py)
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_page),
        Route("/", index),
        *dashboard.routes(settings),  # the charts page (crm_graph/dashboard), reading the API as its visitor
        *files_routes.routes(),  # import reports and exports, by signed link (crm_graph/files)
    ]
    if not settings.is_production:
        core_routes.append(ide.asset_route(settings))
    observed = [Middleware(ObservedRequests, metrics=metrics, routes=Routes([*CORE_PATHS, *(getattr(r, "path", "") for r in extra_routes)]))]
    if traced:  # a span per request, outermost (crm_graph/observability/tracing.py)
        observed.insert(0, tracing.asgi_middleware())
    app = Starlette(debug=False, routes=[*core_routes, *extra_routes], lifespan=lifespan,
                    middleware=middleware(settings, observed))
    app.state.settings = settings
    app.state.db = database
    app.state.auth = auth
    app.state.graphql = graphql
    app.state.schema = schema
    app.state.plugins = pm
    app.state.dispatcher = events
    app.state.live = live
    app.state.scheduler = scheduler
    app.state.metrics = metrics
    return app
