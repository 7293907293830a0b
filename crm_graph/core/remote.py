"""Checks shared by adapters that talk to another program over HTTP (accounting backends,
helpdesk connectors): what a connection's ``url`` setting must be."""

from __future__ import annotations

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
