"""Browser files the server serves itself, taken from packages on the npm registry.

GraphiQL (``crm_graph/graphql/ide.py``) and the dashboard's chart library
(``crm_graph/dashboard``) load published JavaScript and CSS files. Rather than a CDN, the
server serves local copies, kept as ``<root>/<package>@<version>/<path inside the package>``.
``fetch`` downloads one package with ``npm pack`` (so npm's registry settings and proxy apply)
and keeps only the files asked for, each checked against its SHA-384 subresource-integrity hash
when one is given. ``main`` is the ``fetch [DIRECTORY]`` command line both modules offer.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any


def local_path(root: Path, package: str, version: str, path: str) -> Path:
    """Where ``path`` of ``package@version`` is kept under ``root``."""
    return root / f"{package}@{version}" / path


def sri(data: bytes) -> str:
    """The subresource-integrity value of ``data`` (SHA-384), as a ``<script integrity>`` holds it."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def fetch(root: Path, package: str, version: str, paths: Iterable[str],
          integrity: Mapping[str, str] | None = None) -> list[Path]:
    """Download ``package@version`` with ``npm pack`` and write ``paths`` (files inside the package)
    under ``root``. A file whose hash differs from its entry in ``integrity`` is refused, and then
    nothing is written. Raises RuntimeError when npm is missing or the package or a file is not
    there."""
    paths = list(paths)
    integrity = integrity or {}
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed")
    contents: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run([npm, "pack", "--silent", f"{package}@{version}"], cwd=tmp,
                                capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"npm pack {package}@{version} failed: {result.stderr.strip()[:500]}")
        tarball = Path(tmp) / result.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball) as archive:
            for path in paths:
                try:
                    member = archive.extractfile(f"package/{path}")
                except KeyError:
                    member = None
                if member is None:
                    raise RuntimeError(f"{package}@{version} has no {path}")
                contents[path] = member.read()
    for path, data in contents.items():
        wanted = integrity.get(path)
        if wanted is not None and sri(data) != wanted:
            raise RuntimeError(f"{package}@{version}/{path} does not have the pinned hash {wanted}")
    written = []
    for path, data in contents.items():
        target = local_path(root, package, version, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target)
    return written


def main(argv: list[str], *, module: str, default_dir: Callable[[Any], Path], default_help: str,
         fetch: Callable[[Path], list[Path]], subject: str, without: str) -> int:
    """``python -m <module> fetch [DIRECTORY]``: ``fetch`` into DIRECTORY, by default the one
    ``default_dir`` gives for the environment's settings (``default_help`` describes it).
    ``subject`` names what is fetched in messages; ``without`` says what a failed fetch means."""
    if len(argv) not in (2, 3) or argv[1] != "fetch":
        print(f"usage: python -m {module} fetch [DIRECTORY]  (default: {default_help})", file=sys.stderr)
        return 2
    if len(argv) == 3:
        root = Path(argv[2])
    else:
        from crm_graph.settings import Settings

        try:
            root = default_dir(Settings.from_env())
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
    try:
        written = fetch(root)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"{subject} not fetched ({exc}); {without}", file=sys.stderr)
        return 1
    if not written:
        print(f"{subject} in {root}: up to date")
    else:
        print(f"{subject} in {root}: {'fetched' if len(written) == 1 else f'{len(written)} fetched'}")
    return 0
