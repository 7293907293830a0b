"""The behavioural part of the filter language: age, orders, tickets, timeline, purchases."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from crm_graph.activities import service as activities
from crm_graph.core.actor import SYSTEM
from crm_graph.core.clock import frozen_clock
from crm_graph.core.ids import encode
from crm_graph.sales.models import OrderLineItem, OrderStatus, PaymentStatus, Product, ProductTag
from crm_graph.support.models import Ticket, TicketChannel, TicketPriority, TicketStatus
from tests.segments.factories import NOW, customer, days_ago, order

LIST = "query($f: CustomerFilter) { customers(filter: $f, orderBy: [{field: DISPLAY_NAME}]) { edges { node { displayName } } } }"


async def names(client, filter) -> list[str]:
    with frozen_clock(NOW):
        data = await client.execute(LIST, {"f": filter})
    return [e["node"]["displayName"] for e in data["customers"]["edges"]]


async def test_age_is_compiled_from_the_birthday(client, db):
    async with db.writer() as session, session.begin():
        with frozen_clock(NOW):
            # Today is 2026-06-30.
            await customer(session, lastName="Turns40Today", birthday=date(1986, 6, 30))
            await customer(session, lastName="Turns40Tomorrow", birthday=date(1986, 7, 1))
            await customer(session, lastName="LeapBaby", birthday=date(2004, 2, 29))
            await customer(session, lastName="NoBirthday")
    assert await names(client, {"age": {"gte": 40}}) == ["Turns40Today"]
    assert await names(client, {"age": {"eq": 39}}) == ["Turns40Tomorrow"]
    assert await names(client, {"age": {"lt": 40}}) == ["LeapBaby", "Turns40Tomorrow"]
    assert await names(client, {"age": {"in": [22, 40]}}) == ["LeapBaby", "Turns40Today"]
    assert await names(client, {"age": {"isNull": True}}) == ["NoBirthday"]
    assert await names(client, {"age": {"neq": 40}}) == ["LeapBaby", "NoBirthday", "Turns40Tomorrow"]


async def test_order_behaviour(client, db):
    async with db.writer() as session, session.begin():
        with frozen_clock(NOW):
            loyal = await customer(session, lastName="Loyal")
            lapsed = await customer(session, lastName="Lapsed")
            unpaid = await customer(session, lastName="OnlyUnpaid")
            await customer(session, lastName="Never")
        for days in (5, 40, 90):
            order(session, loyal, "100.00", days_ago(days))
        order(session, loyal, "999.00", days_ago(10), status=OrderStatus.CANCELLED)
        order(session, lapsed, "1500.00", days_ago(500))
        order(session, unpaid, "80.00", days_ago(3), status=OrderStatus.CONFIRMED, payment=PaymentStatus.UNPAID)
    assert await names(client, {"orders": {"count": {"gte": 1}}}) == ["Lapsed", "Loyal"]
    assert await names(client, {"orders": {"count": {"eq": 0}}}) == ["Never", "OnlyUnpaid"]
    assert await names(client, {"orders": {"windowDays": 365, "count": {"gte": 1}}}) == ["Loyal"]
    assert await names(client, {"orders": {"totalSpent": {"gt": "299.99"}}}) == ["Lapsed", "Loyal"]
    assert await names(client, {"orders": {"windowDays": 365, "totalSpent": {"gte": "300"}}}) == ["Loyal"]
    assert await names(client, {"orders": {"averageOrderValue": {"gt": "500"}}}) == ["Lapsed"]
    assert await names(client, {"orders": {"lastOrderAt": {"lt": "2026-01-01T00:00:00Z"}}}) == ["Lapsed"]
    assert await names(client, {"orders": {"currency": "USD", "count": {"gte": 1}}}) == []
    # "Falling off": bought before, nothing in the last 180 days.
    quiet = {"and": [{"orders": {"count": {"gte": 1}}}, {"orders": {"windowDays": 180, "count": {"eq": 0}}}]}
    assert await names(client, quiet) == ["Lapsed"]


async def test_order_amounts_a_column_cannot_hold_are_filter_errors(client):
    """Not an overflow when the value is bound (it was an internal error, "1e400" on both
    databases), in a list and when a segment is saved."""
    create = """mutation($f: CustomerFilter!) { createSegment(input: {kind: DYNAMIC, name: "Big spenders", filter: $f}) {
      segment { id } errors { field code message } } }"""
    for measure in ("totalSpent", "averageOrderValue"):
        for value in ("1e400", "999999999999999", "NaN", "-Infinity"):
            filter = {"orders": {measure: {"lte": value}}}
            body = await client.post(LIST, {"f": filter})
            (error,) = body["errors"]
            if value in ("NaN", "-Infinity"):  # no number: the Decimal scalar refuses it as it is read
                assert error["extensions"]["code"] == "BAD_REQUEST" and "cannot represent a Decimal" in error["message"], body
                assert "errors" in await client.post(create, {"f": filter})
                continue
            assert error["extensions"]["code"] == "BAD_REQUEST" and f"orders.{measure}.lte" in error["message"], body
            saved = (await client.execute(create, {"f": filter}))["createSegment"]
            assert saved["segment"] is None and saved["errors"][0]["field"].startswith("filter"), saved
    assert await names(client, {"orders": {"totalSpent": {"lte": "99999999999999"}}}) == []


async def test_purchased_products_and_tags(client, db):
    async with db.writer() as session, session.begin():
        with frozen_clock(NOW):
            bike_buyer = await customer(session, lastName="BikeBuyer")
            helmet_buyer = await customer(session, lastName="HelmetBuyer")
        bike = Product(sku="BIKE", name="Bike", unit_price=Decimal(500), currency="EUR", active=True, version=1, created_at=NOW, updated_at=NOW)
        helmet = Product(sku="HELM", name="Helmet", unit_price=Decimal(50), currency="EUR", active=True, version=1, created_at=NOW, updated_at=NOW)
        session.add_all([bike, helmet])
        await session.flush()
        session.add(ProductTag(product_id=helmet.id, tag="safety"))
        for who, product in ((bike_buyer, bike), (helmet_buyer, helmet)):
            row = order(session, who, str(product.unit_price), days_ago(20))
            await session.flush()
            session.add(OrderLineItem(order_id=row.id, position=0, product_id=product.id, sku=product.sku, description=product.name,
                                      quantity=Decimal(1), unit_price=product.unit_price, discount_percent=Decimal(0),
                                      subtotal=product.unit_price, discount=Decimal(0), total=product.unit_price))
    assert await names(client, {"purchased": {"productIds": [encode("Product", bike.id)]}}) == ["BikeBuyer"]
    assert await names(client, {"purchased": {"productTags": ["Safety"]}}) == ["HelmetBuyer"]
    assert await names(client, {"purchased": {"productTags": ["safety"], "windowDays": 7}}) == []
    body = await client.post(LIST, {"f": {"purchased": {"productIds": [encode("Customer", 1)]}}})
    assert "filter.purchased.productIds.0" in body["errors"][0]["message"]


async def test_ticket_and_timeline_behaviour(client, db):
    async with db.writer() as session, session.begin():
        with frozen_clock(NOW):
            needy = await customer(session, lastName="Needy")
            calm = await customer(session, lastName="Calm")
        for status in (TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.CLOSED):
            session.add(Ticket(customer_id=needy, subject="help", channel=TicketChannel.EMAIL, priority=TicketPriority.NORMAL,
                               status=status, version=1, created_at=NOW, updated_at=NOW))
        session.add(Ticket(customer_id=calm, subject="thanks", channel=TicketChannel.WEB, priority=TicketPriority.LOW,
                           status=TicketStatus.RESOLVED, version=1, created_at=NOW, updated_at=NOW))
        with frozen_clock(days_ago(100)):
            await activities.log_activity(session, actor=SYSTEM, data={"customerId": calm, "type": "CALL", "subject": "old call"})
        with frozen_clock(days_ago(2)):
            await activities.log_activity(session, actor=SYSTEM, data={"customerId": needy, "type": "NOTE", "subject": "new note"})
    assert await names(client, {"tickets": {"openCount": {"gte": 2}}}) == ["Needy"]
    assert await names(client, {"tickets": {"count": {"eq": 1}}}) == ["Calm"]
    assert await names(client, {"activities": {"lastAt": {"lt": "2026-06-01T00:00:00Z"}}}) == ["Calm"]
    assert await names(client, {"activities": {"windowDays": 30, "count": {"gte": 1}}}) == ["Needy"]
