"""The request body's size limit (``CRM_MAX_REQUEST_BYTES``), enforced while the body arrives.

A body that declares a larger ``Content-Length``, or streams more bytes than allowed, is
refused with 413 and ``REQUEST_TOO_LARGE`` before it is read whole, so a client cannot make
the server buffer an arbitrary amount of memory. The connection is closed after that answer:
the rest of the body is never read, so the connection cannot carry another request.
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope

from crm_graph.graphql import http


def too_large(limit: int) -> http.RequestError:
    return http.RequestError(413, f"The request body is larger than the {limit} bytes allowed (CRM_MAX_REQUEST_BYTES).",
                             "REQUEST_TOO_LARGE", {"Connection": "close"})


def limited_body(scope: Scope, receive: Receive, limit: int) -> Receive:
    """``receive``, raising ``too_large`` once the body is known to pass ``limit`` bytes."""
    declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
    received = 0

    async def limited() -> Message:
        nonlocal received
        if declared.isdigit() and int(declared) > limit:
            raise too_large(limit)
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large(limit)
        return message

    return limited
