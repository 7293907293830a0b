"""SQLite locked by another program (a `crm-graph` command, a second server process) for longer
than CRM_SQLITE_BUSY_TIMEOUT: the client is told the database is busy and may retry, with a code
it can act on (not an internal error), reads go on meanwhile, and the retry writes once."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest
from sqlalchemy.engine import make_url

from crm_graph.app import create_app
from crm_graph.db.session import Database
from crm_graph.testing.auth import make_key
from crm_graph.testing.client import GraphQLClient, asgi_client

CREATE = 'mutation { createCustomer(input: {kind: PERSON, lastName: "Patient"}) { customer { id } errors { code } } }'
COUNT = "{ customers(first: 1) { totalCount } }"


async def test_a_write_blocked_by_another_program_is_answered_busy_and_a_retry_writes_once(settings, tmp_path):
    if not settings.is_sqlite:
        pytest.skip("PostgreSQL locks rows, not the database file: writers wait for each other's rows")
    settings = replace(settings, sqlite_busy_timeout=0.2)
    db = Database.from_settings(settings)
    try:
        token, _ = await make_key(db, settings, role="ADMIN", email="busy@example.com")
        app = create_app(settings, db=db)
        other = sqlite3.connect(make_url(settings.database_url).database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        try:
            async with asgi_client(app, token) as http:
                client = GraphQLClient(http, app)
                refused = await client.post(CREATE)
                (error,) = refused["errors"]
                assert error["extensions"] == {"code": "DATABASE_BUSY", "retryable": True, "retryAfter": 1,
                                               "requestId": error["extensions"]["requestId"]}
                assert len(error["extensions"]["requestId"]) == 16  # the id its log lines carry
                assert "retry" in error["message"] and "locked" not in error["message"]
                assert (await client.execute(COUNT))["customers"]["totalCount"] == 0  # reads go on
                other.execute("ROLLBACK")  # the other program is done
                retried = await client.mutate(CREATE)
                assert retried["errors"] == [] and retried["customer"]["id"]
                assert (await client.execute(COUNT))["customers"]["totalCount"] == 1
        finally:
            other.close()
    finally:
        await db.dispose()
