"""Start-up and shutdown hooks run in the app's lifespan; a failing one does not stop the server."""

from __future__ import annotations

import logging

from crm_graph import hookimpl


class Lifecycle:
    name = "lifecycle"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @hookimpl
    async def crm_startup(self, app) -> None:  # noqa: ANN001
        self.calls.append(("startup", app.state.db.dialect))

    @hookimpl
    def crm_shutdown(self, app) -> None:  # noqa: ANN001
        self.calls.append(("shutdown", app.state.db.dialect))


class BrokenStartup:
    name = "broken_startup"

    @hookimpl
    def crm_startup(self, app) -> None:  # noqa: ANN001
        raise RuntimeError("cannot reach the partner's API")


async def test_hook_crm_startup_and_crm_shutdown_run_around_the_server(settings, db, backend, caplog):
    import contextlib

    import httpx

    from crm_graph.app import create_app
    from crm_graph.plugins import make_plugin_manager
    from crm_graph.testing.auth import bearer, make_key
    from tests.conftest import GraphQLClient

    plugin = Lifecycle()
    pm = make_plugin_manager(settings, plugins=[BrokenStartup(), plugin], entry_points=False)
    app = create_app(settings, db=db, plugins=pm, dispatcher=False)
    token, _ = await make_key(db, settings)
    caplog.set_level(logging.ERROR, logger="crm_graph.plugins")
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        assert plugin.calls == [("startup", backend)]
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost", headers=bearer(token))
        )
        # The plugin that failed to start is logged by name, and the server serves anyway.
        assert await GraphQLClient(http).execute("{ customers { totalCount } }") == {"customers": {"totalCount": 0}}
    assert plugin.calls == [("startup", backend), ("shutdown", backend)]
    assert any(
        "plugin broken_startup: crm_startup failed" in r.getMessage() and "partner's API" in r.getMessage()
        for r in caplog.records
    )
