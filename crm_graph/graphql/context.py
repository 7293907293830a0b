"""Per-request context: the database, the actor, settings and the request's DataLoaders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from crm_graph.core.actor import Actor
from crm_graph.db.session import Database
from crm_graph.observability import tracing
from crm_graph.settings import Settings

BatchFn = Callable[[AsyncSession, Sequence[Any]], Awaitable[Mapping[Any, Any]]]


class Context:
    """Built once per request. Loaders are created on first use and live for the request only,
    so one request never sees another's cache and a write is visible to the next request.
    ``db`` is the request's scoped view of the database (``Database.scoped``): every session it
    opens sees only what the actor may see, so loaders are keyed by function *and* scope."""

    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        actor: Actor,
        request: Any = None,
        plugins: Any = None,
        dispatcher: Any = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.actor = actor
        self.request = request
        self.plugins = plugins  # the PluginManager (crm_graph.plugins), or None
        self.dispatcher = dispatcher  # the Dispatcher running in this process, or None
        self._loaders: dict[Hashable, DataLoader[Any, Any]] = {}
        self.scope: Any = getattr(db, "scope", None)  # the access scope every session carries
        self.base_db: Any = getattr(db, "base", db)  # the unscoped database (system work only)
        self.auth_failure: str | None = None  # why the request's credentials were refused
        # Called as ``await on_denied(info, code, reason)`` when a field refuses the actor
        # (the audit log records it).
        self.on_denied: Callable[..., Awaitable[None]] | None = None
        # The HTTP sub-response (headers and status set during the request), or None.
        self.response: Any = None

    def loader(self, key: Hashable, batch: BatchFn, default: Callable[[], Any] = lambda: None) -> DataLoader[Any, Any]:
        """A DataLoader that calls ``batch(session, keys) -> {key: value}`` in a short read session.

        Each batch opens its own session, so concurrent resolvers never share one.
        """
        found = self._loaders.get(key)
        if found is None:

            name = getattr(batch, "__qualname__", "batch")

            async def load(keys: list[Any]) -> list[Any]:
                with tracing.span(f"load {name}", **{"crm.keys": len(keys)}):  # a span per batch, not per field
                    async with self.db.reader() as session:
                        values = await batch(session, keys)
                return [values[k] if k in values else default() for k in keys]

            found = DataLoader(load_fn=load)
            self._loaders[key] = found
        return found


def context(info: Info) -> Context:
    return info.context
