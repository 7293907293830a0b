"""A real Request Tracker 5 (Debian's packages) for the tests: ``rt`` starts one per test session
on 127.0.0.1 and a free port, on a copy of the packaged SQLite database, and stops it at the end.

RT reads its site configuration from ``RT_SiteConfig.pm`` and every ``*.pm`` of
``RT_SiteConfig.d`` — all of them, so two test runs at once (the suite runs on SQLite and on
PostgreSQL in two processes) would override each other's drop-ins in
``/etc/request-tracker5/RT_SiteConfig.d``. ``RT::Config::LoadConfig`` honours two environment
variables, ``RT_SITE_CONFIG`` (the site file) and ``RT_SITE_CONFIG_DIR`` (the drop-in directory,
read instead of both ``$EtcPath`` and ``$LocalEtcPath``'s), so each server gets a private copy
of the configuration directory: Debian's drop-ins, then our ``99-crm-test-<random>.pm``. Nothing
under /etc is written and any number of servers run side by side; the Mason cache and session
directories are private too (``$RT::MasonDataDir`` and ``$RT::MasonSessionDir``, assigned in
the drop-in after ``RT::Generated`` set them).

The set-up goes through RT's Perl API: root's password, the rights the mail gateway needs
(Everyone may create, reply to and comment on tickets — without them rt-mailgate drops the mail
and still exits 0), and the custom fields the connector uses, applied to the General queue:
ticket fields "CRM Reference" (the CRM ticket number) and "CRM Customer" (the customer card),
and a transaction field "CRM Reference" (the CRM's reference of a reply or comment).

The test configuration also sets RT's time zone to America/New_York (TicketSQL reads dates in
it, so a connector that sends UTC times unconverted would miss changes) and a low bcrypt cost
(RT checks the basic-auth password on every REST2 request; at the default cost of 12 that is a
third of a second each).

RT comes from ``make rt-tools``. Outside pytest::

    server = RtServer(Path(tempfile.mkdtemp())); server.start(); ...; server.stop()
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from email.parser import BytesHeaderParser
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import httpx
import pytest

SHARE = Path("/usr/share/request-tracker5")
HTTPD = SHARE / "libexec" / "standalone_httpd"
MAILGATE = Path("/usr/bin/rt-mailgate-5")
PACKAGED_DB = Path("/var/lib/dbconfig-common/sqlite3/request-tracker5/rtdb")
SITE_CONFIG_D = Path("/etc/request-tracker5/RT_SiteConfig.d")
QUEUE = "General"
REFERENCE_FIELD = "CRM Reference"
CUSTOMER_FIELD = "CRM Customer"
TIMEZONE = "America/New_York"

# Run by perl with RT's configuration (environment) and the root password on stdin.
SETUP = r"""
use strict;
use warnings;
use lib '/usr/share/request-tracker5/lib';
use RT;
RT::LoadConfig();
RT::Init();
my ($queue_name, $reference, $customer) = @ARGV;
my $password = <STDIN>;
chomp $password;
my ($ok, $msg);

my $root = RT::User->new(RT->SystemUser);
$root->Load('root');
($ok, $msg) = $root->SetPassword($password);
die "root password: $msg\n" unless $ok;

my $everyone = RT::Group->new(RT->SystemUser);
$everyone->LoadSystemInternalGroup('Everyone');
for my $right (qw(CreateTicket ReplyToTicket CommentOnTicket)) {
    ($ok, $msg) = $everyone->PrincipalObj->GrantRight(Right => $right, Object => RT->System);
    die "$right: $msg\n" unless $ok;
}

my $queue = RT::Queue->new(RT->SystemUser);
$queue->Load($queue_name);
die "no queue $queue_name\n" unless $queue->id;
for my $field ([$reference, 'Freeform-1', 'RT::Queue-RT::Ticket', 'the CRM ticket number'],
               [$customer, 'Text-1', 'RT::Queue-RT::Ticket', "the CRM's customer card"],
               [$reference, 'Freeform-1', 'RT::Queue-RT::Ticket-RT::Transaction', "the CRM's message reference"]) {
    my ($name, $type, $lookup, $description) = @$field;
    my $cf = RT::CustomField->new(RT->SystemUser);
    ($ok, $msg) = $cf->Create(Name => $name, TypeComposite => $type, LookupType => $lookup,
                              MaxValues => 1, Description => $description);
    die "custom field $name: $msg\n" unless $ok;
    ($ok, $msg) = $cf->AddToObject($queue);
    die "custom field $name on $queue_name: $msg\n" unless $ok;
}
print "ready\n";
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def missing() -> list[str]:
    """What of RT this module needs is not installed."""
    return [str(path) for path in (HTTPD, MAILGATE, PACKAGED_DB, SHARE / "lib" / "RT.pm") if not path.exists()]


def _perl_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class RtServer:
    """One RT database in ``workdir`` and its standalone web server."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.username = "root"
        self.password = secrets.token_urlsafe(12)
        self.queue = QUEUE
        self.setup_seconds = 0.0
        self.start_seconds = 0.0
        self.config_dir = workdir / "RT_SiteConfig.d"
        self.drop_in = self.config_dir / f"99-crm-test-{secrets.token_hex(4)}.pm"
        self._process: subprocess.Popen[bytes] | None = None

    # -- life cycle --

    @property
    def env(self) -> dict[str, str]:
        # TMPDIR: RT keeps the mail it "sends" (MailCommand testfile) in a temporary file that a
        # stopped server leaves behind.
        return dict(os.environ, RT_SITE_CONFIG=str(self.workdir / "RT_SiteConfig.pm"),
                    RT_SITE_CONFIG_DIR=str(self.config_dir), TMPDIR=str(self.workdir / "tmp"))

    def _configure(self) -> None:
        absent = missing()
        if absent:
            raise RuntimeError(f"Request Tracker 5 is not installed ({', '.join(absent)} missing): run `make rt-tools`")
        for sub in ("mason_data", "session_data", "tmp"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        database = self.workdir / "rtdb"
        shutil.copyfile(PACKAGED_DB, database)
        (self.workdir / "RT_SiteConfig.pm").write_text("1;\n")
        self.config_dir.mkdir(exist_ok=True)
        for packaged in sorted(SITE_CONFIG_D.glob("*.pm")):
            if not packaged.name.startswith("99-crm-test-"):
                shutil.copyfile(packaged, self.config_dir / packaged.name)
        settings = {
            "rtname": "crm-test", "Organization": "crm.test", "CorrespondAddress": "support@crm.test",
            "CommentAddress": "support-comment@crm.test", "DatabaseType": "SQLite", "DatabaseName": str(database),
            "WebDomain": "127.0.0.1", "WebPort": self.port, "WebPath": "", "WebBaseURL": self.url,
            "LogToSTDERR": "warning", "MailCommand": "testfile", "Timezone": TIMEZONE, "BcryptCost": 4,
        }
        lines = [f"Set(${key}, {value if isinstance(value, int) else _perl_string(value)});"
                 for key, value in settings.items()]
        lines += ["Set($LogToSyslog, undef);", "Set($LogToFile, undef);",
                  f"$RT::MasonDataDir = {_perl_string(str(self.workdir / 'mason_data'))};",
                  f"$RT::MasonSessionDir = {_perl_string(str(self.workdir / 'session_data'))};", "1;"]
        self.drop_in.write_text("\n".join(lines) + "\n")

    def _setup(self) -> None:
        script = self.workdir / "setup.pl"
        script.write_text(SETUP)
        done = subprocess.run(["perl", str(script), self.queue, REFERENCE_FIELD, CUSTOMER_FIELD],
                              input=self.password + "\n", env=self.env, cwd=self.workdir, capture_output=True,
                              text=True, timeout=300)
        if done.returncode != 0 or "ready" not in done.stdout:
            raise RuntimeError(f"RT set-up failed ({done.returncode}):\n{done.stderr[-3000:]}")

    def start(self) -> None:
        if self._process is not None:
            return
        started = time.monotonic()
        try:
            self._configure()
            self._setup()
        except BaseException:
            self.drop_in.unlink(missing_ok=True)
            raise
        self.setup_seconds = time.monotonic() - started
        started = time.monotonic()
        with open(self.workdir / "rt.log", "ab") as log:
            self._process = subprocess.Popen(
                [str(HTTPD), "--host", "127.0.0.1", "--port", str(self.port)], env=self.env, cwd=self.workdir,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        atexit.register(self.stop)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                self.stop()
                raise RuntimeError(f"RT's standalone_httpd exited at start:\n{self.log_tail()}")
            try:
                answer = httpx.get(f"{self.url}/REST/2.0/rt", auth=(self.username, self.password), timeout=5)
                if answer.status_code == 200:
                    self.start_seconds = time.monotonic() - started
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"RT did not answer on {self.url} within 120 s:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        try:
            if process is not None and process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
                except ProcessLookupError:
                    pass
        finally:
            self.drop_in.unlink(missing_ok=True)

    def log_tail(self, size: int = 3000) -> str:
        log = self.workdir / "rt.log"
        return log.read_text(errors="replace")[-size:] if log.exists() else ""

    # -- for the tests --

    def config(self, **changes: Any) -> dict[str, Any]:
        """The connector's connection config (the password is ``secrets``)."""
        return {"url": self.url, "username": self.username, "queue": self.queue,
                "referenceField": REFERENCE_FIELD, "customerField": CUSTOMER_FIELD, "timeout": 30, **changes}

    @property
    def secrets(self) -> dict[str, str]:
        return {"password": self.password}

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        """REST2 as an RT agent would use it, beside the connector: the parsed JSON answer."""
        response = httpx.request(method, f"{self.url}/REST/2.0/{path.lstrip('/')}",
                                 auth=(self.username, self.password), timeout=60, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def mail_in(self, raw: bytes, action: str = "correspond", queue: str = "General") -> int:
        """Deliver a mail through rt-mailgate as the MTA would; the id of the ticket it went to.

        rt-mailgate exits 0 even when RT refuses the mail, so RT's answer ("ok") is checked and the
        message is then looked up by its Message-ID (one is added when the mail has none)."""
        message_id = BytesHeaderParser().parsebytes(raw).get("Message-ID")
        if not message_id:
            message_id = make_msgid(domain="mail.test")
            raw = f"Message-ID: {message_id}\n".encode() + raw
        done = subprocess.run([str(MAILGATE), "--debug", "--queue", queue, "--action", action, "--url", f"{self.url}/",
                               "--timeout", "60"], input=raw, capture_output=True, timeout=120)
        answer = done.stderr.decode(errors="replace")
        if done.returncode != 0 or not any(line.strip() == "ok" for line in answer.splitlines()):
            raise AssertionError(f"rt-mailgate failed ({done.returncode}): {answer[-2000:]}\n{self.log_tail(1500)}")
        found = self.rest("POST", "attachments?fields=TransactionId",
                          json=[{"field": "MessageId", "value": message_id.strip().strip("<>")}])
        for item in found["items"]:
            stored_in = self.rest("GET", f"transaction/{item['TransactionId']}").get("Object") or {}
            if stored_in.get("type") == "ticket":
                return int(stored_in["id"])
        raise AssertionError(f"RT accepted {message_id} but stored no ticket message for it\n{self.log_tail(1500)}")

@pytest.fixture(scope="session")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtServer]:
    server = RtServer(tmp_path_factory.mktemp("rt"))
    try:
        server.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        server.stop()
        pytest.fail(f"RT did not start: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
