"""This repository's convention for plugin suites, shared by the bundled plugins' conftests:
the suite runs once per database, and ``--db postgresql`` means a throwaway PostgreSQL server
the run starts itself (``--crm-database-url`` still wins). A plugin's conftest imports both::

    from crm_graph.testing.backends import crm_database_server_url, pytest_addoption, pytest_collection_modifyitems  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crm_graph.testing.postgres import TemporaryPostgres


def pytest_addoption(parser: pytest.Parser) -> None:
    try:
        parser.addoption("--db", choices=["sqlite", "postgresql"], default="sqlite", help="database to test on")
    except ValueError:
        pass  # crm-graph's own conftest defined it already (several suites in one run)
    try:
        parser.addoption("--one-pass-postgresql", action="append", default=[], metavar="PATH",
                         help="one_pass tests under PATH run in the --db postgresql pass instead of the sqlite one "
                              "(`make test` balances its two side-by-side passes this way)")
    except ValueError:
        pass


@pytest.fixture(scope="session")
def crm_database_server_url(request: pytest.FixtureRequest, crm_database_server_url: str | None) -> Iterator[str | None]:
    """A server given with --crm-database-url wins; else --db postgresql starts one."""
    if crm_database_server_url or request.config.getoption("--db") != "postgresql":
        yield crm_database_server_url
        return
    server = TemporaryPostgres().start()
    try:
        yield server.url()
    finally:
        server.stop()


ONE_PASS = "one_pass"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{ONE_PASS}: a test whose subject is not the CRM's database (a template "
                            "engine, a converter, an accounting program, the network): runs in the --db sqlite pass only")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests whose subject is not the database run once per ``make test``, not once per database:
    in the sqlite pass, or in the postgresql one for those under a ``--one-pass-postgresql`` path."""
    moved = tuple(str(p).rstrip("/") + "/" for p in config.getoption("--one-pass-postgresql", default=[]) or [])
    on_postgresql = config.getoption("--db", default="sqlite") == "postgresql"

    def runs_elsewhere(item: pytest.Item) -> bool:
        if item.get_closest_marker(ONE_PASS) is None:
            return False
        here = item.nodeid.startswith(moved) if moved else False
        return not here if on_postgresql else here

    dropped = [item for item in items if runs_elsewhere(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not runs_elsewhere(item)]
