"""crm_export_customer_data and crm_erase_customer_data: plugins answer privacy requests for the
data they keep, inside the request's transaction."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from crm_graph import hookimpl
from crm_graph.core import ids
from crm_graph.customers.models import CustomerEmail
from tests.plugins.support import create_customer

EXPORT = "mutation($id: ID!) { exportCustomerData(id: $id) { data errors { code message } } }"
ERASE = "mutation($id: ID!) { eraseCustomer(id: $id) { customer { id displayName } errors { code message } } }"
TICKET = """
mutation($c: ID!) { createTicket(input: {customerId: $c, subject: "Printer", channel: PHONE}) { ticket { id } errors { code } } }
"""


class Newsletter:
    """Keeps a newsletter subscription per customer (in memory, standing in for a table)."""

    name = "newsletter"

    def __init__(self) -> None:
        self.subscribers: dict[int, dict[str, Any]] = {}
        self.asked: list[tuple[int, list[str]]] = []

    @hookimpl
    async def crm_export_customer_data(self, customer_id: int, session: Any, entity_ids: list[str]) -> dict[str, Any] | None:
        assert (await session.execute(sa.text("SELECT 1"))).scalar() == 1  # the request's transaction, for reads
        self.asked.append((customer_id, entity_ids))
        return self.subscribers.get(customer_id)

    @hookimpl
    def crm_erase_customer_data(self, customer_id: int, entity_ids: list[str]) -> None:
        self.subscribers.pop(customer_id, None)
        self.asked.append((customer_id, entity_ids))


class Garbage:
    name = "garbage"

    @hookimpl
    def crm_export_customer_data(self) -> Any:
        return ["not", "a", "dict"]


class Broken:
    name = "broken"

    @hookimpl
    async def crm_erase_customer_data(self, session: Any) -> None:
        from crm_graph.customers.models import CustomerTag

        await session.execute(sa.delete(CustomerTag))  # work done before the failure is rolled back too
        raise RuntimeError("cannot reach the newsletter service")


async def test_hook_crm_export_customer_data_adds_the_plugins_data_under_its_name(server_factory):
    newsletter = Newsletter()
    server = await server_factory(newsletter)
    ada = await create_customer(server.client, lastName="Lovelace")
    ticket = (await server.client.mutate(TICKET, {"c": ada["id"]}))["ticket"]["id"]
    pk = ids.decode(ada["id"])[1]
    newsletter.subscribers[pk] = {"list": "engines", "since": "2026-01-05"}

    data = (await server.client.mutate(EXPORT, {"id": ada["id"]}))["data"]
    assert data["plugins"] == {"newsletter": {"list": "engines", "since": "2026-01-05"}}
    ((customer_id, entity_ids),) = newsletter.asked
    assert customer_id == pk and ada["id"] in entity_ids and ticket in entity_ids

    newsletter.subscribers.clear()  # nothing kept: nothing under its name
    assert (await server.client.mutate(EXPORT, {"id": ada["id"]}))["data"]["plugins"] == {}


async def test_an_export_fails_rather_than_miss_a_plugins_data(server_factory):
    server = await server_factory(Garbage())
    ada = await create_customer(server.client, lastName="Lovelace")
    result = (await server.client.execute(EXPORT, {"id": ada["id"]}))["exportCustomerData"]
    assert result["data"] is None
    (error,) = result["errors"]
    assert error["code"] == "PLUGIN_FAILED" and "'garbage'" in error["message"]


@pytest.mark.parametrize("plugins", ["working", "broken"])
async def test_hook_crm_erase_customer_data_runs_in_the_erasure_transaction(server_factory, db, plugins):
    newsletter = Newsletter()
    server = await server_factory(newsletter, *([Broken()] if plugins == "broken" else []))
    ada = await create_customer(server.client, lastName="Lovelace", emails=[{"address": "ada@example.org"}], tags=["vip"])
    pk = ids.decode(ada["id"])[1]
    newsletter.subscribers[pk] = {"list": "engines"}

    result = (await server.client.execute(ERASE, {"id": ada["id"]}))["eraseCustomer"]
    async with db.reader() as session:
        emails = list(await session.scalars(sa.select(CustomerEmail.address)))
        tags = list(await session.execute(sa.text("SELECT tag FROM customer_tags")))
    if plugins == "working":
        assert result["errors"] == [] and result["customer"]["displayName"] == "Erased customer"
        assert newsletter.subscribers == {} and newsletter.asked[0][0] == pk
        assert emails == [] and tags == []
    else:  # one plugin failed: nothing at all is erased, and the client is told which plugin
        assert [e["code"] for e in result["errors"]] == ["PLUGIN_FAILED"] and "'broken'" in result["errors"][0]["message"]
        assert emails == ["ada@example.org"] and len(tags) == 1
