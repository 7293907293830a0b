"""Test data for the loyalty tests, through the services (the same rules as the API)."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from crm_graph.core.actor import SYSTEM
from crm_graph.customers import service as customers
from crm_graph.loyalty import service as loyalty
from crm_graph.sales.service import orders, products

_n = itertools.count(1)


async def customer(session: Any) -> int:
    created = await customers.create_customer(session, actor=SYSTEM, data={"kind": "PERSON", "lastName": f"L{next(_n)}"},
                                              config=customers.ServiceConfig())
    return created.id


async def product(session: Any, price: str, tags: list[str] | None = None) -> int:
    made = await products.create_product(session, actor=SYSTEM, data={
        "sku": f"P-{next(_n)}", "name": "Item", "unitPrice": {"amount": Decimal(price), "currency": "EUR"}, "tags": tags or []})
    return made.id


async def order(session: Any, customer_id: int, *product_ids: int) -> Any:
    return await orders.create_order(session, actor=SYSTEM, data={
        "customerId": customer_id, "lineItems": [{"productId": p, "quantity": Decimal(1)} for p in product_ids]})


async def pay(session: Any, order_id: int, amount: str, paid_at: Any = None) -> Any:
    data = {"orderId": order_id, "amount": {"amount": Decimal(amount), "currency": "EUR"}}
    if paid_at is not None:
        data["paidAt"] = paid_at
    payment, _ = await orders.record_payment(session, actor=SYSTEM, data=data)
    return payment


async def rule(session: Any, **data: Any) -> Any:
    return await loyalty.save_rule(session, actor=SYSTEM, data=data)
