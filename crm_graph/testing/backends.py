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
    """Tests whose subject is not the database run once per ``make test``, not once per database."""
    if config.getoption("--db", default="sqlite") != "postgresql":
        return
    dropped = [item for item in items if item.get_closest_marker(ONE_PASS) is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.get_closest_marker(ONE_PASS) is None]
