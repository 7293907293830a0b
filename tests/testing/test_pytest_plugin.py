"""The pytest plugin crm-graph ships for plugin authors, used the way a partner's project uses it:
a project of its own (a test-only plugin, fixtures of its own, default pytest-asyncio loop scopes)
run by pytest in a separate process, which finds the fixtures through the ``pytest11`` entry point.

On ``--db postgresql`` the project gets ``--crm-database-url`` with this run's PostgreSQL server,
as a partner's CI would pass its own.
"""

from __future__ import annotations

from crm_graph.testing.postgres import TemporaryPostgres

pytest_plugins = ["pytester"]

PYPROJECT = """
[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
asyncio_default_test_loop_scope = "function"
addopts = "-p no:cacheprovider"
"""

CONFTEST = '''
import pytest

from crm_graph import hookimpl
from crm_graph.plugins import make_plugin_manager


class Recorder:
    """The partner's plugin: it keeps what crm_on_event receives, or fails when told to."""

    name = "recorder"

    def __init__(self):
        self.started = False
        self.received = []
        self.failure = None

    @hookimpl
    def crm_startup(self, app):
        self.started = True

    @hookimpl
    async def crm_on_event(self, event):
        if self.failure:
            raise RuntimeError(self.failure)
        self.received.append(event.type)


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def crm_plugins(crm_settings, recorder):
    return make_plugin_manager(crm_settings, plugins=[recorder])


@pytest.fixture
def client():
    return "the project's own client fixture"
'''

TESTS = '''
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

CREATE = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) { customer { id } errors { field code } }
}
"""
COUNT = "{ customers { totalCount } }"


async def test_writes_are_events_that_reach_plugins_when_delivered(crm_client, crm_events, recorder, crm_clock):
    assert recorder.started
    await crm_client.mutate(CREATE, {"input": {"kind": "PERSON", "lastName": "Lovelace"}})
    assert await crm_events.types() == ["customer.created"]
    assert recorder.received == []  # nothing is delivered behind the test's back
    totals = await crm_events.deliver()
    assert recorder.received == ["customer.created"] and totals.delivered >= 1
    (event,) = await crm_events.all("customer.*")
    assert event.occurred_at == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert await crm_events.all("ticket.*") == []


async def test_a_refused_write_leaves_no_event(crm_client, crm_events):
    payload = (await crm_client.execute(CREATE, {"input": {"kind": "PERSON", "emails": [{"address": "no"}]}}))["createCustomer"]
    assert payload["customer"] is None and payload["errors"]
    assert await crm_events.all() == []


async def test_a_failing_plugin_fails_the_delivery_with_its_error(crm_client, crm_events, recorder):
    recorder.failure = "the partner system is down"
    await crm_client.mutate(CREATE, {"input": {"kind": "PERSON", "lastName": "Hopper"}})
    with pytest.raises(AssertionError, match="plugin 'recorder' failed event customer.created .*the partner system is down"):
        await crm_events.deliver()
    totals = await crm_events.deliver(check=False)  # the retry is not due yet
    assert totals.delivered == 0 and recorder.received == []


async def test_clients_of_other_roles(crm_client_for, crm_make_key):
    support = await crm_client_for("SUPPORT")
    refused = await support.post(CREATE, {"input": {"kind": "PERSON", "lastName": "Curie"}})
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"]
    reader = await crm_client_for(token=await crm_make_key(role="READ_ONLY", email="reader@example.com"))
    assert await reader.execute(COUNT) == {"customers": {"totalCount": 0}}
    anonymous = await crm_client_for(None)
    body = await anonymous.post(COUNT)
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_the_database_is_migrated_with_the_installed_plugins(request, crm_db):
    asked = "postgresql" if request.config.getoption("crm_database_url") else "sqlite"
    assert crm_db.dialect == asked
    async with crm_db.reader() as session:  # crm_audit is installed beside crm-graph here
        assert await session.scalar(sa.text("SELECT count(*) FROM crm_audit_entries")) == 0


def test_the_projects_own_fixtures_keep_their_names(client):
    assert client == "the project's own client fixture"
'''


def _project(pytester) -> None:
    pytester.makepyprojecttoml(PYPROJECT)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_partner=TESTS)


def test_a_plugin_project_tests_with_the_crm_fixtures(pytester, postgres: TemporaryPostgres | None):
    _project(pytester)
    args = ["--crm-database-url", postgres.url()] if postgres is not None else []
    result = pytester.runpytest_subprocess(*args, "-q")
    result.assert_outcomes(passed=6)


def test_a_database_url_that_is_not_postgresql_is_a_usage_error(pytester):
    _project(pytester)
    result = pytester.runpytest_subprocess("--crm-database-url", "mysql://user:secret@127.0.0.1/crm")
    assert result.ret == 4  # pytest's usage error: nothing ran
    result.stderr.fnmatch_lines(["*--crm-database-url*must be a PostgreSQL URL such as postgresql://*, not mysql://user:***@127.0.0.1/crm"])
