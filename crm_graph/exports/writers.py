"""The three file formats of an export, each written page by page.

- CSV: UTF-8 with a byte-order mark (Excel opens a BOM-less UTF-8 file in the machine's legacy
  code page and shows Chinese text as mojibake; with the BOM it reads UTF-8), comma separated,
  a header row, ``\\r\\n`` line ends. Amounts are decimals with at least the currency's minor
  units (``99.50`` CNY, ``1500`` JPY), timestamps ISO 8601 in UTC (``2026-12-04T01:02:03Z``),
  dates ``YYYY-MM-DD``, booleans ``true``/``false``, nothing for null.
- XLSX: one sheet, written with openpyxl's write-only mode (rows are streamed, not kept as
  cells). Amounts are numbers, timestamps and dates the same ISO text as in CSV (a sheet cell
  has no time zone; text keeps the UTC instant unambiguous).
- Parquet: typed columns: ids and counts ``int64``, text ``string``, amounts and quantities
  ``decimal128(19, 4)`` (exact: the stored scale), timestamps ``timestamp[us, tz=UTC]``, dates
  ``date32``, booleans ``bool``. One row group per page.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from crm_graph.core import money
from crm_graph.exports.datasets import BOOL, DATE, DATETIME, DECIMAL, INT, Column
from crm_graph.exports.models import ExportFormat

CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ExportFormat.PARQUET: "application/vnd.apache.parquet",
}
EXTENSIONS = {ExportFormat.CSV: "csv", ExportFormat.XLSX: "xlsx", ExportFormat.PARQUET: "parquet"}


def iso_utc(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _shown_amount(value: Decimal, column: Column, row: dict[str, Any]) -> Decimal:
    currency = row.get(column.currency) if column.currency else None
    if currency in money.CURRENCIES:
        return money.display(value, currency)
    return value.quantize(Decimal(1).scaleb(-money.places(value.normalize()))) if value else Decimal(0)


# Spreadsheets run a cell that starts with = + - @ as a formula (a customer named
# ``=HYPERLINK(...)`` would become a link, ``=cmd|...`` a command): such text gets a leading
# apostrophe in CSV, which Excel shows as plain text. Numbers written as text (``+8613812345678``,
# ``-12.5``) are left as they are.
_FORMULA_START = re.compile(r"^[=@\t\r]|^[+-](?![\d\s().-]*$)")


def defused(text: str) -> str:
    return "'" + text if _FORMULA_START.match(text) else text


def _converter(column: Column) -> Any:
    """``convert(value, row)``: the value of ``column`` as CSV and XLSX write it (XLSX keeps
    numbers as numbers); None stays None."""
    if column.kind == DECIMAL:
        return lambda value, row: None if value is None else _shown_amount(value, column, row)
    if column.kind == DATETIME:
        return lambda value, row: None if value is None else iso_utc(value)
    if column.kind == DATE:
        return lambda value, row: value.isoformat() if isinstance(value, date) else value
    if column.kind == BOOL:
        return lambda value, row: None if value is None else ("true" if value else "false")
    return None


def _converted(columns: tuple[Column, ...]) -> list[tuple[str, Any]]:
    return [(c.name, _converter(c)) for c in columns]


class Writer:
    def __init__(self, columns: tuple[Column, ...]) -> None:
        self.columns = columns

    def write(self, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def finish(self) -> bytes:
        raise NotImplementedError


class CsvWriter(Writer):
    def __init__(self, columns: tuple[Column, ...]) -> None:
        super().__init__(columns)
        self.buffer = io.BytesIO()
        self.text = io.TextIOWrapper(self.buffer, encoding="utf-8-sig", newline="")
        self.csv = csv.writer(self.text)
        self.csv.writerow([c.name for c in columns])
        self.plan = _converted(columns)

    def write(self, rows: list[dict[str, Any]]) -> None:
        out = []
        for row in rows:
            line = []
            for name, convert in self.plan:
                value = row.get(name)
                if convert is not None:
                    value = convert(value, row)
                if value is None:
                    value = ""
                elif isinstance(value, str):
                    if value and value[0] in "=+-@\t\r":
                        value = defused(value)
                elif isinstance(value, Decimal):
                    value = format(value, "f")
                line.append(value)
            out.append(line)
        self.csv.writerows(out)

    def finish(self) -> bytes:
        self.text.flush()
        data = self.buffer.getvalue()
        self.text.detach()
        return data


class XlsxWriter(Writer):
    def __init__(self, columns: tuple[Column, ...], title: str) -> None:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell

        super().__init__(columns)
        self.cell_type = WriteOnlyCell
        self.plan = _converted(columns)
        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet(title[:31])
        self.sheet.append([c.name for c in columns])

    def _cell(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not (value.startswith("=") or ILLEGAL_CHARACTERS_RE.search(value)):
            return value  # openpyxl writes it as a text cell
        # Text stays text: a cell is never a formula (openpyxl would make ``=...`` one), and
        # characters XML cannot hold (control characters) are dropped.
        cell = self.cell_type(self.sheet, value=ILLEGAL_CHARACTERS_RE.sub("", value))
        cell.data_type = "s"
        return cell

    def write(self, rows: list[dict[str, Any]]) -> None:
        plan = self.plan
        for row in rows:
            self.sheet.append([self._cell(convert(row.get(name), row) if convert else row.get(name)) for name, convert in plan])

    def finish(self) -> bytes:
        out = io.BytesIO()
        self.book.save(out)
        return out.getvalue()


class ParquetWriter(Writer):
    def __init__(self, columns: tuple[Column, ...]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        super().__init__(columns)
        self.pa = pa
        kinds = {INT: pa.int64(), DECIMAL: pa.decimal128(19, 4), DATETIME: pa.timestamp("us", tz="UTC"),
                 DATE: pa.date32(), BOOL: pa.bool_()}
        self.schema = pa.schema([pa.field(c.name, kinds.get(c.kind, pa.string())) for c in columns])
        self.buffer = io.BytesIO()
        self.writer = pq.ParquetWriter(self.buffer, self.schema, compression="zstd")

    def write(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            names = [c.name for c in self.columns]
            batch = self.pa.RecordBatch.from_pylist([{n: r.get(n) for n in names} for r in rows], schema=self.schema)
            self.writer.write_batch(batch)

    def finish(self) -> bytes:
        self.writer.close()
        return self.buffer.getvalue()


def writer_for(fmt: ExportFormat, columns: tuple[Column, ...], title: str) -> Writer:
    if fmt is ExportFormat.CSV:
        return CsvWriter(columns)
    if fmt is ExportFormat.XLSX:
        return XlsxWriter(columns, title)
    return ParquetWriter(columns)
