"""The ``crm-graph`` command line."""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from crm_graph import __version__
from crm_graph.settings import Settings


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="crm-graph")
def cli() -> None:
    """crm-graph: a GraphQL CRM API server. Settings come from CRM_* environment variables."""


@cli.command()
@click.option("--host", default=None, help="Interface to listen on (default: CRM_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: CRM_PORT or 8000).")
@click.option("--no-migrate", is_flag=True, help="Do not upgrade the database before starting.")
@click.option("--seed-demo", is_flag=True, help="Load demo data into an empty database before starting.")
def serve(host: str | None, port: int | None, no_migrate: bool, seed_demo: bool) -> None:
    """Upgrade the database, then serve the API (GraphQL at /graphql)."""
    import uvicorn

    from crm_graph.app import create_app
    from crm_graph.db import migrate

    settings = _settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not no_migrate:
        migrate.upgrade(settings)
    if seed_demo:
        from crm_graph.seed import seed_demo as run_seed

        created = asyncio.run(run_seed(settings, only_if_empty=True))
        click.echo(f"demo data: {created} customers created" if created else "demo data: database not empty, left as it is")
    app = create_app(settings)
    host, port = host or settings.host, port or settings.port
    click.echo(f"crm-graph {__version__}: GraphQL at http://{host}:{port}/graphql ({settings.environment})")
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), proxy_headers=False)


@cli.group()
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@click.argument("revision", default="heads")
def db_upgrade(revision: str) -> None:
    """Upgrade the database to REVISION (default: heads, the newest of every branch)."""
    from crm_graph.db import migrate

    migrate.upgrade(_settings(), revision)
    click.echo(f"database upgraded to {revision}")


@db.command("downgrade")
@click.argument("revision", default="-1")
def db_downgrade(revision: str) -> None:
    """Downgrade the database to REVISION (default: one step back; `base` empties it)."""
    from crm_graph.db import migrate

    migrate.downgrade(_settings(), revision)
    click.echo(f"database downgraded to {revision}")


@cli.command()
@click.option("--demo", is_flag=True, required=True, help="Load the demo data set.")
@click.option("--customers", "count", type=int, default=300, show_default=True, help="How many customers.")
def seed(demo: bool, count: int) -> None:
    """Load demo data. Idempotent: running it twice creates the data once."""
    from crm_graph.db import migrate
    from crm_graph.seed import seed_demo

    settings = _settings()
    migrate.upgrade(settings)
    created = asyncio.run(seed_demo(settings, count=count))
    click.echo(f"demo data: {created} customers created")


@cli.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL schema (SDL): the public contract committed as schema.graphql."""
    from crm_graph.graphql.schema import build_schema

    sys.stdout.write(build_schema(Settings()).as_str() + "\n")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
