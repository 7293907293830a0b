"""Triggers that no event announces: a date on the customer, inactivity and a schedule. A job
scans for them (``CRM_AUTOMATION_SCAN_INTERVAL``); each enrolment's trigger key names the
occasion (the local date, the last order, the occurrence), so a second scan, or two processes
scanning at once, enrols nobody twice.

Date triggers fire on the customer's local calendar day: ``birthday`` (or a custom DATE field),
moved by ``offsetDays``, at ``atTime`` (default 09:00) in the customer's time zone (their
``timeZone``, else the trigger's, else ``CRM_AUTOMATION_DEFAULT_TIME_ZONE``), and for the rest
of that local day if the scanner was not running at that moment. A 29 February birthday is
celebrated on 28 February in other years.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from crm_graph.automation import definition as d
from crm_graph.automation.engine import Runtime, active_flows, customer_zone, enrol
from crm_graph.core.clock import utcnow

MAX_OCCURRENCES = 100  # schedule occurrences caught up in one scan


def occurrences(rule_text: str, tz: Any, after: datetime, until: datetime) -> Iterator[datetime]:
    """The rule's occurrences in (after, until], in UTC; the rule's times are local to ``tz``."""
    from dateutil.rrule import rrulestr

    start = after.astimezone(tz).replace(tzinfo=None)
    rule = rrulestr(rule_text, dtstart=start.replace(second=0, microsecond=0))
    for local in rule.between(start, until.astimezone(tz).replace(tzinfo=None), inc=False):
        moment = local.replace(tzinfo=tz).astimezone(after.tzinfo)
        if after < moment <= until:
            yield moment


def anniversary(value: date, year: int) -> date:
    try:
        return value.replace(year=year)
    except ValueError:  # 29 February in a common year
        return date(year, 2, 28)


async def _date_candidates(session: Any, field: str, month_days: set[tuple[int, int]]) -> list[tuple[Any, date]]:
    """Customers whose date (``birthday`` or the custom DATE field ``field``) falls on one of
    ``month_days``, with that date."""
    from crm_graph.customers.models import Customer, CustomerFieldValue, CustomFieldDefinition

    if field == "birthday":
        column, stmt = Customer.birthday, sa.select(Customer, Customer.birthday)
    else:
        column = CustomerFieldValue.value_date
        stmt = (sa.select(Customer, CustomerFieldValue.value_date)
                .join(CustomerFieldValue, CustomerFieldValue.customer_id == Customer.id)
                .join(CustomFieldDefinition, CustomFieldDefinition.id == CustomerFieldValue.definition_id)
                .where(CustomFieldDefinition.key == field))
    pairs = [sa.and_(sa.extract("month", column) == m, sa.extract("day", column) == dd) for m, dd in month_days]
    stmt = stmt.where(Customer.deleted_at.is_(None), column.is_not(None), sa.or_(*pairs))
    return [(c, v) for c, v in (await session.execute(stmt)).all()]


async def scan_dates(session: Any, runtime: Runtime, flow: Any, version: Any, now: datetime) -> int:
    t = version.trigger
    offset = t.get("offsetDays") or 0
    at = d.parse_time(t.get("atTime") or "09:00")
    # Every local day some time zone is in now, moved back by the offset: the dates to look for.
    days = {(now + timedelta(hours=h)).date() for h in (-14, -12, 0, 12, 14)}
    wanted: set[tuple[int, int]] = set()
    for day in days:
        for delta in (-1, 0, 1):
            source = day - timedelta(days=offset + delta)
            wanted.add((source.month, source.day))
    wanted.add((2, 29))  # celebrated on 28 February in common years
    enrolled = 0
    for customer, value in await _date_candidates(session, t.get("dateField") or "birthday", wanted):
        tz = customer_zone(customer, runtime, t.get("timeZone"))
        local = now.astimezone(tz)
        # The anniversary whose fire day is today: this year's or a neighbouring year's (offsets cross years).
        fire_day = next((day for day in (anniversary(value, year) + timedelta(days=offset)
                                         for year in (local.year - 1, local.year, local.year + 1))
                         if day == local.date()), None)
        if fire_day is None or local.timetz().replace(tzinfo=None) < at:
            continue
        found = await enrol(session, runtime, flow, customer.id, trigger_key=f"date:{fire_day.isoformat()}", now=now,
                            trigger={"type": "date", "date": fire_day.isoformat(), "field": t.get("dateField") or "birthday"})
        enrolled += found is not None
    return enrolled


async def scan_inactivity(session: Any, runtime: Runtime, flow: Any, version: Any, now: datetime) -> int:
    """Customers whose last counted order is older than ``inactiveDays``: once per quiet spell
    (the key is the last order's day, so a new order and another quiet spell enrol again)."""
    from crm_graph.customers.models import Customer
    from crm_graph.sales.models import Order
    from crm_graph.sales.service.reports import counted_orders

    days = version.trigger["inactiveDays"]
    last = sa.func.max(Order.ordered_at)
    stmt = (sa.select(Order.customer_id, last).join(Customer, Customer.id == Order.customer_id)
            .where(counted_orders(), Customer.deleted_at.is_(None)).group_by(Order.customer_id)
            .having(last < now - timedelta(days=days)))
    enrolled = 0
    for cid, last_at in (await session.execute(stmt)).all():
        found = await enrol(session, runtime, flow, cid, trigger_key=f"inactive:{last_at.date().isoformat()}", now=now,
                            trigger={"type": "inactivity", "lastOrderAt": last_at.isoformat(), "days": days})
        enrolled += found is not None
    return enrolled


async def scan_schedule(session: Any, runtime: Runtime, flow: Any, version: Any, now: datetime) -> int:
    """Each occurrence of the rule since the last one enrols the trigger's audience (everyone
    when it has none)."""
    from crm_graph.customers import service as customers
    from crm_graph.customers.models import Customer

    t = version.trigger
    tz = d.zone(t.get("timeZone"), runtime.config.default_time_zone)
    since = flow.schedule_cursor or flow.activated_at or now
    enrolled = 0
    for i, moment in enumerate(occurrences(t["schedule"], tz, since, now)):
        if i >= MAX_OCCURRENCES:
            break
        stmt = await customers.customer_select(session, filter=t.get("audience"))
        for customer in (await session.scalars(stmt.order_by(Customer.id))).all():
            found = await enrol(session, runtime, flow, customer.id, trigger_key=f"schedule:{moment.isoformat()}", now=now,
                                trigger={"type": "schedule", "at": moment.isoformat()}, check_audience=False)
            enrolled += found is not None
        flow.schedule_cursor = moment
    return enrolled


SCANNERS = {"DATE": scan_dates, "INACTIVITY": scan_inactivity, "SCHEDULE": scan_schedule}


async def scan(db: Any, runtime: Runtime, now: datetime | None = None) -> int:
    """One scan of every ACTIVE flow with a date, inactivity or schedule trigger; one transaction
    per flow."""
    now = now or utcnow()
    async with db.reader() as session:
        ids = [f.id for f, v in await active_flows(session, runtime) if v.trigger.get("kind") in SCANNERS]
    enrolled = 0
    for flow_id in ids:
        from crm_graph.automation.models import AutomationFlow, FlowStatus

        async with db.writer() as session, session.begin():
            flow = await session.get(AutomationFlow, flow_id, with_for_update=db.dialect == "postgresql")
            if flow is None or flow.status is not FlowStatus.ACTIVE or flow.current_version_id is None:
                continue
            version = await runtime.version(session, flow.current_version_id)
            enrolled += await SCANNERS[version.trigger["kind"]](session, runtime, flow, version, now)
    return enrolled
