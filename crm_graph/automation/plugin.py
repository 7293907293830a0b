"""The automation domain's built-in plugin: its actions (``crm_automation_actions``), the
subscriber that feeds events into flows, the periodic jobs that run due steps and scan date,
inactivity and schedule triggers, and `crm-graph automation`."""

from __future__ import annotations

from typing import Any

import click

from crm_graph import hookimpl
from crm_graph.automation import events  # noqa: F401 - registers the event types


@hookimpl
def crm_automation_actions() -> list[Any]:
    from crm_graph.automation.actions import builtin_actions

    return builtin_actions()


@hookimpl
def crm_register_subscribers(settings: Any, plugins: Any) -> Any:
    from crm_graph.automation.subscriber import AutomationEvents

    return AutomationEvents(settings, plugins)


@hookimpl
def crm_startup(app: Any) -> None:
    """Due steps and trigger scans are periodic jobs of `serve` and `crm-graph worker` (off in
    tests and with CRM_JOBS_ENABLED=false)."""
    from crm_graph.automation.jobs import jobs_of

    app.state.scheduler.jobs.extend(jobs_of(app))


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    from crm_graph.automation.cli import automation

    cli.add_command(automation)
