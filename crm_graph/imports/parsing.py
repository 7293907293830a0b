"""Reading import files: CSV (encoding and delimiter found out) and XLSX (openpyxl, read-only).

Both give a header (the first non-empty row, as column names) and then the data rows, each a
list of cell values: strings for CSV; for XLSX whatever the cell holds (str, int, float,
datetime, bool or None), so a date cell stays a date and an Excel serial number can be read.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from crm_graph.imports.models import ImportFormat

MAX_COLUMNS = 200


class FileProblem(ValueError):
    """The file as a whole cannot be read (not one row: the file)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Sheet:
    header: list[str]
    rows: Iterator[list[Any]]  # data rows, in order, the header excluded
    encoding: str | None = None
    delimiter: str | None = None


def guess_format(name: str, content: bytes) -> ImportFormat:
    """XLSX when the content is a ZIP archive (or the name says .xlsx), else CSV."""
    if content[:4] == b"PK\x03\x04" or name.lower().endswith((".xlsx", ".xlsm")):
        return ImportFormat.XLSX
    return ImportFormat.CSV


def detect_encoding(content: bytes) -> str:
    """The encoding of a CSV file: a BOM decides; else strict UTF-8; else GB18030 when the text
    reads as Chinese; else Windows-1252 (what Western Excel writes), else Latin-1 (never fails).

    GB18030 and the Latin encodings both decode most byte strings, so "does it decode" cannot
    choose between them on a short file. What tells them apart is where the multi-byte pairs lie:
    Chinese text is almost all GB2312 characters, both bytes 0xA1-0xFE, while Latin-1 text has an
    accented letter (0xC0-0xFF) followed by an ASCII letter, a pair outside that range.
    """
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if content.startswith(bom):
            return name
    try:
        content.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    if _reads_as_chinese(content):
        return "gb18030"
    try:
        content.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _reads_as_chinese(content: bytes) -> bool:
    try:
        content.decode("gb18030")
    except UnicodeDecodeError:
        return False
    pairs = in_gb2312 = 0
    i, n = 0, len(content)
    while i < n:
        b = content[i]
        if b < 0x80:
            i += 1
            continue
        nxt = content[i + 1] if i + 1 < n else 0
        if 0x30 <= nxt <= 0x39:  # a four-byte GB18030 sequence
            i += 4
            pairs += 1
            continue
        pairs += 1
        if 0xA1 <= b <= 0xF7 and 0xA1 <= nxt <= 0xFE:
            in_gb2312 += 1
        i += 2
    return pairs > 0 and in_gb2312 / pairs >= 0.8


def sniff_delimiter(text: str) -> str:
    """Comma, semicolon, tab or pipe: whichever splits the first lines most consistently."""
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def _clean_header(raw: list[Any]) -> list[str]:
    header = ["" if c is None else str(c).strip() for c in raw]
    while header and not header[-1]:
        header.pop()
    if not header:
        raise FileProblem("EMPTY_FILE", "The file has no header row.")
    if len(header) > MAX_COLUMNS:
        raise FileProblem("TOO_MANY", f"At most {MAX_COLUMNS} columns.")
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            raise FileProblem("DUPLICATE", f"Two columns are named {name!r}; give each column its own name.")
        seen.add(name)
    return header


def _non_empty(rows: Iterator[list[Any]]) -> Iterator[list[Any]]:
    for row in rows:
        if any(c is not None and (not isinstance(c, str) or c.strip()) for c in row):
            yield row


def read_csv(content: bytes, *, encoding: str | None = None, delimiter: str | None = None) -> Sheet:
    encoding = encoding or detect_encoding(content)
    try:
        text = content.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise FileProblem("INVALID_ENCODING", f"The file cannot be read as {encoding}.") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    delimiter = delimiter or sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows = _non_empty(reader)
        header = _clean_header(next(rows, []))
    except csv.Error as exc:
        raise FileProblem("INVALID_FILE", f"The CSV file cannot be read: {exc}.") from None
    return Sheet(header, _guarded(rows), encoding, delimiter)


def _guarded(rows: Iterator[list[Any]]) -> Iterator[list[Any]]:
    try:
        yield from rows
    except csv.Error as exc:
        raise FileProblem("INVALID_FILE", f"The CSV file cannot be read: {exc}.") from None


def read_xlsx(content: bytes, *, sheet: str | None = None) -> Sheet:
    import zipfile

    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise FileProblem("INVALID_FILE", f"The file is not an XLSX workbook ({type(exc).__name__}).") from None
    if sheet is not None and sheet not in workbook.sheetnames:
        raise FileProblem("NOT_FOUND", f"The workbook has no sheet {sheet!r} (it has {', '.join(workbook.sheetnames)}).")
    ws = workbook[sheet] if sheet else workbook.worksheets[0]
    rows = _non_empty(list(r) for r in ws.iter_rows(values_only=True))
    header = _clean_header(next(rows, []))
    return Sheet(header, rows)


def read(format: ImportFormat, content: bytes, options: dict[str, Any]) -> Sheet:
    if format is ImportFormat.XLSX:
        return read_xlsx(content, sheet=options.get("sheet"))
    return read_csv(content, encoding=options.get("encoding"), delimiter=options.get("delimiter"))


def count_rows(format: ImportFormat, content: bytes, options: dict[str, Any]) -> int:
    return sum(1 for _ in read(format, content, options).rows)
