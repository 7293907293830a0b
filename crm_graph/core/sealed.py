"""Credentials kept in the database (a connection's password, an API token): a JSON object
sealed with Fernet under a key derived from ``CRM_SECRET_KEY`` and a purpose, so one plugin's
sealed values cannot be opened as another's. The API never returns them; logs never print them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken

from crm_graph.settings import Settings


class SealedError(Exception):
    """The sealed value cannot be opened: ``CRM_SECRET_KEY`` changed, or the value was altered."""


def _fernet(settings: Settings, purpose: str) -> Fernet:
    key = hashlib.sha256(purpose.encode() + b"|" + settings.hash_key()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(settings: Settings, purpose: str, values: Mapping[str, str]) -> bytes:
    return _fernet(settings, purpose).encrypt(json.dumps(dict(values), sort_keys=True).encode())


def unseal(settings: Settings, purpose: str, token: bytes) -> dict[str, str]:
    try:
        out = json.loads(_fernet(settings, purpose).decrypt(token))
    except (InvalidToken, ValueError) as exc:
        raise SealedError("The stored credentials cannot be decrypted (was CRM_SECRET_KEY changed?); "
                          "give them again.") from exc
    return dict(out)
