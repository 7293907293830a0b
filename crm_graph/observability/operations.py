"""GraphQL operations as the metrics, the trace and the log lines see them.

``ObserveOperations`` is the schema's outermost extension: it opens the operation's span (so the
parse, validation, loader batches and SQL statements are inside it), and when the operation is
done it counts it by name, type and outcome, with its duration and cost, and notes its name on
the request (``observability.context``) for the request's log line.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from crm_graph.graphql.http import is_request_error
from crm_graph.observability import context, tracing


def outcome(ctx: Any) -> str:
    """``rate_limited``, ``refused`` (a request error: nothing ran), ``error`` (it ran, something
    failed) or ``ok``."""
    result = ctx.result
    errors = list(result.errors or ()) if result is not None else list(ctx.pre_execution_errors or ())
    if result is None or is_request_error(result):
        if any((e.extensions or {}).get("code") == "RATE_LIMITED" for e in errors):
            return "rate_limited"
        return "refused" if errors else "ok"
    return "error" if errors else "ok"


class ObserveOperations(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        ctx = self.execution_context
        with tracing.span("graphql.operation") as span:
            yield
            name, kind = _name_and_type(ctx)
            info = context.current.get()
            cost = info.cost if info is not None else None
            context.note(operation=name, operation_type=kind)
            done = outcome(ctx)
            if span is not None:
                span.update_name(f"graphql.{kind} {name or 'anonymous'}")
                span.set_attributes({"graphql.operation.type": kind, "graphql.operation.name": name or "",
                                     "crm.outcome": done, **({"crm.cost": cost} if cost is not None else {})})
            metrics = getattr(ctx.context, "metrics", None)
            if metrics is not None:
                metrics.operation(name, kind, done, time.perf_counter() - started, cost)

    def on_execute(self) -> Iterator[None]:
        # The document is parsed by now: the lines written while it runs name the operation.
        name, kind = _name_and_type(self.execution_context)
        context.note(operation=name, operation_type=kind)
        yield


def _name_and_type(ctx: Any) -> tuple[str | None, str]:
    try:
        kind = ctx.operation_type.value  # from the parsed document
    except Exception:  # noqa: BLE001 - it did not parse, or names no operation that exists
        return ctx.operation_name, "unknown"
    return ctx.operation_name, kind
