"""Time the global search at 100,000 customers next to the bare SQL statement it runs.

    .venv/bin/python bench/search.py [--customers 100000] [--repeat 30] [--backend sqlite|postgresql|both]

Loads deterministic customers (Chinese and Latin people and companies, some Japanese and Korean
companies; emails, phones and cities) by bulk Core inserts, each batch followed by
``crm_graph.search.service.reindex``, as a bulk import does, into a fresh SQLite file and a
throwaway PostgreSQL. Then, for queries of several kinds (a CJK character, a CJK substring, a
Latin word, an accented word in both modes, a short Latin prefix), prints median and p95 over
``--repeat`` runs of:

  search     ``service.search`` as the API calls it (parse, statement, scope, rows);
  bare       the same compiled statement sent straight to the driver;
  scan       counting the customers whose display name ``contains`` the query, the way a list
             filter runs it: every row read, no index (one field only, so it finds less);

the ratios search/bare and scan/search, the hit counts, and whether the database's own plan
(no planner settings changed) reads the trigram or token index. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa  # noqa: E402

from common import bench_settings  # noqa: E402
from crm_graph.core.filters import string_condition  # noqa: E402
from crm_graph.customers.models import Customer, CustomerEmail, CustomerPhone  # noqa: E402
from crm_graph.db import migrate  # noqa: E402
from crm_graph.db.session import Database  # noqa: E402
from crm_graph.search import service  # noqa: E402

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
BATCH = 5000

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉兰飞鹏辉宇浩然思雨欣怡子涵梓轩晨阳俊杰文博雪梅海燕立新春花"
CITIES_CN = ["北京", "上海", "深圳", "杭州", "广州", "成都", "南京", "武汉", "西安", "苏州"]
BRANDS = ["字节跳动", "腾讯", "阿里巴巴", "华为", "小米", "美团", "京东", "网易", "百度", "滴滴", "拼多多", "蔚来", "比亚迪",
          "海尔", "格力", "联想", "中兴", "大疆", "顺丰", "携程", "快手", "哔哩哔哩", "金山", "长城", "东方", "新华", "恒达", "宏远"]
INDUSTRY = ["科技有限公司", "贸易有限公司", "网络技术有限公司", "信息技术有限公司", "电子商务有限公司", "实业有限公司"]
FIRST = ["Anna", "Hans", "José", "François", "Łukasz", "Søren", "Zoë", "Émile", "Jürgen", "Chloé", "Mateo", "Olivia",
         "Liam", "Noah", "Emma", "Sofía", "Björn", "Ana", "Luca", "Mia", "Jan", "Eva", "Tomás", "Inès"]
LAST = ["Müller", "Schmidt", "Schäfer", "García", "Núñez", "Ødegaard", "Dubois", "Lefèvre", "Kowalski", "Smith",
        "Johnson", "Brown", "Rossi", "Bianchi", "Novák", "Dvořák", "Jensen", "Larsen", "Fischer", "Weber", "Martin"]
LATIN_CO = ["{} & Söhne GmbH", "{} Consulting Ltd", "Société {} SARL", "{} Logística S.A.", "{} Handels AG"]
JA_KO = ["ソニー株式会社", "トヨタ自動車株式会社", "株式会社日立製作所", "任天堂株式会社", "삼성전자", "현대자동차", "엘지전자", "네이버 주식회사"]
CITIES = ["Berlin", "München", "Zürich", "Paris", "Kraków", "São Paulo", "Madrid", "København", "Wien", "London"]


def customer_rows(n: int, seed: int = 7) -> tuple[list[dict], list[dict], list[dict]]:
    rnd = random.Random(seed)
    customers, emails, phones = [], [], []
    for i in range(1, n + 1):
        kind_roll = rnd.random()
        row = dict(id=i, kind="PERSON", lifecycle_stage="STABILITY", consent_status="UNKNOWN", version=1,
                   created_at=NOW, updated_at=NOW, first_name=None, last_name=None, organization_name=None, city=None)
        if kind_roll < 0.40:  # Chinese person: family name first, no space
            last, first = rnd.choice(SURNAMES), "".join(rnd.choice(GIVEN) for _ in range(rnd.choice((1, 2))))
            row.update(first_name=first, last_name=last, display_name=last + first, city=rnd.choice(CITIES_CN), country="CN")
            phones.append(dict(customer_id=i, number=f"+86138{rnd.randrange(10**8):08d}", is_primary=True, position=0))
        elif kind_roll < 0.65:  # Latin person
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            row.update(first_name=first, last_name=last, display_name=f"{first} {last}", city=rnd.choice(CITIES), country="DE")
            emails.append(dict(customer_id=i, address=f"{first[0].lower()}.{i}@example.org", is_primary=True, position=0))
        elif kind_roll < 0.85:  # Chinese company
            brand = rnd.choice(BRANDS) + rnd.choice(("", "", rnd.choice(GIVEN), rnd.choice(SURNAMES) + rnd.choice(GIVEN)))
            name = rnd.choice(CITIES_CN) + brand + rnd.choice(INDUSTRY)
            row.update(kind="ORGANIZATION", organization_name=name, display_name=name, country="CN")
        elif kind_roll < 0.95:  # Latin company
            name = rnd.choice(LATIN_CO).format(rnd.choice(LAST))
            row.update(kind="ORGANIZATION", organization_name=name, display_name=name, city=rnd.choice(CITIES), country="DE")
            emails.append(dict(customer_id=i, address=f"info{i}@firma.example", is_primary=True, position=0))
        else:  # Japanese or Korean company
            name = rnd.choice(JA_KO)
            row.update(kind="ORGANIZATION", organization_name=name, display_name=name, country="JP")
        customers.append(row)
    return customers, emails, phones


async def load(db: Database, n: int) -> tuple[float, float]:
    customers, emails, phones = customer_rows(n)
    inserting = indexing = 0.0
    async with db.writer() as session, session.begin():
        for start in range(0, n, BATCH):
            ids = range(start + 1, min(start + BATCH, n) + 1)
            began = time.perf_counter()
            await session.execute(sa.insert(Customer), customers[start:start + BATCH])
            low, high = ids[0], ids[-1]
            part = [e for e in emails if low <= e["customer_id"] <= high]
            if part:
                await session.execute(sa.insert(CustomerEmail), part)
            part = [p for p in phones if low <= p["customer_id"] <= high]
            if part:
                await session.execute(sa.insert(CustomerPhone), part)
            middle = time.perf_counter()
            await service.reindex(session, "customer", list(ids))
            inserting += middle - began
            indexing += time.perf_counter() - middle
    return inserting, indexing


QUERIES = [
    ("CJK character", "张", {}),
    ("CJK substring (2)", "跳动", {}),
    ("CJK substring (4)", "字节跳动", {}),
    ("Japanese", "株式会社", {}),
    ("Latin word", "schmidt", {}),
    ("accented word", "MÜLLER", {}),
    ("accent-insensitive", "muller", {"ignore_accents": True}),
    ("short prefix", "jo", {}),
]


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


async def timed(repeat: int, work) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    samples, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = await work()
        samples.append((time.perf_counter() - began) * 1000)
    median, p95 = quantiles(samples)
    return median, p95, result


async def run(backend: str, n: int, repeat: int) -> None:
    settings, stop = await bench_settings("search", backend == "postgresql")
    try:
        await asyncio.to_thread(migrate.upgrade, settings)
        db = Database.from_settings(settings)
        inserting, indexing = await load(db, n)
        async with db.engine.connect() as conn:
            # What autovacuum does soon after a bulk load (on PostgreSQL it also moves new GIN
            # entries from the pending list into the index proper).
            if db.dialect == "postgresql":
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql("VACUUM ANALYZE")
            else:
                await conn.exec_driver_sql("ANALYZE")
            await conn.commit()
            entries = (await conn.execute(sa.text("SELECT count(*) FROM search_entries"))).scalar_one()
        print(f"\n{db.dialect}: {n} customers, {entries} search entries; bulk insert {inserting:.1f} s, "
              f"reindex {indexing:.1f} s ({n / indexing:,.0f} customers/s)")
        print(f"  {'query':<22}{'hits':>7}  {'search ms med/p95':>18}  {'bare ms med/p95':>16}  {'scan ms med':>11}"
              f"  {'search/bare':>11}  {'scan/search':>11}  index in plan")
        for label, query, kw in QUERIES:
            async with db.reader() as session:
                async def api() -> object:
                    return await service.search(session, query=query, first=20, **kw)
                s_med, s_p95, result = await timed(repeat, api)
                q = service.parse(query, **kw)
                stmt = service.search_statement(session, q, first=20)
                connection = await session.connection()
                compiled = stmt.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
                sql = str(compiled)
                params = tuple(compiled.params[k] for k in compiled.positiontup or ())

                async def bare() -> object:
                    return (await connection.exec_driver_sql(sql, params)).all()
                b_med, b_p95, _ = await timed(repeat, bare)
                # What finding *all* matches costs without the index (a count, as totalCount
                # needs, and what ranking needs): `contains` over display names reads every row.
                scan_stmt = sa.select(sa.func.count()).select_from(Customer).where(
                    string_condition(Customer.display_name, {"contains": query}, "f"), Customer.deleted_at.is_(None)
                )

                async def scan() -> object:
                    return (await session.execute(scan_stmt)).scalar_one()
                c_med, _, _ = await timed(max(3, repeat // 5), scan)
                plan = await service.explain(session, query=query, **kw)
            used = ("search_trigrams" if "search_trigrams" in plan else "search_tokens" if "search_tokens" in plan else "") \
                if db.dialect == "sqlite" else ", ".join(sorted({line.split(" on ")[1].split()[0] for line in plan.splitlines()
                                                                  if "Index Scan on ix_search_entries_" in line and "_tsv" in line
                                                                  or "_trgm" in line and "Index Scan on" in line}))
            print(f"  {label:<22}{result.total:>7}  {s_med:8.2f}/{s_p95:<8.2f}  {b_med:7.2f}/{b_p95:<7.2f}  {c_med:11.2f}"
                  f"  {s_med / b_med:10.2f}x  {c_med / s_med:10.1f}x  {used or 'NO INDEX'}")
        await db.dispose()
    finally:
        stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    for backend in ("sqlite", "postgresql") if args.backend == "both" else (args.backend,):
        await run(backend, args.customers, args.repeat)


if __name__ == "__main__":
    asyncio.run(main())
