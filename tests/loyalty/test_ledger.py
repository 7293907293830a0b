"""The ledger through the events a shop produces: payments earn (pending through the return
window), refunds and cancellations give back, points expire soonest first, tiers move up at
once and down at the review, and every change happens once however often it is asked for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from crm_graph.core import ids
from crm_graph.core.actor import SYSTEM
from crm_graph.core.clock import frozen_clock
from crm_graph.core.errors import DomainError
from crm_graph.loyalty import service as loyalty
from crm_graph.loyalty.models import EntryKind, LoyaltyEntry
from crm_graph.loyalty.subscriber import apply
from crm_graph.sales.service import orders
from crm_graph.testing.events import EventLog
from tests.loyalty import factories as f

START = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


async def balance(db, customer_id: int) -> tuple[int, int]:
    async with db.reader() as session:
        b = (await loyalty.balances(session, [customer_id]))[customer_id]
        return b.active, b.pending


def codes(exc: DomainError) -> set[tuple[str | None, str]]:
    return {(e.field, e.code) for e in exc.errors}


async def test_payments_earn_pending_points_once_and_refunds_take_them_back(client, db):
    events = EventLog(client.app)
    with frozen_clock(START) as clock:
        async with db.writer() as s, s.begin():
            cid = await f.customer(s)
            premium, plain = await f.product(s, "50.00", ["premium"]), await f.product(s, "30.00")
            await f.rule(s, kind="SPEND", name="1 per euro", points=Decimal(1), currency="EUR")
            await f.rule(s, kind="TAG", name="premium double", points=Decimal(2), tag="Premium")
            order = await f.order(s, cid, premium, plain)
        assert order.total == Decimal("80.00")
        async with db.writer() as s, s.begin():
            await f.pay(s, order.id, "40.00")
        await events.deliver()
        # Half paid: 40 for the euros, 2 x (half of the 50 premium line) = 50: pending 30 days.
        assert await balance(db, cid) == (0, 90)
        (paid,) = await events.all("payment.recorded")
        async with db.writer() as s, s.begin():  # the same event delivered again
            await apply(s, paid)
        assert await balance(db, cid) == (0, 90)

        clock.advance(days=31)
        assert await balance(db, cid) == (90, 0)
        async with db.writer() as s, s.begin():
            await f.pay(s, order.id, "40.00")
        await events.deliver()
        assert await balance(db, cid) == (90, 90)

        # A quarter refunded: a quarter of the 180 earned goes, from the order's own points.
        async with db.writer() as s, s.begin():
            reversal, restore = await loyalty.reverse_order_points(s, actor=SYSTEM, order_id=order.id,
                                                                   refunded_amount=Decimal("20.00"), idempotency_key="r1")
            again = await loyalty.reverse_order_points(s, actor=SYSTEM, order_id=order.id,
                                                       refunded_amount=Decimal("20.00"), idempotency_key="r1")
        assert (reversal.points, restore, again[0].id) == (-45, None, reversal.id)
        assert sum(await balance(db, cid)) == 135
        with pytest.raises(DomainError) as refused:
            async with db.writer() as s, s.begin():
                await loyalty.reverse_order_points(s, actor=SYSTEM, order_id=order.id,
                                                   refunded_amount=Decimal("70.00"), idempotency_key="r2")
        assert codes(refused.value) == {("refundedAmount.amount", "INVALID_VALUE")}

        # Refunding the order in full takes the rest, exactly what it earned, no more.
        async with db.writer() as s, s.begin():
            await orders.update_order_status(s, actor=SYSTEM, order_id=order.id, status="REFUNDED", expected_version=None)
        await events.deliver()
        await events.deliver()
        assert await balance(db, cid) == (0, 0)
        async with db.reader() as s:
            taken = await s.scalar(sa.select(sa.func.sum(LoyaltyEntry.points)).where(LoyaltyEntry.kind == EntryKind.REVERSE))
        assert taken == -180
        assert len(await events.types("loyalty.points_reversed")) == 2


async def test_a_payment_recorded_late_counts_from_when_it_was_paid(client, db):
    events = EventLog(client.app)
    with frozen_clock(START):
        async with db.writer() as s, s.begin():
            cid = await f.customer(s)
            product = await f.product(s, "10.00")
            await f.rule(s, kind="SPEND", name="10 per euro", points=Decimal(10))
            recent, ancient = await f.order(s, cid, product), await f.order(s, cid, product)
            await f.pay(s, recent.id, "10.00", paid_at=START - timedelta(days=100))
            await f.pay(s, ancient.id, "10.00", paid_at=START - timedelta(days=400))  # past the points' 365 days
        await events.deliver()
        assert await balance(db, cid) == (100, 0)
        async with db.reader() as s:
            (lot,) = (await s.scalars(sa.select(LoyaltyEntry).where(LoyaltyEntry.customer_id == cid))).all()
        assert lot.available_at == START - timedelta(days=70) and lot.expires_at == START + timedelta(days=295)


async def test_redeeming_spends_soonest_expiring_first_and_a_refund_restores_in_proportion(db):
    with frozen_clock(START) as clock:
        async with db.writer() as s, s.begin():
            cid = await f.customer(s)
            product = await f.product(s, "100.00")
            order = await f.order(s, cid, product)
            late = await loyalty.earn_points(s, actor=SYSTEM, customer_id=cid, points=100, idempotency_key="late",
                                             expires_at=START + timedelta(days=200))
            soon = await loyalty.earn_points(s, actor=SYSTEM, customer_id=cid, points=100, idempotency_key="soon",
                                             expires_at=START + timedelta(days=20))
            spent = await loyalty.adjust_points(s, actor=SYSTEM, customer_id=cid, points=-1, idempotency_key="a",
                                                reason="test")
        assert spent.points == -1
        async with db.writer() as s, s.begin():
            entry, coupon = await loyalty.redeem_points(s, actor=SYSTEM, customer_id=cid, points=120, order_id=order.id,
                                                        idempotency_key="spend")
        assert coupon is None
        async with db.reader() as s:
            lots = {e.idempotency_key: e.remaining for e in await s.scalars(sa.select(LoyaltyEntry).where(
                LoyaltyEntry.id.in_([late.id, soon.id])))}
        assert lots == {"soon": 0, "late": 79}  # the adjustment took 1 from "soon", the redemption the other 99 + 21
        with pytest.raises(DomainError) as short:
            async with db.writer() as s, s.begin():
                await loyalty.redeem_points(s, actor=SYSTEM, customer_id=cid, points=80, idempotency_key="more")
        assert codes(short.value) == {("points", "INSUFFICIENT_POINTS")}
        with pytest.raises(DomainError) as reused:
            async with db.writer() as s, s.begin():
                await loyalty.redeem_points(s, actor=SYSTEM, customer_id=cid, points=10, idempotency_key="spend")
        assert codes(reused.value) == {("idempotencyKey", "IDEMPOTENCY_CONFLICT")}

        async with db.writer() as s, s.begin():  # 30% of the order refunded: 30% of the 120 spent comes back
            _, restored = await loyalty.reverse_order_points(s, actor=SYSTEM, order_id=order.id,
                                                             refunded_amount=Decimal("30.00"), idempotency_key="r")
        assert restored.points == 36
        assert await balance(db, cid) == (79 + 36, 0)

        clock.advance(days=201)
        async with db.writer() as s, s.begin():
            assert await loyalty.expire_due(s) == 1  # "late" ran out; the restore lives on
        assert await balance(db, cid) == (36, 0)


async def test_expiring_points_are_announced_once(client, db):
    events = EventLog(client.app)
    with frozen_clock(START) as clock:
        async with db.writer() as s, s.begin():
            cid = await f.customer(s)
            await loyalty.earn_points(s, actor=SYSTEM, customer_id=cid, points=50, idempotency_key="x",
                                      expires_at=START + timedelta(days=20))
        clock.advance(days=5)
        async with db.writer() as s, s.begin():
            assert await loyalty.notify_expiring(s) == 0  # 15 days out: beyond the 14-day notice
        clock.advance(days=2)
        for _ in range(2):
            async with db.writer() as s, s.begin():
                await loyalty.notify_expiring(s)
        (notice,) = await events.all("loyalty.points_expiring")
        assert notice.data["points"] == 50 and notice.data["customerId"] == cid


async def test_tiers_move_up_at_once_and_down_only_at_the_review(db, monkeypatch):
    monkeypatch.setenv("CRM_LOYALTY_TIER_WINDOW_DAYS", "90")
    with frozen_clock(START) as clock:
        async with db.writer() as s, s.begin():
            await loyalty.save_tier(s, actor=SYSTEM, data={"key": "silver", "name": "Silver", "threshold": 100})
            await loyalty.save_tier(s, actor=SYSTEM, data={"key": "gold", "name": "Gold", "threshold": 500,
                                                           "multiplier": Decimal(2)})
            cid = await f.customer(s)
            await loyalty.earn_points(s, actor=SYSTEM, customer_id=cid, points=120, idempotency_key="1")

        async def tier() -> str | None:
            async with db.reader() as s:
                account = (await loyalty.accounts(s, [cid]))[cid]
                return next((t.key for t in await loyalty.tiers(s) if t.id == account.tier_id), None)

        assert await tier() == "silver"
        clock.advance(days=30)
        async with db.writer() as s, s.begin():
            await loyalty.earn_points(s, actor=SYSTEM, customer_id=cid, points=400, idempotency_key="2")
        assert await tier() == "gold"
        clock.advance(days=80)  # the first 120 left the window: 400 qualify, below gold, but no review yet
        async with db.writer() as s, s.begin():
            assert await loyalty.review_due_tiers(s) == 0
        assert await tier() == "gold"
        clock.advance(days=10)  # 90 days after reaching gold: only these 100 are in the window
        async with db.writer() as s, s.begin():
            await loyalty.earn_points(s, actor=SYSTEM, customer_id=cid, points=100, idempotency_key="3")
            assert await loyalty.review_due_tiers(s) == 1
        assert await tier() == "silver"


async def test_event_rules_award_once_per_event_within_their_cap(client, db):
    events = EventLog(client.app)
    async with db.writer() as s, s.begin():
        cid = await f.customer(s)
        await f.rule(s, kind="EVENT", name="profile kept up to date", points=Decimal(10), eventType="customer.updated",
                     capPoints=20, capDays=30)
    for i in range(3):
        await client.mutate("mutation($id: ID!, $n: String) { updateCustomer(id: $id, input: {lastName: $n}) "
                            "{ customer { id } errors { field code message } } }",
                            {"id": ids.encode("Customer", cid), "n": f"N{i}"})
    await events.deliver()
    assert await balance(db, cid) == (20, 0)


async def test_coupons_are_unique_reservable_and_used_once(db):
    from crm_graph.loyalty.models import CouponStatus

    with frozen_clock(START) as clock:
        async with db.writer() as s, s.begin():
            cid, other = await f.customer(s), await f.customer(s)
            product = await f.product(s, "10.00")
            mine, theirs = await f.order(s, cid, product), await f.order(s, other, product)
            batch = await loyalty.generate_coupons(s, actor=SYSTEM, count=2000, batch="spring", percent_off=Decimal(10),
                                                   prefix="spr", valid_days=10)
            personal = await loyalty.issue_coupon(s, actor=SYSTEM, customer_id=cid, idempotency_key="welcome",
                                                  amount_off=Decimal(5), currency="EUR")
            same = await loyalty.issue_coupon(s, actor=SYSTEM, customer_id=cid, idempotency_key="welcome",
                                              amount_off=Decimal(5), currency="EUR")
        assert len({c.code for c in batch}) == 2000 and all(c.code.startswith("SPR-") for c in batch)
        assert same.code == personal.code
        with pytest.raises(DomainError) as twice:
            async with db.writer() as s, s.begin():
                await loyalty.generate_coupons(s, actor=SYSTEM, count=1, batch="spring", percent_off=Decimal(10))
        assert codes(twice.value) == {("batch", "DUPLICATE")}

        code = batch[0].code
        async with db.writer() as s, s.begin():
            await loyalty.reserve_coupon(s, actor=SYSTEM, code=code, reservation="cart-1")
        with pytest.raises(DomainError):
            async with db.writer() as s, s.begin():
                await loyalty.redeem_coupon(s, actor=SYSTEM, code=code, order_id=theirs.id, reservation="cart-2")
        async with db.writer() as s, s.begin():
            used = await loyalty.redeem_coupon(s, actor=SYSTEM, code=code, order_id=mine.id, reservation="cart-1")
            retried = await loyalty.redeem_coupon(s, actor=SYSTEM, code=code, order_id=mine.id)
        assert used.status is CouponStatus.REDEEMED and retried.id == used.id
        for attempt in (lambda s: loyalty.redeem_coupon(s, actor=SYSTEM, code=code, order_id=theirs.id),
                        lambda s: loyalty.redeem_coupon(s, actor=SYSTEM, code=personal.code, order_id=theirs.id)):
            with pytest.raises(DomainError) as refused:
                async with db.writer() as s, s.begin():
                    await attempt(s)
            assert codes(refused.value) == {("code", "INVALID_STATE")}
        clock.advance(days=11)
        with pytest.raises(DomainError) as expired:
            async with db.writer() as s, s.begin():
                await loyalty.redeem_coupon(s, actor=SYSTEM, code=batch[1].code, order_id=theirs.id)
        assert expired.value.errors[0].message == "The coupon has expired."


async def test_concurrent_redemptions_never_spend_a_point_twice(db):
    import asyncio

    async with db.writer() as s, s.begin():
        cid = await f.customer(s)
        await loyalty.earn_points(s, actor=SYSTEM, customer_id=cid, points=100, idempotency_key="start")

    async def spend(key: str) -> str:
        try:
            async with db.writer() as s, s.begin():
                await loyalty.redeem_points(s, actor=SYSTEM, customer_id=cid, points=70, idempotency_key=key)
            return "spent"
        except DomainError as exc:
            return exc.errors[0].code

    outcomes = await asyncio.gather(*(spend(f"k{i}") for i in range(4)))
    assert sorted(outcomes) == ["INSUFFICIENT_POINTS"] * 3 + ["spent"]
    assert await balance(db, cid) == (30, 0)
