"""This repository's convention for plugin suites, shared by the bundled plugins' conftests:
the suite runs once per database, and ``--db postgresql`` means a throwaway PostgreSQL server
the run starts itself (``--crm-database-url`` still wins). A plugin's conftest imports both::

    from crm_graph.testing.backends import crm_database_server_url, pytest_addoption  # noqa: F401
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
