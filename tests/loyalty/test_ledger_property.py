"""For random sequences of orders, payments, redemptions, refunds, cancellations and the passing
of time, the ledger's balances equal a replay of the program's rules written here from scratch
(docs/loyalty.md), and no refund takes back more than the order earned or gives back more than
was spent on it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crm_graph.core.actor import SYSTEM
from crm_graph.core.clock import frozen_clock
from crm_graph.core.errors import DomainError
from crm_graph.loyalty import service as loyalty
from crm_graph.loyalty.models import EntryKind, LoyaltyEntry, LoyaltyRule
from tests.loyalty import factories as f

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RATE = Decimal("1.5")  # points per euro: fractions make the rounding matter
RETURN_DAYS, EXPIRY_DAYS = 30, 60  # short lives, so waits make lots expire in between
_keys = itertools.count()


def floor(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_FLOOR))


@dataclass
class Lot:
    id: int
    remaining: int
    available: datetime
    expires: datetime
    order: int | None


@dataclass
class Order:
    total: Decimal
    paid: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)
    earned: int = 0
    spent: int = 0
    reversed: int = 0  # counting what could not be taken
    restored: int = 0
    ended: bool = False


@dataclass
class Model:
    """The rules, replayed in memory."""

    now: datetime = START
    lots: list[Lot] = field(default_factory=list)
    orders: dict[int, Order] = field(default_factory=dict)
    seq: int = 0

    def lot(self, points: int, available: datetime, order: int | None) -> None:
        self.seq += 1
        self.lots.append(Lot(self.seq, points, available, available + timedelta(days=EXPIRY_DAYS), order))

    def active_lots(self) -> list[Lot]:
        live = [x for x in self.lots if x.remaining > 0 and x.available <= self.now and x.expires > self.now]
        return sorted(live, key=lambda x: (x.expires, x.id))

    def balance(self) -> tuple[int, int]:
        live = [x for x in self.lots if x.remaining > 0 and x.expires > self.now]
        return (sum(x.remaining for x in live if x.available <= self.now), sum(x.remaining for x in live if x.available > self.now))

    def take(self, wanted: int, first: list[Lot] = ()) -> int:
        taken = 0
        for x in [*first, *[y for y in self.active_lots() if y not in first]]:
            share = min(x.remaining, wanted - taken)
            x.remaining -= share
            taken += share
        return taken

    def pay(self, order: int, amount: Decimal) -> None:
        o = self.orders[order]
        o.paid += amount
        points = floor(amount * RATE)
        if points > 0:
            o.earned += points
            self.lot(points, self.now + timedelta(days=RETURN_DAYS), order)

    def redeem(self, order: int, points: int) -> bool:
        if points > self.balance()[0]:
            return False
        self.take(points)
        self.orders[order].spent += points
        return True

    def refund(self, order: int, amount: Decimal | None) -> None:
        o = self.orders[order]
        base = o.paid if o.paid > 0 else o.total
        o.refunded = base if amount is None else o.refunded + amount
        share = o.refunded / base
        reverse = min(floor(o.earned * share), o.earned) - o.reversed
        if reverse > 0:
            self.take(reverse, [x for x in self.lots if x.order == order and x.expires > self.now])
            o.reversed += reverse
        restore = min(floor(o.spent * share), o.spent) - o.restored
        if restore > 0:
            o.restored += restore
            self.lot(restore, self.now, None)


step = st.one_of(
    st.tuples(st.just("order"), st.integers(1, 400)),
    st.tuples(st.just("pay"), st.integers(0, 3), st.integers(1, 100)),  # percent of the balance due
    st.tuples(st.just("redeem"), st.integers(0, 3), st.integers(1, 300)),
    st.tuples(st.just("refund"), st.integers(0, 3), st.integers(1, 100)),  # percent of what is left
    st.tuples(st.just("end"), st.integers(0, 3)),  # cancel or refund the order in full
    st.tuples(st.just("wait"), st.sampled_from([1, 10, 31, 45])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=20))
# Two awards expiring at different times, a redemption between, the first one's expiry after.
@example(steps=[("order", 100), ("pay", 0, 50), ("wait", 31), ("pay", 0, 100), ("wait", 31), ("redeem", 0, 60),
                ("wait", 31), ("refund", 0, 40), ("end", 0)])
async def test_balance_equals_a_replay_of_the_rules(db, steps):
    import os

    os.environ["CRM_LOYALTY_EXPIRY_DAYS"] = str(EXPIRY_DAYS)  # read on each call; removed below
    try:
        await _replay(db, steps)
    finally:
        del os.environ["CRM_LOYALTY_EXPIRY_DAYS"]


async def _replay(db, steps) -> None:
    model = Model()
    async with db.writer() as s, s.begin():
        if await s.scalar(sa.select(LoyaltyRule.id).limit(1)) is None:
            await f.rule(s, kind="SPEND", name="1.5 per euro", points=RATE, currency="EUR")
        cid = await f.customer(s)
    order_ids: list[int] = []
    with frozen_clock(START) as clock:
        for op, *args in steps:
            async with db.writer() as s, s.begin():
                if op == "order":
                    product = await f.product(s, f"{args[0]}.00")
                    order = await f.order(s, cid, product)
                    order_ids.append(order.id)
                    model.orders[order.id] = Order(total=order.total)
                elif op == "wait":
                    model.now = clock.advance(days=args[0])
                    await loyalty.expire_due(s)
                elif not order_ids:
                    continue
                else:
                    oid = order_ids[args[0] % len(order_ids)]
                    o = model.orders[oid]
                    if op == "pay" and not o.ended and o.paid < o.total:
                        amount = max(Decimal("0.01"), ((o.total - o.paid) * args[1] / 100).quantize(Decimal("0.01"), ROUND_FLOOR))
                        payment = await f.pay(s, oid, str(amount))
                        await loyalty.earn_for_payment(s, payment.id)
                        model.pay(oid, amount)
                    elif op == "redeem" and not o.ended:
                        try:
                            await loyalty.redeem_points(s, actor=SYSTEM, customer_id=cid, points=args[1], order_id=oid,
                                                        idempotency_key=f"redeem-{next(_keys)}")
                            accepted = True
                        except DomainError:
                            accepted = False
                        assert accepted == model.redeem(oid, args[1])
                    elif op == "refund" and not o.ended and o.paid > 0:
                        base = o.paid
                        amount = ((base - o.refunded) * args[1] / 100).quantize(Decimal("0.01"), ROUND_FLOOR)
                        if amount > 0:
                            await loyalty.reverse_order_points(s, actor=SYSTEM, order_id=oid, refunded_amount=amount,
                                                               idempotency_key=f"refund-{next(_keys)}")
                            model.refund(oid, amount)
                    elif op == "end" and not o.ended:
                        await loyalty.reverse_order_points(s, actor=SYSTEM, order_id=oid, refunded_amount=None,
                                                           idempotency_key=f"order:{oid}:ended")
                        model.refund(oid, None)
                        o.ended = True
            async with db.reader() as s:
                got = (await loyalty.balances(s, [cid]))[cid]
                ledger = await s.scalar(sa.select(sa.func.coalesce(sa.func.sum(LoyaltyEntry.points), 0))
                                        .where(LoyaltyEntry.customer_id == cid))
                by_order = dict((await s.execute(
                    sa.select(LoyaltyEntry.order_id, sa.func.sum(LoyaltyEntry.points))
                    .where(LoyaltyEntry.customer_id == cid, LoyaltyEntry.kind.in_((EntryKind.EARN, EntryKind.REVERSE)))
                    .group_by(LoyaltyEntry.order_id))).all())
            assert (got.active, got.pending) == model.balance(), (op, args)
            assert ledger == got.active + got.pending  # every point is in exactly one unspent lot or an entry that took it
            assert all(net >= 0 for net in by_order.values())  # no refund took back more than its order earned
            for o in model.orders.values():
                assert o.reversed <= o.earned and o.restored <= o.spent
