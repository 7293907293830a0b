"""The hooks of the audit trail plugin. crm-graph loads this module through the entry point
``crm_audit`` (see pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

import click

from crm_audit import service
from crm_audit.models import AuditBase
from crm_graph import hookimpl
from crm_graph.core.events import Event
from crm_graph.db.session import Database
from crm_graph.hookspecs import PluginMigrations


@hookimpl
def crm_register_migrations() -> PluginMigrations:
    return PluginMigrations(versions=Path(__file__).parent / "migrations" / "versions", metadata=AuditBase.metadata)


@hookimpl
def crm_register_schema():  # type: ignore[no-untyped-def]
    from crm_audit.schema import SCHEMA  # imported here: the CLI needs no GraphQL types

    return SCHEMA


@hookimpl
async def crm_on_event(event: Event, db: Database) -> None:
    # At least once: a redelivered event finds its row and writes nothing.
    await service.record(db, event)


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    from crm_audit.cli import audit

    cli.add_command(audit)
