"""One trace from a write to its webhook: the HTTP request, the GraphQL operation inside it, the
SQL statements inside that, and later, when a separate dispatcher (as `crm-graph worker` runs
one) delivers the event, the delivery and its outbound call, in the same trace; the receiver
gets the trace's `traceparent` header. Spans go to an in-memory exporter (what a collector
would receive); nothing else stands in."""

from __future__ import annotations

from dataclasses import replace

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from crm_graph.core.dispatch import Dispatcher
from crm_graph.observability import tracing
from crm_graph.settings import Settings
from tests.plugins.support import create_customer, outbox
from tests.webhooks.test_delivery import subscribe


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.uninstall()
    provider.shutdown()


async def test_a_write_and_its_later_delivery_are_one_trace(spans, server_factory, receiver, db):
    server = await server_factory()
    await subscribe(server, receiver.url, ["customer.*"])
    await server.app.state.auth.drain()  # the key's last use, written after that answer, in its trace
    spans.clear()
    ada = await create_customer(server.client, firstName="Ada", lastName="Lovelace")
    await server.app.state.auth.drain()  # this request's own last-use write belongs to its trace
    written = spans.get_finished_spans()

    (request,) = [s for s in written if s.kind is SpanKind.SERVER]
    trace_id = request.context.trace_id
    assert all(s.context.trace_id == trace_id for s in written)
    (operation,) = [s for s in written if s.name.startswith("graphql.")]
    assert operation.name.startswith("graphql.mutation ")
    assert operation.parent.span_id == request.context.span_id
    assert operation.attributes["graphql.operation.type"] == "mutation"
    assert operation.attributes["crm.outcome"] == "ok"
    statements = [s for s in written if s.attributes.get("db.statement") or s.attributes.get("db.query.text")]
    assert any("INSERT INTO customers" in (s.attributes.get("db.statement") or s.attributes.get("db.query.text"))
               for s in statements)
    by_id = {s.context.span_id: s for s in written}

    def ancestors(span):  # noqa: ANN001, ANN202
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            yield span

    assert all(operation in ancestors(s) for s in statements)  # inside the operation, not beside it

    spans.clear()
    worker = Dispatcher(db, server.app.state.settings, server.plugins)  # another process's dispatcher
    try:
        await worker.drain()
    finally:
        await worker.aclose()
    (got,) = receiver.received
    assert got.json()["entity"]["id"] == ada["id"]
    delivered = spans.get_finished_spans()
    (delivery,) = [s for s in delivered if s.name == "webhook delivery"]
    assert delivery.context.trace_id == trace_id  # the write's trace
    assert delivery.attributes["crm.event.type"] == "customer.created"
    (call,) = [s for s in delivered if s.kind is SpanKind.CLIENT and s.parent and s.parent.span_id == delivery.context.span_id]
    assert call.context.trace_id == trace_id
    traceparent = got.headers["traceparent"]
    assert traceparent.split("-")[1] == format(trace_id, "032x")
    (batch,) = [s for s in delivered if s.name == "deliver webhook"]
    assert any(link.context.trace_id == trace_id for link in batch.links)


async def test_without_a_collector_nothing_is_traced(server_factory, receiver, db):
    assert not tracing.enabled()
    server = await server_factory()
    await subscribe(server, receiver.url, ["customer.*"])
    await create_customer(server.client, firstName="Ada", lastName="Lovelace")
    await server.drain()
    (got,) = receiver.received
    assert "traceparent" not in got.headers
    assert all("trace" not in event.payload for event in await outbox(db))


def test_the_collector_comes_from_the_settings_or_the_standard_variables(settings):
    assert tracing.endpoint(settings, {}) is None
    assert tracing.endpoint(settings, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) == "http://collector:4318"
    ours = replace(settings, otel_endpoint="http://otel.internal:4318")
    assert tracing.endpoint(ours, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) == "http://otel.internal:4318"
    with pytest.raises(ValueError, match="CRM_OTEL_ENDPOINT"):
        Settings.from_env({"CRM_OTEL_ENDPOINT": "collector:4318"})
