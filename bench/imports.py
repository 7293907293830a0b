"""Time importing customers from CSV and XLSX next to a raw Core bulk insert of the same rows.

    .venv/bin/python bench/imports.py [--rows 100000] [--postgresql] [--formats csv,xlsx]

Into a fresh database (a SQLite file, or a throwaway PostgreSQL with --postgresql) it imports
`--rows` customers from a generated file per format (external ID, full name, email, phone,
country, city, birthday, tags), the way `crm-graph import` does: parsed, every value through the
API's normalisers, upserted in batches of 1,000 with their checkpoint, the search index updated
after each batch. Then it inserts the same rows, already clean, with plain executemany INSERTs
(customers, emails, phones) and prints rows per second of both and their ratio. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa  # noqa: E402

from common import bench_settings  # noqa: E402
from crm_graph.core.actor import SYSTEM  # noqa: E402
from crm_graph.core.clock import utcnow  # noqa: E402
from crm_graph.customers.models import Customer, CustomerEmail, CustomerPhone  # noqa: E402
from crm_graph.db import migrate  # noqa: E402
from crm_graph.db.session import Database  # noqa: E402
from crm_graph.imports import service  # noqa: E402
from crm_graph.imports.models import ImportEntity, ImportKey, ImportMode  # noqa: E402

HEADER = ["Customer ID", "Name", "Email", "Phone", "Country", "City", "Birthday", "Tags"]
MAPPING = {"columns": [
    {"source": "Customer ID", "target": "externalId"}, {"source": "Name", "target": "fullName"},
    {"source": "Email", "target": "email"}, {"source": "Phone", "target": "phone"}, {"source": "Country", "target": "country"},
    {"source": "City", "target": "city"}, {"source": "Birthday", "target": "birthday"}, {"source": "Tags", "target": "tags"},
]}
CITIES = [("DE", "Berlin", "030 {:07d}"), ("CN", "上海", "139{:08d}"), ("FR", "Paris", "01 4{:07d}"), ("US", "Boston", "617 5{:06d}")]


def rows(n: int, prefix: str) -> list[list[str]]:
    out = []
    for i in range(n):
        country, city, phone = CITIES[i % len(CITIES)]
        name = f"张{chr(0x4E00 + i % 2000)}" if country == "CN" else f"Alex{i} Example{i % 991}"
        out.append([f"{prefix}{i}", name, f"{prefix.lower()}{i}@example.com", phone.format(i % 999_999),
                    country, city, f"{1950 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}", "vip" if i % 7 == 0 else ""])
    return out


def csv_file(data: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([HEADER, *data])
    return out.getvalue().encode("utf-8")


def xlsx_file(data: list[list[str]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("customers")
    sheet.append(HEADER)
    for row in data:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def import_file(db: Database, name: str, content: bytes) -> tuple[float, object]:
    async with db.writer() as session, session.begin():
        job = await service.start_import(session, actor=SYSTEM, entity=ImportEntity.CUSTOMER, file_name=name, content=content,
                                         format=None, mode=ImportMode.UPSERT, key=ImportKey.EXTERNAL_REF, dry_run=False, spec=MAPPING)
    start = time.perf_counter()
    done = await service.run_job(db, job.id)
    return time.perf_counter() - start, done


async def raw_insert(db: Database, data: list[list[str]]) -> float:
    """The floor: the same rows, clean already, by executemany in batches of 1,000."""
    from datetime import date

    from crm_graph.imports.writers import _allocate_ids

    now = utcnow()
    start = time.perf_counter()
    for b in range(0, len(data), 1000):
        part = data[b : b + 1000]
        customers, emails, phones = [], [], []
        async with db.writer() as session, session.begin():  # ids drawn as the import draws them
            ids = await _allocate_ids(session, Customer.__table__, len(part))
        for i, row in enumerate(part):
            cid = ids[i]
            first, last = row[1].split(" ", 1) if " " in row[1] else (row[1][1:], row[1][:1])
            customers.append({"id": cid, "kind": "PERSON", "first_name": first, "last_name": last, "display_name": row[1],
                              "lifecycle_stage": "LEAD", "consent_status": "UNKNOWN", "source": "IMPORT", "country": row[4],
                              "city": row[5], "birthday": date.fromisoformat(row[6]), "external_system": "raw",
                              "external_id": row[0], "version": 1, "created_at": now, "updated_at": now})
            emails.append({"customer_id": cid, "address": row[2], "is_primary": True, "position": 0})
            phones.append({"customer_id": cid, "number": "+4930" + row[0][-7:].rjust(7, "0"), "is_primary": True, "position": 0})
        async with db.writer() as session, session.begin():
            await session.execute(sa.insert(Customer.__table__), customers)
            await session.execute(sa.insert(CustomerEmail.__table__), emails)
            await session.execute(sa.insert(CustomerPhone.__table__), phones)
    return time.perf_counter() - start


async def bench(n: int, postgresql: bool, formats: list[str]) -> None:
    backend = "PostgreSQL" if postgresql else "SQLite"
    settings, cleanup = await bench_settings("imports", postgresql)
    try:
        await asyncio.to_thread(migrate.upgrade, settings)
        db = Database.from_settings(settings)
        try:
            for fmt in formats:
                data = rows(n, fmt.upper()[0] + "X")
                content = csv_file(data) if fmt == "csv" else xlsx_file(data)
                seconds, job = await import_file(db, f"customers.{fmt}", content)
                raw = await raw_insert(db, rows(n, "R" + fmt.upper()[0]))
                print(f"{backend:10} {fmt.upper():4} {n:>7} rows: import {seconds:6.1f} s = {n / seconds:7,.0f} rows/s "
                      f"(created {job.rows_created}, failed {job.rows_failed}); raw Core insert {raw:5.1f} s = "
                      f"{n / raw:7,.0f} rows/s; import/raw time {seconds / raw:4.1f}x", flush=True)
        finally:
            await db.dispose()
    finally:
        cleanup()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgresql", action="store_true")
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--no-search-index", action="store_true", help="Skip the search index update (to see its share).")
    args = parser.parse_args()
    if args.no_search_index:
        import crm_graph.imports.service as s

        async def no_reindex(session: object, touched: object) -> None:
            return None

        s._reindex = no_reindex  # type: ignore[assignment]
    await bench(args.rows, args.postgresql, args.formats.split(","))


if __name__ == "__main__":
    asyncio.run(main())
