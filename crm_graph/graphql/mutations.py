"""One mutation = one unit of work = one transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from crm_graph.core.errors import DomainError
from crm_graph.graphql.context import Context
from crm_graph.graphql.errors import UserError, user_errors

T = TypeVar("T")


async def unit_of_work(info: Info, work: Callable[[AsyncSession], Awaitable[T]]) -> tuple[T | None, list[UserError]]:
    """Run ``work`` in a write transaction; commit on success, roll back on a ``DomainError``.

    Returns ``(result, [])`` or ``(None, errors)``. The domain events that ``work`` recorded are
    committed with it, in the outbox, and delivered after commit. The plugin manager rides on
    ``session.info["plugins"]`` so services can ask plugins (``core/hooks.py``) without knowing
    whether any are loaded.
    """
    ctx: Context = info.context
    try:
        async with ctx.db.writer() as session, session.begin():
            if ctx.plugins is not None:
                session.info["plugins"] = ctx.plugins
            result = await work(session)
    except DomainError as exc:
        return None, user_errors(exc)
    await after_commit(ctx)
    return result, []


async def after_commit(ctx: Context) -> None:
    """Wake the event dispatcher, if one runs in this process."""
    dispatcher: Any = getattr(ctx, "dispatcher", None)
    if dispatcher is not None:
        dispatcher.wake()
