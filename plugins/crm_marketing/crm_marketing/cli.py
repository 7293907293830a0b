"""``crm-graph marketing send|bounces``: what the server's jobs do, by hand or from cron."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import click

from crm_graph.cli import run_in_app


@click.group()
def marketing() -> None:
    """Send campaigns and read bounces (the server does both on its own every few seconds)."""


@marketing.command("send")
def send() -> None:
    """Start campaigns that are due and send every recipient due now; stops when none is left
    (SIGINT / SIGTERM stop it after the messages in flight)."""
    from crm_marketing.runtime import runtime_of
    from crm_marketing.sender import send_pending

    async def work(app: Any) -> str:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        runtime = runtime_of(app.state.settings, app.state.plugins)
        try:
            runtime.transport()
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        return str(await send_pending(app.state.db, runtime, stop=stop))

    click.echo(run_in_app(work))


@marketing.command("bounces")
def bounces() -> None:
    """Read the bounce mailbox (CRM_MARKETING_BOUNCE_IMAP_*) once."""
    from crm_marketing.jobs import read_bounces
    from crm_marketing.runtime import runtime_of

    async def work(app: Any) -> str:
        runtime = runtime_of(app.state.settings, app.state.plugins)
        if not runtime.config.tuning.bounce_imap_host:
            raise click.ClickException("CRM_MARKETING_BOUNCE_IMAP_HOST is not set")
        from crm_marketing.bounces import MailboxError

        try:
            return await read_bounces(app.state.db, runtime)
        except MailboxError as exc:
            raise click.ClickException(str(exc)) from None

    click.echo(run_in_app(work))
