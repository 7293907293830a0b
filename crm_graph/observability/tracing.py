"""Traces with OpenTelemetry, off unless configured.

On when ``CRM_OTEL_ENDPOINT`` or the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` names an OTLP/HTTP collector (``OTEL_SERVICE_NAME`` and
the other ``OTEL_*`` variables apply as usual). Then a trace has:
- a span per HTTP request (the ASGI instrumentation, outermost);
- a span per GraphQL operation (``graphql.<type> <name>``, with its cost), and one per batch a
  DataLoader loads (``load <name>``), not one per field;
- a span per SQL statement (the SQLAlchemy instrumentation);
- a span per outbound HTTP call (httpx): webhooks and the integrations' calls.
An outbox event keeps the trace context of the write that raised it, so when the dispatcher
(in the server or a worker, later) delivers it, the delivery's span joins that trace.

When off, nothing is installed and the helpers here return at once: no spans, no cost beyond a
flag test. The tracer provider is the process's (OpenTelemetry has one per process).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from crm_graph.settings import Settings

_state: dict[str, Any] = {"provider": None, "httpx": None}
TRACER = "crm_graph"


def endpoint(settings: Settings, environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    return settings.otel_endpoint or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None


def enabled() -> bool:
    return _state["provider"] is not None


def configure(settings: Settings) -> bool:
    """Install an OTLP exporter when the settings or the environment name a collector (once per
    process). True when tracing is on."""
    if enabled():
        return True
    url = endpoint(settings)
    if url is None:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if settings.otel_endpoint:  # the collector's base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it
        exporter = OTLPSpanExporter(endpoint=settings.otel_endpoint.rstrip("/") + "/v1/traces")
    else:
        exporter = OTLPSpanExporter()  # reads the OTEL_EXPORTER_OTLP_* variables itself
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "crm-graph")}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    return True


def install(provider: Any) -> None:
    """Trace with ``provider`` (an SDK ``TracerProvider``); tests pass one with an in-memory exporter."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    _state["provider"] = provider
    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)
    _state["httpx"] = instrumentor


def uninstall() -> None:
    """Stop tracing (tests): new apps are not instrumented, and httpx calls are no longer traced."""
    instrumentor = _state["httpx"]
    if instrumentor is not None and instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    _state.update(provider=None, httpx=None)


def tracer() -> Any:
    return _state["provider"].get_tracer(TRACER)


def asgi_middleware() -> Any:
    """The Starlette middleware that opens a span per HTTP request (tracing must be on)."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from starlette.middleware import Middleware

    return Middleware(OpenTelemetryMiddleware, tracer_provider=_state["provider"], exclude_spans=["receive", "send"])


def instrument_engine(engine: Any) -> None:
    """A span per SQL statement of ``engine`` (an ``AsyncEngine``), when tracing is on."""
    if not enabled():
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import NoOpMeterProvider

    if getattr(engine.sync_engine, "_crm_traced", False):
        return
    # The instrumentation's own entry point patches create_engine for the whole process; one
    # engine's tracer is what an app needs. Its connection-usage metric is not used: the pool's
    # figures are on /metrics already.
    usage = NoOpMeterProvider().get_meter(TRACER).create_up_down_counter("db.client.connections.usage")
    EngineTracer(tracer(), engine.sync_engine, usage)
    engine.sync_engine._crm_traced = True


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Any]:
    """A span of the current trace (a no-op when tracing is off)."""
    if not enabled():
        yield None
        return
    with tracer().start_as_current_span(name, attributes={k: v for k, v in attributes.items() if v is not None}) as current:
        yield current


@contextlib.contextmanager
def batch_span(name: str, traces: list[Mapping[str, str] | None], **attributes: Any) -> Iterator[Any]:
    """A span of work done for several traces at once (a batch of deliveries), linked to each."""
    if not enabled():
        yield None
        return
    links = []
    for headers in traces:
        if headers:
            context = trace.get_current_span(propagate.extract(dict(headers))).get_span_context()
            if context.is_valid:
                links.append(trace.Link(context))
    with tracer().start_as_current_span(name, links=links, attributes=attributes) as current:
        yield current


def carrier() -> dict[str, str] | None:
    """The current trace context as W3C headers (``traceparent``), to keep with an outbox event."""
    if not enabled() or not trace.get_current_span().get_span_context().is_valid:
        return None
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers or None


@contextlib.contextmanager
def joined(name: str, headers: Mapping[str, str] | None, **attributes: Any) -> Iterator[Any]:
    """A span in the trace ``headers`` (from ``carrier``) belong to, or a new trace without them."""
    if not enabled():
        yield None
        return
    parent = propagate.extract(dict(headers)) if headers else otel_context.Context()
    token = otel_context.attach(parent)
    try:
        with span(name, **attributes) as current:
            yield current
    finally:
        otel_context.detach(token)
