"""A small webhook receiver: a real HTTP server that checks each delivery's signature and keeps
what it received. For tests, the benchmark, and ``crm-graph webhooks listen`` while developing a
receiver of your own.

    receiver = Receiver(secret="whsec_...")
    await receiver.start()            # http://127.0.0.1:<free port>/
    ...                               # subscribe receiver.url, make changes, run the dispatcher
    await receiver.stop()             # "down": connections are refused until start() again
    receiver.received                 # [Received(event_id, event_type, body, headers, verified)]

A GET on the receiver answers ``{"received": n, "distinct": n, "rejected": n}``.
Run one in a process of its own with ``python -m crm_graph.webhooks.receiver --port 9000 --secret ...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from crm_graph.webhooks.signature import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    InvalidSignature,
    verify_signature,
)


@dataclass(frozen=True)
class Received:
    event_id: str
    event_type: str
    body: bytes
    headers: dict[str, str]
    verified: bool

    def json(self) -> Any:
        return json.loads(self.body)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Receiver:
    """Answers 200 to a delivery whose signature verifies and 400 to one that does not.

    ``status`` can be set to another code (e.g. 500) to play a failing receiver; ``clock`` gives
    the time signatures are checked against (tests with a frozen clock pass theirs).
    """

    secret: str | list[str] | None = None
    host: str = "127.0.0.1"
    port: int = 0
    status: int = 200
    clock: Callable[[], float] = time.time
    on_receive: Callable[[Received], None] | None = None
    received: list[Received] = field(default_factory=list)
    rejected: int = 0
    _server: Any = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hooks"

    def counts(self) -> Counter[str]:
        """How many times each event id arrived (with a valid signature)."""
        return Counter(r.event_id for r in self.received if r.verified)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["method"] == "GET":  # how much arrived so far, for scripts driving a receiver
            stats = {"received": len(self.received), "distinct": len(self.counts()), "rejected": self.rejected}
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": json.dumps(stats).encode()})
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        verified = False
        if self.secret is not None:
            try:
                verify_signature(body, headers.get(SIGNATURE_HEADER.lower()), self.secret, now=self.clock())
                verified = True
            except InvalidSignature:
                verified = False
        status = self.status if (verified or self.secret is None) else 400
        if status == 200:
            item = Received(
                event_id=headers.get(EVENT_ID_HEADER.lower(), ""),
                event_type=headers.get(EVENT_TYPE_HEADER.lower(), ""),
                body=body,
                headers=headers,
                verified=verified,
            )
            self.received.append(item)
            if self.on_receive is not None:
                self.on_receive(item)
        elif status == 400:
            self.rejected += 1
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok" if status == 200 else b"no"})

    async def start(self) -> Receiver:
        if self.port == 0:
            self.port = free_port()
        config = uvicorn.Config(self, host=self.host, port=self.port, log_level="warning", lifespan="off", access_log=False)
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # the server failed to start: raise its error
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = None
        self._task = None

    async def __aenter__(self) -> Receiver:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class _QuietServer(uvicorn.Server):
    """uvicorn without taking over the process's signal handlers (it runs inside another program)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="A webhook receiver that verifies signatures and counts deliveries.")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", default=None)
    args = parser.parse_args()

    async def serve() -> None:
        receiver = Receiver(secret=args.secret, port=args.port)
        await receiver.start()
        print(f"listening on {receiver.url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await receiver.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
