"""Test data for segment and value tests: customers through the service, orders as rows.

Orders are inserted directly (status, payment status, total and date are all these tests care
about); the sales rules that produce orders have tests of their own.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from crm_graph.core.actor import SYSTEM
from crm_graph.customers import service as customers
from crm_graph.sales.models import Order, OrderOrigin, OrderStatus, PaymentStatus

_numbers = itertools.count(1)
NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
TODAY: date = NOW.date()


async def customer(session: Any, **data: Any) -> int:
    data.setdefault("kind", "PERSON")
    if data["kind"] == "PERSON":
        data.setdefault("lastName", f"C{next(_numbers)}")
    created = await customers.create_customer(session, actor=SYSTEM, data=data, config=customers.ServiceConfig())
    return created.id


def order(
    session: Any,
    customer_id: int,
    total: str | Decimal,
    at: datetime,
    *,
    status: OrderStatus = OrderStatus.FULFILLED,
    payment: PaymentStatus = PaymentStatus.PAID,
    currency: str = "EUR",
) -> Order:
    amount = Decimal(total)
    row = Order(
        number=f"T-{next(_numbers):06d}", customer_id=customer_id, status=status, payment_status=payment,
        currency=currency, subtotal=amount, discount=Decimal(0), tax_rate=Decimal(0), tax=Decimal(0), total=amount,
        paid_amount=amount if payment is PaymentStatus.PAID else Decimal(0), ordered_at=at,
        origin=OrderOrigin.EXTERNAL, version=1, created_at=at, updated_at=at,
    )
    session.add(row)
    return row


def days_ago(n: int, hours: int = 0) -> datetime:
    return NOW - timedelta(days=n, hours=hours)
