"""Checks shared by adapters that talk to another program over HTTP (accounting backends,
helpdesk connectors): what a connection's ``url`` setting must be."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit


def base_url_problem(url: Any, example: str) -> str | None:
    """Why ``url`` cannot be a program's base address (None when it can): it must be an http(s)
    address with a host, no credentials in it (they are secrets), no query or fragment."""
    if not isinstance(url, str) or not url.strip():
        return f"required: the server's address, e.g. {example}"
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"not an http(s) address: {url!r}"
    if parts.username or parts.password:
        return "the address must not hold a user or password (give the password as a secret)"
    if parts.query or parts.fragment:
        return "the address must not have a query or fragment"
    return None


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` (a remote program's words, an exception's) with every credential in it replaced
    by ``***``. A short secret is replaced only where it stands as a word of its own: as a
    substring, a password such as ``p`` would blot out every ``p`` of the message."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if len(secret) >= 8:
            text = text.replace(secret, "***")
        else:
            text = re.sub(rf"(?<![\w]){re.escape(secret)}(?![\w])", "***", text)
    return text
