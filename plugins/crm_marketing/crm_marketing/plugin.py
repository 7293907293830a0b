"""The hooks of the marketing plugin (entry point ``crm_marketing``, see pyproject.toml)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import click

from crm_graph import hookimpl
from crm_graph.hookspecs import PluginMigrations
from crm_graph.settings import Settings
from crm_marketing import events  # noqa: F401 - registers the event types
from crm_marketing.models import MarketingBase


def _has(module: str) -> bool:
    return importlib.util.find_spec(f"crm_marketing.{module}") is not None


@hookimpl
def crm_register_migrations() -> PluginMigrations:
    return PluginMigrations(versions=Path(__file__).parent / "migrations" / "versions", metadata=MarketingBase.metadata)


@hookimpl
def crm_register_schema():  # type: ignore[no-untyped-def]
    if not _has("schema"):
        return None
    from crm_marketing.schema import SCHEMA  # imported here: the CLI needs no GraphQL types

    return SCHEMA


@hookimpl
def crm_register_type_extensions():  # type: ignore[no-untyped-def]
    if not _has("schema"):
        return None
    from crm_marketing.schema import EXTENSIONS

    return EXTENSIONS


@hookimpl
def crm_register_filters():  # type: ignore[no-untyped-def]
    if not _has("engagement"):
        return None
    from crm_marketing.engagement import FILTERS

    return FILTERS


@hookimpl
def crm_register_routes():  # type: ignore[no-untyped-def]
    if not _has("routes"):
        return None
    from crm_marketing.routes import ROUTES

    return ROUTES


@hookimpl
def crm_register_subscribers(settings: Settings, plugins: Any):  # type: ignore[no-untyped-def]
    if not _has("confirm_mail"):
        return None
    from crm_marketing.confirm_mail import ConfirmationMail

    return ConfirmationMail(settings, plugins)


@hookimpl
async def crm_export_customer_data(customer_id: int, session: Any, entity_ids: Any) -> dict[str, Any]:
    from crm_marketing.privacy import export

    return await export(customer_id, session)


@hookimpl
async def crm_erase_customer_data(customer_id: int, session: Any, entity_ids: Any) -> None:
    from crm_marketing.privacy import erase

    await erase(customer_id, session)


@hookimpl
async def crm_merge_customers(session: Any, survivor_id: int, merged_ids: Any, dry_run: bool) -> dict[str, int]:
    from crm_marketing.privacy import merge

    return await merge(session, survivor_id, list(merged_ids), dry_run)


@hookimpl
def crm_marketing_providers():  # type: ignore[no-untyped-def]
    if not _has("providers"):
        return None
    from crm_marketing.providers import builtin

    return builtin()


@hookimpl
def crm_startup(app: Any) -> None:
    """Campaigns are sent, and the bounce mailbox read, by the app's periodic jobs (in `serve`
    and `crm-graph worker`; off in tests and with CRM_JOBS_ENABLED=false)."""
    if not _has("jobs"):
        return
    from crm_marketing.jobs import jobs_of

    app.state.scheduler.jobs.extend(jobs_of(app))


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    if not _has("cli"):
        return
    from crm_marketing.cli import marketing

    cli.add_command(marketing)


@hookimpl
def crm_messages_sent():  # type: ignore[no-untyped-def]
    """Campaign mails sent, for the marketing cost in customer profitability."""
    import sqlalchemy as sa

    from crm_graph.core.costs import SentMessages
    from crm_marketing.models import Recipient, RecipientStatus

    def select() -> sa.Select:  # type: ignore[type-arg]
        return sa.select(Recipient.customer_id.label("customer_id"), Recipient.sent_at.label("sent_at")).where(
            Recipient.status == RecipientStatus.SENT)

    return SentMessages("campaigns", select, "Campaign mails sent (crm_marketing plugin).")
