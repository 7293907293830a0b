"""Calls from the service layer into plugins.

A unit of work puts the plugin manager on ``session.info["plugins"]``; services call the helpers
here so they never need to know whether plugins are loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.actor import Actor


async def validate_with_plugins(session: AsyncSession, *, entity: str, data: Mapping[str, Any], actor: Actor) -> None:
    """Let plugins veto a write (``crm_validate``); raises ``ValidationFailed`` with their errors.

    ``entity`` is the lower-case entity name ("customer", "order", "ticket", ...); ``data`` is the
    input as the service received it. Call it after the service's own validation passed and
    before anything is written.
    """
    plugins = session.info.get("plugins")
    if plugins is None:
        return
    # The plugin platform fills this in: see crm_graph/hookspecs.py (crm_validate).
