"""The ASGI GraphQL endpoint: builds each request's context, and speaks GraphQL over HTTP as
``crm_graph.graphql.http`` describes (JSON errors, content negotiation, status codes)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from python_multipart.exceptions import FormParserError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope
from starlette.websockets import WebSocket
from cross_web import HTTPException
from graphql import GraphQLError
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

import logging

from crm_graph.audit.recording import record_denial
from crm_graph.auth.authenticate import InvalidCredentials
from crm_graph.core.access import Scope
from crm_graph.core.actor import ANONYMOUS, Actor
from crm_graph.core.hooks import actor_from_request, scope_narrowing
from crm_graph.db.session import Database
from crm_graph.graphql import http, ide
from crm_graph.graphql.limits import limited_body
from crm_graph.graphql.context import Context
from crm_graph.graphql.subscriptions import ConnectionContext, over_http
from crm_graph.graphql.cost import over_token_limit
from crm_graph.observability import context as request_context
from crm_graph.settings import Settings


log = logging.getLogger("crm_graph.auth")

# The media type the current HTTP request is answered with (set per request in ``__call__``).
_answer_as: ContextVar[str | None] = ContextVar("crm_graph_answer_as", default=http.JSON)


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _is_multipart(scope: AsgiScope) -> bool:
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            return _media_type(value.decode("latin-1")) == "multipart/form-data"
    return False


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
            # Pages on other origins may open the socket only when CRM_CORS_ORIGINS lets them.
            allowed_origins=settings.cors_origins,
            # File uploads (`startImport(input: {file})`), GraphQL multipart request spec; guarded
            # against cross-site forms in ``parse_http_body``.
            multipart_uploads_enabled=True,
        )
        self.settings = settings
        self.db = db
        self.plugins = plugins
        self.dispatcher = dispatcher
        self.narrow = scope_narrowing(plugins)  # plugins are fixed once the app is built

    # The app's metrics (crm_graph/observability/metrics.py); None in a view built without an app.
    metrics: Any = None

    # Headers GraphiQL starts with (dev: the dev administrator's key, set by ``crm-graph serve``).
    ide_headers: dict[str, str] | None = None

    def should_render_graphql_ide(self, request: Any) -> bool:
        """GraphiQL for a browser's GET, share links (``?query=...``) included. Strawberry takes a GET
        with ``query`` for an operation, which this server never runs over GET (they get 405), so
        such a GET gets the page when it asks for HTML by name (``*/*`` alone is not a browser)."""
        if self.graphql_ide is not None and request.method == "GET" and request.query_params.get("query") is not None:
            return "text/html" in request.headers.get("accept", "")
        return super().should_render_graphql_ide(request)

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL, with its files served by this server when ``make serve`` fetched them."""
        page = ide.local_page(self.graphql_ide_html, ide.assets_dir(self.settings))
        return HTMLResponse(ide.adapt(page, self.ide_headers))

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
        ctx.metrics = self.metrics  # operations are counted (crm_graph/observability/operations.py)
        request_context.note(principal=actor.label)  # for the request's log lines
        ctx.on_denied = record_denial  # refused requests go to the audit log (crm_graph/audit)
        ctx.response = response  # rate-limit headers and 429 (crm_graph/graphql/cost.py)
        return ctx

    async def execute_single(self, request: Any, request_adapter: Any, sub_response: Any, context: Any, root_value: Any, request_data: Any) -> Any:  # noqa: PLR0917
        """As Strawberry's, but a subscription sent over HTTP gets a clear error (not a 500), and an
        operation that cannot be chosen (unknown ``operationName``, several operations and none
        named) is a GraphQL request error, not a bare HTTP error."""
        if isinstance(request_data.query, str) and len(request_data.query) > self.settings.max_query_length:
            # Too long to parse at all: the schema refuses it by its length (graphql/cost.py).
            return await super().execute_single(request, request_adapter, sub_response, context, root_value, request_data)
        if isinstance(request_data.query, str) and over_token_limit(request_data.query, self.settings.max_tokens):
            # Refused by a fast count before any of the parses below (each would lex up to the limit).
            return _request_error(f"Syntax Error: Document contains more than {self.settings.max_tokens} tokens. "
                                  "Parsing aborted.", "GRAPHQL_PARSE_FAILED")
        refused = over_http(request_data.query, request_data.operation_name, self.settings.max_tokens)
        if refused is not None:
            return refused
        if request_data.operation_name is None and http.several_operations(request_data.query, self.settings.max_tokens):
            return _request_error("The document has several operations: say which one to run with `operationName`.")
        try:
            return await super().execute_single(request, request_adapter, sub_response, context, root_value, request_data)
        except HTTPException as exc:
            cause = exc.__cause__
            if isinstance(cause, CannotGetOperationTypeError):
                return _request_error("The document has no operation to run." if cause.operation_name is None
                                      else f"The document has no operation named {cause.operation_name!r}.")
            raise

    # --- GraphQL over HTTP (crm_graph/graphql/http.py) ---------------------------------------------

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        """HTTP requests: every refusal is a JSON body with a 4xx status, and the rest of a refused
        request's body is read so its keep-alive connection can carry the next request."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        limit = self.settings.max_request_bytes
        if _is_multipart(scope):  # an upload may be as large as an import file (crm_graph/imports)
            from crm_graph.imports.service import MAX_FILE_BYTES

            limit = max(limit, MAX_FILE_BYTES + 1_048_576)
        request = Request(scope, receive=limited_body(scope, receive, limit))  # 413 (graphql/limits.py)
        token = _answer_as.set(http.negotiate(request.headers.get("accept")))
        try:
            try:
                response = await self.run(request)
            except http.RequestError as exc:
                response = self.error_response(exc.status, exc.message, exc.code, exc.headers)
            except HTTPException as exc:  # Strawberry's own refusals (method, operation type)
                response = self.error_response(exc.status_code, exc.reason, "BAD_REQUEST" if exc.status_code == 400 else "METHOD_NOT_ALLOWED")
            except Exception:
                logging.getLogger("crm_graph.graphql").exception("unexpected error answering %s %s", request.method, request.url.path)
                response = self.error_response(500, "Internal server error.", "INTERNAL_SERVER_ERROR")
        finally:
            _answer_as.reset(token)
        if not await _drain(request):
            response.headers["connection"] = "close"
        await response(scope, receive, send)

    def error_response(self, status: int, message: str, code: str, headers: Mapping[str, str] | None = None) -> Response:
        media = _answer_as.get() or http.JSON
        body = http.error_body(message, code)
        request_id = request_context.request_id()
        if status >= 500 and request_id is not None:  # what to quote to an operator
            body["errors"][0]["extensions"]["requestId"] = request_id
        return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=f"{media}; charset=utf-8")

    async def parse_http_body(self, request: Any) -> GraphQLRequestData:  # type: ignore[override]
        """Operations come as a POSTed JSON object (GET serves GraphiQL only: a link must not run
        an operation, and caches must not replay one)."""
        if request.method == "GET":
            raise http.RequestError(405, "Send GraphQL operations as POST requests with Content-Type: application/json.",
                                    "METHOD_NOT_ALLOWED", {"Allow": "POST"})
        if _answer_as.get() is None:
            raise http.RequestError(406, f"The answer is {http.GRAPHQL_RESPONSE} or {http.JSON}: accept one of them.", "NOT_ACCEPTABLE")
        if _media_type(request.content_type) == "multipart/form-data":
            # A cross-site HTML form can post multipart/form-data without a CORS preflight, and
            # carries cookies: an upload must carry the Authorization header, which such a form
            # cannot set.
            if not request.headers.get("authorization"):
                raise http.RequestError(400, "A multipart upload needs the Authorization header (a bearer API key or "
                                        "session token).", "BAD_REQUEST")
            try:
                parsed = await super().parse_http_body(request)
            except (MultiPartException, FormParserError, StarletteHTTPException) as exc:  # a body that is no multipart form
                detail = getattr(exc, "detail", None) or getattr(exc, "message", None) or str(exc)
                raise http.RequestError(400, f"The multipart body cannot be read: {detail}", "BAD_REQUEST") from None
            # The `operations` part is checked as a JSON body is (its variables hold the files).
            return http.request_data({"query": parsed.query, "variables": parsed.variables,
                                      "operationName": parsed.operation_name, "extensions": parsed.extensions})
        http.check_content_type(request.content_type)
        return http.request_data(http.decode_body(await request.get_body()))

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:  # type: ignore[override]
        """A request error (nothing executed) has no ``data`` entry, as the GraphQL spec says."""
        body = process_result(result)
        if http.is_request_error(result):
            body.pop("data", None)
            for error in body.get("errors") or ():  # e.g. a variable's value the scalar refused
                if not (error.get("extensions") or {}).get("code"):
                    error["extensions"] = {**(error.get("extensions") or {}), "code": "BAD_REQUEST"}
        return body

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        """The negotiated media type, and the status it prescribes (unless a resolver or an
        extension set one on the sub-response)."""
        media = _answer_as.get() or http.JSON
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = f"{media}; charset=utf-8"
        if not sub_response.status_code and isinstance(response_data, dict):
            response.status_code = http.status_of(response_data, media)
        return response

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        """CRM_CORS_ORIGINS, or in development with none set, pages served from loopback."""
        if super().is_websocket_origin_allowed(request, origin):
            return True
        dev = not self.settings.cors_origins and not self.settings.is_production
        return dev and re.fullmatch(http.DEV_ORIGINS, origin.strip().lower()) is not None

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


def _request_error(message: str, code: str = "BAD_REQUEST") -> ExecutionResult:
    """A GraphQL request error (nothing runs): no ``data``, 400 under graphql-response+json."""
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions={"code": code})])


async def _drain(request: Request) -> bool:
    """Read what is left of the request body (at most ``http.DRAIN_LIMIT`` bytes). False when
    more was left: the connection must then be closed after the answer."""
    read = 0
    try:
        async for chunk in request.stream():
            read += len(chunk)
            if read > http.DRAIN_LIMIT:
                return False
    except Exception:  # noqa: BLE001 - consumed already, or the client went away
        return True
    return True
