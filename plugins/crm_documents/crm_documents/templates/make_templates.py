"""Writes the default templates of the documents plugin: quote.docx, order_confirmation.docx,
invoice.docx, contract.docx and report.xlsx, beside this file.

    .venv/bin/python plugins/crm_documents/crm_documents/templates/make_templates.py

The templates read only the contexts of docs/documents.md; every word they print comes from
``labels`` (so one template serves every locale) and every figure arrives formatted. Text is
set in Liberation Sans, with Noto Sans CJK SC for East Asian script, so that a Chinese
customer's name comes out in a PDF made by LibreOffice. A4, 20 mm margins.

The Word templates use docxtpl's tags: ``{%tr %}`` rows for the lines, ``{%p %}`` paragraphs
for optional blocks and the contract's clauses and annexes. The workbook uses the XLSX engine's
row loops (a ``{% for %}`` row and an ``{% endfor %}`` row around the rows to repeat) and
``SUM`` formulas over the one template row, which the engine widens to every repeated row.
"""

from __future__ import annotations

import sys
from pathlib import Path

from docx import Document
from docx.document import Document as DocumentObject
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT, WD_CELL_VERTICAL_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_TAB_ALIGNMENT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph
from openpyxl import Workbook
from openpyxl.formatting.rule import ColorScaleRule
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.worksheet.worksheet import Worksheet

HERE = Path(__file__).resolve().parent

FONT = "Liberation Sans"
FONT_EAST_ASIAN = "Noto Sans CJK SC"
ACCENT = "1F3A5F"  # dark slate blue: titles, the totals rule
MUTED = "5B6573"  # captions, the footer
RULE = "C9CFD8"  # thin lines between rows
HEADER_FILL = "E9EDF2"  # the lines table's header row

PAGE_WIDTH_MM = 210
MARGIN_MM = 20
TEXT_WIDTH_MM = PAGE_WIDTH_MM - 2 * MARGIN_MM


# --- Word helpers -------------------------------------------------------------------------


def _set_fonts(document: DocumentObject) -> None:
    """Liberation Sans for Latin text, Noto Sans CJK SC for East Asian text, in every style
    that names a font (and the document defaults), instead of the theme's fonts."""
    styles = document.styles.element
    defaults = styles.find(qn("w:docDefaults"))
    r_pr = defaults.find(qn("w:rPrDefault")).find(qn("w:rPr"))
    lang = r_pr.find(qn("w:lang"))
    if lang is None:
        lang = OxmlElement("w:lang")
        r_pr.append(lang)
    lang.set(qn("w:eastAsia"), "zh-CN")
    for fonts in styles.iter(qn("w:rFonts")):
        for attribute in list(fonts.attrib):
            if attribute.endswith("Theme") or attribute.endswith("theme"):
                del fonts.attrib[attribute]
        fonts.set(qn("w:ascii"), FONT)
        fonts.set(qn("w:hAnsi"), FONT)
        fonts.set(qn("w:cs"), FONT)
        fonts.set(qn("w:eastAsia"), FONT_EAST_ASIAN)


def _style(document: DocumentObject) -> None:
    _set_fonts(document)
    normal = document.styles["Normal"]
    normal.font.size = Pt(9.5)
    normal.font.color.rgb = RGBColor.from_string("1D232B")
    normal.paragraph_format.space_after = Pt(0)
    normal.paragraph_format.space_before = Pt(0)
    normal.paragraph_format.line_spacing = 1.15
    for name, size in (("Heading 1", 13), ("Heading 2", 10.5)):
        heading = document.styles[name]
        heading.font.size = Pt(size)
        heading.font.bold = True
        heading.font.color.rgb = RGBColor.from_string(ACCENT)
        heading.paragraph_format.space_before = Pt(12 if name == "Heading 1" else 9)
        heading.paragraph_format.space_after = Pt(4 if name == "Heading 1" else 2)
        heading.paragraph_format.keep_with_next = True
    title = document.styles["Title"]
    title.font.size = Pt(18)
    title.font.bold = True
    title.font.color.rgb = RGBColor.from_string(ACCENT)
    title.paragraph_format.space_before = Pt(14)
    title.paragraph_format.space_after = Pt(10)
    # python-docx's Title has a bottom border and a large spacing: a plain title reads better.
    p_pr = title.element.find(qn("w:pPr"))
    if p_pr is not None:
        border = p_pr.find(qn("w:pBdr"))
        if border is not None:
            p_pr.remove(border)


def _page(document: DocumentObject) -> None:
    section = document.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(PAGE_WIDTH_MM), Mm(297)
    section.left_margin = section.right_margin = Mm(MARGIN_MM)
    section.top_margin = Mm(15)
    section.bottom_margin = Mm(22)
    section.header_distance = Mm(8)
    section.footer_distance = Mm(8)


def _run(paragraph: Paragraph, text: str, *, bold: bool = False, size: float | None = None, color: str | None = None):
    run = paragraph.add_run(text)
    run.bold = bold or None
    if size:
        run.font.size = Pt(size)
    if color:
        run.font.color.rgb = RGBColor.from_string(color)
    return run


def _para(
    container,
    text: str = "",
    *,
    bold: bool = False,
    size: float | None = None,
    color: str | None = None,
    align: WD_ALIGN_PARAGRAPH | None = None,
    style: str | None = None,
    after: float | None = None,
    before: float | None = None,
    first: bool = False,
) -> Paragraph:
    """A paragraph in ``container`` (document, cell, header, footer); ``first`` reuses the
    empty paragraph a new cell comes with."""
    paragraph = container.paragraphs[0] if first else container.add_paragraph(style=style)
    if style and first:
        paragraph.style = style
    if text:
        _run(paragraph, text, bold=bold, size=size, color=color)
    if align is not None:
        paragraph.alignment = align
    if after is not None:
        paragraph.paragraph_format.space_after = Pt(after)
    if before is not None:
        paragraph.paragraph_format.space_before = Pt(before)
    return paragraph


def _tag(container, tag: str, *, first: bool = False) -> Paragraph:
    """A paragraph holding only a docxtpl structural tag (it disappears when filled)."""
    return _para(container, tag, first=first)


def _table(container, rows: int, widths_mm: list[float], *, align: WD_TABLE_ALIGNMENT | None = None) -> Table:
    if isinstance(container, DocumentObject):
        table = container.add_table(rows=rows, cols=len(widths_mm))
    else:  # a header, footer or cell
        table = container.add_table(rows=rows, cols=len(widths_mm), width=Mm(sum(widths_mm)))
    table.autofit = False
    if align is not None:
        table.alignment = align
    tbl_pr = table._tbl.tblPr
    layout = OxmlElement("w:tblLayout")
    layout.set(qn("w:type"), "fixed")
    tbl_pr.append(layout)
    margins = OxmlElement("w:tblCellMar")
    for side, value in (("top", 45), ("left", 85), ("bottom", 45), ("right", 85)):
        element = OxmlElement(f"w:{side}")
        element.set(qn("w:w"), str(value))
        element.set(qn("w:type"), "dxa")
        margins.append(element)
    tbl_pr.append(margins)
    for column, width in zip(table.columns, widths_mm):
        column.width = Mm(width)
    for row in table.rows:
        for cell, width in zip(row.cells, widths_mm):
            cell.width = Mm(width)
    return table


def _no_margins(table: Table) -> None:
    """Cells flush with the text edges (layout tables: letterhead, addresses)."""
    margins = table._tbl.tblPr.find(qn("w:tblCellMar"))
    for element in margins:
        if element.tag in (qn("w:left"), qn("w:right")):
            element.set(qn("w:w"), "0")


def _borders(cell: _Cell, **sides: tuple[str, int]) -> None:
    """Cell borders: ``top=("C9CFD8", 4)`` (colour, eighths of a point)."""
    tc_pr = cell._tc.get_or_add_tcPr()
    borders = tc_pr.find(qn("w:tcBorders"))
    if borders is None:
        borders = OxmlElement("w:tcBorders")
        tc_pr.append(borders)
    for side in ("top", "left", "bottom", "right"):
        if side not in sides:
            continue
        color, size = sides[side]
        element = OxmlElement(f"w:{side}")
        element.set(qn("w:val"), "single")
        element.set(qn("w:sz"), str(size))
        element.set(qn("w:space"), "0")
        element.set(qn("w:color"), color)
        borders.append(element)


def _fill(cell: _Cell, color: str) -> None:
    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), color)
    cell._tc.get_or_add_tcPr().append(shading)


def _repeat_header(row) -> None:
    tr_pr = row._tr.get_or_add_trPr()
    tr_pr.append(OxmlElement("w:tblHeader"))


def _keep_row_together(row) -> None:
    row._tr.get_or_add_trPr().append(OxmlElement("w:cantSplit"))


def _field(paragraph: Paragraph, instruction: str, size: float, color: str) -> None:
    """A Word field (PAGE, NUMPAGES) that LibreOffice and Word compute."""
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), f" {instruction} ")
    run = OxmlElement("w:r")
    r_pr = OxmlElement("w:rPr")
    sz = OxmlElement("w:sz")
    sz.set(qn("w:val"), str(int(size * 2)))
    col = OxmlElement("w:color")
    col.set(qn("w:val"), color)
    r_pr.extend([col, sz])
    text = OxmlElement("w:t")
    text.text = "1"
    run.extend([r_pr, text])
    field.append(run)
    paragraph._p.append(field)


# --- Word blocks ---------------------------------------------------------------------------


def _letterhead(document: DocumentObject) -> None:
    """The seller's logo (when there is one) on the left, name and contact on the right."""
    table = _table(document, 1, [80, TEXT_WIDTH_MM - 80])
    _no_margins(table)
    logo, contact = table.rows[0].cells
    logo.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.TOP
    _para(logo, "{% if seller.logo %}{{ seller.logo }}{% endif %}", first=True)
    right = WD_ALIGN_PARAGRAPH.RIGHT
    _para(contact, "{{ seller.name }}", bold=True, size=11, color=ACCENT, align=right, first=True, after=1)
    _tag(contact, "{%p for address_line in seller.address_lines %}")
    _para(contact, "{{ address_line }}", size=8.5, color=MUTED, align=right)
    _tag(contact, "{%p endfor %}")
    _para(contact, "{{ seller.phone }}", size=8.5, color=MUTED, align=right)
    _para(contact, "{{ seller.email }}", size=8.5, color=MUTED, align=right)
    _para(contact, "{{ seller.website }}", size=8.5, color=MUTED, align=right)


def _customer_block(cell: _Cell, caption: str | None = None) -> None:
    if caption:
        _para(cell, caption, size=7.5, color=MUTED, first=True, after=2)
        _para(cell, "{{ customer.name }}", bold=True, size=10.5)
    else:
        _para(cell, "{{ customer.name }}", bold=True, size=10.5, first=True)
    _tag(cell, "{%p for address_line in customer.address_lines %}")
    _para(cell, "{{ address_line }}")
    _tag(cell, "{%p endfor %}")  # the lines end (or, in China, begin) with the country
    _tag(cell, "{%p if customer.vat_id %}")
    _para(cell, "{{ customer.vat_id }}", size=8.5, color=MUTED, before=3)
    _tag(cell, "{%p endif %}")


def _facts(cell: _Cell, facts: list[tuple[str, str]], width_mm: float) -> None:
    """Label on the left, value flush right, one line each (number, date, valid until ...)."""
    for n, (label, value) in enumerate(facts):
        paragraph = _para(cell, first=n == 0, after=1.5)
        paragraph.paragraph_format.tab_stops.add_tab_stop(Mm(width_mm), WD_TAB_ALIGNMENT.RIGHT)
        _run(paragraph, label, color=MUTED)
        _run(paragraph, "\t")
        _run(paragraph, value, bold=n == 0)


def _addresses(document: DocumentObject, facts: list[tuple[str, str]]) -> None:
    _para(document, after=14)
    table = _table(document, 1, [100, TEXT_WIDTH_MM - 100])
    _no_margins(table)
    customer, right = table.rows[0].cells
    _customer_block(customer, "{{ labels.customer }}")
    _facts(right, facts, TEXT_WIDTH_MM - 100)


def _lines_table(container, lines: str, *, with_discount: bool) -> None:
    """The lines: a header row, then one row per line between the {%tr for %} rows."""
    columns: list[tuple[str, str, float, bool]] = [  # label, value, width, right-aligned
        ("{{ labels.position }}", "{{ line.position }}", 11, False),
        ("{{ labels.sku }}", "{{ line.sku }}", 24, False),
        ("{{ labels.description }}", "{{ line.description }}", 0, False),
        ("{{ labels.quantity }}", "{{ line.quantity }}", 18, True),
        ("{{ labels.unit_price }}", "{{ line.unit_price }}", 26, True),
    ]
    if with_discount:
        columns.append(("{{ labels.discount }}", "{{ line.discount_percent }}", 17, True))
    columns.append(("{{ labels.total }}", "{{ line.total }}", 27, True))
    fixed = sum(width for _, _, width, _ in columns)
    widths = [width or TEXT_WIDTH_MM - fixed for _, _, width, _ in columns]
    table = _table(container, 4, widths)
    header, start, body, end = table.rows
    _repeat_header(header)
    for cell, (label, _, _, right) in zip(header.cells, columns):
        _para(cell, label, bold=True, size=8.5, color=ACCENT, first=True, align=WD_ALIGN_PARAGRAPH.RIGHT if right else None)
        _fill(cell, HEADER_FILL)
        _borders(cell, bottom=(ACCENT, 6))
    _para(start.cells[0], f"{{%tr for line in {lines} %}}", first=True)
    _keep_row_together(body)
    for cell, (_, value, _, right) in zip(body.cells, columns):
        _para(cell, value, first=True, align=WD_ALIGN_PARAGRAPH.RIGHT if right else None)
        _borders(cell, bottom=(RULE, 4))
    _para(end.cells[0], "{%tr endfor %}", first=True)


def _lines(document: DocumentObject) -> None:
    """The lines table, with a discount column only when a line has a discount."""
    _para(document, after=10)
    _tag(document, "{%p if has_discount %}")
    _lines_table(document, "lines", with_discount=True)
    _tag(document, "{%p else %}")
    _lines_table(document, "lines", with_discount=False)
    _tag(document, "{%p endif %}")


def _totals(document: DocumentObject, rows: list[tuple[str, str, str | None]], emphasise: int) -> None:
    """Right-aligned sums: (label, value, condition) rows; the ``emphasise``-th is bold, with a rule above."""
    _para(document, after=4)
    table = _table(document, 0, [52, 33], align=WD_TABLE_ALIGNMENT.RIGHT)
    for n, (label, value, condition) in enumerate(rows):
        if condition:
            _para(table.add_row().cells[0], f"{{%tr if {condition} %}}", first=True)
        row = table.add_row()
        _keep_row_together(row)
        strong = n == emphasise
        left, right = row.cells
        _para(left, label, bold=strong, color=None if strong else MUTED, first=True, size=10.5 if strong else None)
        _para(right, value, bold=strong, first=True, align=WD_ALIGN_PARAGRAPH.RIGHT, size=10.5 if strong else None)
        if strong:
            for cell in row.cells:
                _borders(cell, top=(ACCENT, 12))
        if condition:
            _para(table.add_row().cells[0], "{%tr endif %}", first=True)
    for row in table.rows:
        for cell, width in zip(row.cells, (52, 33)):
            cell.width = Mm(width)


def _footer(document: DocumentObject) -> None:
    """Seller's details in three columns, the page number under them."""
    footer = document.sections[0].footer
    footer.is_linked_to_previous = False
    table = _table(footer, 1, [62, 54, TEXT_WIDTH_MM - 116])
    _no_margins(table)
    small, muted = 7, MUTED
    first, second, third = table.rows[0].cells
    for cell in table.rows[0].cells:
        _borders(cell, top=(RULE, 4))
    _para(first, "{{ seller.name }}", bold=True, size=small, color=muted, first=True, before=3)
    _para(first, '{{ seller.address_lines|join(", ") }}', size=small, color=muted)
    _para(second, "{{ seller.phone }}", size=small, color=muted, first=True, before=3)
    _para(second, "{{ seller.email }}", size=small, color=muted)
    _para(second, "{{ seller.website }}", size=small, color=muted)
    _para(third, "{{ seller.vat_id }}", size=small, color=muted, first=True, before=3)
    _para(third, "{{ seller.bank }}", size=small, color=muted)
    pages = _para(footer, "{{ labels.page }} ", size=small, color=muted, align=WD_ALIGN_PARAGRAPH.RIGHT, before=4, first=True)
    # The footer's own first paragraph comes before the table: move it after.
    footer._element.remove(pages._p)
    footer._element.append(pages._p)
    _field(pages, "PAGE", small, muted)
    _run(pages, " / ", size=small, color=muted)
    _field(pages, "NUMPAGES", small, muted)


def _document() -> DocumentObject:
    document = Document()
    _page(document)
    _style(document)
    # A new document starts with one empty paragraph: drop it, blocks add their own.
    body = document.element.body
    for paragraph in list(body.iter(qn("w:p"))):
        body.remove(paragraph)
    return document


def _title(document: DocumentObject, number: str) -> None:
    paragraph = _para(document, style="Title")
    _run(paragraph, "{{ document.title }} ")
    _run(paragraph, number, color=MUTED)


def _note(document: DocumentObject, label: str, value: str, condition: str | None = None) -> None:
    if condition:
        _tag(document, f"{{%p if {condition} %}}")
    paragraph = _para(document, before=6)
    _run(paragraph, label + ": ", bold=True)
    _run(paragraph, value)
    if condition:
        _tag(document, "{%p endif %}")


def quote() -> DocumentObject:
    document = _document()
    _letterhead(document)
    _addresses(
        document,
        [
            ("{{ labels.number }}", "{{ quote.number }}"),
            ("{{ labels.date }}", "{{ document.date }}"),
            ("{{ labels.valid_until }}", "{{ quote.valid_until }}"),
        ],
    )
    _title(document, "{{ quote.number }}")
    _lines(document)
    _totals(
        document,
        [
            ("{{ labels.subtotal }}", "{{ quote.subtotal }}", None),
            ("{{ labels.discount }}", "{{ quote.discount }}", "has_discount"),
            ("{{ labels.tax }} {{ quote.tax_rate }}", "{{ quote.tax }}", None),
            ("{{ labels.total }}", "{{ quote.total }}", None),
        ],
        emphasise=3,
    )
    _note(document, "{{ labels.valid_until }}", "{{ quote.valid_until }}")
    _footer(document)
    return document


def order_confirmation() -> DocumentObject:
    document = _document()
    _letterhead(document)
    _addresses(
        document,
        [
            ("{{ labels.number }}", "{{ order.number }}"),
            ("{{ labels.ordered }}", "{{ order.ordered }}"),
            ("{{ labels.date }}", "{{ document.date }}"),
        ],
    )
    _title(document, "{{ order.number }}")
    _lines(document)
    _totals(
        document,
        [
            ("{{ labels.subtotal }}", "{{ order.subtotal }}", None),
            ("{{ labels.discount }}", "{{ order.discount }}", "has_discount"),
            ("{{ labels.tax }} {{ order.tax_rate }}", "{{ order.tax }}", None),
            ("{{ labels.total }}", "{{ order.total }}", None),
        ],
        emphasise=3,
    )
    _footer(document)
    return document


def invoice() -> DocumentObject:
    document = _document()
    _letterhead(document)
    _addresses(
        document,
        [
            ("{{ labels.number }}", "{{ invoice.number }}"),
            ("{{ labels.date }}", "{{ invoice.issued }}"),
            ("{{ labels.due }}", "{{ invoice.due }}"),
            ("{{ labels.order_confirmation }}", "{{ order.number }}"),
        ],
    )
    _title(document, "{{ invoice.number }}")
    _lines(document)
    _totals(
        document,
        [
            ("{{ labels.subtotal }}", "{{ order.subtotal }}", None),
            ("{{ labels.discount }}", "{{ order.discount }}", "has_discount"),
            ("{{ labels.tax }} {{ order.tax_rate }}", "{{ order.tax }}", None),
            ("{{ labels.total }}", "{{ order.total }}", None),
            ("{{ labels.paid }}", "{{ order.paid }}", None),
            ("{{ labels.balance }}", "{{ order.balance }}", None),
        ],
        emphasise=5,
    )
    _note(document, "{{ labels.due }}", "{{ invoice.due }}")
    _note(document, "{{ labels.payment_terms }}", "{{ invoice.payment_terms }}")
    _tag(document, "{%p if seller.bank %}")
    _para(document, "{{ seller.bank }}", before=2)
    _tag(document, "{%p endif %}")
    _footer(document)
    return document


def _party(cell: _Cell, caption: str, who: str) -> None:
    _para(cell, caption, size=7.5, color=MUTED, first=True, after=2)
    _para(cell, f"{{{{ {who}.name }}}}", bold=True, size=10.5)
    _tag(cell, f"{{%p for address_line in {who}.address_lines %}}")
    _para(cell, "{{ address_line }}")
    _tag(cell, "{%p endfor %}")  # the lines end (or, in China, begin) with the country
    _tag(cell, f"{{%p if {who}.vat_id %}}")
    _para(cell, f"{{{{ {who}.vat_id }}}}", size=8.5, color=MUTED, before=3)
    _tag(cell, "{%p endif %}")


def contract() -> DocumentObject:
    document = _document()
    _letterhead(document)
    title = _para(document, style="Title", align=WD_ALIGN_PARAGRAPH.CENTER)
    title.paragraph_format.space_before = Pt(24)
    title.paragraph_format.space_after = Pt(2)
    _run(title, "{{ document.title }}")
    _para(
        document,
        "{{ labels.number }} {{ contract.number }} · {{ labels.date }} {{ contract.date }}",
        color=MUTED,
        align=WD_ALIGN_PARAGRAPH.CENTER,
        after=18,
    )

    parties = _table(document, 1, [TEXT_WIDTH_MM / 2, TEXT_WIDTH_MM / 2])
    _no_margins(parties)
    _party(parties.rows[0].cells[0], "{{ labels.seller }}", "seller")
    _party(parties.rows[0].cells[1], "{{ labels.customer }}", "customer")

    _para(document, after=6)
    _note(document, "{{ labels.total }}", "{{ contract.total }}")
    _note(document, "{{ labels.payment_terms }}", "{{ contract.payment_terms }}")

    _tag(document, "{%p for term in terms %}")
    _para(document, "{{ term.number }}. {{ term.heading }}", style="Heading 2")
    clause = _para(document, "{{ term.text }}", align=WD_ALIGN_PARAGRAPH.JUSTIFY, after=4)
    clause.paragraph_format.left_indent = Mm(6)
    _tag(document, "{%p endfor %}")

    _para(document, after=28)
    signatures = _table(document, 3, [75, TEXT_WIDTH_MM - 150, 75])
    _no_margins(signatures)
    for row in signatures.rows:
        _keep_row_together(row)
    places = signatures.rows[0].cells
    _para(places[0], "{{ labels.seller }}", size=7.5, color=MUTED, first=True)
    _para(places[2], "{{ labels.customer }}", size=7.5, color=MUTED, first=True)
    for cell in signatures.rows[1].cells:
        _para(cell, first=True).paragraph_format.space_before = Pt(30)
    lines = signatures.rows[2].cells
    for cell, who in ((lines[0], "seller"), (lines[2], "customer")):
        _borders(cell, top=("1D232B", 6))
        _para(cell, f"{{{{ {who}.name }}}}", first=True, before=2)
        _para(cell, "{{ labels.date }}", size=7.5, color=MUTED)

    _tag(document, "{%p for annex in annexes %}")
    heading = _para(document, style="Heading 1")
    heading.paragraph_format.page_break_before = True
    _run(heading, "{{ labels.annex }} {{ annex.letter }}: {{ annex.title }}")
    _para(document, "{{ contract.number }} · {{ customer.name }}", color=MUTED, size=8.5, after=8)
    _lines_table(document, "annex.lines", with_discount=False)
    # Annex A is the price schedule (the order's lines): it ends with the contract's total.
    _tag(document, '{%p if annex.letter == "A" %}')
    total = _para(document, align=WD_ALIGN_PARAGRAPH.RIGHT, before=6)
    _run(total, "{{ labels.total }}  ", bold=True, color=ACCENT)
    _run(total, "{{ contract.total }}", bold=True)
    _tag(document, "{%p endif %}")
    _para(document)
    _tag(document, "{%p endfor %}")
    _footer(document)
    return document


# --- the report workbook ----------------------------------------------------------------------


_THIN = Side(style="thin", color=RULE)
_STRONG = Side(style="medium", color=ACCENT)


def _font(**kwargs) -> Font:
    return Font(name=FONT, **kwargs)


def _sheet_title(ws: Worksheet, last_column: str, subtitle: str) -> None:
    ws["A1"] = "{{ report.title }}"
    ws["A1"].font = _font(size=16, bold=True, color=ACCENT)
    ws.merge_cells(f"A1:{last_column}1")
    ws["A2"] = subtitle
    ws["A2"].font = _font(size=10, color=MUTED)
    ws.merge_cells(f"A2:{last_column}2")
    ws.row_dimensions[1].height = 24


def _header_row(ws: Worksheet, row: int, labels: list[str], *, first_left: bool = True) -> None:
    for column, label in enumerate(labels, start=1):
        cell = ws.cell(row=row, column=column, value=label)
        cell.font = _font(bold=True, size=9.5, color=ACCENT)
        cell.fill = PatternFill("solid", fgColor=HEADER_FILL)
        cell.border = Border(bottom=_STRONG)
        right = not (first_left and column == 1)
        cell.alignment = Alignment(horizontal="right" if right else "left", vertical="center", wrap_text=True)
    ws.row_dimensions[row].height = 30


def _marker(ws: Worksheet, row: int, tag: str) -> None:
    ws.cell(row=row, column=1, value=tag).font = _font(size=8, color=MUTED, italic=True)


def _page_setup(ws: Worksheet, *, landscape: bool = False) -> None:
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.6
    ws.page_margins.top = ws.page_margins.bottom = 0.7
    ws.oddFooter.right.text = "{{ labels.page }} &P / &N"
    ws.oddFooter.right.size = 8
    ws.oddFooter.left.text = "{{ report.title }}"
    ws.oddFooter.left.size = 8
    ws.sheet_view.showGridLines = False


def _pipeline_sheet(ws: Worksheet) -> None:
    ws.title = "Pipeline"
    _sheet_title(ws, "E", "{{ pipeline.name }} · {{ report.period_from }} – {{ report.period_to }}")
    _header_row(
        ws,
        4,
        [
            "{{ labels.stage }}",
            "{{ labels.probability }}",
            "{{ labels.count }}",
            "{{ labels.amount }} ({{ report.currency }})",
            "{{ labels.weighted }} ({{ report.currency }})",
        ],
    )
    _marker(ws, 5, "{% for stage in pipeline.stages %}")
    values = [
        ("{{ stage.name }}", "General"),
        ("{{ stage.probability / 100 }}", "0%"),
        ("{{ stage.count }}", "#,##0"),
        ("{{ stage.amount }}", "#,##0.00"),
        ("{{ stage.weighted }}", "#,##0.00"),
    ]
    for column, (value, number_format) in enumerate(values, start=1):
        cell = ws.cell(row=6, column=column, value=value)
        cell.number_format = number_format
        cell.font = _font(size=10)
        cell.border = Border(bottom=_THIN)
        if column > 1:
            cell.alignment = Alignment(horizontal="right", vertical="center")
        else:
            cell.alignment = Alignment(vertical="center")
    ws.row_dimensions[6].height = 18
    _marker(ws, 7, "{% endfor %}")
    totals = [("{{ labels.total }}", "General"), (None, "General"), ("=SUM(C6:C6)", "#,##0"),
              ("=SUM(D6:D6)", "#,##0.00"), ("=SUM(E6:E6)", "#,##0.00")]  # fmt: skip
    for column, (value, number_format) in enumerate(totals, start=1):
        cell = ws.cell(row=8, column=column, value=value)
        cell.number_format = number_format
        cell.font = _font(size=10, bold=True)
        cell.border = Border(top=_STRONG)
        if column > 1:
            cell.alignment = Alignment(horizontal="right")
    ws.row_dimensions[8].height = 20

    # The pipeline's outcome over the period.
    facts = [
        ("{{ labels.open }}", "{{ pipeline.open_count }}", "#,##0", "{{ pipeline.open_amount }}"),
        ("{{ labels.weighted }}", None, "#,##0", "{{ pipeline.weighted_amount }}"),
        ("{{ labels.won }}", "{{ pipeline.won_count }}", "#,##0", "{{ pipeline.won_amount }}"),
        ("{{ labels.lost }}", "{{ pipeline.lost_count }}", "#,##0", None),
    ]
    _header_row(ws, 10, [None, None, "{{ labels.count }}", "{{ labels.amount }} ({{ report.currency }})", None])
    for cell in ws[10]:
        if cell.value is None:
            cell.fill = PatternFill(fill_type=None)
            cell.border = Border()
    for offset, (label, count, count_format, amount) in enumerate(facts):
        row = 11 + offset
        ws.cell(row=row, column=1, value=label).font = _font(size=10)
        for column, value, number_format in ((3, count, count_format), (4, amount, "#,##0.00")):
            cell = ws.cell(row=row, column=column, value=value)
            cell.number_format = number_format
            cell.font = _font(size=10)
            cell.alignment = Alignment(horizontal="right")
        for column in range(1, 5):
            ws.cell(row=row, column=column).border = Border(bottom=_THIN)
    ws.cell(row=15, column=1, value="{{ labels.win_rate }}").font = _font(size=10, bold=True)
    rate = ws.cell(row=15, column=3, value="{{ pipeline.win_rate }}")
    rate.number_format = "0.0%"
    rate.font = _font(size=10, bold=True)
    rate.alignment = Alignment(horizontal="right")

    for column, width in zip("ABCDE", (30, 14, 12, 20, 20)):
        ws.column_dimensions[column].width = width
    _page_setup(ws)
    ws.print_title_rows = "4:4"


def _rfm_sheet(ws: Worksheet) -> None:
    ws.title = "RFM"
    _sheet_title(ws, "G", "{{ labels.recency }} × {{ labels.frequency }} · {{ report.period_from }} – {{ report.period_to }}")
    ws["B4"] = "{{ labels.frequency }}"
    ws["B4"].font = _font(bold=True, size=9.5, color=ACCENT)
    ws["B4"].alignment = Alignment(horizontal="center")
    ws.merge_cells("B4:F4")
    _header_row(ws, 5, ["{{ labels.recency }}", 1, 2, 3, 4, 5, "{{ labels.total }}"])
    for cell in ws[5][1:7]:
        cell.alignment = Alignment(horizontal="center", vertical="center")
    _marker(ws, 6, "{% for rfm_row in rfm.rows %}")
    ws.cell(row=7, column=1, value="{{ rfm_row.recency }}")
    for column in range(2, 7):
        ws.cell(row=7, column=column, value=f"{{{{ rfm_row.f{column - 1} }}}}")
    ws.cell(row=7, column=7, value="=SUM(B7:F7)")
    for column in range(1, 8):
        cell = ws.cell(row=7, column=column)
        cell.font = _font(size=10, bold=column in (1, 7))
        cell.number_format = "#,##0"
        cell.alignment = Alignment(horizontal="center", vertical="center")
        cell.border = Border(bottom=_THIN, left=_THIN if column > 1 else None, right=_THIN if column < 7 else None)
    ws.row_dimensions[7].height = 26
    _marker(ws, 8, "{% endfor %}")
    ws.cell(row=9, column=1, value="{{ labels.total }}")
    for column in range(2, 8):
        letter = "ABCDEFG"[column - 1]
        ws.cell(row=9, column=column, value=f"=SUM({letter}7:{letter}7)")
    for column in range(1, 8):
        cell = ws.cell(row=9, column=column)
        cell.font = _font(size=10, bold=True)
        cell.number_format = "#,##0"
        cell.alignment = Alignment(horizontal="center")
        cell.border = Border(top=_STRONG)
    # A heat map over the grid: the engine widens the range to the five rows.
    ws.conditional_formatting.add(
        "B7:F7", ColorScaleRule(start_type="min", start_color="FFFFFF", end_type="max", end_color="6F93BD")
    )
    ws.column_dimensions["A"].width = 16
    for letter in "BCDEF":
        ws.column_dimensions[letter].width = 11
    ws.column_dimensions["G"].width = 12
    _page_setup(ws)


def _tickets_sheet(ws: Worksheet) -> None:
    ws.title = "Tickets"
    _sheet_title(ws, "B", "{{ report.period_from }} – {{ report.period_to }}")
    figures = [
        ("{{ labels.opened }}", "{{ tickets.opened }}", "#,##0"),
        ("{{ labels.resolved }}", "{{ tickets.resolved }}", "#,##0"),
        ("{{ labels.open }}", "{{ tickets.open }}", "#,##0"),
        ("{{ labels.breached }}", "{{ tickets.breached }}", "#,##0"),
        ("{{ labels.first_response_hours }}", "{{ tickets.average_first_response_hours }}", "#,##0.0"),
        ("{{ labels.resolution_hours }}", "{{ tickets.average_resolution_hours }}", "#,##0.0"),
    ]
    for offset, (label, value, number_format) in enumerate(figures):
        row = 4 + offset
        name = ws.cell(row=row, column=1, value=label)
        name.font = _font(size=10, color=MUTED)
        figure = ws.cell(row=row, column=2, value=value)
        figure.font = _font(size=12, bold=True)
        figure.number_format = number_format
        figure.alignment = Alignment(horizontal="right")
        for cell in (name, figure):
            cell.border = Border(bottom=_THIN)
        ws.row_dimensions[row].height = 22
    ws.column_dimensions["A"].width = 44
    ws.column_dimensions["B"].width = 16
    _page_setup(ws)


def report() -> Workbook:
    wb = Workbook()
    _pipeline_sheet(wb.active)
    _rfm_sheet(wb.create_sheet())
    _tickets_sheet(wb.create_sheet())
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.font.name != FONT:
                    cell.font = _font()
    return wb


def main(directory: Path = HERE) -> None:
    for name, build in (
        ("quote", quote),
        ("order_confirmation", order_confirmation),
        ("invoice", invoice),
        ("contract", contract),
    ):
        build().save(directory / f"{name}.docx")
    report().save(directory / "report.xlsx")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
