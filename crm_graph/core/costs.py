"""What the ``crm_messages_sent`` hook returns: where a plugin keeps the messages it sent to
customers, so customer profitability can count what marketing a customer costs without the
core importing the plugin (docs/insights.md, docs/plugin_hooks.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa


@dataclass(frozen=True)
class SentMessages:
    """``select()`` builds a SQL select with the columns ``customer_id`` and ``sent_at`` (UTC):
    one row per message sent to a customer. It is read inside a larger statement (filtered by
    customer and time there), so it must not be ordered or limited."""

    name: str
    select: Callable[[], sa.Select[Any]]
    description: str = ""


def sent_message_sources(pm: Any) -> list[SentMessages]:
    """Every source the plugins register, in registration order; a result that is not a
    ``SentMessages`` stops with a ``PluginError`` naming the plugin."""
    from crm_graph.plugins import PluginError, collect

    out: list[SentMessages] = []
    if pm is None:
        return out
    for plugin, value in reversed(collect(pm, "crm_messages_sent")):
        for source in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(source, SentMessages):
                raise PluginError(plugin, f"crm_messages_sent returned {type(source).__name__}, not SentMessages")
            out.append(source)
    return out
