"""The exports domain's built-in plugin: the subscriber that runs export jobs."""

from __future__ import annotations

from typing import Any

from crm_graph import hookimpl


@hookimpl
def crm_register_subscribers(settings: Any, plugins: Any) -> Any:
    from crm_graph.exports.subscriber import ExportRuns

    return ExportRuns(plugins)
