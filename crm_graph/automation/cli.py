"""``crm-graph automation run|scan``: what the server's jobs do, by hand or from cron."""

from __future__ import annotations

from typing import Any

import click

from crm_graph.cli import run_in_app


@click.group()
def automation() -> None:
    """Run automation flows (the server does it on its own every few seconds)."""


@automation.command("run")
def run() -> None:
    """Run every enrolment step due now, until none is due."""
    from crm_graph.automation.jobs import run_steps
    from crm_graph.automation.engine import runtime_of

    async def work(app: Any) -> str:
        return await run_steps(app.state.db, runtime_of(app.state.settings, app.state.plugins))

    click.echo(run_in_app(work))


@automation.command("scan")
def scan() -> None:
    """Scan date, inactivity and schedule triggers once, enrolling who is due."""
    from crm_graph.automation.jobs import scan_triggers
    from crm_graph.automation.engine import runtime_of

    async def work(app: Any) -> str:
        return await scan_triggers(app.state.db, runtime_of(app.state.settings, app.state.plugins))

    click.echo(run_in_app(work))
