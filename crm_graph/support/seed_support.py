"""Demo data for support: SLA policies and a few hundred tickets over the past four months.

Each ticket lives its life through the service layer with the clock set to the moment of each
step (opened, answered, waiting for the customer, resolved, re-opened, rated, closed), so due
times, breaches, events and statistics are exactly what real use would have produced. Some
tickets are answered late, some are still open past their targets, most resolved ones are rated.

Deterministic (fixed random seed) and idempotent: every demo ticket carries the external
reference ``demo/ticket-<n>``, and tickets that exist already are skipped.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.actor import SYSTEM, Actor
from crm_graph.core.clock import frozen_clock
from crm_graph.customers.models import Customer, CustomerKind
from crm_graph.support import service
from crm_graph.support.models import SlaPolicy, TicketExternalRef

DEMO_SYSTEM = "demo"
AGENTS = ["alex@example.com", "sam@example.com", "kim@example.com", "noor@example.com"]
HISTORY_DAYS = 120

POLICIES: list[dict[str, Any]] = [
    {"name": "VIP", "rank": 5, "tags": ["vip"], "firstResponseMinutes": 30, "resolutionMinutes": 480,
     "description": "Customers tagged vip: around the clock."},
    {"name": "Urgent", "rank": 10, "priorities": ["URGENT"], "firstResponseMinutes": 30, "resolutionMinutes": 240,
     "description": "Outages and blocked orders: around the clock."},
    {"name": "High priority", "rank": 20, "priorities": ["HIGH"], "firstResponseMinutes": 120, "resolutionMinutes": 960,
     "businessHours": {"timeZone": "Europe/London", "weekdays": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
                       "startTime": "08:00", "endTime": "18:00"}},
    {"name": "Standard", "rank": 100, "firstResponseMinutes": 480, "resolutionMinutes": 2400,
     "description": "Everything else: one business day to answer, five to resolve.",
     "businessHours": {"timeZone": "Europe/Berlin", "weekdays": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
                       "startTime": "09:00", "endTime": "17:00"}},
]

TOPICS: list[tuple[str, list[str], list[str]]] = [
    ("billing", ["Charged twice for order {n}", "Invoice {n} shows the wrong VAT", "Refund for order {n} not received"],
     ["Please check the attached statement.", "I was billed twice this month."]),
    ("delivery", ["Order {n} has not arrived", "Parcel {n} arrived damaged", "Wrong item in order {n}"],
     ["Tracking has not moved for a week.", "The box was crushed and the contents broken."]),
    ("account", ["Cannot log in", "Password reset email never arrives", "Please change my billing address"],
     ["The login page says my account is locked.", "I tried three times today."]),
    ("product", ["How do I export my data?", "Feature request: dark mode", "Size guide question for item {n}"],
     ["Is there a way to do this from the app?", "Could you explain the options?"]),
    ("outage", ["Checkout fails with an error", "API returns 500 for order lookup", "Shop unavailable in our region"],
     ["All our stores are affected.", "We cannot take orders since this morning."]),
]
CHANNELS = ["EMAIL"] * 5 + ["WEB"] * 4 + ["PHONE"] * 3 + ["CHAT"] * 3 + ["SOCIAL", "IN_PERSON"]
PRIORITIES = ["LOW"] * 20 + ["NORMAL"] * 50 + ["HIGH"] * 22 + ["URGENT"] * 8
AGENT_REPLIES = ["Thanks for reaching out, we are looking into it.", "Could you send us the order number and a screenshot?",
                 "We have escalated this to the team in charge.", "This is fixed now; please let us know if it happens again."]
CUSTOMER_REPLIES = ["Here is the screenshot.", "The order number is in the subject.", "It happened again today.",
                    "Thanks, that worked."]
NOTES = ["Checked the payment provider: duplicate capture.", "Carrier confirms the parcel is lost.", "Known issue, see incident log."]
COMMENTS = {5: "Quick and friendly, thank you!", 4: "Solved, took a while.", 3: "OK in the end.", 2: "Too slow.",
            1: "Still not happy."}


async def seed_support(session: AsyncSession, *, now: datetime, customer_ids: Sequence[int], count: int = 300) -> int:
    """Create the demo SLA policies (if missing) and up to ``count`` demo tickets for ``customer_ids``.

    Runs inside the caller's transaction; returns how many tickets it created.
    """
    if not customer_ids:
        return 0
    existing_policies = set(await session.scalars(sa.select(SlaPolicy.name)))
    for policy in POLICIES:
        if policy["name"] not in existing_policies:
            with frozen_clock(now - timedelta(days=HISTORY_DAYS + 1)):
                await service.create_sla_policy(session, actor=SYSTEM, data=policy)
    existing = set(
        await session.scalars(sa.select(TicketExternalRef.external_id).where(TicketExternalRef.system == DEMO_SYSTEM))
    )
    rows = (await session.execute(
        sa.select(Customer.id, Customer.kind, Customer.organization_id, Customer.created_at)
        .where(Customer.id.in_(customer_ids))
        .order_by(Customer.created_at, Customer.id)
    )).all()
    kinds = {r.id: r.kind for r in rows}
    contacts: dict[int, list[int]] = {}
    for r in rows:
        if r.organization_id is not None and r.organization_id in kinds:
            contacts.setdefault(r.organization_id, []).append(r.id)
    owners = [(r.created_at, r.id) for r in rows]  # oldest first

    rng = random.Random(20261122)
    plans = sorted((_plan(rng, n, now, owners, kinds, contacts) for n in range(count)), key=lambda p: p["openedAt"])
    created = 0
    for plan in plans:
        if plan["ref"] in existing:
            continue
        await _live(session, plan, now, rng)
        created += 1
    with frozen_clock(now):
        await service.check_sla_breaches(session, actor=SYSTEM, now=now)
    return created


def _plan(rng: random.Random, n: int, now: datetime, owners: list[tuple[datetime, int]], kinds: dict[int, Any],
          contacts: dict[int, list[int]]) -> dict[str, Any]:
    topic, subjects, descriptions = rng.choice(TOPICS)
    priority = "URGENT" if topic == "outage" and rng.random() < 0.6 else rng.choice(PRIORITIES)
    # Older tickets are rarer than recent ones: the business grows.
    opened = now - timedelta(minutes=max(1, int(HISTORY_DAYS * 24 * 60 * rng.random() ** 1.8)))
    # A customer asks only after becoming one (the oldest customer when nobody was around yet).
    known = [pk for created, pk in owners if created <= opened] or [owners[0][1]]
    customer = rng.choice(known)
    contact = None
    people = [pk for pk in contacts.get(customer, []) if pk in known]
    if kinds[customer] is CustomerKind.ORGANIZATION and people and rng.random() < 0.7:
        contact = rng.choice(people)
    tags = [topic] + (["vip"] if rng.random() < 0.08 else [])
    return {
        "ref": f"ticket-{n + 1}",
        "openedAt": opened,
        "data": {
            "customerId": customer,
            "contactId": contact,
            "subject": rng.choice(subjects).format(n=rng.randint(10000, 99999)),
            "description": rng.choice(descriptions),
            "channel": rng.choice(CHANNELS),
            "priority": priority,
            "tags": tags,
            "assignee": rng.choice(AGENTS) if rng.random() < 0.6 else None,
            "externalRefs": [{"system": DEMO_SYSTEM, "externalId": f"ticket-{n + 1}"}],
        },
    }


def _minutes(rng: random.Random, mean: float) -> timedelta:
    return timedelta(minutes=max(1, int(rng.expovariate(1 / mean))))


async def _live(session: AsyncSession, plan: dict[str, Any], now: datetime, rng: random.Random) -> None:
    """Play one ticket's life up to ``now``: every step runs with the clock at its own moment."""
    data = {k: v for k, v in plan["data"].items() if v is not None}
    urgent = data["priority"] in ("URGENT", "HIGH") or "vip" in data["tags"]
    name = data.get("assignee") or rng.choice(AGENTS)
    agent = Actor("user", name, name=name)
    moment = plan["openedAt"]
    with frozen_clock(moment):
        ticket = await service.create_ticket(session, actor=SYSTEM, data=data)
    tid = ticket.id

    async def step(after: timedelta, work: Any) -> bool:
        nonlocal moment
        if moment + after >= now:
            return False
        moment += after
        with frozen_clock(moment):
            await work()
        return True

    def agent_reply(body: str, public: bool = True) -> Any:
        return lambda: service.reply_to_ticket(session, actor=agent, ticket_id=tid, data={"body": body, "public": public})

    def customer_reply(body: str) -> Any:
        return lambda: service.reply_to_ticket(session, actor=SYSTEM, ticket_id=tid, data={"body": body, "from": "CUSTOMER"})

    def status(target: str) -> Any:
        return lambda: service.change_ticket_status(session, actor=agent, ticket_id=tid, status=target, expected_version=None)

    # The first answer: usually in time, sometimes (about one in six) far too late.
    late = rng.random() < 0.17
    first_wait = _minutes(rng, (25 if urgent else 240) * (6 if late else 1))
    if rng.random() < 0.25 and not await step(first_wait / 2, agent_reply(rng.choice(NOTES), public=False)):
        return
    if not await step(first_wait / 2 if moment > plan["openedAt"] else first_wait, agent_reply(rng.choice(AGENT_REPLIES[:3]))):
        return
    if rng.random() < 0.35:  # ask the customer and wait
        if not await step(_minutes(rng, 30), status("PENDING")):
            return
        if not await step(_minutes(rng, 60 * 20), customer_reply(rng.choice(CUSTOMER_REPLIES[:3]))):
            return
    work = _minutes(rng, (120 if urgent else 60 * 16) * (4 if late or rng.random() < 0.12 else 1))
    if not await step(work, agent_reply(AGENT_REPLIES[3])) or not await step(_minutes(rng, 10), status("RESOLVED")):
        return
    if rng.random() < 0.12:  # the problem comes back
        if not await step(_minutes(rng, 60 * 24), customer_reply(CUSTOMER_REPLIES[2])):
            return
        if not await step(_minutes(rng, 60 * 6), status("RESOLVED")):
            return
    if rng.random() < 0.75:
        breached = ticket.first_response_breached_at is not None or ticket.resolution_breached_at is not None
        rating = rng.choices([5, 4, 3, 2, 1], weights=[2, 3, 3, 3, 2] if breached else [6, 4, 1, 0.5, 0.3])[0]
        expectation = rng.choice([3, 4, 4, 4, 5, 5]) if rng.random() < 0.8 else None
        rate = {"rating": rating, "expectation": expectation, "comment": COMMENTS[rating] if rng.random() < 0.5 else None}
        if not await step(_minutes(rng, 60 * 8), lambda: service.rate_ticket(session, actor=SYSTEM, ticket_id=tid, data=rate)):
            return
    if rng.random() < 0.6:
        await step(timedelta(days=rng.randint(3, 10)), status("CLOSED"))


__all__ = ["DEMO_SYSTEM", "seed_support"]
