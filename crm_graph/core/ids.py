"""Opaque global IDs: URL-safe base64 of ``"<TypeName>:<primary key>"``.

The GraphQL layer exposes them; services use ``decode`` when a stored document (a saved
segment filter, say) holds IDs.
"""

from __future__ import annotations

import base64
import binascii


# Primary keys are 64-bit integers: a larger number cannot name a row (and would overflow SQL).
MAX_PK = 2**63 - 1


def encode(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def decode(global_id: str) -> tuple[str, int]:
    """(type name, primary key); ``ValueError`` if ``global_id`` is not one of ours."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        type_name, _, pk = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        number = int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError, AttributeError, TypeError) as exc:
        raise ValueError(f"malformed ID {str(global_id)[:64]!r}") from exc
    # Only the encoding this module writes: no padding, no leading zeros or signs, no stray bits,
    # so one row has one ID (caches and clients comparing IDs never see two spellings).
    if not type_name or not 1 <= number <= MAX_PK or encode(type_name, number) != global_id:
        raise ValueError(f"malformed ID {str(global_id)[:64]!r}")
    return type_name, number


def decode_as(global_id: str, type_name: str) -> int:
    kind, pk = decode(global_id)
    if kind != type_name:
        raise ValueError(f"{str(global_id)[:64]!r} is a {kind} ID, not a {type_name} ID")
    return pk
