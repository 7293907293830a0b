"""GraphiQL assets served by the server itself.

Strawberry's GraphiQL page loads React and GraphiQL from a CDN. On machines without internet
access (air-gapped offices, CI, this project's own test machines) that page stays blank, so
``make serve`` fetches the very same files from the npm registry once (``python -m
crm_graph.graphql.ide fetch``, into ``graphiql/`` in the data directory, ``CRM_DATA_DIR``) and
the server then serves them under ``/graphql/ide/``. The page keeps its subresource-integrity
hashes, so the browser still checks that every file is byte-for-byte the published one. Without the local copy, the CDN is used.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

CDN_URL = re.compile(r"https://unpkg\.com/((?:@[^/@\s\"]+/)?[^/@\s\"]+)@([^/\s\"]+)/([^\"\s]+)")
ROUTE_PREFIX = "/graphql/ide"


def assets_dir(settings: Any) -> Path:
    """Where the fetched files live: ``graphiql/`` in the data directory."""
    return Path(settings.data_dir) / "graphiql"


def asset_route(settings: Any) -> Any:
    """The Starlette mount serving the fetched files (404s until they exist)."""
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    return Mount(ROUTE_PREFIX, app=StaticFiles(directory=assets_dir(settings), check_dir=False), name="graphiql-assets")


def strawberry_page() -> str:
    import strawberry

    return (Path(strawberry.__file__).parent / "static" / "graphiql.html").read_text()


def required_assets(html: str) -> list[tuple[str, str, str]]:
    """(package, version, path inside the package) of every CDN file the page loads."""
    return sorted(set(CDN_URL.findall(html)))


def _local_path(root: Path, package: str, version: str, path: str) -> Path:
    return root / f"{package}@{version}" / path


def has_assets(root: Path, html: str) -> bool:
    return all(_local_path(root, *asset).is_file() for asset in required_assets(html))


def local_page(html: str, root: Path) -> str:
    """The page with CDN URLs pointing at this server, if every file is present locally."""
    if not has_assets(root, html):
        return html
    return CDN_URL.sub(lambda m: f"{ROUTE_PREFIX}/{m.group(1)}@{m.group(2)}/{m.group(3)}", html)


def with_headers(html: str, headers: dict[str, str] | None) -> str:
    """The page with GraphiQL's header editor starting from ``headers`` (unless the URL says)."""
    if not headers:
        return html
    import json

    initial = json.dumps(json.dumps(headers, indent=2)).replace("<", "\\u003c")
    return html.replace("React.useState(parameters.headers)", f"React.useState(parameters.headers || {initial})")


def fetch(root: Path, html: str | None = None) -> list[Path]:
    """Download the page's packages from the npm registry (``npm pack``) and keep the files it loads."""
    html = html or strawberry_page()
    assets = required_assets(html)
    missing = [a for a in assets if not _local_path(root, *a).is_file()]
    if not missing:
        return []
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed; GraphiQL will load from the CDN instead")
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        for package, version in sorted({(p, v) for p, v, _ in missing}):
            result = subprocess.run([npm, "pack", "--silent", f"{package}@{version}"], cwd=tmp,
                                    capture_output=True, text=True, timeout=300)
            if result.returncode != 0:
                raise RuntimeError(f"npm pack {package}@{version} failed: {result.stderr.strip()[:500]}")
            tarball = Path(tmp) / result.stdout.strip().splitlines()[-1]
            with tarfile.open(tarball) as archive:
                for p, v, path in missing:
                    if (p, v) != (package, version):
                        continue
                    member = archive.extractfile(f"package/{path}")
                    if member is None:
                        raise RuntimeError(f"{package}@{version} has no {path}")
                    target = _local_path(root, p, v, path)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(member.read())
                    written.append(target)
    return written


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[1] != "fetch":
        print("usage: python -m crm_graph.graphql.ide fetch [DIRECTORY]  (default: graphiql/ in CRM_DATA_DIR)",
              file=sys.stderr)
        return 2
    if len(argv) == 3:
        root = Path(argv[2])
    else:
        from crm_graph.settings import Settings

        try:
            root = assets_dir(Settings.from_env())
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
    try:
        written = fetch(root)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"GraphiQL assets not fetched ({exc}); the page will load them from the CDN", file=sys.stderr)
        return 1
    print(f"GraphiQL assets in {root}: {len(written)} fetched" if written else f"GraphiQL assets in {root}: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
