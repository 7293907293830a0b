"""Signed tokens in the links of marketing mail, and the VERP token of return paths.

Each purpose has its own salt, so a token made for one link is refused by another route. A token
names rows, never a URL: a click token carries the link's id and the target is read from the
campaign's own table, so a tampered token cannot redirect anywhere (no open redirect).

- ``confirm``: a double opt-in request (consent record id, nonce); valid ``confirm_days``; once.
- ``unsubscribe``: a recipient (or a customer and list, from a confirmation mail); valid a year
  and a half, and harmless to replay (the second answer says it is done already).
- ``open`` / ``click``: a recipient (and a link); valid a year and a half.
- VERP: ``r<recipient id>-<10 characters of HMAC>``, short enough for a local part.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

LINK_MAX_AGE = 548 * 86400  # a year and a half


class TokenError(Exception):
    """``code`` is EXPIRED or INVALID (forged, truncated, made for another purpose)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _serializer(key: bytes, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt=f"crm_marketing.{purpose}")


def make(key: bytes, purpose: str, payload: dict[str, Any]) -> str:
    return _serializer(key, purpose).dumps(payload)


def read(key: bytes, purpose: str, token: str, max_age: float = LINK_MAX_AGE) -> dict[str, Any]:
    try:
        value = _serializer(key, purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise TokenError("EXPIRED", "This link has expired.") from None
    except BadSignature:
        raise TokenError("INVALID", "This link is not valid.") from None
    if not isinstance(value, dict):
        raise TokenError("INVALID", "This link is not valid.")
    return value


def _verp_mac(key: bytes, recipient_id: int) -> str:
    digest = hmac.new(key, f"verp:{recipient_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:10].lower()


def verp_token(key: bytes, recipient_id: int) -> str:
    return f"r{recipient_id}-{_verp_mac(key, recipient_id)}"


def verp_recipient(key: bytes, token: str) -> int | None:
    """The recipient id a VERP token names, or None when it is not one of ours."""
    head, _, mac = token.partition("-")
    if not head.startswith("r") or not head[1:].isdigit() or len(head) > 20:
        return None
    recipient_id = int(head[1:])
    return recipient_id if hmac.compare_digest(mac.lower(), _verp_mac(key, recipient_id)) else None
