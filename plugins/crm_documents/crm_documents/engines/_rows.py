"""Where the rows of an XLSX template go once its row loops are expanded, and the cell
references (in formulas, ranges, names) that follow them. See the XLSX engine's docstring for
the rules: a reference below a loop moves down, a range over a loop's rows grows to cover every
copy, a formula inside a loop's rows refers to its own copy."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from openpyxl.formula.tokenizer import Token, Tokenizer, TokenizerError
from openpyxl.worksheet.cell_range import CellRange

_ENDPOINT = r"\$?[A-Za-z]{1,3}\$?\d+|\$?[A-Za-z]{1,3}|\$?\d+"
_REFERENCE = re.compile(rf"^(?P<sheet>(?:'(?:[^']|'')+'|[^'!:]+)!)?(?P<a>{_ENDPOINT})(?::(?P<b>{_ENDPOINT}))?$")
_ENDPOINT_PARTS = re.compile(r"^(?P<col>\$?[A-Za-z]{1,3})?(?P<row>\$?\d+)?$")


@dataclass
class Loop:
    """A row loop of a sheet: its marker rows, what it iterates and the names it binds."""

    start: int  # the row of {% for %}
    end: int  # the row of {% endfor %}
    targets: tuple[str, ...]
    unpack: bool
    iterable: Any  # compiled expression
    tag: str
    where: str

    @property
    def body(self) -> int:
        return self.end - self.start - 1


class RowMap:
    """Where the rows of one template sheet go, once its loops are expanded."""

    def __init__(self, loops: list[Loop], counts: list[int]) -> None:
        self.items: list[tuple[Loop, int, int]] = []  # loop, copies of its rows, first output row
        shift = 0
        for loop, count in zip(loops, counts):
            out_start = loop.start + shift
            self.items.append((loop, count, out_start))
            shift = out_start + count * loop.body - loop.end - 1

    def row(self, row: int, side: str = "first", iteration: tuple[Loop, int] | None = None) -> int:
        """The output row of template row ``row``: for a row inside a loop, its copy in
        ``iteration`` when given (and of that loop), else its first copy (``side="first"``) or
        its last (``"last"``)."""
        shift = 0
        for loop, count, out_start in self.items:
            if row < loop.start:
                break
            if row == loop.start:
                return out_start if side != "last" else out_start - 1
            if row < loop.end:
                offset = row - loop.start - 1
                if iteration is not None and iteration[0] is loop:
                    return out_start + iteration[1] * loop.body + offset
                return out_start + offset + ((count - 1) * loop.body if side == "last" else 0)
            if row == loop.end:
                return out_start + count * loop.body - (1 if side == "last" else 0)
            shift = out_start + count * loop.body - loop.end - 1
        return row + shift


def _unquote(sheet: str) -> str:
    sheet = sheet[:-1]  # the "!"
    if sheet.startswith("'") and sheet.endswith("'"):
        sheet = sheet[1:-1].replace("''", "'")
    return sheet


class References:
    """Moves the rows of cell references in formulas and ranges, sheet by sheet."""

    def __init__(self, maps: dict[str, RowMap]) -> None:
        self.maps = maps

    def _endpoint(self, text: str, rows: RowMap, side: str, iteration: tuple[Loop, int] | None) -> str:
        parts = _ENDPOINT_PARTS.match(text)
        if parts is None or parts.group("row") is None:
            return text
        raw = parts.group("row")
        dollar = "$" if raw.startswith("$") else ""
        return f"{parts.group('col') or ''}{dollar}{rows.row(int(raw.lstrip('$')), side, iteration)}"

    def reference(self, text: str, sheet: str, iteration: tuple[Loop, int] | None = None, *, area: bool = False) -> str:
        """One reference moved. A single cell in a loop's rows means its first copy, unless
        ``area`` (a range list: formatting, validation), where it means all copies."""
        match = _REFERENCE.match(text)
        if match is None:
            return text  # a defined name, a structured reference, #REF!
        target = _unquote(match.group("sheet")) if match.group("sheet") else sheet
        rows = self.maps.get(target)
        if rows is None:
            return text
        own = iteration if target == sheet else None
        a, b = match.group("a"), match.group("b")
        prefix = match.group("sheet") or ""
        if b is None:
            first = self._endpoint(a, rows, "first", own)
            last = self._endpoint(a, rows, "last", own) if area else first
            return prefix + (first if last == first else f"{first}:{last}")
        return f"{prefix}{self._endpoint(a, rows, 'first', own)}:{self._endpoint(b, rows, 'last', own)}"

    def formula(self, formula: str, sheet: str, iteration: tuple[Loop, int] | None = None) -> str:
        """``formula`` (with its "="), its references moved."""
        try:
            tokens = Tokenizer(formula).items
        except TokenizerError:
            return formula
        out = []
        for token in tokens:
            if token.type == Token.OPERAND and token.subtype == Token.RANGE:
                out.append(self.reference(token.value, sheet, iteration))
            else:
                out.append(token.value)
        return "=" + "".join(out)

    def ranges(self, text: str, sheet: str) -> str:
        """A space- or comma-separated list of ranges (sqref, print area)."""
        pieces = re.split(r"([ ,])", text)
        return "".join(piece if piece in (" ", ",", "") else self.reference(piece, sheet, area=True) for piece in pieces)

    def cell_range(self, rng: CellRange, rows: RowMap, iteration: tuple[Loop, int] | None = None) -> CellRange | None:
        side_min, side_max = ("first", "last") if iteration is None else ("first", "first")
        low, high = rows.row(rng.min_row, side_min, iteration), rows.row(rng.max_row, side_max, iteration)
        if high < low:
            return None
        return CellRange(min_col=rng.min_col, min_row=low, max_col=rng.max_col, max_row=high)
