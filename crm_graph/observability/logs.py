"""Log lines: JSON objects in production (a log pipeline reads them), text in development.

Every line written while a request is answered carries that request's id (the one the answer's
``X-Request-ID`` header gives back), its principal and its operation: a filter on the handler
adds them from ``observability.context``. The request middleware writes one line per request
(logger ``crm_graph.request``) with its status, duration and cost.

What never goes into a line: secrets, tokens, passwords, request bodies, variables, and personal
data beyond ids. The code logs ids and counts; a line that would echo a client's text cuts it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from crm_graph.observability import context
from crm_graph.settings import Settings

# The request fields each line may carry, as the JSON keys name them.
FIELDS = ("request_id", "principal", "operation")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(request_suffix)s"


class RequestFields(logging.Filter):
    """Adds the current request's id, principal and operation to a record (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = context.current.get()
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, getattr(info, name, None) if info is not None else None)
        record.request_suffix = f" [request {record.request_id}]" if record.request_id else ""
        return True


class JsonLines(JsonFormatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the request's
    fields, whatever ``extra`` the call passed, and the exception's traceback as text."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S",
            timestamp=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        import datetime as dt

        moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def process_log_record(self, log_record: dict[str, Any]) -> dict[str, Any]:
        log_record.pop("request_suffix", None)
        for name in FIELDS:  # a line outside any request says nothing of one
            if log_record.get(name) is None:
                log_record.pop(name, None)
        return log_record


def uses_json(settings: Settings) -> bool:
    return settings.log_format == "json" or (settings.log_format == "auto" and settings.is_production)


def handler(settings: Settings, stream: Any = None) -> logging.Handler:
    """The handler every line goes through: to standard error, in the settings' format."""
    out = logging.StreamHandler(stream if stream is not None else sys.stderr)
    out.addFilter(RequestFields())
    out.setFormatter(JsonLines() if uses_json(settings) else logging.Formatter(TEXT_FORMAT))
    return out


def configure(settings: Settings, stream: Any = None) -> logging.Handler:
    """Route the root logger (and uvicorn's, which keep their own handlers otherwise) through
    one handler. Called by the CLI's commands; returns the handler. `crm-graph serve` runs
    uvicorn without its access log: the request middleware writes one line per request."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    out = handler(settings, stream)
    root.addHandler(out)
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    return out


def uvicorn_log_config() -> dict[str, Any]:
    """``uvicorn.run(log_config=...)``: leave logging as ``configure`` set it up."""
    return {"version": 1, "disable_existing_loggers": False}
