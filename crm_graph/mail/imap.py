"""One IMAP mailbox folder, read by UID, for every plugin that takes mail in (bounces, support
mail): ``Mailbox`` on aioimaplib.

The rules of its users: a mail is moved away (or the reading checkpoint advanced) only after
what it caused is committed, so a crash or a dropped connection leaves it to be read again, and
the reader recognises it then. Mails are fetched with ``BODY.PEEK[]`` (a human reader's \\Seen is
left alone). Every IMAP failure, a timeout or a lost connection raises ``MailboxError``; the
message names the account (``user@host:port``), never the password.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Awaitable
from dataclasses import dataclass

import aioimaplib

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.IGNORECASE)
_SIZE = re.compile(rb"UID (\d+) RFC822\.SIZE (\d+)|RFC822\.SIZE (\d+) UID (\d+)", re.IGNORECASE)


class MailboxError(Exception):
    """The IMAP mailbox could not be read: no connection, refused login, a missing folder."""


@dataclass(frozen=True)
class MailboxAccount:
    host: str
    port: int
    username: str
    password: str
    folder: str = "INBOX"
    tls: str = "none"  # none | tls (implicit TLS, port 993); STARTTLS is not offered by aioimaplib
    timeout: float = 30.0

    @property
    def where(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"


class Mailbox:
    """A connection with ``account.folder`` selected. ``async with Mailbox(account) as box``."""

    def __init__(self, account: MailboxAccount) -> None:
        self.account = account
        self.client: aioimaplib.IMAP4 | None = None
        self.uidvalidity: int | None = None
        self._lost = asyncio.Event()  # set when the server closed the connection

    async def __aenter__(self) -> Mailbox:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        a = self.account
        try:
            cls = aioimaplib.IMAP4_SSL if a.tls == "tls" else aioimaplib.IMAP4
            self._lost.clear()
            self.client = cls(host=a.host, port=a.port, timeout=a.timeout, conn_lost_cb=lambda _exc: self._lost.set())
            await asyncio.wait_for(self.client.wait_hello_from_server(), a.timeout)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            await self.close()
            raise MailboxError(f"cannot connect to the IMAP server {a.host}:{a.port}: "
                               f"{exc or type(exc).__name__}") from exc
        await self._ask(self.client.login(a.username, a.password), f"login refused for {a.where}")
        await self._ask(asyncio.wait_for(self.client.protocol.capability(), a.timeout), f"no capabilities from {a.where}")
        selected = await self._ask(self.client.select(quote_folder(a.folder)), f"cannot open folder {a.folder!r} of {a.where}")
        found = (_UIDVALIDITY.search(bytes(line)) for line in selected.lines if isinstance(line, (bytes, bytearray)))
        match = next((m for m in found if m), None)
        self.uidvalidity = int(match.group(1)) if match else None

    @property
    def _client(self) -> aioimaplib.IMAP4:
        if self.client is None:
            raise MailboxError(f"the mailbox {self.account.where} is not open")
        return self.client

    async def _ask(self, call: Awaitable[object], what: str) -> aioimaplib.Response:
        """One IMAP command's answer; a failure, a timeout or a lost connection is a MailboxError."""
        try:
            response = await self._unless_lost(call)
        except TimeoutError as exc:
            raise MailboxError(f"{what}: no answer in time") from exc
        except (aioimaplib.AioImapException, OSError, asyncio.IncompleteReadError) as exc:
            raise MailboxError(f"{what}: {exc or type(exc).__name__}") from exc
        if not isinstance(response, aioimaplib.Response):  # CAPABILITY answers nothing but state
            return aioimaplib.Response("OK", [])
        if response.result != "OK":
            said = b" ".join(line for line in response.lines if isinstance(line, bytes)).decode("utf-8", "replace")
            raise MailboxError(f"{what}: {response.result} {said}".strip())
        return response

    async def _unless_lost(self, call: Awaitable[object]) -> object:
        """``call``'s result, or ConnectionError as soon as the connection is lost (aioimaplib
        itself would wait for the command's timeout)."""
        task = asyncio.ensure_future(call)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait({task, lost}, timeout=self.account.timeout * 2,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if task in done:
            return task.result()
        task.cancel()
        if lost in done:
            raise ConnectionError("the server closed the connection")
        raise TimeoutError

    async def uids(self) -> list[int]:
        """The UIDs of every mail in the folder, ascending."""
        response = await self._ask(self._client.uid_search("ALL"), f"cannot search {self.account.folder!r} of {self.account.where}")
        words = (w for line in response.lines[:-1] if isinstance(line, bytes) for w in line.split())
        return sorted({int(w) for w in words if w.isdigit()})

    async def sizes(self, uids: list[int]) -> dict[int, int]:
        """RFC822.SIZE of each of ``uids`` still there."""
        if not uids:
            return {}
        response = await self._ask(self._client.uid("fetch", ",".join(map(str, uids)), "(RFC822.SIZE)"),
                                   f"cannot read sizes in {self.account.where}")
        out: dict[int, int] = {}
        for line in response.lines:
            if isinstance(line, (bytes, bytearray)):
                for m in _SIZE.finditer(bytes(line)):
                    uid, size = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
                    out[int(uid)] = int(size)
        return out

    async def fetch(self, uid: int, *, headers_only: bool = False) -> bytes | None:
        """The whole mail (or its header); None when it is gone (another reader moved it)."""
        part = "(BODY.PEEK[HEADER])" if headers_only else "(BODY.PEEK[])"
        response = await self._ask(self._client.uid("fetch", str(uid), part), f"cannot fetch mail {uid} of {self.account.where}")
        return next((bytes(line) for line in response.lines if isinstance(line, bytearray)), None)

    async def ensure_folder(self, name: str) -> None:
        where = self.account.where
        listed = await self._ask(self._client.list('""', quote_folder(name)), f"cannot list the folders of {where}")
        if not any(line.startswith(b"(") for line in listed.lines if isinstance(line, bytes)):
            await self._ask(self._client.create(quote_folder(name)), f"cannot create folder {name!r} of {where}")

    async def move(self, uid: int, folder: str) -> None:
        client, target = self._client, quote_folder(folder)
        what = f"cannot move mail {uid} of {self.account.where} to {folder!r}"
        if client.has_capability("MOVE"):
            await self._ask(client.uid("move", str(uid), target), what)
            return
        await self._ask(client.uid("copy", str(uid), target), what)
        await self._ask(client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Deleted)"), what)
        # without UIDPLUS, EXPUNGE also removes what another client flagged \Deleted in this folder
        await self._ask(client.uid("expunge", str(uid)) if client.has_capability("UIDPLUS") else client.expunge(), what)

    async def wait_for_mail(self, seconds: float) -> bool:
        """IDLE until the server reports new mail (True) or ``seconds`` pass (False). Without the
        IDLE capability, sleeps ``seconds`` and answers True (the caller reads the folder anyway)."""
        client = self._client
        if not client.has_capability("IDLE"):
            await asyncio.sleep(seconds)
            return True
        what = f"IDLE on {self.account.where}"
        try:
            idle = await client.idle_start(timeout=seconds + self.account.timeout)
            try:
                pushed = await client.wait_server_push(timeout=seconds)
            except TimeoutError:
                pushed = []
            except asyncio.CancelledError:
                self._lost.set()  # stopped in the middle of IDLE: close without a LOGOUT to wait for
                raise
            finally:
                if client.has_pending_idle():
                    client.idle_done()
            await self._ask(idle, what)
        except MailboxError:
            raise
        except (aioimaplib.AioImapException, OSError, asyncio.IncompleteReadError) as exc:
            raise MailboxError(f"{what}: {exc or type(exc).__name__}") from exc
        lines = pushed if isinstance(pushed, list) else [pushed]
        return any(b"EXISTS" in bytes(line) or b"RECENT" in bytes(line) for line in lines if isinstance(line, (bytes, bytearray)))

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if client.get_state() in ("AUTH", "SELECTED") and not self._lost.is_set():
                await asyncio.wait_for(client.logout(), 2)
        except Exception:  # noqa: BLE001 - closing; the outcome is decided already
            pass
        transport = getattr(client.protocol, "transport", None)
        if transport is not None:
            transport.close()


def quote_folder(folder: str) -> str:
    """A folder name as an IMAP quoted string, non-ASCII in modified UTF-7 (RFC 3501 5.1.3)."""
    out, pending = [], ""

    def flush() -> None:
        nonlocal pending
        if pending:
            b64 = base64.b64encode(pending.encode("utf-16-be")).rstrip(b"=").replace(b"/", b",")
            out.append("&" + b64.decode("ascii") + "-")
            pending = ""

    for ch in folder:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending += ch
    flush()
    return '"' + "".join(out).replace("\\", "\\\\").replace('"', '\\"') + '"'
