"""Benchmark data: a deterministic generator of realistic volumes (100k customers, 1M orders,
200k opportunities, 100k tickets by default) written with bulk inserts.

``crm-graph bench generate`` (and ``make bench-data``) runs it. It is not the demo data
(crm_graph/seed.py), which goes through the services, events and all, and takes a fraction of
a second per customer: these volumes need Core ``INSERT``s of thousands of rows per statement,
so nothing here raises events or asks plugins. What it writes obeys the same rules as data made
through the API (clean E.164 phones, lower-cased emails, totals that add up, stages that match
the opportunity's status), and the search index is brought up to date batch by batch.

The same arguments give the same rows (a fixed random seed per table), into SQLite or PostgreSQL.
It refuses a database that holds customers already: benchmark rows are never mixed into real data.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import phonenumbers
import sqlalchemy as sa

from crm_graph.customers.models import Customer, CustomerEmail, CustomerPhone, CustomerTag
from crm_graph.db.session import Database
from crm_graph.sales.models import Opportunity, Order, OrderLineItem, Pipeline, PipelineStage, Product, StageKind
from crm_graph.support.models import Ticket

SYSTEM = "bench"
# Rows per INSERT statement: large enough that per-statement costs vanish, small enough that
# SQLite's and asyncpg's parameter limits are never near (insertmanyvalues batches them further).
BATCH = 5000
# Orders and tickets are dated in the two years before this instant (fixed, so runs compare).
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)

LATIN = {
    "US": (["James", "Mary", "Robert", "Patricia", "Michael", "Jennifer", "David", "Linda"],
           ["Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Garcia"], ["New York", "Chicago", "Austin"]),
    "DE": (["Lukas", "Anna", "Felix", "Lena", "Jonas", "Mia", "Jürgen", "Hannah"],
           ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Köhler"], ["Berlin", "München", "Köln"]),
    "FR": (["Lucas", "Emma", "Hugo", "Chloé", "Louis", "Inès", "Jules", "Léa"],
           ["Martin", "Bernard", "Dubois", "Thomas", "Lefèvre", "Richard", "Petit", "Durand"], ["Paris", "Lyon", "Marseille"]),
    "BR": (["Miguel", "Alice", "Heitor", "Sophia", "Davi", "Laura", "João", "Helena"],
           ["Silva", "Santos", "Oliveira", "Souza", "Conceição", "Ferreira", "Alves", "Pereira"], ["São Paulo", "Recife", "Curitiba"]),
}
# Family name first and no space, as Chinese names are written.
CHINESE_FAMILY = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "欧阳", "司马"]
CHINESE_GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "桂英", "建华"]
CHINESE_CITIES = ["北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京"]
CHINESE_COMPANY = (["华为", "字节跳动", "阿里", "腾讯", "美团", "小米", "比亚迪", "海尔", "格力", "京东"],
                   ["科技", "贸易", "物流", "食品", "电子", "医疗", "文化"], ["有限公司", "股份有限公司", "集团"])
LATIN_COMPANY = (["Acme", "Northwind", "Blue Harbor", "Evergreen", "Summit", "Pioneer", "Atlas", "Lumen", "Helix"],
                 ["Trading", "Foods", "Logistics", "Systems", "Retail", "Health", "Energy", "Labs"], ["Ltd", "GmbH", "Inc", "SA"])
TAGS = ["vip", "newsletter", "wholesale", "b2b", "retail", "partner", "eco", "early-adopter", "price-sensitive"]
STAGES = ["LEAD", "EXPLORATION", "FORMATION", "STABILITY", "STABILITY", "DECLINE", "CHURNED"]
CURRENCY = {"US": "USD", "DE": "EUR", "FR": "EUR", "BR": "BRL", "CN": "CNY"}
SUBJECTS = ["Invoice question", "Delivery late", "Cannot sign in", "Refund request", "Damaged item", "订单未到", "发票问题"]


@dataclass(frozen=True)
class Volumes:
    customers: int = 100_000
    orders: int = 1_000_000
    opportunities: int = 200_000
    tickets: int = 100_000
    products: int = 500


Progress = Callable[[str, int], None]  # (table, rows just written)


class NotEmpty(RuntimeError):
    pass


def _phones(rng: random.Random, country: str, count: int) -> list[str]:
    """``count`` valid mobile numbers of ``country`` in E.164, from its example number."""
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    national = str(example.national_number)
    found: list[str] = []
    while len(found) < count:
        number = phonenumbers.parse(f"+{example.country_code}{national[:-5]}{rng.randrange(100000):05d}")
        if phonenumbers.is_valid_number(number):
            found.append(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return found


def _chunks(rows: Iterator[dict[str, Any]], size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def customer_rows(count: int, seed: int = 19) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]], list[str]]]:
    """(customer row, its email and phone rows, its tags) for customers 1..count: a sixth of them
    organizations, a fifth of everyone Chinese (CN), the rest from four Latin-script countries."""
    rng = random.Random(seed)
    countries = [*LATIN, "CN"]
    phones = {c: _phones(random.Random(seed + i), c, 500) for i, c in enumerate(countries)}
    for n in range(1, count + 1):
        country = "CN" if rng.random() < 0.2 else rng.choice(list(LATIN))
        created = NOW - timedelta(minutes=rng.randint(0, 730 * 24 * 60))
        row: dict[str, Any] = dict(
            id=n, external_system=SYSTEM, external_id=f"{n:07d}", country=country, lifecycle_stage=rng.choice(STAGES),
            consent_status=rng.choice(["UNKNOWN", "OPTED_IN", "OPTED_IN", "OPTED_OUT"]), source="IMPORT",
            version=1, created_at=created, updated_at=created, first_name=None, last_name=None, organization_name=None,
        )
        if n % 6 == 1:
            words = CHINESE_COMPANY if country == "CN" else LATIN_COMPANY
            if country == "CN":
                name = f"{rng.choice(CHINESE_CITIES)}{rng.choice(words[0])}{rng.choice(words[1])}{rng.choice(words[2])}"
            else:
                name = f"{rng.choice(words[0])} {rng.choice(words[1])} {rng.choice(words[2])}"
            row.update(kind="ORGANIZATION", organization_name=name, display_name=name)
            local = f"info{n}"
        else:
            if country == "CN":
                first, last = rng.choice(CHINESE_GIVEN), rng.choice(CHINESE_FAMILY)
                display = f"{last}{first}"
                city = rng.choice(CHINESE_CITIES)
            else:
                firsts, lasts, cities = LATIN[country]
                first, last = rng.choice(firsts), rng.choice(lasts)
                display = f"{first} {last}"
                city = rng.choice(cities)
            row.update(kind="PERSON", first_name=first, last_name=last, display_name=display, city=city)
            local = f"p{n}"
        row.setdefault("city", rng.choice(CHINESE_CITIES) if country == "CN" else rng.choice(LATIN[country][2]))
        contacts = [
            {"table": "email", "customer_id": n, "address": f"{local}@bench{n % 97}.example", "is_primary": True, "position": 0},
            {"table": "phone", "customer_id": n, "number": rng.choice(phones[country]), "is_primary": True, "position": 0},
        ]
        yield row, contacts, rng.sample(TAGS, rng.randint(0, 3))


async def generate(db: Database, volumes: Volumes = Volumes(), progress: Progress | None = None) -> dict[str, int]:
    """Write ``volumes`` of benchmark data into the (migrated, customer-free) database of ``db``."""
    tick = progress or (lambda table, rows: None)
    async with db.reader() as session:
        if await session.scalar(sa.select(sa.func.count()).select_from(Customer)):
            raise NotEmpty("The database holds customers already; benchmark data goes into an empty database.")
        pipeline_id = await session.scalar(sa.select(Pipeline.id).where(Pipeline.is_default.is_(True)))
        stages = (await session.execute(
            sa.select(PipelineStage.id, PipelineStage.kind).where(PipelineStage.pipeline_id == pipeline_id,
                                                                  PipelineStage.removed_at.is_(None))
            .order_by(PipelineStage.position))).all()
    counts = dict.fromkeys(["customers", "products", "opportunities", "orders", "order_lines", "tickets"], 0)
    currencies: dict[int, str] = {}

    for batch in _chunks(iter(customer_rows(volumes.customers)), BATCH):
        rows = [c for c, _, _ in batch]
        emails = [{k: v for k, v in e.items() if k != "table"} for _, cs, _ in batch for e in cs if e["table"] == "email"]
        phones = [{k: v for k, v in e.items() if k != "table"} for _, cs, _ in batch for e in cs if e["table"] == "phone"]
        tags = [{"customer_id": c["id"], "tag": t} for c, _, ts in batch for t in ts]
        async with db.writer() as session, session.begin():
            await session.execute(Customer.__table__.insert(), rows)
            await session.execute(CustomerEmail.__table__.insert(), emails)
            await session.execute(CustomerPhone.__table__.insert(), phones)
            if tags:
                await session.execute(CustomerTag.__table__.insert(), tags)
            await _reindex(session, "customer", [c["id"] for c in rows])
        for c in rows:
            currencies[c["id"]] = CURRENCY[c["country"]]
        counts["customers"] += len(rows)
        tick("customers", len(rows))

    rng = random.Random(23)
    prices = {}
    async with db.writer() as session, session.begin():
        products = []
        for n in range(1, volumes.products + 1):
            price = Decimal(rng.randint(199, 99_900)) / 100
            prices[n] = price
            products.append(dict(id=n, sku=f"BENCH-{n:05d}", name=f"{rng.choice(['Widget', 'Gadget', 'Sensor', '咖啡机', 'Pump'])} {n}",
                                 unit_price=price, currency="EUR", active=True, version=1, created_at=NOW, updated_at=NOW))
        if products:
            await session.execute(Product.__table__.insert(), products)
            await _reindex(session, "product", [p["id"] for p in products])
    counts["products"] = volumes.products
    tick("products", volumes.products)

    open_stages = [s for s, kind in stages if kind is StageKind.OPEN]
    won = next((s for s, kind in stages if kind is StageKind.WON), None)
    lost = next((s for s, kind in stages if kind is StageKind.LOST), None)

    def opportunities() -> Iterator[dict[str, Any]]:
        r = random.Random(29)
        for n in range(1, volumes.opportunities + 1):
            customer_id = r.randint(1, volumes.customers)
            created = NOW - timedelta(minutes=r.randint(0, 730 * 24 * 60))
            outcome = r.random()
            status, stage = ("OPEN", r.choice(open_stages)) if outcome < 0.6 or won is None else (
                ("WON", won) if outcome < 0.8 or lost is None else ("LOST", lost))
            yield dict(id=n, title=f"Deal {n}", customer_id=customer_id, pipeline_id=pipeline_id, stage_id=stage,
                       amount=Decimal(r.randint(1_000, 5_000_000)) / 100, currency=currencies.get(customer_id, "EUR"),
                       status=status, stage_entered_at=created, closed_at=None if status == "OPEN" else created + timedelta(days=30),
                       expected_close_date=(created + timedelta(days=r.randint(10, 120))).date(),
                       version=1, created_at=created, updated_at=created)

    if volumes.customers and open_stages:
        for batch in _chunks(opportunities()):
            async with db.writer() as session, session.begin():
                await session.execute(Opportunity.__table__.insert(), batch)
                await _reindex(session, "opportunity", [o["id"] for o in batch])
            counts["opportunities"] += len(batch)
            tick("opportunities", len(batch))

    def orders() -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        r = random.Random(31)
        # Purchase frequency has a long tail: a few customers buy very often (what RFM looks at).
        weights = [r.paretovariate(1.2) for _ in range(volumes.customers)]
        line_id = 0
        for start in range(0, volumes.orders, BATCH):
            buyers = r.choices(range(1, volumes.customers + 1), weights=weights, k=min(BATCH, volumes.orders - start))
            for offset, customer_id in enumerate(buyers):
                n = start + offset + 1
                at = NOW - timedelta(minutes=r.randint(0, 730 * 24 * 60))
                lines, subtotal = [], Decimal(0)
                for position in range(r.randint(1, 3)):
                    product = r.randint(1, max(1, volumes.products))
                    quantity = Decimal(r.randint(1, 4))
                    unit = prices.get(product, Decimal("9.99"))
                    total = unit * quantity
                    subtotal += total
                    line_id += 1
                    lines.append(dict(id=line_id, order_id=n, position=position, description=f"Item {product}", quantity=quantity,
                                      unit_price=unit, discount_percent=0, subtotal=total, discount=0, total=total,
                                      product_id=product if volumes.products else None, sku=f"BENCH-{product:05d}"))
                paid = r.random() > 0.08
                yield dict(id=n, number=f"BENCH-{n:08d}", customer_id=customer_id, status="FULFILLED" if paid else "CANCELLED",
                           payment_status="PAID" if paid else "UNPAID", currency=currencies.get(customer_id, "EUR"),
                           subtotal=subtotal, discount=0, tax_rate=0, tax=0, total=subtotal,
                           paid_amount=subtotal if paid else 0, ordered_at=at, origin="EXTERNAL", version=1,
                           created_at=at, updated_at=at), lines

    if volumes.customers:
        batch_orders: list[dict[str, Any]] = []
        batch_lines: list[dict[str, Any]] = []
        for order, lines in orders():
            batch_orders.append(order)
            batch_lines.extend(lines)
            if len(batch_orders) == BATCH:
                await _write_orders(db, batch_orders, batch_lines)
                counts["orders"] += len(batch_orders)
                counts["order_lines"] += len(batch_lines)
                tick("orders", len(batch_orders))
                batch_orders, batch_lines = [], []
        if batch_orders:
            await _write_orders(db, batch_orders, batch_lines)
            counts["orders"] += len(batch_orders)
            counts["order_lines"] += len(batch_lines)
            tick("orders", len(batch_orders))

    def tickets() -> Iterator[dict[str, Any]]:
        r = random.Random(37)
        for n in range(1, volumes.tickets + 1):
            created = NOW - timedelta(minutes=r.randint(0, 730 * 24 * 60))
            status = r.choice(["NEW", "OPEN", "PENDING", "RESOLVED", "CLOSED", "CLOSED"])
            done = status in ("RESOLVED", "CLOSED")
            yield dict(id=n, customer_id=r.randint(1, volumes.customers), subject=r.choice(SUBJECTS),
                       channel=r.choice(["EMAIL", "PHONE", "WEB", "CHAT"]), priority=r.choice(["LOW", "NORMAL", "NORMAL", "HIGH", "URGENT"]),
                       status=status, first_responded_at=created + timedelta(hours=2) if status != "NEW" else None,
                       resolved_at=created + timedelta(days=2) if done else None,
                       closed_at=created + timedelta(days=3) if status == "CLOSED" else None,
                       clock_stopped_at=created + timedelta(days=2) if done else None,
                       version=1, created_at=created, updated_at=created)

    if volumes.customers:
        for batch in _chunks(tickets()):
            async with db.writer() as session, session.begin():
                await session.execute(Ticket.__table__.insert(), batch)
                await _reindex(session, "ticket", [t["id"] for t in batch])
            counts["tickets"] += len(batch)
            tick("tickets", len(batch))
    if db.dialect == "postgresql":
        await _advance_sequences(db)
    return counts


async def _write_orders(db: Database, orders: list[dict[str, Any]], lines: list[dict[str, Any]]) -> None:
    async with db.writer() as session, session.begin():
        await session.execute(Order.__table__.insert(), orders)
        await session.execute(OrderLineItem.__table__.insert(), lines)


async def _reindex(session: Any, entity: str, ids: list[int]) -> None:
    """The new rows into the search index (crm_graph/search), as every write path keeps it."""
    from crm_graph.search.service import reindex

    await reindex(session, entity, ids)


async def _advance_sequences(db: Database) -> None:
    """Rows were written with explicit ids: PostgreSQL's identity sequences must move past them,
    or the next row made through the API would collide."""
    tables = [Customer, CustomerEmail, CustomerPhone, Product, Opportunity, Order, OrderLineItem, Ticket]
    async with db.writer() as session, session.begin():
        for model in tables:
            table = model.__table__.name
            await session.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), 1))"))
