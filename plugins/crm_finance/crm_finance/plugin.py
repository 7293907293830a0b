"""The hooks of the finance plugin (entry point ``crm_finance``, see pyproject.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from crm_finance.models import FinanceBase
from crm_graph import hookimpl
from crm_graph.hookspecs import PluginMigrations
from crm_graph.settings import Settings


@hookimpl
def crm_register_migrations() -> PluginMigrations:
    return PluginMigrations(versions=Path(__file__).parent / "migrations" / "versions", metadata=FinanceBase.metadata)


@hookimpl
def crm_register_schema():  # type: ignore[no-untyped-def]
    from crm_finance.schema import SCHEMA  # imported here: the CLI needs no GraphQL types

    return SCHEMA


@hookimpl
def crm_register_type_extensions():  # type: ignore[no-untyped-def]
    from crm_finance.schema import EXTENSIONS

    return EXTENSIONS


@hookimpl
def crm_register_subscribers(settings: Settings, plugins: Any):  # type: ignore[no-untyped-def]
    from crm_finance.subscriber import FinanceSync

    return FinanceSync(settings, plugins)


@hookimpl
def crm_accounting_backends():  # type: ignore[no-untyped-def]
    from crm_finance.backends import builtin

    return builtin()


@hookimpl
def crm_startup(app: Any) -> None:
    """Payments are read from every active connection every CRM_FINANCE_PULL_INTERVAL seconds,
    by the app's periodic jobs (off in tests and with CRM_JOBS_ENABLED=false)."""
    from crm_finance.jobs import pull_job

    job = pull_job(app)
    if job is not None:
        app.state.scheduler.jobs.append(job)


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    from crm_finance.cli import finance

    cli.add_command(finance)
