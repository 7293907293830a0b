"""One HTTP delivery of one event to one subscription.

Only timeouts, connection errors and 5xx answers are retried; any other answer that is not 2xx
(a 4xx, or a redirect, which is never followed) dead-letters the delivery at once, since
sending the same request again would get the same answer.

The host is resolved once per delivery (``urls.resolve``) and the request goes to an address that
was checked: the URL's host is replaced by that address, while the ``Host`` header and the TLS
server name (SNI, and so the certificate check) stay the URL's own host. Nothing resolves the
host a second time between the check and the connection.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import datetime

import httpx

# httpcore looks for sniffio on every request; when it is not installed each look is a failed
# import that searches sys.path again, which cost the dispatcher a third of its time. Record the
# absence once: the import keeps failing, now cheaply. (Installing sniffio does the same.)
try:
    import sniffio  # noqa: F401
except ImportError:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

from crm_graph import __version__
from crm_graph.core.events import Event
from crm_graph.webhooks import signature, urls

USER_AGENT = f"crm-graph-webhooks/{__version__}"


@dataclass(frozen=True)
class Target:
    """What a delivery needs of its subscription, read when the delivery was claimed."""

    subscription_id: int
    url: str
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Answer:
    delivered: bool
    retry: bool
    status_code: int | None = None
    error: str | None = None


def body_of(event: Event) -> bytes:
    return json.dumps(event.to_json(), separators=(",", ":"), ensure_ascii=False).encode()


def new_client(*, timeout: float, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        headers={"User-Agent": USER_AGENT},
        trust_env=False,  # a proxy from the environment must not see (or redirect) deliveries
    )


async def send(
    client: httpx.AsyncClient,
    target: Target,
    event: Event,
    *,
    attempt: int,
    now: datetime,
    allow_private: bool,
    resolver: urls.Resolver | None = None,
) -> Answer:
    try:
        addresses = await urls.resolve(target.url, allow_private=allow_private, resolver=resolver)
        url = httpx.URL(target.url.strip())
    except urls.UrlRefused as exc:
        return Answer(delivered=False, retry=not exc.forbidden, error=f"URL refused: {exc}")
    except httpx.InvalidURL as exc:
        return Answer(delivered=False, retry=False, error=f"URL refused: {exc}")
    body = body_of(event)
    headers = {
        "Content-Type": "application/json",
        signature.SIGNATURE_HEADER: signature.sign(body, target.secrets, int(now.timestamp())),
        signature.EVENT_ID_HEADER: event.id,
        signature.EVENT_TYPE_HEADER: event.type,
        signature.ATTEMPT_HEADER: str(attempt),
    }
    headers["Host"] = url.netloc.decode("ascii")
    try:
        response = await _post_pinned(client, url, addresses, body, headers)
    except httpx.TimeoutException:
        return Answer(delivered=False, retry=True, error="timed out")
    except httpx.TransportError as exc:
        return Answer(delivered=False, retry=True, error=f"connection failed: {type(exc).__name__}: {exc}"[:1000])
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Answer(delivered=False, retry=False, error=f"request failed: {type(exc).__name__}: {exc}"[:1000])
    status = response.status_code
    if 200 <= status < 300:
        return Answer(delivered=True, retry=False, status_code=status)
    if status >= 500:
        return Answer(delivered=False, retry=True, status_code=status, error=f"HTTP {status}")
    return Answer(delivered=False, retry=False, status_code=status, error=f"HTTP {status} (not retried)")


async def _post_pinned(
    client: httpx.AsyncClient, url: httpx.URL, addresses: list[str], body: bytes, headers: dict[str, str]
) -> httpx.Response:
    """POST to the first of ``addresses`` that accepts the connection, as ``url``'s host."""
    server_name = url.raw_host.decode("ascii")
    for index, address in enumerate(addresses):
        try:
            return await client.post(
                url.copy_with(host=address), content=body, headers=headers, extensions={"sni_hostname": server_name}
            )
        except httpx.ConnectError:
            if index == len(addresses) - 1:
                raise
    raise httpx.ConnectError("no address to connect to")
