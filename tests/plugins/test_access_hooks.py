"""The access hooks: who is asking (crm_actor_from_request), what they may see (crm_scope_sql),
and whether a mutation may run (crm_authorize). The last two fail closed."""

from __future__ import annotations

import logging
from typing import Any

from crm_graph import hookimpl
from crm_graph.auth.authenticate import InvalidCredentials
from crm_graph.core.actor import SYSTEM, Actor
from crm_graph.customers import service as customers
from crm_graph.customers.models import Customer
from crm_graph.db.session import Database
from crm_graph.graphql.relay import encode_global_id
from tests.plugins.support import CREATE_CUSTOMER

COUNT = "{ customers { totalCount } }"
ONE = "query($id: ID!) { customer(id: $id) { displayName } node(id: $id) { id } }"
DELETE = "mutation($id: ID!) { deleteCustomer(id: $id) { customer { id deletedAt } errors { code } } }"


async def _post(server: Any, query: str, variables: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
    response = await server.client.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def _customers(db: Database, *countries: str) -> list[str]:
    """Customers written by the system (no scope), one per country; returns their GraphQL IDs."""
    ids = []
    async with db.writer() as session, session.begin():
        for country in countries:
            customer = await customers.create_customer(
                session, actor=SYSTEM, data={"kind": "PERSON", "lastName": f"From {country}", "country": country},
                config=customers.ServiceConfig(),
            )
            ids.append(encode_global_id("Customer", customer.id))
    return ids


# --- crm_actor_from_request -------------------------------------------------------------------


class PartnerSignOn:
    """Single sign-on in front of the built-in bearer tokens: the partner's header wins."""

    name = "partner_sign_on"

    @hookimpl
    def crm_actor_from_request(self, request):  # noqa: ANN001, ANN201
        token = request.headers.get("x-partner-sso")
        if token is None:
            return None  # not ours: the built-in authentication is asked next
        if token != "valid":
            raise InvalidCredentials("The partner's sign-on token has expired.")
        return Actor("user", id="sso-7", name="reader@partner.example", role="READ_ONLY",
                     permissions=frozenset({"customers:read"}))


async def test_hook_crm_actor_from_request_signs_in_before_the_built_in_tokens(server_factory):
    server = await server_factory(PartnerSignOn())
    # Without the partner's header the built-in bearer token (the administrator's key) decides.
    assert (await server.client.mutate(CREATE_CUSTOMER, {"input": {"kind": "PERSON", "lastName": "Hopper"}}))["customer"]

    reader = await _post(server, COUNT, **{"X-Partner-SSO": "valid"})
    assert reader["data"] == {"customers": {"totalCount": 1}}
    refused = await _post(server, CREATE_CUSTOMER, {"input": {"kind": "PERSON", "lastName": "X"}}, **{"X-Partner-SSO": "valid"})
    assert _codes(refused) == ["FORBIDDEN"]
    assert "customers:create" in refused["errors"][0]["message"]

    expired = await _post(server, COUNT, **{"X-Partner-SSO": "stale"})
    assert _codes(expired) == ["UNAUTHENTICATED"]
    assert "The partner's sign-on token has expired." in expired["errors"][0]["message"]
    assert (await server.client.execute(COUNT))["customers"]["totalCount"] == 1  # nothing was written


# --- crm_scope_sql ----------------------------------------------------------------------------


class GermanCustomersOnly:
    name = "german_customers_only"

    def __init__(self) -> None:
        self.entities: set[str] = set()

    @hookimpl
    def crm_scope_sql(self, actor, entity):  # noqa: ANN001, ANN201
        self.entities.add(entity)
        return Customer.country == "DE" if entity == "customers" else None


class BrokenScope:
    name = "broken_scope"

    @hookimpl
    def crm_scope_sql(self, entity):  # noqa: ANN001, ANN201
        if entity == "customers":
            raise RuntimeError("a bug in the plugin")
        return None


async def test_hook_crm_scope_sql_narrows_every_statement_even_for_administrators(server_factory, db):
    plugin = GermanCustomersOnly()
    server = await server_factory(plugin)
    german, french = await _customers(db, "DE", "FR")
    assert (await server.client.execute(COUNT))["customers"]["totalCount"] == 1
    listed = await server.client.execute("{ customers { edges { node { id } } } }")
    assert [e["node"]["id"] for e in listed["customers"]["edges"]] == [german]
    assert await server.client.execute(ONE, {"id": french}) == {"customer": None, "node": None}  # hidden = missing
    assert (await server.client.execute(ONE, {"id": german}))["customer"] == {"displayName": "From DE"}
    # Writes are limited to the scope too: the hidden customer cannot be deleted.
    deleted = await server.client.execute(DELETE, {"id": french})
    assert deleted["deleteCustomer"]["customer"] is None and deleted["deleteCustomer"]["errors"]
    assert "customers" in plugin.entities


async def test_a_scope_hook_that_raises_hides_everything_of_the_entity(server_factory, db, caplog):
    caplog.set_level(logging.ERROR, logger="crm_graph.plugins")
    server = await server_factory(BrokenScope())
    await _customers(db, "DE", "FR")
    assert (await server.client.execute(COUNT))["customers"]["totalCount"] == 0
    assert any("plugin broken_scope: crm_scope_sql failed" in r.getMessage() for r in caplog.records)


# --- crm_authorize ----------------------------------------------------------------------------


class FourEyes:
    name = "four_eyes"

    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None, str]] = []

    @hookimpl
    def crm_authorize(self, actor, action, entity, data):  # noqa: ANN001, ANN201
        self.asked.append((action, entity, data["operation"]))
        if (entity, action) == ("customers", "delete"):
            return "Only the data protection officer deletes customers."
        return None


class CrashingAuthorizer:
    name = "crashing_authorizer"

    @hookimpl
    def crm_authorize(self, action):  # noqa: ANN001, ANN201
        if action == "delete":
            raise KeyError("a bug in the plugin")
        return True


async def test_hook_crm_authorize_refuses_mutations_before_they_run(server_factory):
    plugin = FourEyes()
    server = await server_factory(plugin)
    created = await server.client.mutate(CREATE_CUSTOMER, {"input": {"kind": "PERSON", "lastName": "Lovelace"}})
    refused = await _post(server, DELETE, {"id": created["customer"]["id"]})
    assert _codes(refused) == ["FORBIDDEN"]
    assert refused["errors"][0]["message"] == "Only the data protection officer deletes customers."
    assert (await server.client.execute(ONE, {"id": created["customer"]["id"]}))["customer"] == {"displayName": "Lovelace"}
    await server.client.execute(COUNT)  # queries are not asked
    assert plugin.asked == [("create", "customers", "createCustomer"), ("delete", "customers", "deleteCustomer")]


async def test_an_authorizer_that_crashes_refuses(server_factory, caplog):
    caplog.set_level(logging.ERROR, logger="crm_graph.plugins")
    server = await server_factory(CrashingAuthorizer())
    created = await server.client.mutate(CREATE_CUSTOMER, {"input": {"kind": "PERSON", "lastName": "Lovelace"}})
    refused = await _post(server, DELETE, {"id": created["customer"]["id"]})
    assert _codes(refused) == ["FORBIDDEN"]
    assert "access check failed" in refused["errors"][0]["message"]
    assert any("plugin crashing_authorizer: crm_authorize failed" in r.getMessage() for r in caplog.records)
