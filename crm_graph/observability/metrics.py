"""Metrics in the Prometheus text format, at /metrics.

Each application (``create_app``) has its own registry, so two apps in one process (tests) never
mix their counts. What it counts:
- ``crm_http_requests_total`` / ``crm_http_request_duration_seconds``: every HTTP request, by
  method, route (the route's path, never the raw URL) and status;
- ``crm_graphql_operations_total`` / ``crm_graphql_operation_duration_seconds`` /
  ``crm_graphql_operation_cost``: GraphQL operations by name and type, and by outcome: ``ok``,
  ``error`` (it ran; some field failed), ``refused`` (a request error: nothing ran),
  ``rate_limited``;
- ``crm_rate_limit_refusals_total``;
- ``crm_event_deliveries_total``: delivery attempts this process made, by subscriber kind
  (``webhook`` and each integration: ``finance``, ``documents``, ``marketing``, ``service`` ...)
  and outcome (``delivered``, ``failed`` (to be retried), ``dead``, ``postponed``);
- ``crm_job_runs_total``: the periodic jobs' runs, by job and outcome;
read from the database at each scrape (so they count every process's work):
- ``crm_outbox_backlog`` and ``crm_outbox_oldest_undelivered_seconds``: deliveries not yet
  made, by subscriber kind and status, and how long the oldest has waited;
- ``crm_event_deliveries_dead``: dead letters waiting to be re-driven, by subscriber kind;
and from the connection pool: ``crm_db_pool_connections`` (in use, idle, overflow), its size,
and ``crm_db_pool_waits_total`` / ``crm_db_pool_wait_seconds_total`` (checkouts that had to wait
for a connection, and how long they waited in all).

Labels stay few: an operation's name is a label only as the client spelt it, cut to 64
characters, and past ``MAX_OPERATION_NAMES`` distinct names the rest count as ``other``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

MAX_OPERATION_NAMES = 200
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
COST_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class Metrics:
    """The registry of one application and the series its parts count into."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter("crm_http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=r)
        self.http_latency = Histogram("crm_http_request_duration_seconds", "Time to answer an HTTP request.",
                                      ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.operations = Counter("crm_graphql_operations", "GraphQL operations, by name, type and outcome.",
                                  ["operation", "type", "outcome"], registry=r)
        self.operation_latency = Histogram("crm_graphql_operation_duration_seconds", "Time to run a GraphQL operation.",
                                           ["operation", "type"], buckets=LATENCY_BUCKETS, registry=r)
        self.operation_cost = Histogram("crm_graphql_operation_cost", "Cost points of the GraphQL operations measured.",
                                        ["type"], buckets=COST_BUCKETS, registry=r)
        self.rate_limited = Counter("crm_rate_limit_refusals", "Requests refused by the rate limiter.", registry=r)
        self.deliveries = Counter("crm_event_deliveries", "Event delivery attempts made by this process.",
                                  ["subscriber", "outcome"], registry=r)
        self.job_runs = Counter("crm_job_runs", "Runs of the periodic jobs.", ["job", "outcome"], registry=r)
        self._names: set[str] = set()
        self._database: _DatabaseFigures | None = None

    # --- what the parts report ------------------------------------------------------------------

    def operation_label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if not _NAME.fullmatch(name):
            return "other"
        if name not in self._names:
            if len(self._names) >= MAX_OPERATION_NAMES:
                return "other"
            self._names.add(name)
        return name

    def operation(self, name: str | None, kind: str, outcome: str, seconds: float, cost: int | None) -> None:
        label = self.operation_label(name)
        self.operations.labels(label, kind, outcome).inc()
        self.operation_latency.labels(label, kind).observe(seconds)
        if cost is not None:
            self.operation_cost.labels(kind).observe(cost)
        if outcome == "rate_limited":
            self.rate_limited.inc()

    # --- what is read at each scrape ------------------------------------------------------------

    def watch_database(self, db: Any) -> None:
        """Read the outbox and the pool of ``db`` at each scrape (``exposition``)."""
        self._database = _DatabaseFigures(db)
        self.registry.register(self._database)
        pool = db.engine.sync_engine.pool
        if callable(getattr(pool, "_do_get", None)) and getattr(pool, "crm_waits", None) is None:
            # A queue pool's checkout (``_do_get``) is where a request waits when every connection
            # is in use; timing it is the one way SQLAlchemy leaves to see those waits.
            waits = PoolWaits()
            pool._do_get = waits.timed(pool, pool._do_get)
            pool.crm_waits = waits

    async def exposition(self) -> tuple[bytes, str]:
        """The text a scraper reads, and its content type."""
        if self._database is not None:
            await self._database.refresh()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _DatabaseFigures:
    """A collector of figures read from the database just before a scrape renders."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.backlog: list[tuple[str, str, int, float | None]] = []
        self.dead: list[tuple[str, int]] = []

    def describe(self) -> list[Metric]:
        return []  # read at scrape time; nothing to check at registration

    async def refresh(self) -> None:
        from crm_graph.core.clock import utcnow
        from crm_graph.core.events import DeliveryStatus, EventDelivery

        kind = _subscriber_kind(EventDelivery.subscriber, self.db.dialect)
        waiting = (DeliveryStatus.PENDING, DeliveryStatus.DELIVERING)
        async with self.db.reader() as session:
            rows = (await session.execute(
                sa.select(kind, EventDelivery.status, sa.func.count(), sa.func.min(EventDelivery.created_at))
                .where(EventDelivery.status.in_([*waiting, DeliveryStatus.DEAD]))
                .group_by(kind, EventDelivery.status)
            )).all()
        now = utcnow()
        self.backlog = [(k, s.value.lower(), n, (now - oldest).total_seconds() if oldest else None)
                        for k, s, n, oldest in rows if s in waiting]
        self.dead = [(k, n) for k, s, n, _ in rows if s is DeliveryStatus.DEAD]

    def collect(self) -> Iterable[Metric]:
        backlog = GaugeMetricFamily("crm_outbox_backlog", "Event deliveries not made yet.", labels=["subscriber", "status"])
        oldest = GaugeMetricFamily("crm_outbox_oldest_undelivered_seconds",
                                   "Age of the oldest delivery not made yet.", labels=["subscriber"])
        ages: dict[str, float] = {}
        for k, status, n, age in self.backlog:
            backlog.add_metric([k, status], n)
            if age is not None:
                ages[k] = max(ages.get(k, 0.0), age)
        for k, age in ages.items():
            oldest.add_metric([k], age)
        dead = GaugeMetricFamily("crm_event_deliveries_dead", "Dead letters: deliveries given up on, to re-drive.",
                                 labels=["subscriber"])
        for k, n in self.dead:
            dead.add_metric([k], n)
        yield from (backlog, oldest, dead)
        pool = self.db.engine.sync_engine.pool
        if hasattr(pool, "checkedout"):
            connections = GaugeMetricFamily("crm_db_pool_connections", "Database connections of this process's pool.",
                                            labels=["state"])
            connections.add_metric(["in_use"], pool.checkedout())
            connections.add_metric(["idle"], pool.checkedin())
            connections.add_metric(["overflow"], max(pool.overflow(), 0))
            yield connections
            yield GaugeMetricFamily("crm_db_pool_size", "Connections the pool keeps open.", value=pool.size())
        waits = getattr(pool, "crm_waits", None)
        if waits is not None:
            yield CounterMetricFamily("crm_db_pool_waits", "Checkouts that had to wait for a free connection.", value=waits.count)
            yield CounterMetricFamily("crm_db_pool_wait_seconds", "Time spent waiting for a free connection.", value=waits.seconds)


def _subscriber_kind(column: Any, dialect: str) -> Any:
    """A delivery's subscriber kind ("webhook" of "webhook:12"), in SQL."""
    if dialect == "postgresql":
        return sa.func.split_part(column, ":", 1)
    position = sa.func.instr(column, ":")
    return sa.case((position > 0, sa.func.substr(column, 1, position - 1)), else_=column)


class PoolWaits:
    """How often, and how long, checkouts of a pool waited for a free connection."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def timed(self, pool: Any, get: Any) -> Any:
        def checkout() -> Any:
            limit = pool.size() + getattr(pool, "_max_overflow", 0)
            if pool.checkedin() > 0 or pool.checkedout() < limit or limit < pool.size():
                return get()  # a free connection, or room to open one: no wait
            started = time.perf_counter()
            try:
                return get()
            finally:
                self.count += 1
                self.seconds += time.perf_counter() - started
        return checkout
