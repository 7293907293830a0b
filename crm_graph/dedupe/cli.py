"""``crm-graph duplicates refresh``: bring the stored duplicate keys and pairs up to date at once,
after a bulk import, instead of a little on each request."""

from __future__ import annotations

from typing import Any

import click

from crm_graph.cli import run_in_app


@click.group()
def duplicates() -> None:
    """Duplicate customers (docs/duplicates.md)."""


@duplicates.command("refresh")
def refresh() -> None:
    """Re-key and re-pair every customer changed since the last refresh."""
    from crm_graph.dedupe.service import refresh_all

    async def work(app: Any) -> str:
        done = await refresh_all(app.state.db)
        return f"{done} customers looked at"

    click.echo(run_in_app(work))
