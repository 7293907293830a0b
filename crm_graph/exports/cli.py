"""``crm-graph export``: one export, in this process, straight to a file.

It reads as the system (every row that is not deleted: whoever runs the command has the
database in hand anyway) unless ``--as`` names a principal (``user:5``, ``api_key:3``): then it
reads exactly what that user or key may read, through the same access rules as the API. No job
row and no stored file are made.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

ENTITIES = ("customers", "orders", "order_lines", "opportunities", "tickets")
FORMATS = ("csv", "xlsx", "parquet")


@click.command("export")
@click.option("--entity", type=click.Choice(ENTITIES, case_sensitive=False), required=True, help="What to export.")
@click.option("--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False), required=True, help="File format.")
@click.option("--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), required=True,
              help="The file to write ('-' for standard output).")
@click.option("--filter", "filter_json", default=None,
              help="The entity's list filter as JSON, as startExport's `filter` takes it, e.g. '{\"country\": {\"eq\": \"CN\"}}'.")
@click.option("--as", "principal", default=None,
              help="Read with the access of this user or API key (user:5, api_key:3); default: everything, as the system.")
def export_command(entity: str, fmt: str, output: Path, filter_json: str | None, principal: str | None) -> None:
    """Export customers, orders, order lines, opportunities or tickets to CSV, XLSX or Parquet."""
    from crm_graph.cli import run_in_app
    from crm_graph.exports.models import ExportEntity, ExportFormat

    chosen, kind = ExportEntity[entity.upper()], ExportFormat[fmt.upper()]
    filter: Any = None
    if filter_json:
        try:
            filter = json.loads(filter_json)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--filter") from None
        if not isinstance(filter, dict):
            raise click.BadParameter("a filter is a JSON object", param_hint="--filter")
    content, rows = run_in_app(lambda app: _export(app, chosen, kind, filter, principal))
    if str(output) == "-":
        sys.stdout.buffer.write(content)
    else:
        output.write_bytes(content)
        click.echo(f"{rows} rows written to {output}", err=True)


async def _export(app: Any, entity: Any, fmt: Any, filter: Any, principal: str | None) -> tuple[bytes, int]:
    from crm_graph.core import access
    from crm_graph.core.errors import ValidationFailed
    from crm_graph.core.hooks import scope_narrowing
    from crm_graph.exports import service
    from crm_graph.exports.schema import decode_filter_ids

    db = app.state.db
    try:
        plain = decode_filter_ids(entity, filter) if filter is not None else None
        async with db.reader() as session:
            await service.check_filter(session, entity, plain)
    except ValidationFailed as exc:
        raise click.BadParameter("; ".join(f"{e.field}: {e.message}" for e in exc.errors), param_hint="--filter") from None
    scope = None
    if principal is not None:
        async with db.reader() as session:
            actor = await access.principal_actor(session, principal)
            if actor is None:
                raise click.BadParameter(f"{principal!r} is no user or API key that can sign in", param_hint="--as")
            scope = access.Scope(actor, sharing=await access.sharing_defaults(session), narrow=scope_narrowing(app.state.plugins))
        obj = service.PERMISSION_OBJECTS[entity]
        if not actor.can(obj, "read"):
            raise click.BadParameter(f"{principal} may not read {obj}", param_hint="--as")
    return await service.produce(db, entity=entity, format=fmt, filter=plain, scope=scope)
