"""crm_validate: plugins veto writes with UserErrors; a broken validator never blocks the CRM."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa

from crm_graph import hookimpl
from crm_graph.core.errors import FieldError, ValidationFailed
from tests.plugins.support import CREATE_CUSTOMER, outbox


class NoDisposableAddresses:
    """Rejects customers with a throwaway email address, and says which field is at fault."""

    name = "no_disposable_addresses"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    @hookimpl
    def crm_validate(self, entity, data, actor):  # noqa: ANN001, ANN201
        self.seen.append((entity, actor.label))
        if entity != "customer":
            return None
        return [
            FieldError(f"emails.{i}.address", "DISPOSABLE_ADDRESS", "Throwaway addresses are not accepted.")
            for i, email in enumerate(data.get("emails") or [])
            if email["address"].endswith("@mailinator.com")
        ]


class UniqueSurname:
    """An async validator that reads through the write transaction and raises ValidationFailed."""

    name = "unique_surname"

    @hookimpl
    async def crm_validate(self, entity, data, session) -> None:  # noqa: ANN001
        if entity != "customer" or not data.get("lastName"):
            return
        from crm_graph.customers.models import Customer

        taken = await session.scalar(sa.select(sa.func.count()).where(Customer.last_name == data["lastName"]))
        if taken:
            raise ValidationFailed([FieldError("lastName", "SURNAME_TAKEN", "Someone has this surname already.")])


async def test_hook_crm_validate_rejects_writes_with_user_errors(server_factory, db):
    domains = NoDisposableAddresses()
    server = await server_factory(domains, UniqueSurname())
    body = await server.client.execute(
        CREATE_CUSTOMER,
        {"input": {"kind": "PERSON", "lastName": "Lovelace",
                   "emails": [{"address": "ada@example.com"}, {"address": "ada@mailinator.com"}]}},
    )
    assert body["createCustomer"] == {
        "customer": None,
        "errors": [{"field": "emails.1.address", "code": "DISPOSABLE_ADDRESS", "message": "Throwaway addresses are not accepted."}],
    }
    assert await outbox(db) == []  # nothing was written, so nothing happened

    ok = await server.client.mutate(CREATE_CUSTOMER, {"input": {"kind": "PERSON", "lastName": "Lovelace"}})
    assert ok["customer"]["displayName"] == "Lovelace"
    assert ("customer", server.actor) in domains.seen

    again = await server.client.execute(CREATE_CUSTOMER, {"input": {"kind": "PERSON", "lastName": "Lovelace"}})
    assert again["createCustomer"]["errors"] == [
        {"field": "lastName", "code": "SURNAME_TAKEN", "message": "Someone has this surname already."}
    ]


class Crashing:
    name = "crashing_validator"

    @hookimpl
    def crm_validate(self, entity, data):  # noqa: ANN001, ANN201
        raise KeyError("a bug in the plugin")


class Hanging:
    name = "hanging_validator"

    @hookimpl
    async def crm_validate(self, entity) -> None:  # noqa: ANN001
        await asyncio.sleep(60)


class Garbage:
    name = "garbage_validator"

    @hookimpl
    def crm_validate(self, entity):  # noqa: ANN001, ANN201
        return "looks fine to me"


async def test_a_validator_that_crashes_hangs_or_answers_garbage_does_not_block_the_write(server_factory, db, caplog):
    caplog.set_level(logging.ERROR, logger="crm_graph.plugins")
    server = await server_factory(Crashing(), Hanging(), Garbage())
    created = await server.client.mutate(CREATE_CUSTOMER, {"input": {"kind": "PERSON", "lastName": "Hopper"}})
    assert created["customer"]["displayName"] == "Hopper"
    assert [e.type for e in await outbox(db)] == ["customer.created"]  # the write and its event committed
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "plugin crashing_validator: crm_validate failed: KeyError" in logged
    assert "plugin hanging_validator: crm_validate failed: did not finish within 0.5 s" in logged
    assert "plugin garbage_validator: crm_validate failed: returned str" in logged
