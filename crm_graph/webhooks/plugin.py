"""The webhooks domain's built-in plugin: ``crm-graph webhooks ...`` commands.

Registered like any third-party plugin (see ``crm_graph.plugins.CORE_PLUGINS``), so it shows
in ``crm-graph plugins`` and can be blocked with ``CRM_PLUGINS_BLOCK=crm_graph.webhooks.plugin``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from crm_graph import hookimpl


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    cli.add_command(webhooks)


@click.group()
def webhooks() -> None:
    """Outbound webhooks: subscriptions and a local receiver for development."""


@webhooks.command("list")
def list_subscriptions() -> None:
    """List the webhook subscriptions (without their secrets)."""
    from crm_graph.cli import load_settings
    from crm_graph.db.session import Database
    from crm_graph.webhooks import service

    async def run() -> list[dict[str, Any]]:
        db = Database.from_settings(load_settings())
        try:
            async with db.reader() as session:
                rows = await session.scalars(service.subscription_select().order_by(service.SUBSCRIPTION_ORDER[0].column))
                return [
                    {"id": s.id, "url": s.url, "events": s.events, "active": s.active, "description": s.description}
                    for s in rows
                ]
        finally:
            await db.dispose()

    for row in asyncio.run(run()):
        click.echo(json.dumps(row))


@webhooks.command("listen")
@click.option("--port", type=int, default=9000, show_default=True, help="Port on 127.0.0.1.")
@click.option("--secret", envvar="CRM_WEBHOOK_SECRET", help="Secret to verify signatures with (or CRM_WEBHOOK_SECRET).")
def listen(port: int, secret: str | None) -> None:
    """Receive deliveries on http://127.0.0.1:PORT/hooks and print each event.

    Subscribe that URL (the server needs CRM_WEBHOOK_ALLOW_PRIVATE=true for loopback targets).
    With --secret, deliveries whose signature does not verify are refused with 400.
    """
    from crm_graph.webhooks.receiver import Received, Receiver

    def show(item: Received) -> None:
        mark = "verified" if item.verified else "unverified"
        click.echo(f"{item.event_type} {item.event_id} ({mark})")
        click.echo(json.dumps(item.json(), indent=2))

    async def run() -> None:
        receiver = Receiver(secret=secret, port=port, on_receive=show)
        await receiver.start()
        click.echo(f"listening on {receiver.url} (Ctrl-C stops)")
        try:
            await asyncio.Event().wait()
        finally:
            await receiver.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


@hookimpl
def crm_register_subscribers(settings: Any) -> Any:
    from crm_graph.webhooks.subscriber import Webhooks

    return Webhooks(settings)
