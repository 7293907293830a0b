"""Inputs answered with words a client can act on: a timestamp without a UTC offset is refused
saying so (not with the server's internal rendering of the value), wherever a filter takes one."""

from __future__ import annotations

import pytest

TICKETS = "query($d: DateTime!) { tickets(first: 1, filter: {createdAt: {gte: $d}}) { totalCount } }"
CUSTOMERS = "query($d: DateTime!) { customers(first: 1, filter: {createdAt: {lt: $d}}) { totalCount } }"


@pytest.mark.parametrize("query", [TICKETS, CUSTOMERS])
async def test_a_timestamp_without_an_offset_is_refused_with_a_clear_message(client, query):
    refused = await client.post(query, {"d": "2026-12-01T10:00:00"})
    (error,) = refused["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "time zone" in error["message"] and "datetime.datetime" not in error["message"]
    accepted = await client.post(query, {"d": "2026-12-01T10:00:00+02:00"})
    assert "errors" not in accepted
