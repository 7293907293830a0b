"""The outermost ASGI middleware of the app: it gives each HTTP request an id (kept from the
client's ``X-Request-ID`` when that looks like an id), returns it in the answer's
``X-Request-ID`` header, keeps it for every log line written meanwhile, counts the request and
its latency, and writes one log line for it: method, route, status, duration, principal,
operation and cost. Never the query, its variables, headers or the body."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_graph.observability import context

log = logging.getLogger("crm_graph.request")


class Routes:
    """The route label of a path: the path of a known route, the known route it sits under
    (``/graphql/ide/...``), or ``other``; a label never carries an id or a client's text."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.exact = set(paths)
        self.prefixes = sorted((p.rstrip("/") + "/" for p in self.exact if p != "/"), key=len, reverse=True)

    def label(self, path: str) -> str:
        if path in self.exact:
            return path
        for prefix in self.prefixes:
            if path.startswith(prefix):
                return prefix[:-1]
        return "other"


class ObservedRequests:
    def __init__(self, app: ASGIApp, *, metrics: Any, routes: Routes) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-request-id"), None)
        route = self.routes.label(scope.get("path", ""))
        info = context.RequestInfo(context.new_request_id(sent), method=scope.get("method", ""), path=route)
        token = context.current.set(info)
        started = time.perf_counter()
        status = 500  # unless the app answers

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", info.request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            seconds = time.perf_counter() - started
            if self.metrics is not None:
                self.metrics.http_requests.labels(info.method, route, str(status)).inc()
                self.metrics.http_latency.labels(info.method, route).observe(seconds)
            log.info(
                "%s %s %d in %.1f ms", info.method, route, status, seconds * 1000,
                extra={"method": info.method, "route": route, "status": status, "duration_ms": round(seconds * 1000, 2),
                       "cost": info.cost, "operation_type": info.operation_type},
            )
            context.current.reset(token)
