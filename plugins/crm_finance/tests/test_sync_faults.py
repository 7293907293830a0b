"""200 orders pushed to a real hledger-web through a proxy on loopback that loses answers after the
request reached the books, refuses connections, and a server that is killed and restarted in the
middle: the books end with exactly 200 invoices, none twice, and the reconciliation is clean.

The proxy stands for the network and the server's crashes (what cannot be timed otherwise); the
books, the dispatcher, the outbox and the database are the real ones."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from counterparts.hledger import HledgerServer
from crm_finance import service
from crm_finance.models import OrderSync, SyncStatus
from crm_graph.core.actor import SYSTEM
from crm_graph.sales.models import NumberSequence
from crm_graph.sales.service import orders as order_service

# The subject is the books and the network, not the CRM's database: once per `make test`.
pytestmark = pytest.mark.one_pass

ORDERS = 200
PERIOD = (date(2027, 6, 1), date(2027, 6, 30))


@dataclass
class Faults:
    lost_answers: int = 0  # the request reached the books; its answer never came back
    refused: int = 0  # the books could not be reached at all
    restarts: int = 0


class LossyProxy:
    """TCP on loopback, in front of the books: forwards requests, and drops a share of the answers
    (the connection closes instead of passing the answer on)."""

    def __init__(self, upstream_port: int, drop: float, seed: int) -> None:
        self.upstream_port = upstream_port
        self.drop = drop
        self.random = random.Random(seed)
        self.faults = Faults()
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            self.faults.refused += 1
            writer.transport.abort()
            return

        async def requests() -> None:
            try:
                while data := await reader.read(65536):
                    up_writer.write(data)
                    await up_writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                up_writer.close()

        async def answers() -> None:
            # An answer of hledger-web arrives as one read, so a dropped read is a lost answer
            # (on a kept-alive connection too: the lookup's answer, or the booking's).
            try:
                while data := await up_reader.read(65536):
                    if self.random.random() < self.drop:
                        self.faults.lost_answers += 1
                        writer.transport.abort()
                        return
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.transport.abort()

        await asyncio.gather(requests(), answers())


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    server = HledgerServer(tmp_path_factory.mktemp("hledger-faults"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def crm_settings(crm_settings):  # noqa: ANN001, ANN201
    # Retries come quickly here (the real defaults wait 5 s, then longer), and often enough that a
    # run of lost answers does not dead-letter an order.
    return replace(crm_settings, dispatch_backoff_base=0.01, dispatch_backoff_cap=0.05, dispatch_max_attempts=50)


async def _orders(client: Any, db: Any, count: int) -> list[int]:
    from crm_graph.core.ids import decode_as

    made = await client.mutate("mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } errors { code } } }",
                               {"i": {"kind": "ORGANIZATION", "organizationName": "Fault Tolerant AG"}})
    customer_id = decode_as(made["customer"]["id"], "Customer")
    # The books outlive each test's database: this test's order numbers start somewhere of their own.
    async with db.writer() as session, session.begin():
        session.add(NumberSequence(scope="order", year=date.today().year, last_value=random.randrange(100_000, 800_000)))
    out = []
    for n in range(count):
        day = PERIOD[0] + timedelta(days=n % 30)
        async with db.writer() as session, session.begin():
            order = await order_service.create_order(session, actor=SYSTEM, data={
                "customerId": customer_id, "currency": "EUR", "taxRate": Decimal("19"), "status": "CONFIRMED",
                "orderedAt": datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
                "lineItems": [{"description": f"Item {n}", "quantity": Decimal(1 + n % 3), "unitPrice": {"amount": Decimal("10.00") + n, "currency": "EUR"}}],
            })
            out.append(order.id)
    return out


async def test_two_hundred_orders_through_lost_answers_and_a_restart_make_two_hundred_invoices(crm_app, crm_client, crm_db, crm_settings, books):
    proxy = LossyProxy(books.port, drop=0.06, seed=13)
    port = await proxy.start()
    dispatcher = crm_app.state.dispatcher
    from crm_finance.subscriber import FinanceSync

    backends = next(s for s in dispatcher.subscribers if isinstance(s, FinanceSync)).backends
    async with crm_db.writer() as session, session.begin():
        connection = await service.create_connection(session, actor=SYSTEM, settings=crm_settings, backends=backends, data={
            "name": "hledger (lossy)", "backend": "hledger",
            "config": {**books.config, "url": f"http://127.0.0.1:{port}", "timeout": 5}})
    order_ids = await _orders(crm_client, crm_db, ORDERS)

    rounds = 0
    while True:
        rounds += 1
        if rounds == 3:  # the books go down mid-run and come back
            books.stop()
            await dispatcher.run_once()
            books.start()
            proxy.faults.restarts += 1
        await dispatcher.drain(max_rounds=5)
        async with crm_db.reader() as session:
            counts = Counter((await session.execute(sa.select(OrderSync.status, sa.func.count()).group_by(OrderSync.status))).all())
            synced = await session.scalar(sa.select(sa.func.count()).select_from(OrderSync).where(OrderSync.status == SyncStatus.SYNCED))
        if synced == ORDERS or rounds > 200:
            break
        await asyncio.sleep(0.06)  # the next retries fall due
    assert synced == ORDERS, counts

    async with crm_db.reader() as session:
        numbers = list(await session.scalars(sa.select(order_service.Order.number).where(order_service.Order.id.in_(order_ids))))
        attempts = list(await session.scalars(sa.select(OrderSync.attempts)))
    per_order = Counter()
    for number in numbers:
        per_order[number] = len(await books.invoices_for(number))
    assert set(per_order.values()) == {1}, {n: c for n, c in per_order.items() if c != 1}
    assert len(set(numbers)) == ORDERS
    books.check()
    proxy.drop = 0  # the books answer again: read them back through the same connection
    report = await service.reconcile(crm_db, crm_settings, backends, connection.id, *PERIOD)
    await proxy.stop()
    assert report.clean, (report.missing_remote, report.missing_local, report.mismatches)
    assert report.crm_totals == report.remote_totals
    assert proxy.faults.lost_answers > 5 and proxy.faults.restarts == 1
    # What the note reports.
    print(f"\nfault run: {ORDERS} orders, {proxy.faults.lost_answers} answers lost, {proxy.faults.refused} connections "
          f"refused, {proxy.faults.restarts} restart, {sum(attempts)} attempts, "
          f"{rounds} rounds; books: {ORDERS} invoices, none twice")


async def test_two_workers_pushing_one_order_at_once_book_it_once(crm_app, crm_client, crm_db, crm_settings, books):
    import asyncio

    from crm_finance.subscriber import FinanceSync

    backends = next(s for s in crm_app.state.dispatcher.subscribers if isinstance(s, FinanceSync)).backends
    async with crm_db.writer() as session, session.begin():
        connection = await service.create_connection(session, actor=SYSTEM, settings=crm_settings, backends=backends, data={
            "name": "hledger", "backend": "hledger", "config": books.config})
    (order_id,) = await _orders(crm_client, crm_db, 1)
    first, second = await asyncio.gather(*(service.sync_order(crm_db, crm_settings, backends, order_id, connection.id) for _ in range(2)))
    assert sorted([first.busy, second.busy]) == [False, True]  # the second finds the first's lease and waits
    async with crm_db.reader() as session:
        number = await session.scalar(sa.select(order_service.Order.number).where(order_service.Order.id == order_id))
    assert len(await books.invoices_for(number)) == 1
    # Once the first is done, a later delivery finds the invoice and books nothing.
    again = await service.sync_order(crm_db, crm_settings, backends, order_id, connection.id)
    assert again.status is SyncStatus.SYNCED and not again.busy and len(await books.invoices_for(number)) == 1
