"""The hooks of the customer-service plugin (entry point ``crm_service``, see pyproject.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from crm_graph import hookimpl
from crm_graph.hookspecs import PluginMigrations
from crm_graph.settings import Settings
from crm_service.models import ServiceBase


@hookimpl
def crm_register_migrations() -> PluginMigrations:
    return PluginMigrations(versions=Path(__file__).parent / "migrations" / "versions", metadata=ServiceBase.metadata)


@hookimpl
def crm_register_schema():  # type: ignore[no-untyped-def]
    from crm_service.schema import SCHEMA  # imported here: the CLI needs no GraphQL types

    return SCHEMA


@hookimpl
def crm_register_type_extensions():  # type: ignore[no-untyped-def]
    from crm_service.schema import EXTENSIONS

    return EXTENSIONS


@hookimpl
def crm_register_routes():  # type: ignore[no-untyped-def]
    from crm_service.routes import ROUTES

    return ROUTES


@hookimpl
def crm_register_subscribers(settings: Settings, plugins: Any):  # type: ignore[no-untyped-def]
    from crm_service.subscriber import ServiceEvents

    return ServiceEvents(settings, plugins)


@hookimpl
def crm_helpdesk_connectors():  # type: ignore[no-untyped-def]
    from crm_service.helpdesk.rt import RequestTracker

    return RequestTracker()


@hookimpl
def crm_startup(app: Any) -> None:
    """The mailboxes are watched and the helpdesks pulled by the app's jobs (in `serve` and
    `crm-graph worker`; off in tests and with CRM_JOBS_ENABLED=false)."""
    from crm_service.jobs import jobs_of

    app.state.scheduler.jobs.extend(jobs_of(app))


@hookimpl
async def crm_shutdown(app: Any) -> None:
    from crm_service.jobs import stop

    await stop(app)


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    from crm_service.cli import helpdesk, mail

    cli.add_command(mail)
    cli.add_command(helpdesk)
