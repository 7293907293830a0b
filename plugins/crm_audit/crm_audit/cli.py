"""``crm-graph audit ...``: the trail on the command line, e.g. for an archive or a data
protection request."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import click

from crm_audit import service


@click.group()
def audit() -> None:
    """The audit trail kept by the crm_audit plugin."""


@audit.command("export")
@click.option("--entity", "entity_id", help="Only this entity (its global ID).")
@click.option("--type", "event_type", help='Only this event type or family ("ticket.*").')
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z"]), help="Only from this date (UTC).")
def export(entity_id: str | None, event_type: str | None, since: datetime | None) -> None:
    """Print entries as JSON Lines, oldest first."""
    from datetime import UTC

    from crm_graph.cli import load_settings
    from crm_graph.db.session import Database

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)

    async def run() -> None:
        db = Database.from_settings(load_settings())
        try:
            stmt = service.audit_select(entity_id=entity_id, event_type=event_type, since=since)
            ordered = stmt.order_by(*(key.column.asc() for key in service.NEWEST_FIRST))
            async with db.reader() as session:
                async for entry in await session.stream_scalars(ordered):
                    click.echo(json.dumps(service.to_json(entry), separators=(",", ":")))
        finally:
            await db.dispose()

    asyncio.run(run())
