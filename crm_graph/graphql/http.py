"""GraphQL over HTTP: what the endpoint accepts and how it answers (docs/api.md, "Requests").

The rules follow the GraphQL-over-HTTP specification, and the test suite runs the
``graphql-http`` package's server audits against a real server (tests/graphql/test_http_contract.py):

- operations are POSTed as ``Content-Type: application/json`` (UTF-8), one JSON object with a
  string ``query`` and optional ``operationName`` (string), ``variables`` and ``extensions``
  (objects); ``null`` counts as absent. Anything else is refused before it reaches GraphQL, with
  a JSON body ``{"errors": [{"message", "extensions": {"code"}}]}`` and a 4xx status;
- the answer is ``application/graphql-response+json`` when the client's ``Accept`` prefers it,
  else ``application/json`` (also for ``*/*`` or no ``Accept`` at all);
- a GraphQL request error (the document does not parse or validate, variables do not coerce,
  the operation cannot be chosen) has no ``data`` entry. With ``application/graphql-response+json``
  it is a 400; with ``application/json`` it is a 200, as older clients expect.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, parse
from strawberry.http import GraphQLRequestData

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"

# Pages served from loopback, any port: the browser origins allowed in development when
# CRM_CORS_ORIGINS is empty (CORS, and the WebSocket's handshake).
DEV_ORIGINS = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?"

# The status of a GraphQL request error by its code, under application/graphql-response+json;
# codes not listed are the client's fault (400); a query cut off by CRM_REQUEST_TIMEOUT is the
# server's (504: the same request may well succeed later).
REQUEST_ERROR_STATUS: dict[str, int] = {"INTERNAL_SERVER_ERROR": 500, "REQUEST_TIMEOUT": 504}

# At most this much of a refused request's body is read (and dropped) so the connection it came
# on can carry the next request; past it the connection is closed after the answer.
DRAIN_LIMIT = 1024 * 1024


class RequestError(Exception):
    """A request the endpoint refuses before GraphQL sees it: an HTTP status and a clear message."""

    def __init__(self, status: int, message: str, code: str = "BAD_REQUEST", headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})


def error_body(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def negotiate(accept: str | None) -> str | None:
    """The media type to answer with, from the ``Accept`` header; None when it admits neither
    JSON type. Higher q wins; on a tie application/graphql-response+json does."""
    if accept is None or not accept.strip():
        return JSON
    best: str | None = None
    best_q = 0.0
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media == GRAPHQL_RESPONSE:
            candidate = GRAPHQL_RESPONSE
        elif media in (JSON, "application/*", "*/*"):
            candidate = JSON
        else:
            continue
        if q > best_q or (q == best_q and q > 0 and candidate == GRAPHQL_RESPONSE):
            best, best_q = candidate, q
    return best


def check_content_type(header: str | None) -> None:
    """Only ``application/json`` bodies, in UTF-8 (a charset parameter may say so)."""
    if not header:
        raise RequestError(415, "Send the operation as JSON with the header Content-Type: application/json.",
                           "UNSUPPORTED_MEDIA_TYPE")
    media, *params = (part.strip() for part in header.split(";"))
    if media.lower() != JSON:
        raise RequestError(415, f"Content-Type {media!r} is not accepted: send application/json.", "UNSUPPORTED_MEDIA_TYPE")
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise RequestError(415, "The request body must be UTF-8 (charset=utf-8).", "UNSUPPORTED_MEDIA_TYPE")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_body(body: bytes) -> Any:
    """The JSON value of a request body: strict UTF-8, strict JSON (no NaN or Infinity)."""
    if not body.strip():
        raise RequestError(400, "The request has no body: send a JSON object with a `query`.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(400, f"The request body is not valid UTF-8 (byte {exc.start}).") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise RequestError(400, f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.") from None
    except (ValueError, RecursionError):
        raise RequestError(400, "The request body is not valid JSON.") from None


def request_data(data: Any) -> GraphQLRequestData:
    """The operation a decoded body asks for, its parameters checked."""
    if isinstance(data, list):
        raise RequestError(400, "Send one operation per request: batches are not accepted.")
    if not isinstance(data, dict):
        raise RequestError(400, "The request body must be a JSON object with a `query`.")
    query = data.get("query")
    if query is None:
        raise RequestError(400, "The request has no `query`: send the GraphQL document as a string.")
    if not isinstance(query, str):
        raise RequestError(400, "`query` must be a string holding the GraphQL document.")
    operation_name = data.get("operationName")
    if not isinstance(operation_name, (str, type(None))):
        raise RequestError(400, "`operationName` must be a string or null.")
    for name in ("variables", "extensions"):
        if not isinstance(data.get(name), (dict, type(None))):
            raise RequestError(400, f"`{name}` must be an object or null.")
    return GraphQLRequestData(
        query=query, variables=data.get("variables"), operation_name=operation_name, extensions=data.get("extensions")
    )


_OPERATION_KEYWORD = re.compile(r"\b(?:query|mutation|subscription)\b")


def several_operations(query: str, max_tokens: int) -> bool:
    """Whether the document holds more than one operation (then ``operationName`` must say which:
    Strawberry alone would run the first). Only documents naming two operation keywords are
    parsed, and the answer is remembered."""
    if len(_OPERATION_KEYWORD.findall(query, 0, 100_000)) < 2:
        return False
    return _count_operations(query, max_tokens) > 1


@functools.lru_cache(maxsize=256)
def _count_operations(query: str, max_tokens: int) -> int:
    try:
        document = parse(query, max_tokens=max_tokens)
    except GraphQLError:
        return 0  # Strawberry reports the syntax error
    return sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)


def is_request_error(result: Any) -> bool:
    """A result that carries no data because the request itself failed (nothing was executed):
    errors, no data, and no error at a field's path."""
    return result.data is None and bool(result.errors) and all(error.path is None for error in result.errors)


def status_of(body: Mapping[str, Any], media: str) -> int:
    """The HTTP status of a GraphQL response body under ``media``."""
    if "data" in body or media != GRAPHQL_RESPONSE:
        return 200
    errors = body.get("errors") or [{}]
    code = ((errors[0] or {}).get("extensions") or {}).get("code", "")
    return REQUEST_ERROR_STATUS.get(code, 400)
