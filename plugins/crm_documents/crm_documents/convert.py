"""PDF from DOCX, XLSX, ODT and ODS through a small pool of warm LibreOffice processes.

Each slot of the pool is a process group of its own (``start_new_session``) with a private
LibreOffice profile and private loopback ports: a small reaper, the unoserver server it forks (the
XML-RPC front, run by the Python that has LibreOffice's ``uno`` bridge: Debian's
``/usr/bin/python3`` with ``python3-uno``), and the ``soffice`` that server starts. See
``SERVER_BOOTSTRAP`` for why the reaper is there and for the one change the server gets (documents
are loaded hidden). The venv only talks XML-RPC to it, in a worker thread.

The venv's ``unoserver`` package is lent to that Python without a second environment: a directory
in the work directory holds symlinks to the package and to its ``.dist-info`` (unoserver reads its
own version from the metadata) and is the child's only ``PYTHONPATH`` entry.

Slots start on first use, a second one only when jobs overlap; a cold start takes about six
seconds (unoserver waits five before it connects). A slot takes one job at a time. A job that
passes its timeout, or whose LibreOffice dies under it, gets its slot's whole process group killed
(``SIGKILL``) and reaped; the slot starts again on its next job. ``timeout`` bounds the conversion
itself, from the moment a warm process has the job: the wait for a free slot and a start-up
(bounded by ``start_timeout``) come on top. Wrap the call in ``asyncio.wait_for`` for an overall
deadline: a cancelled job kills its slot too, since nobody can tell how long LibreOffice would
still be busy with it.

Linux only (process groups, ``/proc``, ``PR_SET_CHILD_SUBREAPER``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import http.client
import importlib.util
import io
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import xmlrpc.client
import zipfile
from pathlib import Path
from typing import Any

from crm_graph.core.documents import ConversionError

__all__ = ["LibreOfficeConverter", "libreoffice_available"]

log = logging.getLogger(__name__)

SOFFICE_FALLBACK = Path("/usr/lib/libreoffice/program/soffice")
UNO_PYTHON = Path("/usr/bin/python3")
INSTALL_HINT = ("install the Debian packages libreoffice-writer-nogui libreoffice-calc-nogui python3-uno "
                "fonts-liberation2 fonts-noto-cjk")

# The import filter for each source format: without one LibreOffice guesses, and reads a file of
# random bytes as plain text (a PDF of garbage) instead of refusing it.
IMPORT_FILTERS = {
    "DOCX": "MS Word 2007 XML",
    "XLSX": "Calc MS Excel 2007 XML",
    "ODT": "writer8",
    "ODS": "calc8",
}
UNOSERVER_API = "3"  # the XML-RPC API of unoserver 3.x, whose argument order this module uses
# What unoserver's convert() answers when LibreOffice could not open the document at all.
UNREADABLE = "Could not load document"

# What the uno Python runs. The process started is only a reaper: it makes itself the child
# subreaper of everything below it and forks the server, so whatever LibreOffice orphans (it leaves
# gpg helpers behind) or a kill orphans is reaped here and never left as a zombie for init (which
# may not reap at all when the application is PID 1 of a container).
# The forked child is unoserver's own server, except that its converter loads every document
# hidden: loaded into a (headless) frame, a spreadsheet makes LibreOffice 7.4 abort from an idle
# task (vcl::Window::GetCursor, signal 6) on its first XLSX; hidden, Calc converts like Writer.
# unoserver 3.x has no option for that, so the bootstrap wraps the Desktop its UnoConverter holds.
SERVER_BOOTSTRAP = """
import ctypes, os, sys

ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
if os.fork():
    while True:
        try:
            os.wait()
        except ChildProcessError:
            sys.exit(0)

from unoserver import converter, server

class HiddenDesktop:
    def __init__(self, desktop):
        self._desktop = desktop

    def loadComponentFromURL(self, url, frame, flags, properties):
        hidden = converter.PropertyValue(Name="Hidden", Value=True)
        return self._desktop.loadComponentFromURL(url, frame, flags, (*properties, hidden))

    def __getattr__(self, name):
        return getattr(self._desktop, name)

class HiddenConverter(converter.UnoConverter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.desktop = HiddenDesktop(self.desktop)

converter.UnoConverter = HiddenConverter
sys.exit(server.main())
"""

# How long a kill waits for the reaper to reap the rest of its process group.
REAP_WAIT = 2.0
# Lines of a server's output kept to explain a failed start.
OUTPUT_LINES = 40


def _find_soffice(soffice: str | os.PathLike[str] | None) -> Path | None:
    if soffice is not None:
        path = Path(soffice)
        found = shutil.which(str(path)) if path.parent == Path() else (str(path) if os.access(path, os.X_OK) else None)
        return Path(found) if found else None
    found = shutil.which("soffice")
    if found:
        return Path(found)
    return SOFFICE_FALLBACK if os.access(SOFFICE_FALLBACK, os.X_OK) else None


@functools.lru_cache(maxsize=8)
def _check_uno(python: str) -> str | None:
    """Why ``python`` cannot import LibreOffice's ``uno`` bridge, or None when it can."""
    if not os.access(python, os.X_OK):
        return f"there is no Python at {python} for LibreOffice's uno bridge; install the Debian package python3-uno"
    try:
        done = subprocess.run([python, "-c", "import uno"], capture_output=True, timeout=60, env=_child_env(None))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python} could not be run ({exc}); install the Debian package python3-uno"
    if done.returncode != 0:
        return f"{python} cannot import LibreOffice's uno bridge; install the Debian package python3-uno"
    return None


def libreoffice_available(soffice: str | os.PathLike[str] | None = None,
                          python: str | os.PathLike[str] | None = None) -> str | None:
    """Why PDF conversion through LibreOffice cannot work on this machine, or None when it can.

    ``soffice`` defaults to the one on PATH, then ``/usr/lib/libreoffice/program/soffice``;
    ``python`` (the Python with LibreOffice's ``uno`` bridge) to ``/usr/bin/python3``."""
    if _find_soffice(soffice) is None:
        where = soffice if soffice is not None else f"on PATH or at {SOFFICE_FALLBACK}"
        return f"LibreOffice is not installed (no soffice {where}); {INSTALL_HINT}"
    if importlib.util.find_spec("unoserver") is None:
        return "the Python package unoserver is not installed (pip install 'unoserver>=3.0')"
    return _check_uno(str(python or UNO_PYTHON))


def _child_env(pythonpath: Path | None) -> dict[str, str]:
    """The environment of the uno Python: ours without the venv's Python settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH"}}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave the venv's package as installed
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


def _lend_unoserver(into: Path) -> None:
    """Make the venv's unoserver importable by another Python: symlinks in ``into``."""
    spec = importlib.util.find_spec("unoserver")
    if spec is None or spec.origin is None:
        raise ConversionError("the Python package unoserver is not installed (pip install 'unoserver>=3.0')",
                              retry=False)
    package = Path(spec.origin).parent
    metadata = sorted(package.parent.glob("unoserver-*.dist-info"))
    if not metadata:
        raise ConversionError(f"unoserver's metadata (unoserver-*.dist-info) is missing next to {package}", retry=False)
    into.mkdir(parents=True, exist_ok=True)
    for target in (package, metadata[-1]):
        (into / target.name).symlink_to(target, target_is_directory=True)


# The main part of each OOXML kind, as [Content_Types].xml names it (documents, templates,
# macro-enabled variants); the OpenDocument kinds name themselves in their "mimetype" member.
MAIN_PARTS = {
    "DOCX": re.compile(rb"(wordprocessingml\.(document|template)|ms-word\.[\w.]+)\.main\+xml", re.IGNORECASE),
    "XLSX": re.compile(rb"(spreadsheetml\.(sheet|template)|ms-excel\.[\w.]+)\.main\+xml", re.IGNORECASE),
}
MIMETYPES = {
    "ODT": (b"application/vnd.oasis.opendocument.text", b"application/vnd.oasis.opendocument.text-template"),
    "ODS": (b"application/vnd.oasis.opendocument.spreadsheet",
            b"application/vnd.oasis.opendocument.spreadsheet-template"),
}
PACKAGE_LABEL_LIMIT = 1 << 20  # bytes of [Content_Types].xml or mimetype read to tell the kind


def _wrong_kind(document: bytes, kind: str) -> str | None:
    """Why ``document`` is not a ``kind`` file, or None when it looks like one. LibreOffice, told
    which filter to use, still reads many wrong files somehow (an XLSX as DOCX gives a blank page)."""
    if not document.startswith(b"PK\x03\x04"):
        return f"the document is not in {kind} format (a {kind} file is a ZIP package)"
    try:
        with zipfile.ZipFile(io.BytesIO(document)) as package:
            name = "mimetype" if kind in MIMETYPES else "[Content_Types].xml"
            try:
                info = package.getinfo(name)
            except KeyError:
                return f"the document is not in {kind} format (a ZIP package without {name})"
            with package.open(info) as member:
                label = member.read(PACKAGE_LABEL_LIMIT)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError, NotImplementedError,
            ValueError) as exc:
        return f"the document is not in {kind} format (a damaged ZIP package: {exc})"
    if kind in MIMETYPES:
        if label.strip() not in MIMETYPES[kind]:
            return f"the document is not in {kind} format (its mimetype is {label[:80].decode('ascii', 'replace')!r})"
    elif not MAIN_PARTS[kind].search(label):
        return f"the document is not in {kind} format (its package has no {kind} main part)"
    return None


def _free_ports(count: int) -> list[int]:
    """Ports free on the loopback now (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _stat(pid: int | str) -> tuple[str, str, int, int] | None:
    """(command name, state, parent pid, process group) of a process, None when there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
    fields = stat[stat.rfind(b")") + 2:].split()
    name = stat[stat.find(b"(") + 1:stat.rfind(b")")].decode(errors="replace")
    return name, fields[0].decode(), int(fields[1]), int(fields[2])


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (stopped counts as live; a zombie does not)."""
    stat = _stat(pid)
    return stat is not None and stat[1] not in ("Z", "X")


def _group_members(pgid: int) -> dict[int, tuple[str, str, int]]:
    """The processes of process group ``pgid``: pid -> (command name, state, parent pid), zombies included."""
    members: dict[int, tuple[str, str, int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return members
    for name in entries:
        if name.isdigit() and (stat := _stat(name)) is not None and stat[3] == pgid:
            members[int(name)] = stat[:3]
    return members


class _Transport(xmlrpc.client.Transport):
    """XML-RPC over HTTP with a socket timeout, so no client thread can wait forever."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


class _Slot:
    """One warm converter process, in a session of its own: a reaper, the unoserver server it forks,
    and the soffice that one starts."""

    def __init__(self, index: int, directory: Path, soffice: Path, python: Path, pythonpath: Path) -> None:
        self.index = index
        self.directory = directory
        self.soffice = soffice
        self.python = python
        self.pythonpath = pythonpath
        self.process: subprocess.Popen[bytes] | None = None
        self.server_pid: int | None = None  # unoserver, below the reaper that self.process is
        self.office_pid: int | None = None  # soffice.bin, the LibreOffice that does the work
        self.port = 0
        self.output: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES)
        self.closed = False
        self._lock = threading.Lock()  # between start (a worker thread) and kill (another, or aclose)

    def alive(self) -> bool:
        """The server runs and so does its LibreOffice (which may die first: the server follows a
        second or two later)."""
        if self.process is None or self.process.poll() is not None:
            return False
        return all(pid is None or _running(pid) for pid in (self.server_pid, self.office_pid))

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self._lock:
            if self.closed:
                raise ConversionError("the LibreOffice converter is closed", retry=True)
            profile, tmp = self.directory / "profile", self.directory / "tmp"
            shutil.rmtree(profile, ignore_errors=True)  # a fresh profile each start: a killed one may be half written
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            self.port, uno_port = _free_ports(2)
            command = [str(self.python), "-c", SERVER_BOOTSTRAP,
                       "--interface", "127.0.0.1", "--port", str(self.port),
                       "--uno-interface", "127.0.0.1", "--uno-port", str(uno_port),
                       "--executable", str(self.soffice),
                       "--user-installation", str(profile), "--temp-dir", str(tmp)]
            self.output.clear()
            self.server_pid = self.office_pid = None
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, cwd=self.directory,
                                            env=_child_env(self.pythonpath), start_new_session=True)
            threading.Thread(target=self._drain, args=(self.process,), daemon=True,
                             name=f"libreoffice-{self.index}-output").start()
            return self.process

    def _drain(self, process: subprocess.Popen[bytes]) -> None:
        """Keep the last lines of the server's output (which logs every request), never all."""
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                self.output.append(line.decode("utf-8", "replace").rstrip())

    def _proxy(self, timeout: float) -> xmlrpc.client.ServerProxy:
        return xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.port}", transport=_Transport(timeout),
                                         allow_none=True)

    def start(self, start_timeout: float) -> None:
        """Start the server and wait until it answers (worker thread)."""
        process = self._spawn()
        deadline = time.monotonic() + start_timeout
        problem = f"it did not answer within {start_timeout:g} s"
        while time.monotonic() < deadline:
            if self.closed:
                break
            if process.poll() is not None:
                problem = f"it exited with status {process.returncode}"
                break
            try:
                # Before unoserver's XML-RPC thread runs the port refuses; once it listens, info()
                # waits until the converter is connected to soffice.
                info = self._proxy(max(0.1, deadline - time.monotonic())).info()
            except (OSError, http.client.HTTPException, xmlrpc.client.Error):
                time.sleep(0.1)
                continue
            if str(info.get("api")) != UNOSERVER_API:
                problem = (f"its unoserver speaks API {info.get('api')}, this converter needs {UNOSERVER_API} "
                           "(unoserver 3.x)")
                break
            members = _group_members(process.pid)
            servers = [pid for pid, (_, state, parent) in members.items() if parent == process.pid and state != "Z"]
            offices = [pid for pid, (name, state, _) in members.items() if name == "soffice.bin" and state != "Z"]
            self.server_pid = servers[0] if len(servers) == 1 else None
            self.office_pid = offices[0] if len(offices) == 1 else None
            log.info("LibreOffice converter %d ready (pid %d, port %d)", self.index, process.pid, self.port)
            return
        self.kill()
        if self.closed:
            raise ConversionError("the LibreOffice converter was closed while its process started", retry=True)
        tail = "\n".join(list(self.output)[-8:])
        raise ConversionError(f"LibreOffice did not start: {problem}" + (f"; its output ends:\n{tail}" if tail else ""),
                              retry=True)

    def convert(self, document: bytes, import_filter: str, timeout: float) -> bytes:
        """The PDF of ``document`` (worker thread). The socket gives up a while after the job's timeout
        has killed the process, in case nothing else wakes this thread."""
        result = self._proxy(timeout + 30).convert(
            None, xmlrpc.client.Binary(document), None, "pdf", None, [], True, import_filter, None)
        if not isinstance(result, xmlrpc.client.Binary):
            raise ConversionError(f"LibreOffice answered {type(result).__name__} instead of a PDF", retry=True)
        return result.data

    def kill(self) -> None:
        """Kill the whole process group and reap it (worker thread; safe to call twice)."""
        with self._lock:
            process, self.process = self.process, None
        if process is None:
            return
        pgid = process.pid  # start_new_session: the reaper leads its own group
        # Everything below the reaper at once; the reaper reaps them (and anything they orphan) as
        # they die. A process whose parent is outside the group (were the reaper missing, init's
        # orphans) is nobody's here to reap and not waited for.
        wait_until = time.monotonic() + REAP_WAIT
        while True:
            members = _group_members(pgid)
            left = [pid for pid, (_, _, parent) in members.items() if pid != pgid and parent in members]
            for pid in left:
                if members[pid][1] != "Z":
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            if not left or time.monotonic() > wait_until:
                break
            time.sleep(0.005)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)  # the reaper, and anything left
        process.wait()
        log.info("LibreOffice converter %d stopped (process group %d)", self.index, pgid)


class LibreOfficeConverter:
    """PDF through a pool of ``processes`` warm LibreOffice processes (see the module docstring).

    ``work_dir`` holds the profiles, temporary files and the lent unoserver package, in a
    directory of this converter's own that ``aclose()`` removes. ``soffice``: the LibreOffice
    binary (default: ``soffice`` on PATH, then /usr/lib/libreoffice/program/soffice); ``python``:
    the Python with LibreOffice's ``uno`` bridge (default /usr/bin/python3). ``start_timeout``:
    how long a process may take to start before the job fails (retry=True)."""

    name = "libreoffice"
    sources = frozenset(IMPORT_FILTERS)
    target = "PDF"

    def __init__(self, work_dir: Path, *, processes: int = 2, soffice: str | os.PathLike[str] | None = None,
                 python: str | os.PathLike[str] | None = None, start_timeout: float = 60.0) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self.work_dir = Path(work_dir)
        self.processes = processes
        self._soffice = soffice
        self._python = Path(python) if python is not None else UNO_PYTHON
        self.start_timeout = start_timeout
        self._slots: list[_Slot] = []
        self._idle: list[_Slot] = []  # slots no job holds, the most recently used last
        self._vacant = asyncio.Semaphore(0)  # counts them; waiters are served in turn
        self._directory: Path | None = None
        self._prepared = asyncio.Lock()
        self._closed = False
        self._background: set[asyncio.Task[None]] = set()

    @property
    def process_groups(self) -> tuple[int, ...]:
        """The process group ids (= the server pids) of the slots running now."""
        return tuple(slot.process.pid for slot in self._slots if slot.process is not None and slot.alive())

    async def _prepare(self) -> None:
        """Once: find the binaries, check the uno Python can run unoserver, make the slots."""
        async with self._prepared:
            if self._closed:
                raise ConversionError("the LibreOffice converter is closed", retry=True)
            if self._slots:
                return
            soffice = _find_soffice(self._soffice)
            if soffice is None:
                where = self._soffice if self._soffice is not None else f"on PATH or at {SOFFICE_FALLBACK}"
                raise ConversionError(f"LibreOffice is not installed (no soffice {where}); {INSTALL_HINT}", retry=False)
            problem = await asyncio.to_thread(_check_uno, str(self._python))
            if problem:
                raise ConversionError(f"LibreOffice cannot be used: {problem}", retry=False)
            self.work_dir.mkdir(parents=True, exist_ok=True)
            directory = Path(tempfile.mkdtemp(prefix="libreoffice-", dir=self.work_dir))
            try:
                pythonpath = directory / "pythonpath"
                _lend_unoserver(pythonpath)
                done = await asyncio.to_thread(
                    subprocess.run, [str(self._python), "-c", "import unoserver.server"], capture_output=True,
                    timeout=60, env=_child_env(pythonpath))
                if done.returncode != 0:
                    error = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
                    raise ConversionError(f"{self._python} cannot import unoserver lent from this environment: "
                                          f"{' '.join(error)}", retry=False)
            except BaseException:
                shutil.rmtree(directory, ignore_errors=True)
                raise
            self._directory = directory
            self._slots = [_Slot(i, directory / f"slot-{i}", soffice, self._python, pythonpath)
                           for i in range(self.processes)]
            for slot in reversed(self._slots):
                self._give(slot)

    async def _take(self) -> _Slot:
        """A slot for one job: a warm one when one is idle (so a second process only starts when
        jobs overlap), else one to start."""
        await self._vacant.acquire()
        warm = [slot for slot in self._idle if slot.alive()]
        slot = warm[-1] if warm else self._idle[-1]
        self._idle.remove(slot)
        return slot

    def _give(self, slot: _Slot) -> None:
        self._idle.append(slot)
        self._vacant.release()

    def _hand_back_after(self, slot: _Slot, work: Any) -> asyncio.Task[None]:
        """Run ``work`` (a coroutine: a start or a kill) to its end even if the job is cancelled,
        then return the slot to the pool."""

        async def run() -> None:
            try:
                await work
            finally:
                self._give(slot)

        task = asyncio.ensure_future(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def convert(self, document: bytes, source: str, *, timeout: float) -> bytes:
        kind = source.upper()
        import_filter = IMPORT_FILTERS.get(kind)
        if import_filter is None:
            raise ConversionError(f"LibreOffice converts {', '.join(sorted(self.sources))} to PDF here, not {source}",
                                  retry=False)
        problem = _wrong_kind(document, kind)
        if problem:
            raise ConversionError(problem, retry=False)
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        await self._prepare()
        slot = await self._take()
        held = True  # False once a task that will hand the slot back owns it

        async def finish_then_hand_back(work: Any) -> None:
            nonlocal held
            task = self._hand_back_after(slot, work)
            held = False
            await asyncio.shield(task)

        try:
            if self._closed:
                raise ConversionError("the LibreOffice converter is closed", retry=True)
            if not slot.alive():
                if slot.process is not None:  # died while idle: reap it before starting again
                    await asyncio.to_thread(slot.kill)
                start = asyncio.ensure_future(asyncio.to_thread(slot.start, self.start_timeout))
                try:
                    await asyncio.shield(start)
                except asyncio.CancelledError:
                    await finish_then_hand_back(start)  # raises CancelledError again
                    raise
            job = asyncio.ensure_future(asyncio.to_thread(slot.convert, document, import_filter, timeout))
            job.add_done_callback(lambda t: t.cancelled() or t.exception())  # a killed job's error is expected
            try:
                return await asyncio.wait_for(asyncio.shield(job), timeout)
            except TimeoutError:
                failure = ConversionError(f"LibreOffice timed out after {timeout:g} s converting the {kind} document; "
                                          "its process was killed", retry=True)
            except asyncio.CancelledError:
                await finish_then_hand_back(asyncio.to_thread(slot.kill))
                raise
            except xmlrpc.client.Fault as fault:
                if UNREADABLE in fault.faultString:
                    raise ConversionError(f"LibreOffice could not read this {kind} document", retry=False) from None
                failure = self._failure(slot, kind, fault.faultString.splitlines()[0][:300])
            except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError) as exc:
                failure = self._failure(slot, kind, f"{type(exc).__name__}: {exc}")
            if self._closed:
                raise ConversionError("the LibreOffice converter was closed during the conversion", retry=True)
            await finish_then_hand_back(asyncio.to_thread(slot.kill))
            raise failure
        finally:
            if held:
                self._give(slot)

    @staticmethod
    def _failure(slot: _Slot, kind: str, detail: str) -> ConversionError:
        if not slot.alive():
            return ConversionError(f"LibreOffice's process died converting the {kind} document ({detail}); "
                                   "it is started again", retry=True)
        return ConversionError(f"LibreOffice failed converting the {kind} document ({detail}); its process is "
                               "started again", retry=True)

    async def aclose(self) -> None:
        """Kill every process, wait for them to be reaped, remove the profiles. Idempotent."""
        self._closed = True
        async with self._prepared:
            slots = self._slots
            for slot in slots:
                slot.closed = True
            await asyncio.gather(*(asyncio.to_thread(slot.kill) for slot in slots))
            if self._background:
                await asyncio.gather(*self._background, return_exceptions=True)
            await asyncio.gather(*(asyncio.to_thread(slot.kill) for slot in slots))  # one started meanwhile
            if self._directory is not None:
                await asyncio.to_thread(shutil.rmtree, self._directory, True)
                self._directory = None
