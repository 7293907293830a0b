"""API keys and session tokens: how they look, how they are checked and stored.

A token is ``crm_<kind>_<32 random base62 characters><6 characters of checksum>``, ``kind``
being ``key`` for API keys and ``ses`` for session tokens. The prefix makes a leaked key easy to
find with a secret scanner; the checksum (CRC-32 of the rest, in base62) lets the server refuse
a mistyped or made-up key without a database lookup.

Tokens carry 190 bits of randomness, so they need no slow password hash: the database keeps
``HMAC-SHA256(secret_key, token)``, which a dump cannot reverse and which costs microseconds to
check. Passwords, which people choose, are argon2id hashes (``passwords.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BODY_LENGTH = 32
CHECK_LENGTH = 6
KINDS = ("key", "ses")
PREFIX_LENGTH = 12  # what the API shows of a key: "crm_key_AbC1"


def _base62(number: int, width: int) -> str:
    out = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        out.append(ALPHABET[digit])
    return "".join(reversed(out))


def _checksum(head: str) -> str:
    return _base62(zlib.crc32(head.encode()), CHECK_LENGTH)


def new_token(kind: str) -> str:
    assert kind in KINDS
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    head = f"crm_{kind}_{body}"
    return head + _checksum(head)


def well_formed(token: str, kind: str | None = None) -> bool:
    """Whether ``token`` has the shape and a correct checksum (no database needed)."""
    parts = token.split("_")
    if len(parts) != 3 or parts[0] != "crm" or parts[1] not in KINDS or (kind and parts[1] != kind):
        return False
    rest = parts[2]
    if len(rest) != BODY_LENGTH + CHECK_LENGTH or any(c not in ALPHABET for c in rest):
        return False
    head = token[: -CHECK_LENGTH]
    return hmac.compare_digest(_checksum(head), token[-CHECK_LENGTH:])


def kind_of(token: str) -> str | None:
    return token.split("_")[1] if well_formed(token) else None


def token_hash(token: str, key: bytes) -> str:
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def prefix_of(token: str) -> str:
    return token[:PREFIX_LENGTH]
