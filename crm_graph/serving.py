"""How ``crm-graph serve`` runs uvicorn: the limits that keep slow or idle clients from holding
the server (docs/deployment.md, "Timeouts").

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) and refuses connections past
``limit_concurrency`` with 503, but it waits for a request's headers as long as the client
likes: a client that opens many connections and sends a header byte now and then (slowloris)
would keep them all. ``header_timeout_protocol`` is uvicorn's httptools protocol with one timer
more: the headers must have arrived this many seconds after the connection opened (or after
the previous request, on a keep-alive connection), or the connection is closed.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from crm_graph.settings import Settings


class HeaderTimeoutProtocol(HttpToolsProtocol):
    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutProtocol]:
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": seconds})


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.run's keyword arguments for the CRM_HTTP_* settings."""
    return {
        "http": header_timeout_protocol(settings.http_header_timeout),
        "timeout_keep_alive": settings.http_keep_alive_timeout,
        "limit_concurrency": settings.http_max_connections,
    }


# Allocations between collections of the youngest generation (CPython's default is 700). A
# GraphQL answer allocates some objects per resolved field, nearly all freed by reference
# counting when the answer is sent; at the default, a page of 100 customers ran several
# hundred collections, each walking the young objects, and every tenth of those promoted work
# to the older generations.
GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Call once the app is built, before serving: what exists then (modules, the schema, the
    ORM's mappers, the plugins) lives as long as the process, so ``gc.freeze`` moves it out of
    the collector's sight, and the young generation is collected less often (measured with
    bench/run.py; docs/operations.md, "Memory and the garbage collector")."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
