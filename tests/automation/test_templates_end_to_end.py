"""The shipped templates end to end, as a shop would run them: flows made from the templates
through the API, customers and orders through the API, the dispatcher delivering the events,
the engine running due steps, and mail going to a real SMTP server on loopback (aiosmtpd, the
sink of crm_graph.testing.mailservers) that the test reads back."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from crm_graph.automation import engine, triggers
from crm_graph.automation.actions import SendEmail
from crm_graph.automation.models import AutomationActionRun, AutomationEnrolment, EnrolmentStatus
from crm_graph.core.clock import frozen_clock
from crm_graph.loyalty import service as loyalty
from crm_graph.loyalty.models import Coupon
from crm_graph.testing.events import EventLog

START = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)
CODE = re.compile(r"\b(WELCOME-[A-Z0-9]{10})\b")
ERRORS = "errors { field code message }"


@pytest.fixture
def mail(smtp_sink, monkeypatch):
    monkeypatch.setenv("CRM_SMTP_HOST", smtp_sink.host)
    monkeypatch.setenv("CRM_SMTP_PORT", str(smtp_sink.port))
    monkeypatch.setenv("CRM_MAIL_FROM", "Shop <hello@shop.example>")
    return smtp_sink


async def flow_from(client, key: str) -> str:
    flow = (await client.mutate(f"mutation($k: String!) {{ createAutomationFlowFromTemplate(key: $k) "
                                f"{{ automationFlow {{ id }} {ERRORS} }} }}", {"k": key}))["automationFlow"]
    await client.mutate(f"mutation($id: ID!) {{ activateAutomationFlow(id: $id) {{ automationFlow {{ status }} {ERRORS} }} }}",
                        {"id": flow["id"]})
    return flow["id"]


async def register(client, first: str, **more) -> str:
    data = {"kind": "PERSON", "firstName": first, "lastName": "Test",
            "emails": [{"address": f"{first.lower()}@example.com", "primary": True}], **more}
    created = await client.mutate(f"mutation($i: CreateCustomerInput!) {{ createCustomer(input: $i) {{ customer {{ id }} {ERRORS} }} }}",
                                  {"i": data})
    return created["customer"]["id"]


async def buy(client, customer_id: str, *, pay: bool = True) -> None:
    order = (await client.mutate(
        f"mutation($i: CreateOrderInput!) {{ createOrder(input: $i) {{ order {{ id total {{ amount currency }} }} {ERRORS} }} }}",
        {"i": {"customerId": customer_id, "currency": "EUR",
               "lineItems": [{"description": "Tea", "quantity": "1", "unitPrice": {"amount": "20.00", "currency": "EUR"}}]}}))["order"]
    if not pay:
        return
    await client.mutate(f"mutation($i: RecordPaymentInput!) {{ recordPayment(input: $i) {{ payment {{ id }} {ERRORS} }} }}",
                        {"i": {"orderId": order["id"], "amount": order["total"]}})


def to(sink, address: str) -> list:
    return [m for m in sink.messages if address in m.rcpt_tos]


async def run(client, db) -> None:
    """What the dispatcher and the step job do between two moments of the test."""
    await EventLog(client.app).deliver()
    await engine.drain(db, engine.runtime_of(client.app.state.settings, client.app.state.plugins))
    await EventLog(client.app).deliver()


async def test_welcome_one_mail_with_a_unique_coupon_a_reminder_only_without_an_order(client, db, mail):
    with frozen_clock(START) as clock:
        await flow_from(client, "welcome")
        ana, ben, cy = await register(client, "Ana"), await register(client, "Ben"), await register(client, "Cy")
        await run(client, db)
        await run(client, db)  # nothing more to do: nothing more is sent
        welcomes = {a: to(mail, f"{a}@example.com") for a in ("ana", "ben", "cy")}
        assert {a: len(m) for a, m in welcomes.items()} == {"ana": 1, "ben": 1, "cy": 1}
        codes = {a: CODE.search(m[0].message.get_content()).group(1) for a, m in welcomes.items()}
        assert len(set(codes.values())) == 3  # one coupon each, all different
        assert welcomes["ana"][0].message["Subject"] == "Welcome, Ana"
        async with db.reader() as s:
            stored = dict((await s.execute(sa.select(Coupon.code, Coupon.status))).all())
        assert set(stored) == set(codes.values())

        # Replaying the trigger changes nothing: no second enrolment, coupon or mail.
        runtime = engine.runtime_of(client.app.state.settings, client.app.state.plugins)
        for event in await EventLog(client.app).all("customer.created"):
            assert await engine.handle_event(db, runtime, event) == 0
        await run(client, db)
        assert len(mail.messages) == 3

        # Ben orders and pays within the three days: the goal. Cy orders but does not pay yet.
        clock.advance(days=1)
        await buy(client, ben)
        await buy(client, cy, pay=False)
        await run(client, db)
        clock.advance(days=2, minutes=1)
        await run(client, db)
        reminders = [m for m in mail.messages if m.message["Subject"] == "Your welcome code is waiting"]
        assert [m.rcpt_tos for m in reminders] == [("ana@example.com",)]
        assert codes["ana"] in reminders[0].message.get_content()  # the same coupon, not a new one
        async with db.reader() as s:
            statuses = sorted((await s.scalars(sa.select(AutomationEnrolment.status))).all(), key=lambda x: x.name)
        assert [x.name for x in statuses] == ["COMPLETED", "CONVERTED", "WAITING"]  # Ana, Ben, and Cy until paid
        clock.advance(days=10)
        await buy(client, ana)
        await run(client, db)
        assert len(mail.messages) == 4  # nothing after the flow ended, goal or not


async def test_a_worker_stopped_between_steps_or_mid_send_resumes_without_repeating(client, db, mail, monkeypatch):
    """A worker process that dies leaves its transaction uncommitted and its claim standing; here
    the death is a CancelledError raised at the moment in question (the coroutine stops there and
    nothing after it runs, as when the process is killed), and a second worker takes over once the
    claim's lease has run out."""
    original_step, original_send = engine._step, SendEmail.run
    state = {"steps": 0, "kill_step": 2, "kill_after_send": False}

    async def dying_step(session, db_, runtime, e):
        state["steps"] += 1
        if state["steps"] == state["kill_step"]:
            raise asyncio.CancelledError  # killed after the coupon step committed, before the mail step
        return await original_step(session, db_, runtime, e)

    async def dying_send(self, ctx):
        result = await original_send(self, ctx)
        if state["kill_after_send"]:
            raise asyncio.CancelledError  # killed once the server took the mail, before it was recorded
        return result

    monkeypatch.setattr(engine, "_step", dying_step)
    monkeypatch.setattr(SendEmail, "run", dying_send)
    with frozen_clock(START) as clock:
        await flow_from(client, "welcome")
        ana = await register(client, "Ana")
        await EventLog(client.app).deliver()
        runtime = engine.runtime_of(client.app.state.settings, client.app.state.plugins)
        with pytest.raises(asyncio.CancelledError):
            await engine.run_due(db, runtime)
        assert mail.messages == []
        await engine.drain(db, runtime)  # the dead worker's claim still stands
        assert mail.messages == []
        clock.advance(seconds=runtime.config.lease + 1)
        await engine.drain(db, runtime)
        (welcome,) = to(mail, "ana@example.com")
        async with db.reader() as s:
            (coupon,) = (await s.scalars(sa.select(Coupon))).all()
        assert coupon.code in welcome.message.get_content()

        # Now the worker dies right after the reminder was handed to the server.
        state["kill_after_send"] = True
        clock.advance(days=3, minutes=1)
        with pytest.raises(asyncio.CancelledError):
            await engine.run_due(db, runtime)
        assert len(to(mail, "ana@example.com")) == 2
        state["kill_after_send"] = False
        clock.advance(seconds=runtime.config.lease + 1)
        await engine.drain(db, runtime)
        assert len(to(mail, "ana@example.com")) == 2  # not sent again: its outcome was not recorded
        async with db.reader() as s:
            runs = {r.step_key: r.result for r in await s.scalars(sa.select(AutomationActionRun))}
            enrolment = await s.scalar(sa.select(AutomationEnrolment))
        assert runs["reminder"] == {"outcomeUnknown": True}
        assert enrolment.status is EnrolmentStatus.COMPLETED
        assert ana


@pytest.mark.parametrize(("zone", "birthday", "before", "after"), [
    # Berlin moves to summer time on 28 March 2027: 09:00 local on the 29th is 07:00 UTC.
    ("Europe/Berlin", date(1990, 3, 29), datetime(2027, 3, 29, 6, 55, tzinfo=UTC), datetime(2027, 3, 29, 7, 5, tzinfo=UTC)),
    # New York moves on 14 March 2027, the birthday itself: 09:00 local is 13:00 UTC, not 14:00.
    ("America/New_York", date(1985, 3, 14), datetime(2027, 3, 14, 12, 55, tzinfo=UTC), datetime(2027, 3, 14, 13, 5, tzinfo=UTC)),
    # Auckland leaves summer time on 4 April 2027: 09:00 local on the 4th is 21:00 UTC the day before.
    ("Pacific/Auckland", date(2000, 4, 4), datetime(2027, 4, 3, 20, 55, tzinfo=UTC), datetime(2027, 4, 3, 21, 5, tzinfo=UTC)),
])
async def test_birthday_points_on_the_local_day_across_a_clock_change(client, db, mail, zone, birthday, before, after):
    with frozen_clock(before - timedelta(days=2)) as clock:
        await flow_from(client, "birthday-points")
        await register(client, "Dana", birthday=birthday.isoformat(), timeZone=zone)
        runtime = engine.runtime_of(client.app.state.settings, client.app.state.plugins)
        for moment in (before - timedelta(days=1), before):
            clock.current = moment
            assert await triggers.scan(db, runtime) == 0, moment
        clock.current = after
        assert await triggers.scan(db, runtime) == 1
        assert await triggers.scan(db, runtime) == 0  # a second scan that day enrols nobody again
        await engine.drain(db, runtime)
        clock.current = after + timedelta(hours=12)
        assert await triggers.scan(db, runtime) == 0
        await engine.drain(db, runtime)
        (greeting,) = mail.messages
        assert greeting.message["Subject"] == "Happy birthday, Dana!"
        async with db.reader() as s:
            (customer_id,) = (await s.scalars(sa.select(AutomationEnrolment.customer_id))).all()
            assert (await loyalty.balances(s, [customer_id]))[customer_id].active == 100
