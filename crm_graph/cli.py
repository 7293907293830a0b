"""The ``crm-graph`` command line. Plugins add their own subcommands (``crm_register_commands``)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

import click

from crm_graph import __version__
from crm_graph.settings import Settings


def load_settings() -> Settings:
    """Settings from the environment; a bad value is a usage error, not a traceback."""
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None



def _plugin_manager(settings: Settings) -> Any:
    from crm_graph.plugins import PluginError, make_plugin_manager

    try:
        return make_plugin_manager(settings)
    except PluginError as exc:
        raise click.ClickException(str(exc)) from None


def run_in_app(work: Any) -> Any:
    """Run ``await work(app)`` inside the app's lifespan, as `crm-graph worker` does (same
    plugins, same database), without the dispatcher and the periodic jobs: for plugins' commands
    that do one pass of what the server does on its own (`crm-graph mail poll`)."""
    from crm_graph.app import create_app

    settings = load_settings()
    app = create_app(settings, plugins=_plugin_manager(settings), dispatcher=False, jobs=False)

    async def main() -> Any:
        async with app.router.lifespan_context(app):
            return await work(app)

    return asyncio.run(main())


def _configure_logging(settings: Settings) -> None:
    from crm_graph.observability import logs

    logs.configure(settings)  # JSON lines in production, text in dev (CRM_LOG_FORMAT)


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
    """Upgrade the database, then serve the API (GraphQL at /graphql).

    The event dispatcher runs inside the server unless CRM_DISPATCHER_ENABLED=false (then run
    `crm-graph worker` processes).
    """
    import uvicorn

    from crm_graph import plugins
    from crm_graph.app import create_app

    settings = load_settings()
    _configure_logging(settings)
    pm = _plugin_manager(settings)
    if not no_migrate:
        plugins.upgrade(settings, pm=pm)
    if seed_demo:
        from crm_graph.seed import seed_demo as run_seed

        created = asyncio.run(run_seed(settings, only_demo_data=True))
        click.echo("demo data: the database holds data of its own, left as it is" if created is None
                   else f"demo data: in place ({created} customers created now)")
    dev_key = None
    if not settings.is_production:
        from crm_graph.auth.dev import DEV_ADMIN, dev_admin_key, key_file

        dev_key = asyncio.run(dev_admin_key(settings, demo_owners=seed_demo))
    try:
        app = create_app(settings, plugins=pm)
    except plugins.PluginError as exc:
        raise click.ClickException(str(exc)) from None
    host, port = host or settings.host, port or settings.port
    click.echo(f"crm-graph {__version__}: GraphQL at http://{host}:{port}/graphql ({settings.environment})")
    if dev_key is not None:
        app.state.graphql.ide_headers = {"Authorization": f"Bearer {dev_key}"}
        click.echo(f"dev admin key ({DEV_ADMIN}, ADMIN; dev only, kept in {key_file(settings)}); GraphiQL sends it:")
        click.echo(dev_key)
        click.echo(f'try: curl -s http://{host}:{port}/graphql -H "Authorization: Bearer {dev_key}" '
                   "-H 'Content-Type: application/json' -d '{\"query\": \"{ customers(first: 5) { totalCount } }\"}'")
    from crm_graph.serving import tune_garbage_collector, uvicorn_options

    tune_garbage_collector()
    # Timeouts and a connection cap against slow or idle clients (CRM_HTTP_*, crm_graph/serving.py).
    from crm_graph.observability.logs import uvicorn_log_config

    # One line per request comes from the app (crm_graph/observability/requests.py), with its id.
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), proxy_headers=False,
                log_config=uvicorn_log_config(), access_log=False, **uvicorn_options(settings))


@cli.command()
@click.option("--once", is_flag=True, help="Deliver what is due, then exit (cron jobs, tests).")
def worker(once: bool) -> None:
    """Deliver events to plugins and webhooks, outside the server.

    Run as many as you like against one PostgreSQL database: they share the work and never
    deliver one event twice to the same subscriber (at least once across crashes). Stops
    cleanly on SIGINT or SIGTERM after the current round.
    """
    from crm_graph.app import create_app
    from crm_graph.plugins import PluginError

    settings = load_settings()
    _configure_logging(settings)
    pm = _plugin_manager(settings)
    try:
        app = create_app(settings, plugins=pm, dispatcher=not once, jobs=not once)
    except PluginError as exc:
        raise click.ClickException(str(exc)) from None
    if not once:
        from crm_graph.serving import tune_garbage_collector

        tune_garbage_collector()

    async def run() -> None:
        # The worker runs the app's lifespan: plugins' startup and shutdown hooks, and the
        # dispatcher, exactly as inside `serve`.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with app.router.lifespan_context(app):
            if once:
                totals = await app.state.dispatcher.drain()
                click.echo(
                    f"delivered {totals.delivered}, failed {totals.failed} (to retry), dead {totals.dead}, "
                    f"postponed {totals.postponed}"
                )
                return
            click.echo(f"crm-graph {__version__}: worker {app.state.dispatcher.name} delivering events")
            await stop.wait()

    asyncio.run(run())


@cli.group()
def db() -> None:
    """Database schema migrations (the core's and every plugin's)."""


@db.command("upgrade")
@click.argument("revision", default="heads")
def db_upgrade(revision: str) -> None:
    """Upgrade the database to REVISION (default: heads, the newest of every branch)."""
    from crm_graph import plugins

    settings = load_settings()
    plugins.upgrade(settings, revision, pm=_plugin_manager(settings))
    click.echo(f"database upgraded to {revision}")


@db.command("downgrade")
@click.argument("revision", default="-1")
def db_downgrade(revision: str) -> None:
    """Downgrade the database to REVISION (default: one step back; `base` empties it)."""
    from crm_graph import plugins

    settings = load_settings()
    plugins.downgrade(settings, revision, pm=_plugin_manager(settings))
    click.echo(f"database downgraded to {revision}")


@cli.command()
@click.option("--demo", is_flag=True, required=True, help="Load the demo data set.")
@click.option("--customers", "count", type=int, default=300, show_default=True, help="How many customers.")
def seed(demo: bool, count: int) -> None:
    """Load demo data. Idempotent: running it twice creates the data once."""
    from crm_graph import plugins
    from crm_graph.seed import seed_demo

    settings = load_settings()
    plugins.upgrade(settings, pm=_plugin_manager(settings))
    created = asyncio.run(seed_demo(settings, count=count))
    click.echo(f"demo data: {created} customers created")


@cli.group()
def segments() -> None:
    """Segments and customer-value analyses."""


@segments.command("refresh")
@click.option("--window-days", type=int, default=365, show_default=True, help="Window of the RFM run.")
def segments_refresh(window_days: int) -> None:
    """Re-apply every SNAPSHOT segment's filter and store a new RFM run for today."""
    from crm_graph.core.actor import SYSTEM
    from crm_graph.db import migrate
    from crm_graph.db.session import Database
    from crm_graph.segments.service import refresh_all

    settings = load_settings()
    migrate.upgrade(settings)

    async def run() -> dict[str, int]:
        db = Database.from_settings(settings)
        try:
            async with db.writer() as session, session.begin():
                return await refresh_all(session, actor=SYSTEM, window_days=window_days)
        finally:
            await db.dispose()

    result = asyncio.run(run())
    click.echo(f"refreshed {result['snapshots']} snapshot segments; RFM run scored {result['rfmCustomers']} customers")


@cli.group()
def bench() -> None:
    """Benchmark data (the scenarios themselves are in bench/)."""


@bench.command("generate")
@click.option("--customers", type=click.IntRange(1, 10_000_000), default=100_000, show_default=True)
@click.option("--orders", type=click.IntRange(0, 100_000_000), default=1_000_000, show_default=True)
@click.option("--opportunities", type=click.IntRange(0, 10_000_000), default=200_000, show_default=True)
@click.option("--tickets", type=click.IntRange(0, 10_000_000), default=100_000, show_default=True)
@click.option("--products", type=click.IntRange(1, 100_000), default=500, show_default=True)
def bench_generate(customers: int, orders: int, opportunities: int, tickets: int, products: int) -> None:
    """Write deterministic benchmark data with bulk inserts into an empty database
    (CRM_DATABASE_URL; migrated first). Refuses a database that holds customers."""
    import time

    from crm_graph import benchdata, plugins
    from crm_graph.db.session import Database

    settings = load_settings()
    plugins.upgrade(settings, pm=_plugin_manager(settings))
    volumes = benchdata.Volumes(customers=customers, orders=orders, opportunities=opportunities, tickets=tickets, products=products)
    total = customers + orders + opportunities + tickets + products

    async def run(bar: Any) -> dict[str, int]:
        db = Database.from_settings(settings)
        try:
            return await benchdata.generate(db, volumes, lambda table, rows: bar.update(rows))
        finally:
            await db.dispose()

    start = time.perf_counter()
    with click.progressbar(length=total, label="bench data", show_eta=True, show_percent=True) as bar:
        try:
            counts = asyncio.run(run(bar))
        except benchdata.NotEmpty as exc:
            raise click.ClickException(str(exc)) from None
    seconds = time.perf_counter() - start
    click.echo(", ".join(f"{n} {table}" for table, n in counts.items()) + f" in {seconds:.1f} s "
               f"({sum(counts.values()) / seconds:,.0f} rows/s)")


@cli.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL schema (SDL): the core's and the installed plugins' parts.

    The public contract, committed as schema.graphql.
    """
    from crm_graph.graphql.schema import build_schema
    from crm_graph.plugins import PluginError

    settings = load_settings()
    try:
        schema = build_schema(settings, _plugin_manager(settings))
    except PluginError as exc:
        raise click.ClickException(str(exc)) from None
    sys.stdout.write(schema.as_str() + "\n")


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_plugins(as_json: bool) -> None:
    """List the loaded plugins, their versions and the hooks each implements."""
    from crm_graph.plugins import plugin_info

    settings = load_settings()
    infos = plugin_info(_plugin_manager(settings))
    if as_json:
        click.echo(json.dumps([i.to_json() for i in infos], indent=2))
        return
    for info in infos:
        origin = info.distribution or info.source
        click.echo(f"{info.name} {info.version or '-'} ({origin})")
        click.echo(f"    hooks: {', '.join(info.hooks) or '-'}")
    if settings.plugins_block:
        click.echo(f"blocked: {', '.join(settings.plugins_block)}")


# Access administration: `user create|set-password`, `apikey create|revoke|list`. They live in
# the access domain's room (crm_graph/auth/cli.py) and join the group here.
from crm_graph.auth.cli import apikey as _apikey_commands  # noqa: E402
from crm_graph.auth.cli import user as _user_commands  # noqa: E402

cli.add_command(_user_commands, "user")
cli.add_command(_apikey_commands, "apikey")
from crm_graph.exports.cli import export_command as _export_command  # noqa: E402
cli.add_command(_export_command, "export")
from crm_graph.imports.cli import import_command as _import_command  # noqa: E402
cli.add_command(_import_command, "import")


def _with_plugin_commands() -> click.Group:
    """Let plugins add their subcommands. A broken plugin is reported, but commands of the core
    still run (so `crm-graph plugins` can show what is wrong and `db upgrade` still works)."""
    from crm_graph.plugins import PluginError, make_plugin_manager, register_commands

    try:
        settings = Settings.from_env()
    except ValueError:
        return cli  # the command itself reports bad settings
    try:
        register_commands(make_plugin_manager(settings), cli)
    except PluginError as exc:
        click.echo(f"warning: {exc}", err=True)
    return cli


def main() -> None:
    _with_plugin_commands()()


if __name__ == "__main__":
    main()
