"""What is known of the request being answered, for its log lines, its metrics and its span.

The request middleware (``observability.requests``) starts one ``RequestInfo`` per HTTP request
and keeps it in a context variable, so whatever runs for the request (the GraphQL view, a
resolver, a service writing a log line) reads the same object and may fill it in: who asked,
which operation ran, what it cost.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar
from dataclasses import dataclass

# A request id a client or proxy sends along is kept when it looks like an id; anything else
# (too long, spaces, quotes, line breaks) is replaced, so a log line can never be forged with one.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
HEADER = "x-request-id"


@dataclass
class RequestInfo:
    request_id: str
    method: str = ""
    path: str = ""
    principal: str | None = None  # the actor's label ("user:42", "key:7"), never a secret
    operation: str | None = None  # the GraphQL operation's name, when it has one
    operation_type: str | None = None
    cost: int | None = None


current: ContextVar[RequestInfo | None] = ContextVar("crm_graph_request_info", default=None)


def new_request_id(sent: str | None = None) -> str:
    if sent and _CLIENT_ID.fullmatch(sent):
        return sent
    return secrets.token_hex(8)


def note(**values: object) -> None:
    """Fill in what is known of the current request (nothing happens outside one)."""
    info = current.get()
    if info is not None:
        for name, value in values.items():
            setattr(info, name, value)


def request_id() -> str | None:
    info = current.get()
    return info.request_id if info is not None else None
