"""/metrics as Prometheus scrapes it: the series of the requests, operations, deliveries and
jobs just made, with the right counts, in text the Prometheus parser reads."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from crm_graph.app import create_app
from crm_graph.core.jobs import Job, Scheduler
from tests.plugins.support import create_customer
from tests.webhooks.test_delivery import subscribe


def scrape(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample by (name, labels); fails unless the Prometheus parser reads all of it."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_operations_deliveries_and_jobs_are_counted(server_factory, receiver):
    server = await server_factory()
    client = server.client
    await subscribe(server, receiver.url, ["customer.*"])
    for name in ("Ada", "Grace", "Edsger"):
        await create_customer(client, firstName=name, lastName="Test")
    await client.execute("query Customers { customers(first: 5) { totalCount } }")
    await client.execute("query Customers { customers(first: 5) { totalCount } }")
    refused = await client.http.post("/graphql", json={"query": "query Broken { customers(first: 5) { nope } }"})
    assert refused.status_code in (200, 400)
    await server.drain()  # three customer.created deliveries to the receiver
    assert len(receiver.received) == 3
    await Scheduler.run_once(Job("ping", 60, _ping), server.app.state.metrics)

    answer = await client.http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = scrape(answer.text)

    assert value(samples, "crm_graphql_operations_total", operation="Customers", type="query", outcome="ok") == 2
    assert value(samples, "crm_graphql_operations_total", operation="Broken", type="query", outcome="refused") == 1
    created = [v for (n, labels), v in samples.items() if n == "crm_graphql_operations_total"
               and ("type", "mutation") in labels and ("outcome", "ok") in labels]
    assert sum(created) == 4  # three createCustomer and the subscription
    assert value(samples, "crm_graphql_operation_duration_seconds_count", operation="Customers", type="query") == 2
    assert value(samples, "crm_graphql_operation_cost_count", type="query") >= 2
    # Every request so far went to /graphql and was answered 200 (the refused one maybe 400).
    graphql_requests = sum(v for (n, labels), v in samples.items()
                           if n == "crm_http_requests_total" and ("route", "/graphql") in labels)
    assert graphql_requests == 7
    assert value(samples, "crm_event_deliveries_total", subscriber="webhook", outcome="delivered") == 3
    assert value(samples, "crm_job_runs_total", job="ping", outcome="done") == 1
    assert value(samples, "crm_outbox_backlog", subscriber="webhook", status="pending") == 0  # all delivered
    assert value(samples, "crm_db_pool_size") >= 1
    assert ("crm_db_pool_connections", frozenset({("state", "in_use")})) in samples
    assert value(samples, "crm_rate_limit_refusals_total") == 0


async def test_backlog_age_and_dead_letters_come_from_the_database(server_factory, settings, clock):
    server = await server_factory(settings_=replace(settings, dispatch_max_attempts=1, webhook_allow_private=True))
    await subscribe(server, "http://127.0.0.1:9/nobody-listens", ["customer.*"])  # connection refused
    await create_customer(server.client, firstName="Ada", lastName="Test")
    await server.dispatcher.fan_out()
    clock.advance(seconds=90)
    samples = scrape((await server.client.http.get("/metrics")).text)
    assert value(samples, "crm_outbox_backlog", subscriber="webhook", status="pending") == 1
    assert value(samples, "crm_outbox_oldest_undelivered_seconds", subscriber="webhook") == pytest.approx(90, abs=1)
    await server.drain()
    samples = scrape((await server.client.http.get("/metrics")).text)
    assert value(samples, "crm_outbox_backlog", subscriber="webhook", status="pending") == 0
    assert value(samples, "crm_event_deliveries_dead", subscriber="webhook") == 1
    assert value(samples, "crm_event_deliveries_total", subscriber="webhook", outcome="dead") == 1


async def test_operation_names_stay_few_as_labels(server_factory):
    server = await server_factory()
    metrics = server.app.state.metrics
    for n in range(250):
        await server.client.execute(f"query Probe{n} {{ __typename }}")
    await server.client.execute('query { __typename }')
    samples = scrape((await server.client.http.get("/metrics")).text)
    names = {dict(labels)["operation"] for (n, labels) in samples if n == "crm_graphql_operations_total"}
    assert len(names) <= 202 and "other" in names and "anonymous" in names
    assert metrics.operation_label("x" * 65) == "other" and metrics.operation_label("bad name") == "other"


async def test_a_token_guards_the_metrics_and_production_hides_them(settings, db):
    guarded = create_app(replace(settings, metrics_token="s3cret-scrape-token"), db=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="http://localhost") as http:
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
        ok = await http.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"})
        assert ok.status_code == 200 and "crm_http_requests_total" in ok.text
    production = create_app(replace(settings, environment="production", secret_key="p" * 40,
                                    allowed_hosts=("localhost",)), db=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=production), base_url="http://localhost") as http:
        hidden = await http.get("/metrics")
        assert hidden.status_code == 404 and "crm_" not in hidden.text


async def _ping() -> str:
    return "pong"
