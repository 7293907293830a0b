"""Real mail programs on 127.0.0.1 and free ports for the tests, configured in temporary
directories and stopped at the end:

    from crm_graph.testing.mailservers import smtp_sink, smtp_sink_factory, exim, dovecot  # noqa: F401

``SmtpSink`` (aiosmtpd, in this process, its own thread) — an SMTP server that keeps every mail it
accepts as a ``Received`` (``mail_from``, ``rcpt_tos``, ``raw`` bytes, parsed ``message``).
``reject(*addresses)`` answers ``550 5.1.1`` at RCPT for them, ``defer(*addresses)`` ``451
4.2.0``; ``drop_after_data(n)`` closes the connection without a reply after the DATA of the next n
mails (the client cannot know whether they were taken; they are kept in ``dropped``);
``clear()`` forgets mails, rejections and faults; ``await wait_for(count, timeout)`` and ``await
wait_for_match(predicate, timeout)`` wait without blocking the event loop. Fixtures:
``smtp_sink`` (one per test) and ``smtp_sink_factory`` (session: ``make()`` starts another).

``exim`` (session) — exim4 with a private configuration that accepts mail from loopback and
delivers at once: the bounce domain (``bounces.crm.test``) to ``exim.catcher``, every other
domain to ``exim.receiver`` (the "remote" server), both SmtpSinks. A mail sent with the return
path ``exim.return_path(token)`` to an address given to ``exim.reject`` gives a real RFC 3464 DSN
at the catcher right away; to one given to ``exim.defer``, a delay warning (``Action: delayed``)
about 1-2 s later. ``exim.reset()`` empties both sinks, their rejections and exim's queue. The
sinks live as long as the session: find your mails by their token.

``dovecot`` (session) — dovecot's IMAP server, no TLS, plain-text login, maildir, the users of
``USERS``; ``dovecot.new_user()`` adds one with an empty mailbox (one per test keeps tests
apart). The helpers act as another mail client: ``append(user, raw, folder="INBOX") -> uid``,
``list_uids(user, folder)``, ``messages(user, folder)``, ``create_folder(user, name)``.
``DovecotServer(imap_capability=...)`` (a context manager) runs another one that advertises
other capabilities (no MOVE, say). Made for any plugin that reads mail (bounces, customer
service). Stopping dovecot takes about 2 s: start extra ones once per session.

A missing program fails the fixture with the make target that installs it (``make mail-tools``,
plugins/crm_marketing/mail-tools.mk). Both need root (exim's spool belongs to Debian-exim,
dovecot runs mail processes as ``nobody``).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

HOST = "127.0.0.1"
BOUNCE_DOMAIN = "bounces.crm.test"
USERS = {"bounces": "bounces-secret", "support": "support-secret"}
INSTALL = "run `make mail-tools` (plugins/crm_marketing/mail-tools.mk installs exim4-daemon-light and dovecot-imapd)"


def free_port() -> int:
    """A loopback port nobody listens on right now (aiosmtpd cannot be told port 0)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait_listening(port: int, alive: Callable[[], bool], what: str, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and alive():
        try:
            socket.create_connection((HOST, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{what} did not listen on {HOST}:{port}:\n{log()[-3000:]}")


def _private_dir(prefix: str) -> Path:
    """A temporary directory the programs' own users (not root) can reach."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    directory.chmod(0o755)
    return directory


# -- SMTP sink ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One mail the sink accepted (or read and then dropped)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage


class SmtpSink:
    """An SMTP server that keeps what it gets; see the module docstring."""

    def __init__(self, host: str = HOST, port: int | None = None) -> None:
        self.host, self.port = host, port or free_port()
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._dropped: list[Received] = []
        self._replies: dict[str, str] = {}  # address -> the refusal it gets at RCPT TO
        self._drops = 0
        self._controller = Controller(self, hostname=host, port=self.port, enable_SMTPUTF8=True)
        self._running = False

    def start(self) -> SmtpSink:
        self._controller.start()
        self._running = True
        return self

    def stop(self) -> None:
        if self._running:
            self._controller.stop()
            self._running = False

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    @property
    def dropped(self) -> list[Received]:
        """Mails whose DATA was read and whose connection was then closed without an answer."""
        with self._lock:
            return list(self._dropped)

    def reject(self, *addresses: str) -> None:
        """Answer ``550 5.1.1`` at RCPT TO for these addresses (any case) from now on."""
        with self._lock:
            self._replies.update((a.lower(), "550 5.1.1 <{}>: Recipient address rejected: User unknown") for a in addresses)

    def defer(self, *addresses: str) -> None:
        """Answer ``451 4.2.0`` (try again later) at RCPT TO for these addresses from now on."""
        with self._lock:
            self._replies.update((a.lower(), "451 4.2.0 <{}>: Mailbox busy, try again later") for a in addresses)

    def drop_after_data(self, count: int = 1) -> None:
        """Close the connection without a reply after the DATA of each of the next ``count`` mails."""
        with self._lock:
            self._drops = count

    def clear(self) -> None:
        """Forget the mails, the rejections, the deferrals and pending drops."""
        with self._lock:
            self._messages.clear()
            self._dropped.clear()
            self._replies.clear()
            self._drops = 0

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The mails once at least ``count`` arrived; AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while len(got := self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the SMTP sink on port {self.port} got {len(got)} mails, not {count}, in {timeout} s")
            await asyncio.sleep(0.02)
        return got

    async def wait_for_match(self, predicate: Callable[[Received], bool], timeout: float = 10.0) -> Received:
        """The first mail for which ``predicate`` is true, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (found := next((m for m in self.messages if predicate(m)), None)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching mail at the SMTP sink on port {self.port} in {timeout} s "
                                     f"({len(self.messages)} others)")
            await asyncio.sleep(0.02)
        return found

    # aiosmtpd's handler hooks (they run in the controller's thread)
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        with self._lock:
            refusal = self._replies.get(address.lower())
        if refusal is not None:
            return refusal.format(address)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        got = Received(envelope.mail_from or "", tuple(envelope.rcpt_tos), raw, parsed)  # type: ignore[arg-type]
        with self._lock:
            drop = self._drops > 0
            if drop:
                self._drops -= 1
            (self._dropped if drop else self._messages).append(got)
        if drop:
            server.transport.close()  # no reply: the client cannot tell whether the mail was taken
        return "250 2.0.0 OK"


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A fresh SMTP sink for one test."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="session")
def smtp_sink_factory() -> Iterator[Callable[[], SmtpSink]]:
    """``make()`` starts another sink that lives until the session ends."""
    sinks: list[SmtpSink] = []

    def make() -> SmtpSink:
        sinks.append(SmtpSink().start())
        return sinks[-1]

    yield make
    for sink in sinks:
        sink.stop()


# -- exim -----------------------------------------------------------------------------------------

EXIM_CONF = """\
primary_hostname = mta.crm.test
qualify_domain = crm.test
daemon_smtp_ports = {port}
local_interfaces = <; 127.0.0.1
disable_ipv6 = true
spool_directory = {dir}/spool
log_file_path = {dir}/log/%slog
pid_file_path = {dir}/exim.pid
exim_user = Debian-exim
exim_group = Debian-exim
never_users =
keep_environment =
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
acl_smtp_rcpt = acl_check_rcpt
# deliver every mail at once, however many come on one connection
smtp_accept_queue_per_connection = 0
# one delay warning (a DSN with Action: delayed) 1 s after a deferral, for our return paths only
delay_warning = 1s:1d
delay_warning_condition = ${{if eq{{$sender_address_domain}}{{{bounce_domain}}}}}
begin acl
acl_check_rcpt:
  accept hosts = 127.0.0.1
  deny
begin routers
bounces:
  driver = manualroute
  domains = {bounce_domain}
  transport = remote_smtp
  route_list = * 127.0.0.1::{catcher}
  self = send
everything_else:
  driver = manualroute
  domains = *
  transport = remote_smtp
  route_list = * 127.0.0.1::{receiver}
  self = send
begin transports
remote_smtp:
  driver = smtp
  allow_localhost
  hosts_try_fastopen =
begin retry
* * F,1h,1s
"""


class EximServer:
    """exim4 between a receiving sink and a bounce catcher; see the module docstring."""

    def __init__(self, bounce_domain: str = BOUNCE_DOMAIN) -> None:
        self.host, self.port, self.bounce_domain = HOST, free_port(), bounce_domain
        self.receiver, self.catcher = SmtpSink(), SmtpSink()
        self.directory = _private_dir("crm-exim-")
        self.config = self.directory / "exim.conf"
        self._process: subprocess.Popen[bytes] | None = None

    def return_path(self, token: str, local: str = "bounces") -> str:
        """The VERP return path ``bounces+TOKEN@<bounce domain>``."""
        return f"{local}+{token}@{self.bounce_domain}"

    def reject(self, *addresses: str) -> None:
        self.receiver.reject(*addresses)

    def defer(self, *addresses: str) -> None:
        self.receiver.defer(*addresses)

    def start(self) -> EximServer:
        exim = shutil.which("exim4") or shutil.which("exim4", path="/usr/sbin")
        if exim is None:
            pytest.fail(f"exim4 is not installed: {INSTALL}")
        if os.geteuid() != 0:
            pytest.fail("the exim fixture runs as root (its spool must belong to Debian-exim)")
        user = pwd.getpwnam("Debian-exim")
        for sub in ("spool", "log"):
            (self.directory / sub).mkdir()
            os.chown(self.directory / sub, user.pw_uid, user.pw_gid)
        self.receiver.start()
        self.catcher.start()
        self.config.write_text(EXIM_CONF.format(port=self.port, dir=self.directory, bounce_domain=self.bounce_domain,
                                                catcher=self.catcher.port, receiver=self.receiver.port))
        self.config.chmod(0o644)
        with open(self.directory / "exim.out", "wb") as out:
            # -bdf: the daemon stays in the foreground (our child); -q1s: queue runs for deferrals
            self._process = subprocess.Popen([exim, "-C", str(self.config), "-bdf", "-q1s"], stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_listening(self.port, lambda: self._process is not None and self._process.poll() is None, "exim", self.log)
        return self

    def _run(self, *args: str) -> str:
        done = subprocess.run(["exim4", "-C", str(self.config), *args], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=30)
        return done.stdout + done.stderr

    def reset(self) -> None:
        """Empty both sinks (and their rejections) and remove every mail still queued."""
        self.receiver.clear()
        self.catcher.clear()
        # A message exim is delivering at that moment (a delay warning on its way out, say) is
        # locked and not removed: try again until the queue is empty, for a few seconds at most.
        for _ in range(50):
            ids = re.findall(r"\b\w{6}-\w{6,11}-\w{2,4}\b", self._run("-bp"))
            if not ids:
                return
            self._run("-Mrm", *ids)
            time.sleep(0.1)

    def queue(self) -> str:
        """exim's queue listing (``exim4 -bp``)."""
        return self._run("-bp")

    def log(self) -> str:
        """exim's main and panic logs and what it printed."""
        parts = [self.directory / "log" / "mainlog", self.directory / "log" / "paniclog", self.directory / "exim.out"]
        return "\n".join(p.read_text(errors="replace") for p in parts if p.exists())

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)  # the daemon and the runners it forked
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        self.receiver.stop()
        self.catcher.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def exim() -> Iterator[EximServer]:
    """exim4 on loopback for the session (see the module docstring)."""
    server = EximServer()
    try:
        yield server.start()
    finally:
        server.stop()


# -- dovecot --------------------------------------------------------------------------------------

DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 1
mail_location = maildir:{dir}/mail/%u/Maildir
{capability}
passdb {{
  driver = passwd-file
  # a file per user: a user added while dovecot runs is found at once (one file is reread at
  # most once a second, and only when its mtime or size changed)
  args = scheme=PLAIN username_format=%u {dir}/users/%u
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={dir}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
# no growing delay for the logins after a failed one (tests fail logins on purpose)
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


class DovecotServer:
    """dovecot's IMAP server with passwd-file users and maildir; see the module docstring."""

    def __init__(self, users: dict[str, str] | None = None, imap_capability: str | None = None) -> None:
        self.host, self.port = HOST, free_port()
        self.users = dict(USERS if users is None else users)
        self.directory = _private_dir("crm-dovecot-")
        self.config = self.directory / "dovecot.conf"
        self._capability = f"imap_capability = {imap_capability}" if imap_capability else ""
        self._serial = itertools.count(1)

    def start(self) -> DovecotServer:
        dovecot = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin")
        if dovecot is None or not Path("/usr/lib/dovecot/imap").exists():
            pytest.fail(f"dovecot's IMAP server is not installed: {INSTALL}")
        if os.geteuid() != 0:
            pytest.fail("the dovecot fixture runs as root (it runs mail processes as nobody)")
        nobody = pwd.getpwnam("nobody")
        for sub in ("run", "state", "mail", "users"):
            (self.directory / sub).mkdir()
        os.chown(self.directory / "mail", nobody.pw_uid, nobody.pw_gid)
        for name in self.users:
            self._write_user(name)
        self.config.write_text(DOVECOT_CONF.format(dir=self.directory, port=self.port, capability=self._capability))
        # dovecot forks into the background: its output goes to a file, so no pipe stays open
        with open(self.directory / "dovecot.out", "wb") as out:
            done = subprocess.run([dovecot, "-c", str(self.config)], stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=30)
        if done.returncode != 0:
            pytest.fail(f"dovecot did not start:\n{self.log()}")
        _wait_listening(self.port, lambda: True, "dovecot", self.log)
        return self

    def stop(self) -> None:
        """Stop dovecot (``dovecot -c conf stop``, about 2 s) and remove its directory."""
        if (self.directory / "run").exists():
            subprocess.run(["dovecot", "-c", str(self.config), "stop"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        parts = [self.directory / "dovecot.log", self.directory / "dovecot.out"]
        return "\n".join(p.read_text(errors="replace") for p in parts if p.exists())

    def new_user(self, prefix: str = "user") -> tuple[str, str]:
        """A new user with an empty mailbox: ``(username, password)``."""
        name = f"{prefix}{next(self._serial)}"
        self.users[name] = f"{name}-secret"
        self._write_user(name)
        return name, self.users[name]

    def _write_user(self, name: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise ValueError(f"a test user's name is letters, digits, dot, dash, underscore: {name!r}")
        (self.directory / "users" / name).write_text(f"{name}:{{PLAIN}}{self.users[name]}\n")

    def _client(self, user: str) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.port, timeout=30)
        client.login(user, self.users[user])
        return client

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> int:
        """Put one mail into ``folder`` (IMAP APPEND, as a mail client would); returns its UID."""
        with self._client(user) as client:
            status, data = client.append(_quoted(folder), None, None, raw)
        found = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
        if status != "OK" or not found:
            raise AssertionError(f"APPEND to {folder!r} of {user} failed: {status} {data}")
        return int(found.group(1))

    def list_uids(self, user: str, folder: str = "INBOX") -> list[int]:
        """The UIDs in ``folder``, ascending ([] when there is no such folder)."""
        with self._client(user) as client:
            status, _ = client.select(_quoted(folder), readonly=True)
            if status != "OK":
                return []
            _, data = client.uid("SEARCH", "ALL")
        return sorted(int(n) for n in (data[0] or b"").split())

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """The raw mails in ``folder``, by ascending UID."""
        uids = self.list_uids(user, folder)
        with self._client(user) as client:
            client.select(_quoted(folder), readonly=True)
            fetched = [client.uid("FETCH", str(uid), "(BODY.PEEK[])")[1] for uid in uids]
        return [next(part[1] for part in data if isinstance(part, tuple)) for data in fetched]

    def create_folder(self, user: str, name: str) -> None:
        with self._client(user) as client:
            status, data = client.create(_quoted(name))
        if status != "OK":
            raise AssertionError(f"CREATE {name!r} for {user} failed: {data}")


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """dovecot's IMAP server on loopback for the session (see the module docstring)."""
    server = DovecotServer()
    try:
        yield server.start()
    finally:
        server.stop()
