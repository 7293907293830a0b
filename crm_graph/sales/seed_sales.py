"""Sales demo data: a catalogue, a second pipeline, opportunities in every stage, quotes, and a
year of orders for most demo customers, so statistics, forecasts and RFM have something to show.

Everything goes through the sales services, under a frozen clock set to when each step
"happened", so the data obeys the API's rules and its timestamps tell a plausible story.
Deterministic (fixed random seed); idempotent: nothing is added once the demo catalogue exists.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import money
from crm_graph.core.actor import SYSTEM
from crm_graph.core.clock import frozen_clock
from crm_graph.customers.models import Customer
from crm_graph.sales.models import OrderStatus, Product, StageKind
from crm_graph.sales.service import opportunities, orders, pipelines, products, quotes

# (sku, name, EUR price, tags, active)
CATALOGUE = [
    ("CRM-STD", "CRM Standard licence (seat, yearly)", "240.00", ["software", "licence"], True),
    ("CRM-PRO", "CRM Professional licence (seat, yearly)", "480.00", ["software", "licence"], True),
    ("ONB-1", "Onboarding package", "1500.00", ["service"], True),
    ("TRN-DAY", "Training day", "900.00", ["service", "training"], True),
    ("SUP-PREM", "Premium support (yearly)", "1200.00", ["service", "support"], True),
    ("INT-API", "Integration setup", "2500.00", ["service"], True),
    ("MIG-DATA", "Data migration", "1800.00", ["service"], True),
    ("HW-SCAN", "Barcode scanner", "129.90", ["hardware"], True),
    ("HW-PRN", "Receipt printer", "219.00", ["hardware"], True),
    ("CONS-HR", "Consulting hour", "120.00", ["service"], True),
    ("CRM-LEGACY", "CRM Classic licence (discontinued)", "199.00", ["software", "licence"], False),
]
RENEWALS = {
    "name": "Renewals",
    "stages": [
        {"name": "Up for renewal", "probability": 60},
        {"name": "Renewal quoted", "probability": 80},
        {"name": "Renewed", "kind": "WON"},
        {"name": "Churned", "kind": "LOST"},
    ],
}
# Demo exchange rates from EUR: prices for customers billed in their own currency.
RATES = {"EUR": Decimal(1), "USD": Decimal("1.08"), "GBP": Decimal("0.86")}
CURRENCY_BY_COUNTRY = {"US": "USD", "GB": "GBP"}
TAX = {"EUR": Decimal(19), "GBP": Decimal(20), "USD": Decimal(0)}
OWNERS = ["alex@example.com", "sam@example.com", "kim@example.com"]
SOURCES = ["WEB", "PHONE", "REFERRAL", "SOCIAL", "IN_STORE"]
LOST_REASONS = ["Price", "Chose a competitor", "No budget", "Timing", "No decision"]
SHOP_SYSTEM = "demo-shop"
# How deals end, in turn: a third still open, the rest won a little more often than lost.
OUTCOMES = ["open", "won", "lost", "won", "open", "lost", "won", "open", "won", "lost"]


@dataclass
class SalesSeedResult:
    products: int = 0
    opportunities: int = 0
    quotes: int = 0
    orders: int = 0
    payments: int = 0


def _price(eur: Decimal, currency: str) -> Decimal:
    return money.round_amount(eur * RATES[currency], currency)


async def seed_sales(
    session: AsyncSession, *, now: datetime, customer_ids: Sequence[int], seed: int = 20261122
) -> SalesSeedResult:
    """Add the sales demo data for ``customer_ids`` in the caller's transaction."""
    result = SalesSeedResult()
    if await session.scalar(sa.select(Product.id).where(Product.sku == CATALOGUE[0][0])) is not None:
        return result
    rng = random.Random(seed)
    start = now - timedelta(days=365)
    catalogue: dict[str, Product] = {}
    with frozen_clock(start):
        for sku, name, price, tags, active in CATALOGUE:
            catalogue[sku] = await products.create_product(session, actor=SYSTEM, data={
                "sku": sku, "name": name, "unitPrice": {"amount": Decimal(price), "currency": "EUR"},
                "tags": tags, "active": active,
            })
            result.products += 1
        renewals = await pipelines.create_pipeline(session, actor=SYSTEM, data=RENEWALS)
    default = await pipelines.default_pipeline(session)
    assert default is not None
    stages = await pipelines.stages_for(session, [default.id, renewals.id])
    countries = dict((await session.execute(
        sa.select(Customer.id, Customer.country).where(Customer.id.in_(customer_ids))
    )).all())
    on_sale = [p for p in catalogue.values() if p.active]

    def lines(currency: str, picks: int) -> list[dict[str, Any]]:
        chosen = rng.sample(on_sale, picks)
        return [
            {"productId": p.id, "quantity": Decimal(rng.choice([1, 1, 2, 3, 5, 10])),
             "unitPrice": {"amount": _price(p.unit_price, currency), "currency": currency},
             "discountPercent": Decimal(rng.choice([0, 0, 0, 5, 10]))}
            for p in chosen
        ]

    # Opportunities across every stage of both pipelines.
    deal_customers = [c for c in customer_ids if rng.random() < 0.4]
    for index, customer_id in enumerate(deal_customers):
        currency = CURRENCY_BY_COUNTRY.get(countries.get(customer_id) or "", "EUR")
        pipeline = renewals if index % 4 == 3 else default
        path = [s for s in stages[pipeline.id] if s.kind is StageKind.OPEN]
        outcome = OUTCOMES[index % len(OUTCOMES)]
        if outcome == "open":  # open deals are recent and spread over the open stages
            created = now - timedelta(days=rng.randint(3, 90), hours=rng.randint(0, 23))
            steps = (index // len(OUTCOMES) + index) % len(path)
        else:
            created = now - timedelta(days=rng.randint(30, 330), hours=rng.randint(0, 23))
            steps = rng.randint(0, len(path) - 1)
        age_days = (now - created).days
        with frozen_clock(created) as clock:
            deal = await opportunities.create_opportunity(session, actor=SYSTEM, data={
                "title": f"{'Renewal' if pipeline is renewals else rng.choice(['Rollout', 'Expansion', 'Pilot', 'New site'])} {created:%b %Y}",
                "customerId": customer_id, "pipelineId": pipeline.id, "owner": rng.choice(OWNERS),
                "source": rng.choice(SOURCES), "lineItems": lines(currency, rng.randint(1, 3)),
                "expectedCloseDate": _close_date(rng, created, now, outcome),
            })
            result.opportunities += 1
            for stage in path[1:steps + 1]:
                _advance(clock, now, days=rng.randint(2, max(3, min(20, age_days // (steps + 1) or 3))))
                await opportunities.move_opportunity(session, actor=SYSTEM, opportunity_id=deal.id, stage_id=stage.id, expected_version=None)
            quote = None
            if steps >= 1 and rng.random() < 0.7:
                _advance(clock, now, days=1)
                quote = await quotes.create_quote(session, actor=SYSTEM, data={
                    "opportunityId": deal.id, "taxRate": TAX[currency],
                    "validUntil": (clock.current + timedelta(days=rng.choice([14, 30, 45]))).date(),
                })
                await quotes.send_quote(session, actor=SYSTEM, quote_id=quote.id)
                result.quotes += 1
            if outcome == "open":
                continue
            _advance(clock, now, days=rng.randint(1, 10))
            if outcome == "lost":
                if quote is not None:
                    await quotes.reject_quote(session, actor=SYSTEM, quote_id=quote.id, reason="Declined")
                await opportunities.lose_opportunity(session, actor=SYSTEM, opportunity_id=deal.id, reason=rng.choice(LOST_REASONS))
                continue
            if quote is not None and quote.valid_until >= clock.current.date():
                _, order = await quotes.accept_quote(session, actor=SYSTEM, quote_id=quote.id)
            else:
                _, order = await opportunities.win_opportunity(session, actor=SYSTEM, opportunity_id=deal.id)
            if order is not None:
                reached, share, exit_status = _fate(rng, now - clock.current)
                await _progress(session, order, reached, clock.current, now)
                result.orders += 1
                result.payments += await _settle(session, rng, order, clock.current, now, share, exit_status)

    # A year of shop orders for most customers, each with its own rhythm (for RFM). An order is
    # imported in the status it has reached, then paid: two calls, as a shop sync would make.
    sequence = 0
    for customer_id in customer_ids:
        if rng.random() < 0.25:
            continue
        currency = CURRENCY_BY_COUNTRY.get(countries.get(customer_id) or "", "EUR")
        count = rng.choice([1, 1, 1, 2, 2, 2, 3, 4, 6])
        recent = rng.random() < 0.6  # the others stopped buying months ago
        earliest = 0 if recent else rng.randint(60, 240)
        for _ in range(count):
            sequence += 1
            ordered_at = now - timedelta(days=rng.randint(earliest, 364), minutes=rng.randint(0, 1439))
            reached, share, exit_status = _fate(rng, now - ordered_at)
            with frozen_clock(ordered_at):
                order, _ = await orders.upsert_order(session, actor=SYSTEM, data={
                    "externalRef": {"system": SHOP_SYSTEM, "externalId": f"WEB-{sequence:05d}"},
                    "customerId": customer_id, "orderedAt": ordered_at, "taxRate": TAX[currency],
                    "status": reached.name, "lineItems": lines(currency, rng.randint(1, 2)),
                })
            result.orders += 1
            result.payments += await _settle(session, rng, order, ordered_at, now, share, exit_status)
    return result


def _fate(rng: random.Random, age: timedelta) -> tuple[OrderStatus, Decimal | None, OrderStatus | None]:
    """Where an order of this age got to: (status reached, share paid, cancelled/refunded at the end).
    Most old orders are fulfilled and paid; a few were cancelled, part-paid or refunded."""
    roll = rng.random()
    if age < timedelta(days=10):
        return (OrderStatus.CONFIRMED if roll < 0.5 else OrderStatus.PENDING), (Decimal(1) if roll < 0.3 else None), None
    if roll < 0.04:
        return OrderStatus.PENDING, None, OrderStatus.CANCELLED
    if roll < 0.08:
        return OrderStatus.CONFIRMED, Decimal("0.5"), None
    if roll > 0.97:
        return OrderStatus.FULFILLED, Decimal(1), OrderStatus.REFUNDED
    return OrderStatus.FULFILLED, Decimal(1), None


async def _settle(
    session: AsyncSession, rng: random.Random, order: Any, ordered_at: datetime, now: datetime,
    share: Decimal | None, exit_status: OrderStatus | None,
) -> int:
    """Pay the order's share and close it as planned; returns the number of payments recorded."""
    paid_at = min(ordered_at + timedelta(days=rng.randint(0, 14)), now)
    payments = 0
    if share is not None:
        amount = money.round_amount(order.total * share, order.currency)
        with frozen_clock(paid_at):
            await orders.record_payment(session, actor=SYSTEM, data={
                "orderId": order.id, "amount": {"amount": amount, "currency": order.currency}, "paidAt": paid_at,
            })
        payments += 1
    if exit_status is not None:
        with frozen_clock(min(paid_at + timedelta(days=rng.randint(1, 30)), now)):
            await orders.update_order_status(session, actor=SYSTEM, order_id=order.id, status=exit_status.name, expected_version=None)
    return payments


async def _progress(session: AsyncSession, order: Any, reached: OrderStatus, at: datetime, now: datetime) -> None:
    """Walk an order created PENDING (from a won deal) up to ``reached``."""
    path = [OrderStatus.CONFIRMED, OrderStatus.FULFILLED]
    for step in path[: path.index(reached) + 1] if reached in path else []:
        at = min(at + timedelta(days=1), now)
        with frozen_clock(at):
            await orders.update_order_status(session, actor=SYSTEM, order_id=order.id, status=step.name, expected_version=None)


def _advance(clock: Any, now: datetime, *, days: int) -> None:
    """Let time pass in the story, but never past the present."""
    clock.current = min(clock.current + timedelta(days=days), now - timedelta(minutes=1))


def _close_date(rng: random.Random, created: datetime, now: datetime, outcome: str) -> date:
    if outcome == "open":
        return (now + timedelta(days=rng.randint(5, 120))).date()
    return (created + timedelta(days=rng.randint(20, 90))).date()


__all__ = ["SalesSeedResult", "seed_sales"]
