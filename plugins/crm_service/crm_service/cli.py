"""``crm-graph mail poll`` and ``crm-graph helpdesk sync``: one pass of what the server's
watchers and jobs do on their own, for cron and tests."""

from __future__ import annotations

from typing import Any

import click

from crm_graph.cli import run_in_app


@click.group()
def mail() -> None:
    """Support mailboxes (the server watches them with IMAP IDLE on its own)."""


@mail.command("poll")
def poll() -> None:
    """Read every active mailbox once: new mail becomes tickets and comments, then moves to
    the processed folder. Exits 1 when a mailbox could not be read."""
    from crm_service.config import service_settings
    from crm_service.reader import read_all

    async def work(app: Any) -> list[Any]:
        return await read_all(app.state.db, app.state.settings, service_settings())

    results = run_in_app(work)
    for result in results:
        click.echo(str(result))
    if not results:
        click.echo("no active mail channels")
    if any(r.error for r in results):
        raise SystemExit(1)


@click.group()
def helpdesk() -> None:
    """Helpdesk connections (the server syncs them every CRM_SERVICE_HELPDESK_INTERVAL seconds)."""


@helpdesk.command("sync")
def sync_command() -> None:
    """Read every active helpdesk connection's changes once. Exits 1 when one failed."""
    from crm_graph.core.helpdesk import HelpdeskError
    from crm_service.config import service_settings
    from crm_service.helpdesk import sync

    async def work(app: Any) -> tuple[list[str], bool]:
        out, failed = [], False
        for connection_id in await sync.connection_ids(app.state.db):
            try:
                result = await sync.pull(app.state.db, app.state.settings, service_settings(), app.state.plugins,
                                         connection_id)
                out.append(str(result))
                failed = failed or bool(result.errors)
            except (HelpdeskError, LookupError) as exc:
                out.append(f"connection {connection_id}: {getattr(exc, 'message', exc)}")
                failed = True
        return out, failed

    lines, failed = run_in_app(work)
    click.echo("\n".join(lines) or "no active helpdesk connections")
    if failed:
        raise SystemExit(1)
