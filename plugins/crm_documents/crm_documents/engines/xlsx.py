"""The XLSX engine: Excel templates with Jinja placeholders, filled with openpyxl.

Conventions of a template (every worksheet is filled the same way):

- ``{{ expression }}`` in a cell's text is a Jinja expression, with the formatting helpers
  (``money``, ``date`` ...). A cell whose whole text is one placeholder takes the value's type:
  a decimal, integer or float becomes a number, a date or datetime a date (the cell's number
  format is kept, so ``#,##0.00`` or ``dd.mm.yyyy`` set in Excel apply), ``true``/``false`` a
  boolean, a missing value an empty cell. Any other text (``{{ labels.total }}:``, ``{% if %}``
  inside the cell) renders to a string. Text that starts with ``=`` stays text: a customer
  called ``=HYPERLINK(...)`` never becomes a formula.
- A row loop is two marker rows, each holding nothing but its tag in one cell (usually A):
  ``{% for stage in pipeline.stages %}`` and, further down, ``{% endfor %}``. The rows between
  them are repeated once per item, with their styles, heights and merged cells; the marker rows
  themselves disappear and the rows below move down. The loop has ``loop.index``,
  ``loop.first`` ... as in Jinja; ``{% for a, b in pairs %}`` unpacks. Loops do not nest (one
  level of rows is what a report needs) and take no ``if`` (filter in the expression:
  ``items|selectattr("count")``). A loop over an empty list leaves its rows once, empty, so
  that the formulas over them still have a range.
- Formulas are kept as formulas (nothing is computed here; Excel and LibreOffice compute on
  opening). Their references follow the rows: a reference below a loop moves down with it, a
  range over the loop's rows (``=SUM(C7:C7)`` written against the one template row) grows to
  cover every repeated row, and a formula inside the loop's rows refers to its own copy
  (``=B7*C7`` becomes ``=B9*C9`` on the third item). The same holds for references from other
  sheets, conditional formatting ranges, data validations, defined names, the print area and
  the auto filter.
- Page headers and footers (Page Layout) take placeholders too, filled as text next to
  Excel's codes (``{{ labels.page }} &P / &N``).
- Not moved: pictures and charts (anchors and chart data ranges stay where they are; openpyxl
  drops pictures without Pillow anyway) and formulas of conditional formatting rules. An
  ``Image`` value in a cell leaves the cell empty.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from collections.abc import Callable, Iterable, Mapping
from copy import copy
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import jinja2
import openpyxl
from jinja2 import meta, nodes
from openpyxl.cell.cell import Cell, MergedCell
from openpyxl.formatting.formatting import ConditionalFormattingList
from openpyxl.utils.cell import get_column_letter
from openpyxl.worksheet.cell_range import CellRange, MultiCellRange
from openpyxl.worksheet.formula import ArrayFormula
from openpyxl.worksheet.worksheet import Worksheet

from crm_graph.core.documents import Image, TemplateError, TemplateInfo

from . import _jinja
from ._rows import Loop, References, RowMap
from .package import PackageLimits, check_package

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_FOR_MARKER = re.compile(r"^\s*\{%[-+]?\s*for\s+(?P<statement>.+?)\s*[-+]?%\}\s*$", re.DOTALL)
_END_MARKER = re.compile(r"^\s*\{%[-+]?\s*endfor\s*[-+]?%\}\s*$")
_FOR_PARTS = re.compile(r"^(?P<target>.+?)\s+in\s+(?P<iter>.+)$", re.DOTALL)
_PLACEHOLDER = re.compile(r"^\s*\{\{[-+]?(?P<expr>.*?)[-+]?\}\}\s*$", re.DOTALL)
_JINJA = ("{{", "{%", "{#")
# Excel's limits: a cell's text, a sheet's rows.
MAX_CELL_TEXT = 32_767
MAX_ROWS = 1_048_576


def _where(ws: Worksheet, row: int, column: int) -> str:
    return f"sheet {ws.title}, cell {get_column_letter(column)}{row}"


def _syntax(message: str, where: str) -> TemplateError:
    return TemplateError(TemplateError.TEMPLATE_SYNTAX, message, where)


@dataclass
class _CellTemplate:
    expression: Any | None  # a compiled expression, when the cell is one placeholder
    template: jinja2.Template | None  # otherwise
    where: str


@dataclass
class _SheetPlan:
    ws: Worksheet
    loops: list[Loop] = field(default_factory=list)
    cells: dict[tuple[int, int], _CellTemplate] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)  # name -> where first read
    page_texts: list[tuple[Any, jinja2.Template, str]] = field(default_factory=list)  # header/footer parts

    def loop_of(self, row: int) -> Loop | None:
        for loop in self.loops:
            if loop.start < row < loop.end:
                return loop
        return None


def _names(tree: nodes.Node) -> set[str]:
    return set(meta.find_undeclared_variables(tree)) - _jinja.HELPER_NAMES


def _read_loop(env: jinja2.Environment, statement: str, where: str, tag: str) -> tuple[tuple[str, ...], bool, Any, set[str]]:
    parts = _FOR_PARTS.match(statement)
    try:
        tree = env.parse("{% for " + statement + " %}{% endfor %}")
    except jinja2.TemplateSyntaxError as exc:
        raise _syntax(f"{tag}: {exc.message}", where) from None
    loop = tree.body[0]
    assert isinstance(loop, nodes.For)
    if loop.test is not None or loop.recursive or parts is None:
        raise _syntax(f"{tag}: a row loop takes no condition; filter the list instead (items|selectattr(\"...\"))", where)
    target = loop.target
    if isinstance(target, nodes.Name):
        targets, unpack = (target.name,), False
    elif isinstance(target, nodes.Tuple) and all(isinstance(item, nodes.Name) for item in target.items):
        targets, unpack = tuple(item.name for item in target.items), True  # type: ignore[attr-defined]
    else:
        raise _syntax(f"{tag}: a row loop takes one name or a list of names", where)
    source = parts.group("iter")
    try:
        compiled = env.compile_expression(source, undefined_to_none=False)
    except jinja2.TemplateSyntaxError as exc:
        raise _syntax(f"{tag}: {exc.message}", where) from None
    return targets, unpack, compiled, _names(env.parse("{{ " + source + " }}"))


def _plan_sheet(ws: Worksheet, env: jinja2.Environment) -> _SheetPlan:
    plan = _SheetPlan(ws)
    rows: dict[int, list[Cell]] = {}
    for (row, _), cell in sorted(ws._cells.items()):
        rows.setdefault(row, []).append(cell)
    open_loop: tuple[int, str, str, tuple[str, ...], bool, Any] | None = None
    for row, cells in rows.items():
        texts = [(c, c.value) for c in cells if c.value is not None and c.value != ""]
        marker = None
        for cell, value in texts:
            if isinstance(value, str) and cell.data_type != "f" and (_FOR_MARKER.match(value) or _END_MARKER.match(value)):
                marker = (cell, value)
                break
        if marker is not None:
            cell, value = marker
            where = _where(ws, row, cell.column)
            tag = value.strip()
            if len(texts) > 1:
                raise _syntax(f"{tag} must be alone in its row: a loop's marker rows are removed from the document", where)
            if (match := _FOR_MARKER.match(value)) is not None:
                if open_loop is not None:
                    raise _syntax(f"{tag}: row loops do not nest, and the loop of row {open_loop[0]} is still open", where)
                targets, unpack, compiled, names = _read_loop(env, match.group("statement"), where, tag)
                for name in names:
                    plan.variables.setdefault(name, where)
                open_loop = (row, tag, where, targets, unpack, compiled)
            else:
                if open_loop is None:
                    raise _syntax(f"{tag} closes no loop: no {{% for %}} row is open above it", where)
                start, start_tag, start_where, targets, unpack, compiled = open_loop
                if row == start + 1:
                    raise _syntax(f"{start_tag} repeats no rows: put the rows to repeat between it and {tag}", start_where)
                plan.loops.append(Loop(start, row, targets, unpack, compiled, start_tag, start_where))
                open_loop = None
            continue
        for cell, value in texts:
            if not isinstance(value, str) or cell.data_type == "f" or not any(mark in value for mark in _JINJA):
                continue
            where = _where(ws, row, cell.column)
            try:
                tree = env.parse(value)
                names = _names(tree)
                placeholder = _PLACEHOLDER.match(value)
                single = (
                    placeholder is not None
                    and len(tree.body) == 1
                    and isinstance(tree.body[0], nodes.Output)
                    and len(tree.body[0].nodes) == 1
                    and not isinstance(tree.body[0].nodes[0], nodes.TemplateData)
                )
                if single and placeholder is not None:
                    compiled = _CellTemplate(env.compile_expression(placeholder.group("expr"), undefined_to_none=False), None, where)
                else:
                    compiled = _CellTemplate(None, env.from_string(value), where)
            except jinja2.TemplateSyntaxError as exc:
                raise _syntax(f"{value.strip()[:80]!r}: {exc.message}", where) from None
            if open_loop is not None:
                names -= {*open_loop[3], "loop"}
            for name in names:
                plan.variables.setdefault(name, where)
            plan.cells[(row, cell.column)] = compiled
    if open_loop is not None:
        raise _syntax(f"{open_loop[1]} is never closed: add a row holding only {{% endfor %}} below the rows to repeat", open_loop[2])
    _plan_page_texts(plan, env)
    return plan


def _escape_codes(value: Any) -> Any:
    """A value printed in a page header or footer, its "&" not taken for a code (&P, &N)."""
    if isinstance(value, jinja2.Undefined) or value is None:
        return ""
    return _jinja.clean_string(str(value)).replace("&", "&&")


def _plan_page_texts(plan: _SheetPlan, env: jinja2.Environment) -> None:
    """Placeholders in the page headers and footers (Page Layout), filled as text."""
    ws = plan.ws
    page_env = env.overlay(finalize=_escape_codes)
    for attribute, name in (
        ("oddHeader", "header"),
        ("oddFooter", "footer"),
        ("evenHeader", "even page header"),
        ("evenFooter", "even page footer"),
        ("firstHeader", "first page header"),
        ("firstFooter", "first page footer"),
    ):
        item = getattr(ws, attribute, None)
        if item is None:
            continue
        for side in ("left", "center", "right"):
            part = getattr(item, side)
            text = part.text
            if not text or not any(mark in text for mark in _JINJA):
                continue
            where = f"sheet {ws.title}, {name} ({side})"
            try:
                tree = page_env.parse(text)
                template = page_env.from_string(text)
            except jinja2.TemplateSyntaxError as exc:
                raise _syntax(f"{text[:80]!r}: {exc.message}", where) from None
            for variable in _names(tree):
                plan.variables.setdefault(variable, where)
            plan.page_texts.append((part, template, where))


def _load(template: bytes) -> openpyxl.Workbook:
    try:
        return openpyxl.load_workbook(io.BytesIO(template), rich_text=False, data_only=False)
    except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
        raise TemplateError(TemplateError.NOT_THIS_FORMAT, f"The file cannot be read as an Excel workbook: {exc}") from None


def _read(wb: openpyxl.Workbook, env: jinja2.Environment) -> list[_SheetPlan]:
    try:
        return [_plan_sheet(ws, env) for ws in wb.worksheets]
    except TemplateError:
        raise
    except Exception as exc:  # a workbook openpyxl loaded but that holds what Excel does not write
        raise TemplateError(TemplateError.NOT_THIS_FORMAT, f"The file cannot be read as an Excel workbook: {exc}") from None


class _LoopInfo:
    """``loop`` inside a row loop, as Jinja's."""

    def __init__(self, index0: int, length: int) -> None:
        self.index0, self.index, self.length = index0, index0 + 1, length
        self.revindex, self.revindex0 = length - index0, length - index0 - 1
        self.first, self.last = index0 == 0, index0 == length - 1


def _typed(value: Any) -> Any:
    """A placeholder's value as a cell value."""
    if value is None or isinstance(value, (jinja2.Undefined, Image)):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float, Decimal)):
        if isinstance(value, (float, Decimal)) and not math.isfinite(value):
            raise ValueError(f"{value} is not a number a spreadsheet can hold")
        return value
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo is not None else value
    if isinstance(value, (dt.date, dt.time, dt.timedelta)):
        return value
    if isinstance(value, (list, tuple)):
        return _text(", ".join("" if item is None else str(item) for item in value))
    return _text(str(value))


def _text(value: str) -> str | None:
    value = _jinja.clean_string(value)
    if len(value) > MAX_CELL_TEXT:
        value = value[: MAX_CELL_TEXT - 1] + "…"
    return value or None


def _put(cell: Cell, value: Any) -> None:
    cell.value = value
    if isinstance(value, str) and cell.data_type == "f":
        cell.data_type = "s"  # text that only looks like a formula


class _Filler:
    def __init__(self, plans: list[_SheetPlan], context: Mapping[str, Any]) -> None:
        self.plans = plans
        self.context = dict(context)
        self.items: dict[int, list[list[Any]]] = {}  # id(loop) -> items
        maps: dict[str, RowMap] = {}
        for plan in plans:
            counts = []
            for loop in plan.loops:
                items = self._items(plan, loop)
                self.items[id(loop)] = items
                counts.append(max(len(items), 1))
            maps[plan.ws.title] = RowMap(plan.loops, counts)
            last = maps[plan.ws.title].row(plan.ws.max_row, "last")
            if last > MAX_ROWS:
                raise TemplateError(
                    TemplateError.RENDER_FAILED,
                    f"The filled sheet would have {last:,} rows; a spreadsheet holds at most {MAX_ROWS:,}",
                    f"sheet {plan.ws.title}",
                )
        self.maps = maps
        self.references = References(maps)

    def _items(self, plan: _SheetPlan, loop: Loop) -> list[Any]:
        try:
            value = loop.iterable(self.context)
        except Exception as exc:
            raise TemplateError(TemplateError.RENDER_FAILED, f"{loop.tag}: {_jinja.describe(exc)}", loop.where) from None
        if value is None or isinstance(value, jinja2.Undefined):
            return []
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            raise TemplateError(
                TemplateError.RENDER_FAILED, f"{loop.tag}: the value is a {type(value).__name__}, not a list", loop.where
            )
        return list(value)

    def _scope(self, loop: Loop, items: list[Any], index: int) -> dict[str, Any]:
        scope = dict(self.context)
        if not items:
            return scope
        item = items[index]
        if loop.unpack:
            try:
                values = tuple(item)
            except TypeError:
                values = ()
            if len(values) != len(loop.targets):
                raise TemplateError(
                    TemplateError.RENDER_FAILED,
                    f"{loop.tag}: item {index + 1} does not unpack into {len(loop.targets)} values",
                    loop.where,
                )
            scope.update(zip(loop.targets, values))
        else:
            scope[loop.targets[0]] = item
        scope["loop"] = _LoopInfo(index, len(items))
        return scope

    def fill(self, plan: _SheetPlan) -> None:
        ws = plan.ws
        rows = self.maps[ws.title]
        template_cells = dict(ws._cells)
        merged = [CellRange(str(rng)) for rng in ws.merged_cells.ranges]
        dimensions = {index: dim for index, dim in ws.row_dimensions.items()}
        markers = {loop.start for loop in plan.loops} | {loop.end for loop in plan.loops}
        ws._cells = {}
        ws.merged_cells = MultiCellRange()
        ws.row_dimensions.clear()
        merged_styles: dict[tuple[int, int], Any] = {}

        def place(row: int, column: int, source: Cell, scope: dict[str, Any] | None, iteration: tuple[Loop, int] | None) -> None:
            out = Cell(ws, row=rows.row(row, "first", iteration), column=column)
            ws._cells[(out.row, out.column)] = out
            out._style = copy(source._style)
            if isinstance(source, MergedCell):
                merged_styles[(out.row, out.column)] = copy(source._style)
                return
            if source.hyperlink is not None:
                out.hyperlink = copy(source.hyperlink)
            if source.comment is not None:
                out.comment = copy(source.comment)
            compiled = plan.cells.get((row, column))
            if compiled is not None:
                if scope is None:
                    return  # the empty copy of the rows of a loop over nothing
                try:
                    if compiled.expression is not None:
                        _put(out, _typed(compiled.expression(scope)))
                    else:
                        assert compiled.template is not None
                        _put(out, _text(compiled.template.render(scope)))
                except TemplateError:
                    raise
                except Exception as exc:
                    where = compiled.where + (f" (item {iteration[1] + 1} of the loop)" if iteration else "")
                    raise TemplateError(TemplateError.RENDER_FAILED, f"The cell could not be filled: {_jinja.describe(exc)}", where) from None
                return
            value = source._value
            if source.data_type == "f":
                if isinstance(value, ArrayFormula):
                    value = ArrayFormula(
                        self.references.ranges(value.ref, ws.title), self.references.formula(value.text, ws.title, iteration)
                    )
                elif isinstance(value, str):
                    value = self.references.formula(value, ws.title, iteration)
            out._value = value
            out.data_type = source.data_type

        for (row, column), source in sorted(template_cells.items()):
            if row in markers:
                continue
            loop = plan.loop_of(row)
            if loop is None:
                place(row, column, source, self.context, None)
                continue
            items = self.items[id(loop)]
            for index in range(max(len(items), 1)):
                place(row, column, source, self._scope(loop, items, index) if items else None, (loop, index))

        for index, dim in dimensions.items():
            if index in markers:
                continue
            loop = plan.loop_of(index)
            copies = range(max(len(self.items[id(loop)]), 1)) if loop is not None else [None]
            for n in copies:
                target = ws.row_dimensions[rows.row(index, "first", (loop, n) if loop is not None else None)]
                target.height, target.hidden, target.outlineLevel = dim.height, dim.hidden, dim.outlineLevel
                target._style = copy(dim._style)

        for rng in merged:
            loop = plan.loop_of(rng.min_row)
            if loop is not None and loop.start < rng.max_row < loop.end:
                copies = [self.references.cell_range(rng, rows, (loop, n)) for n in range(max(len(self.items[id(loop)]), 1))]
            else:
                copies = [self.references.cell_range(rng, rows)]
            for new in copies:
                if new is not None and new.size["rows"] * new.size["columns"] > 1:
                    ws.merge_cells(new.coord)
        for position, style in merged_styles.items():
            cell = ws._cells.get(position)
            if cell is not None:
                cell._style = style

        self._move_ranges(ws)
        for part, template, where in plan.page_texts:
            try:
                part.text = template.render(self.context)
            except Exception as exc:
                raise TemplateError(TemplateError.RENDER_FAILED, f"The text could not be filled: {_jinja.describe(exc)}", where) from None

    def _move_ranges(self, ws: Worksheet) -> None:
        title = ws.title
        formatting = ws.conditional_formatting
        moved = ConditionalFormattingList()
        for cf in formatting:
            sqref = self.references.ranges(str(cf.sqref), title)
            for rule in cf.rules:
                moved.add(sqref, rule)
        ws.conditional_formatting = moved
        for validation in ws.data_validations.dataValidation:
            validation.sqref = MultiCellRange(self.references.ranges(str(validation.sqref), title))
        if ws.auto_filter.ref:
            ws.auto_filter.ref = self.references.ranges(ws.auto_filter.ref, title)
        if ws.print_area:
            ws.print_area = [self.references.reference(part, title, area=True) for part in ws.print_area.split(",")]
        for defined in ws.defined_names.values():
            if defined.attr_text:
                defined.attr_text = self.references.formula("=" + defined.attr_text, title)[1:]

    def move_workbook_names(self, wb: openpyxl.Workbook) -> None:
        for defined in wb.defined_names.values():
            if defined.attr_text:
                defined.attr_text = self.references.formula("=" + defined.attr_text, "")[1:]


class XlsxEngine:
    """Excel templates (openpyxl)."""

    format = "XLSX"
    content_type = CONTENT_TYPE
    extension = "xlsx"

    def __init__(self, limits: PackageLimits | None = None) -> None:
        self.limits = limits or PackageLimits()

    def inspect(self, template: bytes) -> TemplateInfo:
        check_package(template, "XLSX", self.limits)
        plans = _read(_load(template), _jinja.environment({}, autoescape=False))
        where: dict[str, str] = {}
        for plan in plans:
            for name, place in plan.variables.items():
                where.setdefault(name, place)
        return TemplateInfo(variables=frozenset(where), where=where)

    def render(self, template: bytes, context: Mapping[str, Any], filters: Mapping[str, Callable[..., Any]]) -> bytes:
        check_package(template, "XLSX", self.limits)
        wb = _load(template)
        plans = _read(wb, _jinja.environment(filters, autoescape=False))
        out = io.BytesIO()
        try:
            filler = _Filler(plans, context)
            for plan in plans:
                filler.fill(plan)
            filler.move_workbook_names(wb)
            wb.template = False
            wb.save(out)
        except TemplateError:
            raise
        except Exception as exc:
            raise TemplateError(TemplateError.RENDER_FAILED, f"The workbook could not be filled: {_jinja.describe(exc)}") from None
        return out.getvalue()
