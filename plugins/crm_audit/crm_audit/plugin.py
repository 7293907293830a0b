"""The hooks of the change history plugin. crm-graph loads this module through the entry point
``crm_audit`` (see pyproject.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession

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
def crm_register_type_extensions():  # type: ignore[no-untyped-def]
    from crm_audit.schema import CustomerChangeFields
    from crm_graph.core.extensions import TypeExtension

    return TypeExtension("Customer", CustomerChangeFields)


@hookimpl
def crm_register_filters():  # type: ignore[no-untyped-def]
    from crm_audit.schema import CustomerChangesFilter
    from crm_graph.core.extensions import FilterCondition

    return FilterCondition(
        "Customer",
        "changes",
        service.changes_condition,
        CustomerChangesFilter,
        description="Customers by the changes the change history recorded about them; callers who may not read "
        "the change history see no changes.",
    )


@hookimpl
async def crm_on_event(event: Event, db: Database) -> None:
    # At least once: a redelivered event finds its row and writes nothing.
    await service.record(db, event)
    if event.type == "customer.erased":
        # The erasure cleaned the history in its own transaction (below); an older event that was
        # being delivered at that moment may have written a copy since: clean again.
        async with db.writer() as session, session.begin():
            await service.erase_entries(session, [event.entity_id])


@hookimpl
async def crm_export_customer_data(session: AsyncSession, entity_ids: list[str]) -> dict[str, Any]:
    """The change history of the customer and of its records, as kept (oldest first)."""
    return {"changeHistory": [service.to_json(e) for e in await service.entries_about(session, entity_ids)]}


@hookimpl
async def crm_erase_customer_data(session: AsyncSession, entity_ids: list[str]) -> None:
    """Blank the stored copies of the customer and of its records, in the erasure's transaction."""
    await service.erase_entries(session, entity_ids)


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    from crm_audit.cli import audit

    cli.add_command(audit)
