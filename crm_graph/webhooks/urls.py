"""Which URLs a webhook may point at.

Only http(s). Unless ``CRM_WEBHOOK_ALLOW_PRIVATE`` is on, the host must not be, or resolve to,
a loopback, private, link-local, shared, multicast or reserved address: otherwise anyone who
can create a subscription could make the server call into its own network. The check runs when
a subscription is saved and again before every delivery, since DNS answers change.

A delivery resolves the host once (``resolve``) and connects to the addresses it checked
(crm_graph/webhooks/delivery.py): a DNS server that answers a public address to the check and a
private one a moment later (DNS rebinding) never gets a delivery into the private network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

# host, port -> the addresses the host resolves to (``system_resolver``: the operating system's).
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2000
RESOLVE_TIMEOUT = 5.0


class UrlRefused(ValueError):
    """The URL cannot be used. ``forbidden`` tells a forbidden address from a malformed URL."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


def forbidden_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        not ip.is_global
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_private
    )


def parse(url: str) -> tuple[str, int]:
    """Check the form of ``url``; return its host and port. Raises ``UrlRefused``."""
    if not isinstance(url, str) or not url.strip():
        raise UrlRefused("Give the URL that receives the events.")
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"At most {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UrlRefused("This is not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("Webhook URLs start with https:// (or http://).")
    if not parts.hostname:
        raise UrlRefused("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("Put no credentials in the URL: verify deliveries by their signature instead.")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def check(url: str, *, allow_private: bool) -> None:
    """Refuse a malformed URL and, unless ``allow_private``, one whose host is or resolves to a
    forbidden address. Raises ``UrlRefused``."""
    if allow_private:
        parse(url)
        return
    await resolve(url, allow_private=False)


async def resolve(url: str, *, allow_private: bool, resolver: Resolver | None = None) -> list[str]:
    """The addresses to connect to for ``url``, each checked (unless ``allow_private``): the
    host's own address when it is an IP literal, else what one lookup answered. Raises
    ``UrlRefused`` for a malformed URL, a host that does not resolve or a forbidden address."""
    host, port = parse(url)
    lowered = host.lower().rstrip(".")
    if not allow_private and (lowered == "localhost" or lowered.endswith(".localhost")):
        raise UrlRefused("The URL points at this server (localhost).", forbidden=True)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        addresses = await (resolver or system_resolver)(host, port)
        if not addresses:
            raise UrlRefused(f"The host {host!r} does not resolve.")
    if not allow_private:
        for address in addresses:
            if forbidden_address(address):
                raise UrlRefused(
                    f"The URL's host resolves to {address}, a private or reserved address.", forbidden=True
                )
    return addresses


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT
        )
    except (OSError, TimeoutError, UnicodeError):
        raise UrlRefused(f"The host {host!r} does not resolve.") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))  # in the system's order of preference
