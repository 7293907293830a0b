"""Signing webhook deliveries, and checking the signature on the receiving side.

Each delivery carries ``CRM-Signature: t=<unix time>,v1=<hex>[,v1=<hex>...]`` where each ``v1``
is the hex HMAC-SHA256, keyed with one of the subscription's secrets, of ``"<t>." + body``.
During a secret rotation there is one ``v1`` per valid secret; a receiver accepts the delivery
when any of them matches a secret it knows.

Receivers need only this module (standard library only)::

    from crm_graph.webhooks.signature import InvalidSignature, verify_signature

    try:
        verify_signature(raw_body, request.headers["CRM-Signature"], secret)
    except InvalidSignature:
        return Response(status_code=400)

Verify the raw bytes as received, before parsing the JSON: a re-serialised body differs.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

SIGNATURE_HEADER = "CRM-Signature"
EVENT_ID_HEADER = "CRM-Event-Id"
EVENT_TYPE_HEADER = "CRM-Event-Type"
ATTEMPT_HEADER = "CRM-Delivery-Attempt"

# Seconds a signature stays acceptable: older ones (or ones from the future) are replays or
# clock trouble.
DEFAULT_TOLERANCE = 300


class InvalidSignature(ValueError):
    """The signature header is missing, malformed, too old, or matches no secret."""


def _secrets(secret: str | Sequence[str]) -> list[str]:
    return [secret] if isinstance(secret, str) else [s for s in secret if s]


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str | Sequence[str], timestamp: int | None = None) -> str:
    """The ``CRM-Signature`` header value for ``body``: one ``v1`` per secret."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return ",".join([f"t={t}", *(f"v1={_digest(s, t, body)}" for s in _secrets(secret))])


def verify_signature(
    body: bytes | str,
    header: str | None,
    secret: str | Sequence[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a delivery's signature; return its timestamp or raise ``InvalidSignature``.

    ``body`` is the raw request body; ``header`` the ``CRM-Signature`` value; ``secret`` the
    subscription's secret (or several while you rotate yours). The timestamp must lie within
    ``tolerance`` seconds (default 300) of ``now`` (default: the current time).
    """
    if not header:
        raise InvalidSignature("no signature header")
    raw = body.encode() if isinstance(body, str) else body
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise InvalidSignature("malformed timestamp") from None
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignature("expected t=<timestamp>,v1=<signature>")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature(f"timestamp is more than {tolerance} s away from now")
    for s in _secrets(secret):
        expected = _digest(s, timestamp, raw)
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            return timestamp
    raise InvalidSignature("no signature matches the secret")
