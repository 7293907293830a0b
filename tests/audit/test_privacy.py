"""Privacy requests as a data protection officer sees them: an export holds everything kept on the
customer, an erasure removes the person and keeps the books, and both are permissioned and audited."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm_graph import hookimpl
from crm_graph.activities.models import Activity
from crm_graph.core import ids
from crm_graph.core.events import OutboxEvent
from crm_graph.customers.models import Customer, CustomerAddress, CustomerEmail, CustomerPhone, CustomerTag
from crm_graph.sales.models import Order, OrderLineItem, Payment
from crm_graph.support.models import Ticket, TicketComment, TicketRating
from crm_graph.testing.auth import share
from tests.audit.conftest import audit_rows

ERRORS = "errors { field code message }"
CREATE_CUSTOMER = f"mutation($input: CreateCustomerInput!) {{ createCustomer(input: $input) {{ customer {{ id }} {ERRORS} }} }}"
LOG_ACTIVITY = f"mutation($input: LogActivityInput!) {{ logActivity(input: $input) {{ activity {{ id }} {ERRORS} }} }}"
CREATE_ORDER = f"mutation($input: CreateOrderInput!) {{ createOrder(input: $input) {{ order {{ id total {{ amount }} }} {ERRORS} }} }}"
PAY = f"mutation($input: RecordPaymentInput!) {{ recordPayment(input: $input) {{ {ERRORS} }} }}"
CREATE_TICKET = f"mutation($input: CreateTicketInput!) {{ createTicket(input: $input) {{ ticket {{ id }} {ERRORS} }} }}"
REPLY = f"mutation($id: ID!, $input: ReplyToTicketInput!) {{ replyToTicket(id: $id, input: $input) {{ {ERRORS} }} }}"
RESOLVE = f"mutation($id: ID!) {{ changeTicketStatus(id: $id, status: RESOLVED) {{ {ERRORS} }} }}"
RATE = f"mutation($id: ID!, $input: RateTicketInput!) {{ rateTicket(id: $id, input: $input) {{ {ERRORS} }} }}"
EXPORT = f"mutation($id: ID!) {{ exportCustomerData(id: $id) {{ data {ERRORS} }} }}"
ERASE = f"mutation($id: ID!) {{ eraseCustomer(id: $id) {{ customer {{ id displayName deletedAt }} {ERRORS} }} }}"
RESTORE = f"mutation($id: ID!) {{ restoreCustomer(id: $id) {{ customer {{ id }} {ERRORS} }} }}"

EMAIL = "ada.lovelace@example.org"


class LoyaltyCards:
    """A plugin that keeps a loyalty card per customer (in memory, standing in for its own table)."""

    name = "loyalty_cards"

    def __init__(self) -> None:
        self.cards: dict[int, str] = {}
        self.erased: list[tuple[int, list[str]]] = []

    @hookimpl
    def crm_export_customer_data(self, customer_id: int) -> dict[str, Any] | None:
        card = self.cards.get(customer_id)
        return {"card": card} if card else None

    @hookimpl
    async def crm_erase_customer_data(self, customer_id: int, entity_ids: list[str]) -> None:
        self.cards.pop(customer_id, None)
        self.erased.append((customer_id, entity_ids))


class BrokenEraser:
    name = "broken_eraser"

    @hookimpl
    def crm_erase_customer_data(self, customer_id: int) -> None:
        raise RuntimeError("the partner system is down")


async def a_customer_with_history(client: Any) -> dict[str, str]:
    """Ada, with contact points, a note, a paid order and a rated ticket with a comment."""
    customer = (await client.mutate(CREATE_CUSTOMER, {"input": {
        "kind": "PERSON", "firstName": "Ada", "lastName": "Lovelace", "jobTitle": "Analyst", "birthday": "1985-12-10",
        "emails": [{"address": EMAIL}], "phones": [{"number": "+44 20 7946 0958"}],
        "addresses": [{"line1": "12 St James's Square", "city": "London", "country": "GB"}], "tags": ["vip"],
    }}))["customer"]["id"]
    await client.mutate(LOG_ACTIVITY, {"input": {"customerId": customer, "type": "NOTE", "subject": "Call about the engine",
                                                 "body": "Ada prefers calls after 5pm"}})
    order = (await client.mutate(CREATE_ORDER, {"input": {"customerId": customer, "lineItems": [
        {"description": "Difference engine", "quantity": "2", "unitPrice": {"amount": "150.00", "currency": "EUR"}}]}}))["order"]
    await client.mutate(PAY, {"input": {"orderId": order["id"], "amount": {"amount": "100.00", "currency": "EUR"}}})
    ticket = (await client.mutate(CREATE_TICKET, {"input": {"customerId": customer, "subject": "Engine jams", "channel": "EMAIL",
                                                            "description": "My engine jams at 42"}}))["ticket"]["id"]
    await client.mutate(REPLY, {"id": ticket, "input": {"body": "It still jams, Ada", "from": "CUSTOMER"}})
    await client.mutate(RESOLVE, {"id": ticket})
    await client.mutate(RATE, {"id": ticket, "input": {"rating": 4, "comment": "Quick, thanks"}})
    return {"customer": customer, "order": order["id"], "ticket": ticket}


async def test_export_holds_everything_kept_on_the_customer_and_the_plugins_data(api, key, db):
    cards = LoyaltyCards()
    admin = await api(await key("ADMIN"), cards)
    ada = await a_customer_with_history(admin)
    cards.cards[ids.decode(ada["customer"])[1]] = "LC-0042"

    payload = (await admin.mutate(EXPORT, {"id": ada["customer"]}))["data"]
    customer = payload["customer"]
    assert customer["id"] == ada["customer"] and customer["lastName"] == "Lovelace" and customer["birthday"] == "1985-12-10"
    assert [e["address"] for e in customer["emails"]] == [EMAIL]
    assert [p["number"] for p in customer["phones"]] == ["+442079460958"]
    assert customer["addresses"][0]["line1"] == "12 St James's Square" and customer["tags"] == ["vip"]
    assert customer["consentStatus"] == "UNKNOWN"
    notes = [a for a in payload["activities"] if a["type"] == "NOTE"]  # the desk logs TICKET ones too
    assert [(a["subject"], a["body"]) for a in notes] == [("Call about the engine", "Ada prefers calls after 5pm")]
    (order,) = payload["orders"]
    assert order["id"] == ada["order"] and Decimal(order["total"]) == Decimal("300")
    assert order["lineItems"][0]["description"] == "Difference engine"
    assert [Decimal(p["amount"]) for p in order["payments"]] == [Decimal("100")]
    (ticket,) = payload["tickets"]
    assert ticket["id"] == ada["ticket"] and ticket["description"] == "My engine jams at 42"
    assert [c["body"] for c in ticket["comments"]] == ["It still jams, Ada"]
    assert [r["comment"] for r in ticket["ratings"]] == ["Quick, thanks"]
    assert payload["plugins"] == {"loyalty_cards": {"card": "LC-0042"}}
    assert payload["complete"] is True

    (row,) = [r for r in await audit_rows(db) if r.operation == "exportCustomerData"]
    assert (row.action, row.object, row.outcome.name, row.entity_ids) == ("export", "customers", "OK", [ada["customer"]])


async def test_marketing_may_export_what_it_sees_and_is_told_the_export_is_partial(api, key, db):
    admin = await api(await key("ADMIN"))
    ada = await a_customer_with_history(admin)
    marketing = await api(await key("MARKETING"))
    payload = (await marketing.mutate(EXPORT, {"id": ada["customer"]}))["data"]
    assert [e["address"] for e in payload["customer"]["emails"]] == [EMAIL]
    # Orders are shared by team (TEAM): the administrator's order is not Marketing's to see.
    assert payload["orders"] == [] and payload["complete"] is False

    sales = await api(await key("SALES"))
    body = await sales.post(EXPORT, {"id": ada["customer"]})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"  # SALES lacks customers:export


async def test_erasure_removes_the_person_keeps_the_books_raises_an_event_and_is_audited(api, key, db):
    cards = LoyaltyCards()
    admin = await api(await key("ADMIN"), cards)
    ada = await a_customer_with_history(admin)
    cid = ids.decode(ada["customer"])[1]
    cards.cards[cid] = "LC-0042"
    async with db.reader() as session:
        totals_before = (await session.execute(sa.select(Order.total, Order.paid_amount))).all()

    erased = (await admin.mutate(ERASE, {"id": ada["customer"]}))["customer"]
    assert erased["displayName"] == "Erased customer" and erased["deletedAt"] is not None

    async with db.reader() as session:
        customer = await session.get(Customer, cid)
        assert (customer.first_name, customer.last_name, customer.job_title, customer.birthday) == (None, None, None, None)
        assert customer.erased_at is not None and customer.deleted_at is not None
        for model in (CustomerEmail, CustomerPhone, CustomerAddress, CustomerTag):
            assert await session.scalar(sa.select(sa.func.count()).select_from(model).where(model.customer_id == cid)) == 0
        assert (await session.execute(sa.select(Order.total, Order.paid_amount))).all() == totals_before
        assert await session.scalar(sa.select(OrderLineItem.description)) == "Difference engine"
        assert await session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 1
        activities = (await session.execute(sa.select(Activity.subject, Activity.body))).all()
        assert len(activities) >= 2 and set(activities) == {("[erased]", None)}
        ticket = await session.scalar(sa.select(Ticket))
        assert (ticket.subject, ticket.description, ticket.rating) == ("[erased]", None, 4)
        comment = await session.scalar(sa.select(TicketComment))
        assert (comment.body, comment.author) == ("[erased]", "Erased customer")
        assert await session.scalar(sa.select(TicketRating.comment)) is None
        events = list(await session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.id)))
    assert events[-1].type == "customer.erased" and events[-1].entity_id == str(cid)
    everything_sent = repr([e.payload for e in events])
    for personal in (EMAIL, "Lovelace", "Ada prefers", "jams at 42", "Quick, thanks"):
        assert personal not in everything_sent  # events raised earlier no longer carry it either

    assert cards.cards == {}
    ((erased_id, entity_ids),) = cards.erased
    assert erased_id == cid and {ada["customer"], ada["order"], ada["ticket"]} <= set(entity_ids)
    (row,) = [r for r in await audit_rows(db) if r.operation == "eraseCustomer"]
    assert (row.action, row.object, row.outcome.name, row.entity_ids) == ("delete", "customers", "OK", [ada["customer"]])

    # Gone for good: it cannot be restored, and erasing it again changes nothing.
    restored = (await admin.execute(RESTORE, {"id": ada["customer"]}))["restoreCustomer"]
    assert [e["code"] for e in restored["errors"]] == ["INVALID_STATE"]
    await admin.mutate(ERASE, {"id": ada["customer"]})
    async with db.reader() as session:
        erasures = await session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "customer.erased"))
    assert erasures == 1


async def test_erasure_needs_customers_delete(api, key, db):
    admin = await api(await key("ADMIN"))
    ada = await a_customer_with_history(admin)
    sales = await api(await key("SALES"))
    body = await sales.post(ERASE, {"id": ada["customer"]})
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    async with db.reader() as session:
        assert await session.scalar(sa.select(CustomerEmail.address)) == EMAIL
    denied = [r for r in await audit_rows(db) if r.operation == "eraseCustomer"]
    assert [(r.outcome.name, r.role, r.entity_ids) for r in denied] == [("DENIED", "SALES", [ada["customer"]])]


async def test_a_customer_the_actor_cannot_see_is_not_found(api, key, db):
    admin = await api(await key("ADMIN"))
    ada = await a_customer_with_history(admin)
    await share(db, "PRIVATE", "customers")
    manager = await api(await key("MANAGER", team="North"))  # may erase and export, but not the admin's customers
    for document, name in ((ERASE, "eraseCustomer"), (EXPORT, "exportCustomerData")):
        result = (await manager.execute(document, {"id": ada["customer"]}))[name]
        assert [e["code"] for e in result["errors"]] == ["NOT_FOUND"]
    async with db.reader() as session:
        assert await session.scalar(sa.select(CustomerEmail.address)) == EMAIL


async def test_a_plugin_that_cannot_erase_stops_the_erasure(api, key, db):
    admin = await api(await key("ADMIN"), BrokenEraser())
    ada = await a_customer_with_history(admin)
    result = (await admin.execute(ERASE, {"id": ada["customer"]}))["eraseCustomer"]
    assert result["customer"] is None
    (error,) = result["errors"]
    assert error["code"] == "PLUGIN_FAILED" and "broken_eraser" in error["message"]
    async with db.reader() as session:
        assert await session.scalar(sa.select(CustomerEmail.address)) == EMAIL
        assert (await session.scalar(sa.select(Customer.erased_at))) is None
        assert await session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "customer.erased")) == 0
    (row,) = [r for r in await audit_rows(db) if r.operation == "eraseCustomer"]
    assert (row.outcome.name, row.error_codes) == ("USER_ERROR", ["PLUGIN_FAILED"])


CREATE_PIPELINE = f"mutation($input: CreatePipelineInput!) {{ createPipeline(input: $input) {{ pipeline {{ id }} {ERRORS} }} }}"
CREATE_OPPORTUNITY = f"mutation($input: CreateOpportunityInput!) {{ createOpportunity(input: $input) {{ opportunity {{ id }} {ERRORS} }} }}"


async def test_erasure_reaches_the_customers_records_the_eraser_cannot_see(api, key, db):
    from crm_graph.sales.models import Opportunity

    sales = await api(await key("SALES", email="sam@example.com", team="North"))
    ada = (await sales.mutate(CREATE_CUSTOMER, {"input": {"kind": "PERSON", "lastName": "Lovelace"}}))["customer"]["id"]
    admin = await api(await key("ADMIN"))
    await admin.mutate(CREATE_PIPELINE, {"input": {"name": "Deals", "isDefault": True, "stages": [
        {"name": "Talk", "probability": 20}, {"name": "Won", "kind": "WON"}, {"name": "Lost", "kind": "LOST"}]}})
    await admin.mutate(CREATE_OPPORTUNITY, {"input": {"title": "Ada's private engine deal", "customerId": ada,
                                                      "amount": {"amount": "900.00", "currency": "EUR"}}})
    manager = await api(await key("MANAGER", email="mia@example.com", team="North"))
    export = (await manager.mutate(EXPORT, {"id": ada}))["data"]
    assert export["opportunities"] == [] and export["complete"] is False  # the admin's deal is not the team's

    await manager.mutate(ERASE, {"id": ada})  # the manager may change the team's customer ...
    async with db.reader() as session:
        assert await session.scalar(sa.select(Opportunity.title)) == "[erased]"  # ... and erasing it reaches every record
        assert await session.scalar(sa.select(Opportunity.amount)) == Decimal("900")
