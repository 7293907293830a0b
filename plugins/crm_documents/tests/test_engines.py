"""The DOCX and XLSX engines and the shipped default templates.

The contexts here are plain dicts shaped as docs/documents.md describes them (the plugin's own
context builder is tested elsewhere); the helpers are simple stand-ins for the locale-bound ones.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import struct
import subprocess
import zipfile
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from docx import Document
from docx.oxml.ns import qn
from docx.text.paragraph import Paragraph
from lxml import etree
from openpyxl.utils.cell import range_boundaries

import crm_documents
from crm_documents.engines import DocxEngine, PackageLimits, XlsxEngine
from crm_graph.core.documents import Image, TemplateError

# Touches no CRM database: runs in the --db sqlite pass of `make test` only.
pytestmark = pytest.mark.one_pass

TEMPLATES = Path(crm_documents.__file__).resolve().parent / "templates"
DOCS = Path(__file__).resolve().parents[3] / "docs" / "documents.md"
DOCX_KINDS = {
    "quote.docx": "QUOTE",
    "order_confirmation.docx": "ORDER_CONFIRMATION",
    "invoice.docx": "INVOICE",
    "contract.docx": "CONTRACT",
}
# Words the report workbook prints that docs/documents.md has no label for yet (the tickets
# figures, the RFM axes, the pipeline's outcome): proposed additions to its `labels` list.
PROPOSED_LABELS = {
    "open", "won", "lost", "win_rate", "recency", "frequency",
    "opened", "resolved", "breached", "first_response_hours", "resolution_hours",
}  # fmt: skip

docx_engine = DocxEngine()
xlsx_engine = XlsxEngine()


# --- what docs/documents.md promises ----------------------------------------------------------


def _documented() -> tuple[dict[str, set[str]], set[str]]:
    """The names each kind's context has (its bullet, plus the table every kind has), and the
    documented label keys."""
    text = DOCS.read_text(encoding="utf-8")
    common = set(re.findall(r"^\| `(\w+)` \|", text, re.MULTILINE))
    kinds: dict[str, set[str]] = {}
    for kind, body in re.findall(r"^- \*\*(\w+)\*\*(.*?)(?=^- \*\*|^`labels` keys|\Z)", text, re.MULTILINE | re.DOTALL):
        kinds[kind] = common | set(re.findall(r"`(\w+)`", body))
    # "INVOICE — `order` as above": the order confirmation's names.
    kinds["INVOICE"] |= kinds["ORDER_CONFIRMATION"]
    labels_part = text.split("`labels` keys:", 1)[1]
    labels = set(re.findall(r"`(\w+)`", labels_part))
    return kinds, labels


DOCUMENTED, DOCUMENTED_LABELS = _documented()


def _template(name: str) -> bytes:
    return (TEMPLATES / name).read_bytes()


# --- contexts --------------------------------------------------------------------------------


def _png(width: int = 120, height: int = 40) -> bytes:
    """A small checkered PNG, written by hand (no imaging library needed)."""
    rows = b"".join(
        b"\x00" + b"".join(b"\x1f\x3a\x5f" if (x // 10 + y // 10) % 2 else b"\xc8\xd2\xe1" for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


LOGO = _png()

from crm_documents.formatting import LABELS  # noqa: E402 - the words the real contexts carry


def _money(amount: Decimal, language: str) -> str:
    """A stand-in for the locale's money format: German "1.234,50 €", Chinese "€1,234.50"."""
    text = f"{amount:,.2f}"
    if language == "de":
        return text.replace(",", " ").replace(".", ",").replace(" ", ".") + " €"
    return "€" + text


FILTERS = {
    "money": lambda amount, currency: f"{amount} {currency}",
    "date": lambda value: value.strftime("%d.%m.%Y"),
    "datetime": lambda value: value.isoformat(),
    "number": str,
    "percent": lambda value: f"{value} %",
}


def _seller(*, logo: bool) -> dict[str, Any]:
    return {
        "name": "Nordlicht Software GmbH",
        "address_lines": ["Hafenstraße 12", "20457 Hamburg"],
        "email": "vertrieb@nordlicht.example",
        "phone": "+49 40 1234567",
        "vat_id": "DE123456789",
        "bank": "IBAN DE02 2005 0550 1234 5678 90",
        "website": "www.nordlicht.example",
        "logo": Image(LOGO, width_mm=45) if logo else None,
    }


def _lines(language: str, discounted: bool) -> list[dict[str, Any]]:
    items = [
        ("NL-101", {"de": "CRM-Lizenz, jährlich", "zh": "客户关系管理软件年度许可"}, Decimal(3), Decimal("1200.00"), 0),
        ("NL-205", {"de": "Einführungsworkshop (2 Tage)", "zh": "实施培训（两天）"}, Decimal(1), Decimal("1850.00"), 10),
        ("NL-310", {"de": "Premium-Support", "zh": "高级技术支持"}, Decimal(12), Decimal("95.50"), 0),
    ]
    lines = []
    for position, (sku, description, quantity, unit_price, percent) in enumerate(items, start=1):
        percent = percent if discounted else 0
        subtotal = quantity * unit_price
        discount = (subtotal * percent / 100).quantize(Decimal("0.01"))
        lines.append(
            {
                "position": position,
                "sku": sku,
                "description": description[language],
                "quantity": str(quantity),
                "unit_price": _money(unit_price, language),
                "discount_percent": f"{percent} %" if percent else "",
                "discount": _money(discount, language),
                "subtotal": _money(subtotal, language),
                "total": _money(subtotal - discount, language),
                "quantity_amount": quantity,
                "unit_price_amount": unit_price,
                "total_amount": subtotal - discount,
            }
        )
    return lines


def quote_context(
    language: str, customer_name: str, *, discounted: bool = True, logo: bool = True, country: str = "Deutschland"
) -> dict[str, Any]:
    lines = _lines(language, discounted)
    subtotal = sum(line["quantity_amount"] * line["unit_price_amount"] for line in lines)
    net = sum(line["total_amount"] for line in lines)
    tax = (net * Decimal("0.19")).quantize(Decimal("0.01"))
    return {
        "document": {"kind": "QUOTE", "title": LABELS[language]["quote"], "number": "Q-2024-0042", "date": "02.12.2024",
                     "locale": {"de": "de_DE", "zh": "zh_CN"}[language]},  # fmt: skip
        "labels": LABELS[language],
        "seller": _seller(logo=logo),
        "customer": {
            "name": customer_name,
            "email": "einkauf@example.com",
            "phone": "",
            # As the real context has them: the country's name is one of the lines (first in China).
            "address_lines": ["Leopoldstraße 5", "80802 München", country] if language == "de" else [country, "上海市浦东新区", "世纪大道100号"],
            "country": country,
            "vat_id": "DE987654321" if language == "de" else "",
        },
        "quote": {
            "number": "Q-2024-0042",
            "status": "SENT",
            "currency": "EUR",
            "created": "01.12.2024",
            "valid_until": "31.12.2024",
            "subtotal": _money(subtotal, language),
            "discount": _money(subtotal - net, language),
            "tax_rate": "19 %",
            "tax": _money(tax, language),
            "total": _money(net + tax, language),
            "total_amount": net + tax,
        },
        "lines": lines,
        "has_discount": any(line["discount_percent"] for line in lines),
    }


STAGES = [
    ("Qualifizierung", 10, 12, Decimal("48000.00")),
    ("Angebot", 40, 7, Decimal("91500.50")),
    ("Verhandlung", 70, 3, Decimal("30250.25")),
    ("Abschluss", 90, 2, Decimal("12000.00")),
]


def report_context(stage_count: int) -> dict[str, Any]:
    stages = [
        {"name": name, "probability": probability, "count": count, "amount": amount, "weighted": amount * probability / 100}
        for name, probability, count, amount in STAGES[:stage_count]
    ]
    return {
        "document": {"kind": "REPORT", "title": "Vertriebsbericht", "number": "Neukunden", "date": "02.12.2024", "locale": "de_DE"},
        "labels": LABELS["de"],
        "seller": _seller(logo=False),
        "report": {
            "title": "Vertriebsbericht: Neukunden",
            "period_from": "01.10.2024",
            "period_to": "31.12.2024",
            "period_from_on": dt.date(2024, 10, 1),
            "period_to_on": dt.date(2024, 12, 31),
            "currency": "EUR",
        },
        "pipeline": {
            "name": "Neukunden",
            "stages": stages,
            "open_count": sum(stage["count"] for stage in stages),
            "open_amount": sum(stage["amount"] for stage in stages),
            "weighted_amount": sum(stage["weighted"] for stage in stages),
            "won_count": 4,
            "won_amount": Decimal("25000.00"),
            "lost_count": 2,
            "win_rate": 0.667,
        },
        "rfm": {
            "cells": [],
            "rows": [{"recency": r, **{f"f{f}": (r * f * 7) % 23 for f in range(1, 6)}} for r in range(5, 0, -1)],
        },
        "tickets": {
            "opened": 120,
            "resolved": 98,
            "open": 22,
            "breached": 3,
            "average_first_response_hours": Decimal("2.5"),
            "average_resolution_hours": None,
        },
    }


# --- reading documents back ------------------------------------------------------------------


def docx_paragraphs(data: bytes) -> list[str]:
    """Every paragraph of the body (tables included) and of the footers, as python-docx reads them."""
    document = Document(io.BytesIO(data))
    texts = [Paragraph(p, document).text for p in document.element.body.iter(qn("w:p"))]
    for section in document.sections:
        texts += [Paragraph(p, document).text for p in section.footer._element.iter(qn("w:p"))]
    return texts


def docx_table_rows(data: bytes) -> list[list[str]]:
    document = Document(io.BytesIO(data))
    return [[cell.text for cell in row.cells] for table in document.tables for row in table.rows]


def make_docx(paragraphs: list[str] = (), rows: list[list[str]] | None = None, runs: list[list[str]] | None = None) -> bytes:
    """A small Word template: paragraphs, then a table, then paragraphs made of separate runs
    (the way Word splits a tag when its formatting changes in the middle)."""
    document = Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if rows:
        table = document.add_table(rows=0, cols=len(rows[0]))
        for values in rows:
            for cell, value in zip(table.add_row().cells, values):
                cell.text = value
    for pieces in runs or []:
        paragraph = document.add_paragraph()
        for n, piece in enumerate(pieces):
            paragraph.add_run(piece).bold = n % 2 == 1
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_xlsx(cells: dict[str, Any], title: str = "Pipeline") -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for coordinate, value in cells.items():
        ws[coordinate] = value
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def syntax_error(engine: Any, template: bytes) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        engine.inspect(template)
    return caught.value


# --- the shipped templates -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DOCX_KINDS))
def test_docx_templates_read_only_documented_names(name: str) -> None:
    kind = DOCX_KINDS[name]
    info = docx_engine.inspect(_template(name))
    assert info.variables <= DOCUMENTED[kind], info.variables - DOCUMENTED[kind]
    main = {"QUOTE": "quote", "ORDER_CONFIRMATION": "order", "INVOICE": "invoice", "CONTRACT": "contract"}[kind]
    assert {"document", "labels", "seller", "customer", main} <= info.variables
    for variable in info.variables:
        assert info.where[variable].startswith("word/"), info.where
    # Loop variables are not context variables.
    assert not info.variables & {"line", "address_line", "term", "annex"}


def test_report_template_reads_only_documented_names() -> None:
    info = xlsx_engine.inspect(_template("report.xlsx"))
    assert info.variables <= DOCUMENTED["REPORT"], info.variables - DOCUMENTED["REPORT"]
    assert {"report", "pipeline", "rfm", "tickets", "labels"} <= info.variables
    assert not info.variables & {"stage", "rfm_row", "loop"}
    assert info.where["pipeline"].startswith("sheet Pipeline, cell ")


def _labels_used(name: str) -> set[str]:
    with zipfile.ZipFile(TEMPLATES / name) as archive:
        text = " ".join(archive.read(n).decode("utf-8") for n in archive.namelist() if n.endswith(".xml"))
    return set(re.findall(r"labels\.(\w+)", text))


@pytest.mark.parametrize("name", [*sorted(DOCX_KINDS), "report.xlsx"])
def test_templates_print_only_labels(name: str) -> None:
    used = _labels_used(name)
    assert used, "a template prints its words from labels"
    undocumented = used - DOCUMENTED_LABELS
    if name.endswith(".docx"):
        assert not undocumented
    else:
        assert undocumented <= PROPOSED_LABELS, undocumented - PROPOSED_LABELS


def test_templates_set_latin_and_east_asian_fonts() -> None:
    for name in DOCX_KINDS:
        with zipfile.ZipFile(TEMPLATES / name) as archive:
            styles = etree.fromstring(archive.read("word/styles.xml"))
        defaults = styles.find(f"{qn('w:docDefaults')}/{qn('w:rPrDefault')}/{qn('w:rPr')}/{qn('w:rFonts')}")
        assert defaults.get(qn("w:ascii")) == "Liberation Sans"
        assert defaults.get(qn("w:eastAsia")) == "Noto Sans CJK SC"
        themed = [f for f in styles.iter(qn("w:rFonts")) if any(a.endswith("Theme") for a in f.attrib)]
        assert not themed, f"{name}: a style still takes the theme's font"


# --- DOCX: bad templates ---------------------------------------------------------------------


def test_docx_unclosed_tag_says_where() -> None:
    error = syntax_error(docx_engine, make_docx(["Intro", "Summe: {{ quote.total"]))
    assert error.code == TemplateError.TEMPLATE_SYNTAX
    assert "paragraph 2" in error.where and "{{ quote.total" in error.where


def test_docx_bad_expression_says_which_tag() -> None:
    error = syntax_error(docx_engine, make_docx(["{{ quote.total + }}"]))
    assert error.code == TemplateError.TEMPLATE_SYNTAX
    assert "{{ quote.total + }}" in error.message and "paragraph 1" in error.where


def test_docx_unbalanced_row_loop() -> None:
    template = make_docx(rows=[["Pos", "Text"], ["{%tr for line in lines %}", ""], ["{{ line.position }}", "{{ line.description }}"]])
    error = syntax_error(docx_engine, template)
    assert error.code == TemplateError.TEMPLATE_SYNTAX
    assert "never closed" in error.message and "{%tr endfor %}" in error.message
    assert "table 1, row 2" in error.where


def test_docx_row_loop_closed_by_a_paragraph_tag() -> None:
    template = make_docx(["{%p endfor %}"], rows=[["{%tr for line in lines %}"], ["{{ line.sku }}"]])
    # The paragraph comes first in the document: it closes nothing.
    assert "closes nothing" in syntax_error(docx_engine, template).message
    document = Document(io.BytesIO(make_docx(rows=[["{%tr for line in lines %}"], ["{{ line.sku }}"]])))
    document.add_paragraph("{%p endfor %}")
    out = io.BytesIO()
    document.save(out)
    error = syntax_error(docx_engine, out.getvalue())
    assert "{%tr endfor %}" in error.message and "paragraph" in error.where


def test_docx_row_tag_outside_a_table_and_two_in_one_row() -> None:
    assert "table row" in syntax_error(docx_engine, make_docx(["{%tr for line in lines %}"])).message
    error = syntax_error(docx_engine, make_docx(rows=[["{%tr for line in lines %}", "{%tr endfor %}"]]))
    assert "two {%tr %} tags" in error.message and "table 1, row 1" in error.where


def test_docx_tag_split_across_runs_is_joined() -> None:
    template = make_docx(runs=[["Kunde: {{ cust", "omer.na", "me }}"], ["{%", "p if has_discount %}"], ["Rabatt"], ["{%p endif %}"]])
    assert docx_engine.inspect(template).variables == {"customer", "has_discount"}
    out = docx_engine.render(template, {"customer": {"name": "Anna Berg"}, "has_discount": False}, FILTERS)
    texts = docx_paragraphs(out)
    assert "Kunde: Anna Berg" in texts
    assert "Rabatt" not in texts


def test_docx_missing_values_render_empty_but_helpers_refuse_them() -> None:
    template = make_docx(["Tel. {{ customer.phone }}{{ customer.fax.number }}", "{{ money(quote.total_amount, 'EUR') }}"])
    with pytest.raises(TemplateError) as caught:
        docx_engine.render(template, {"customer": {}, "quote": {}}, FILTERS)
    assert caught.value.code == TemplateError.RENDER_FAILED
    assert "money()" in caught.value.message and "total_amount" in caught.value.message
    assert "word/document.xml" in caught.value.where
    out = docx_engine.render(make_docx(["Tel. {{ customer.phone }}{{ customer.fax.number }}"]), {"customer": {}}, FILTERS)
    assert "Tel. " in docx_paragraphs(out)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "PDF"),
        (bytes(range(256)) * 4, "no known format"),
        (b"", "empty"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504, "old binary Office file"),
    ],
)
def test_docx_refuses_files_that_are_not_word_documents(data: bytes, named: str) -> None:
    error = syntax_error(docx_engine, data)
    assert error.code == TemplateError.NOT_THIS_FORMAT
    assert named in error.message


def test_each_engine_refuses_the_other_kind() -> None:
    error = syntax_error(docx_engine, _template("report.xlsx"))
    assert error.code == TemplateError.NOT_THIS_FORMAT
    assert "Excel workbook" in error.message and "Word document" in error.message
    error = syntax_error(xlsx_engine, _template("quote.docx"))
    assert error.code == TemplateError.NOT_THIS_FORMAT
    assert "Word document" in error.message
    plain_zip = io.BytesIO()
    with zipfile.ZipFile(plain_zip, "w") as archive:
        archive.writestr("notes.txt", "hello")
    assert "[Content_Types].xml" in syntax_error(docx_engine, plain_zip.getvalue()).message


def _replace_member(name: str, member: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(TEMPLATES / name) as original, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in original.infolist():
            archive.writestr(info.filename, content if info.filename == member else original.read(info))
    return out.getvalue()


@pytest.mark.parametrize(("name", "member"), [("quote.docx", "word/document.xml"), ("report.xlsx", "xl/workbook.xml")])
def test_damaged_files_give_a_typed_error(name: str, member: str) -> None:
    engine = docx_engine if name.endswith(".docx") else xlsx_engine
    data = _template(name)
    for cut in (len(data) // 3, len(data) - 30):
        error = syntax_error(engine, data[:cut])
        assert error.code == TemplateError.NOT_THIS_FORMAT and "damaged ZIP" in error.message
    error = syntax_error(engine, _replace_member(name, member, b"<w:document><w:body>"))
    assert error.code == TemplateError.NOT_THIS_FORMAT and "cannot be read" in error.message
    with pytest.raises(TemplateError) as caught:
        engine.render(_replace_member(name, member, b"<w:document><w:body>"), {}, FILTERS)
    assert caught.value.code == TemplateError.NOT_THIS_FORMAT


def test_parts_declaring_entities_are_refused() -> None:
    with zipfile.ZipFile(TEMPLATES / "quote.docx") as original:
        document = original.read("word/document.xml")
    declaration = b'<!DOCTYPE w:document [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    head, rest = document.split(b"?>", 1)
    error = syntax_error(docx_engine, _replace_member("quote.docx", "word/document.xml", head + b"?>" + declaration + rest))
    assert error.code == TemplateError.NOT_THIS_FORMAT
    assert "word/document.xml declares a DTD" in error.message


# --- both engines: zip bombs -----------------------------------------------------------------


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """A real DOCX with one more member: 200 MB of zeros, a few hundred KB packed."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        with zipfile.ZipFile(TEMPLATES / "quote.docx") as original:
            for info in original.infolist():
                archive.writestr(info, original.read(info))
        chunk = bytes(1 << 20)
        with archive.open("word/media/image9.png", "w") as member:
            for _ in range(200):
                member.write(chunk)
    return out.getvalue()


@pytest.mark.parametrize("engine", [docx_engine, xlsx_engine], ids=["docx", "xlsx"])
def test_zip_bomb_is_refused_from_the_directory(engine: Any, zip_bomb: bytes) -> None:
    assert len(zip_bomb) < 1_000_000
    error = syntax_error(engine, zip_bomb)
    assert error.code == TemplateError.TOO_LARGE
    assert "word/media/image9.png" in error.message and "209,715,200" in error.message
    with pytest.raises(TemplateError) as caught:
        engine.render(zip_bomb, {}, FILTERS)
    assert caught.value.code == TemplateError.TOO_LARGE


def test_too_many_parts_and_too_many_bytes() -> None:
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w") as archive:
        for n in range(2_001):
            archive.writestr(f"part{n}.xml", "<a/>")
    error = syntax_error(docx_engine, many.getvalue())
    assert error.code == TemplateError.TOO_LARGE and "2,001 parts" in error.message
    # Incompressible content over a (lowered) total: refused by size, not by ratio.
    strict = DocxEngine(PackageLimits(max_unpacked_bytes=100_000))
    with zipfile.ZipFile(TEMPLATES / "quote.docx") as original:
        unpacked = sum(info.file_size for info in original.infolist())
    assert unpacked > 100_000
    error = syntax_error(strict, _template("quote.docx"))
    assert error.code == TemplateError.TOO_LARGE and "at most 100,000" in error.message


# --- DOCX: rendering -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "customer", "country"),
    [("de", "Müller & Söhne Maschinenbau KG", "Deutschland"), ("zh", "上海明珠贸易有限公司", "中国")],
)
def test_quote_holds_customer_lines_and_total(language: str, customer: str, country: str) -> None:
    context = quote_context(language, customer, country=country)
    out = docx_engine.render(_template("quote.docx"), context, FILTERS)
    texts = docx_paragraphs(out)
    joined = "\n".join(texts)
    assert customer in texts
    assert country in texts
    for line in context["lines"]:
        rows = [row for row in docx_table_rows(out) if line["description"] in row]
        assert rows, line["description"]
        assert line["sku"] in rows[0] and line["total"] in rows[0] and line["unit_price"] in rows[0]
    assert context["quote"]["total"] in texts
    assert f"{context['document']['title']} {context['quote']['number']}" in texts
    for label in ("description", "unit_price", "total", "valid_until", "subtotal", "page"):
        assert LABELS[language][label] in joined
    # One lines table: the one with the discount column, since a line has a discount.
    headers = [row for row in docx_table_rows(out) if LABELS[language]["description"] in row]
    assert len(headers) == 1 and LABELS[language]["discount"] in headers[0]
    assert "{{" not in joined and "{%" not in joined


def test_quote_without_discount_has_no_discount_column_or_row() -> None:
    context = quote_context("de", "Anna Berg", discounted=False)
    out = docx_engine.render(_template("quote.docx"), context, FILTERS)
    header = [row for row in docx_table_rows(out) if "Beschreibung" in row]
    assert len(header) == 1 and "Rabatt" not in header[0]
    assert not any("Rabatt" in row for row in docx_table_rows(out))


def test_markup_in_names_stays_text() -> None:
    name = "<Tom & Jerry> \"Cartoons\" Ltd."
    out = docx_engine.render(_template("quote.docx"), quote_context("de", name), FILTERS)
    with zipfile.ZipFile(io.BytesIO(out)) as archive:
        etree.fromstring(archive.read("word/document.xml"))  # strict: raises on broken XML
        assert b"&lt;Tom &amp; Jerry&gt;" in archive.read("word/document.xml")
    assert name in docx_paragraphs(out)


def test_logo_is_placed_only_when_there_is_one() -> None:
    out = docx_engine.render(_template("quote.docx"), quote_context("de", "Anna Berg"), FILTERS)
    with zipfile.ZipFile(io.BytesIO(out)) as archive:
        media = [n for n in archive.namelist() if n.startswith("word/media/")]
        assert [archive.read(n) for n in media] == [LOGO]
        document = etree.fromstring(archive.read("word/document.xml"))
    extents = document.findall(".//{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}extent")
    assert [int(e.get("cx")) for e in extents] == [45 * 36_000]  # 45 mm in EMU
    without = docx_engine.render(_template("quote.docx"), quote_context("de", "Anna Berg", logo=False), FILTERS)
    with zipfile.ZipFile(io.BytesIO(without)) as archive:
        assert not [n for n in archive.namelist() if n.startswith("word/media/")]


def test_a_picture_that_is_not_one_fails_with_its_path() -> None:
    context = quote_context("de", "Anna Berg")
    context["seller"]["logo"] = Image(b"not a picture", 40)
    with pytest.raises(TemplateError) as caught:
        docx_engine.render(_template("quote.docx"), context, FILTERS)
    assert caught.value.code == TemplateError.RENDER_FAILED and caught.value.where == "seller.logo"


def test_invoice_and_contract_render() -> None:
    context = quote_context("de", "Anna Berg")
    quote = context.pop("quote")
    order = {**quote, "number": "SO-1001", "ordered": "02.12.2024", "paid": "0,00 €", "balance": quote["total"]}
    invoice = {"number": "RE-2024-7", "issued": "02.12.2024", "due": "16.12.2024",
               "payment_terms": "Zahlbar innerhalb von 14 Tagen ab Rechnungsdatum ohne Abzug."}  # fmt: skip
    out = docx_engine.render(_template("invoice.docx"), {**context, "order": order, "invoice": invoice}, FILTERS)
    texts = docx_paragraphs(out)
    assert "Nummer\tRE-2024-7" in texts and "Fällig am\t16.12.2024" in texts and "Bestelldatum" not in texts
    assert "Offener Betrag" in texts and quote["total"] in texts
    assert any(invoice["payment_terms"] in text for text in texts)

    terms = [{"number": n, "heading": f"Klausel {n}", "text": f"Text der Klausel {n}."} for n in (1, 2, 3)]
    annexes = [
        {"letter": "A", "title": "Preisverzeichnis", "lines": context["lines"]},
        {"letter": "B", "title": "Leistungsbeschreibung", "lines": context["lines"][:1]},
    ]
    contract = {"number": "V-17", "date": "02.12.2024", "effective": "01.01.2025", "currency": "EUR",
                "total": quote["total"], "payment_terms": invoice["payment_terms"]}  # fmt: skip
    out = docx_engine.render(
        _template("contract.docx"),
        {**context, "order": order, "contract": contract, "terms": terms, "annexes": annexes},
        FILTERS,
    )
    texts = docx_paragraphs(out)
    assert [t for t in texts if t.startswith("Klausel") or re.match(r"\d\. Klausel", t)] == [
        "1. Klausel 1", "2. Klausel 2", "3. Klausel 3",
    ]  # fmt: skip
    assert "Anlage A: Preisverzeichnis" in texts and "Anlage B: Leistungsbeschreibung" in texts
    document = Document(io.BytesIO(out))
    annex_headings = [p for p in document.paragraphs if p.text.startswith("Anlage ")]
    assert all(p.paragraph_format.page_break_before for p in annex_headings)
    # Annex A lists three lines, annex B one: four rows with an article number.
    assert sum(1 for row in docx_table_rows(out) if row[1].startswith("NL-")) == 4


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_chinese_quote_renders_in_a_pdf(tmp_path: Path) -> None:
    from pypdf import PdfReader

    customer = "上海明珠贸易有限公司"
    out = docx_engine.render(_template("quote.docx"), quote_context("zh", customer, country="中国"), FILTERS)
    (tmp_path / "quote.docx").write_bytes(out)
    subprocess.run(
        ["soffice", "--headless", "--norestore", f"-env:UserInstallation=file://{tmp_path}/profile",
         "--convert-to", "pdf", "--outdir", str(tmp_path), str(tmp_path / "quote.docx")],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    reader = PdfReader(tmp_path / "quote.pdf")
    text = "".join(page.extract_text() for page in reader.pages)
    assert customer in text and "报价单" in text
    fonts = {str(font.get_object()["/BaseFont"]) for page in reader.pages for font in page["/Resources"]["/Font"].values()}
    assert any("NotoSansCJK" in font for font in fonts), fonts
    assert any("LiberationSans" in font for font in fonts), fonts


# --- XLSX: the report ------------------------------------------------------------------------


def _sum_of(ws: Any, formula: str) -> Decimal:
    """Compute ``=SUM(X:Y)`` over the cells it names, as a spreadsheet would."""
    match = re.fullmatch(r"=SUM\((\$?[A-Z]+\$?\d+:\$?[A-Z]+\$?\d+)\)", formula)
    assert match, formula
    min_col, min_row, max_col, max_row = range_boundaries(match.group(1).replace("$", ""))
    total = Decimal(0)
    for row in ws.iter_rows(min_row=min_row, max_row=max_row, min_col=min_col, max_col=max_col):
        for cell in row:
            if cell.value is not None:
                assert isinstance(cell.value, (int, float)), (cell.coordinate, cell.value)
                total += Decimal(str(cell.value))
    return total


def test_report_repeats_stage_rows_and_widens_the_totals() -> None:
    context = report_context(3)
    wb = openpyxl.load_workbook(io.BytesIO(xlsx_engine.render(_template("report.xlsx"), context, FILTERS)))
    ws = wb["Pipeline"]
    names = [stage["name"] for stage in context["pipeline"]["stages"]]
    stage_rows = [row for row in ws.iter_rows() if row[0].value in names]
    assert [row[0].value for row in stage_rows] == names
    first, last = stage_rows[0][0].row, stage_rows[-1][0].row
    assert last - first == 2  # consecutive rows
    for row, stage in zip(stage_rows, context["pipeline"]["stages"]):
        count, amount, weighted = row[2].value, row[3].value, row[4].value
        assert isinstance(count, int) and count == stage["count"]
        assert isinstance(amount, (int, float)) and Decimal(str(amount)) == stage["amount"]
        assert abs(Decimal(str(weighted)) - stage["weighted"]) < Decimal("0.000001")
        assert row[1].value == pytest.approx(stage["probability"] / 100) and row[1].number_format == "0%"
        assert row[3].number_format == "#,##0.00"
    totals = ws.cell(row=last + 1, column=1)
    assert totals.value == LABELS["de"]["total"]
    for column, key in ((3, "count"), (4, "amount"), (5, "weighted")):
        formula = ws.cell(row=last + 1, column=column)
        assert formula.data_type == "f"
        letter = "ABCDE"[column - 1]
        assert formula.value == f"=SUM({letter}{first}:{letter}{last})"
        expected = sum(Decimal(str(stage[key])) for stage in context["pipeline"]["stages"])
        assert abs(_sum_of(ws, formula.value) - expected) < Decimal("0.0001")
    # No marker rows or tags left anywhere.
    for sheet in wb.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert not (isinstance(cell.value, str) and ("{{" in cell.value or "{%" in cell.value)), cell.coordinate
    assert "Vertriebsbericht: Neukunden" == ws["A1"].value
    assert ws.oddFooter.right.text.startswith("Seite &P")


def test_report_rfm_grid_and_tickets() -> None:
    context = report_context(2)
    wb = openpyxl.load_workbook(io.BytesIO(xlsx_engine.render(_template("report.xlsx"), context, FILTERS)))
    ws = wb["RFM"]
    grid = [row for row in ws.iter_rows() if isinstance(row[0].value, int)]
    assert [row[0].value for row in grid] == [r["recency"] for r in context["rfm"]["rows"]]
    for row, data in zip(grid, context["rfm"]["rows"]):
        assert [cell.value for cell in row[1:6]] == [data[f"f{f}"] for f in range(1, 6)]
        assert row[6].value == f"=SUM(B{row[0].row}:F{row[0].row})"  # each row sums itself
    totals = ws.cell(row=grid[-1][0].row + 1, column=2)
    assert totals.value == f"=SUM(B{grid[0][0].row}:B{grid[-1][0].row})"
    heat_map = [str(cf.sqref) for cf in ws.conditional_formatting]
    assert heat_map == [f"B{grid[0][0].row}:F{grid[-1][0].row}"]
    tickets = wb["Tickets"]
    figures = [row[1].value for row in tickets.iter_rows(min_row=4, max_row=9)]
    assert figures == [120, 98, 22, 3, 2.5, None]


def test_report_with_no_stages_keeps_one_empty_row_for_the_formulas() -> None:
    wb = openpyxl.load_workbook(io.BytesIO(xlsx_engine.render(_template("report.xlsx"), report_context(0), FILTERS)))
    ws = wb["Pipeline"]
    totals = next(row for row in ws.iter_rows() if row[0].value == LABELS["de"]["total"])
    number = totals[0].row
    assert totals[2].value == f"=SUM(C{number - 1}:C{number - 1})"
    assert all(cell.value is None for cell in ws[number - 1])


# --- XLSX: conventions and bad templates ------------------------------------------------------


def test_xlsx_values_keep_their_types_and_text_stays_text() -> None:
    template = make_xlsx(
        {
            "A1": "{{ report.period_from_on }}",
            "B1": "{{ report.title }} ({{ report.currency }})",
            "C1": "{{ customer.name }}",
            "D1": "{{ pipeline.win_rate }}",
            "E1": "{{ pipeline.missing }}",
            "F1": "{{ money(pipeline.open_amount, 'EUR') }}",
        }
    )
    context = {**report_context(1), "customer": {"name": '=HYPERLINK("http://evil.example","click")'}}
    out = openpyxl.load_workbook(io.BytesIO(xlsx_engine.render(_with_format(template, "A1", "dd.mm.yyyy"), context, FILTERS)))
    ws = out.active
    assert ws["A1"].value == dt.datetime(2024, 10, 1) and ws["A1"].number_format == "dd.mm.yyyy"
    assert ws["B1"].value == "Vertriebsbericht: Neukunden (EUR)"
    assert ws["C1"].data_type == "s" and ws["C1"].value.startswith("=HYPERLINK")
    assert ws["D1"].value == pytest.approx(0.667)
    assert ws["E1"].value is None
    assert ws["F1"].value == "48000.00 EUR"


def _with_format(template: bytes, coordinate: str, number_format: str) -> bytes:
    wb = openpyxl.load_workbook(io.BytesIO(template))
    wb.active[coordinate].number_format = number_format
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_xlsx_loop_moves_formulas_merged_cells_and_other_sheets() -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Lines"
    ws["A1"] = "{% for line in lines %}"
    ws["A2"], ws["B2"], ws["C2"], ws["D2"] = "{{ line.sku }}", "{{ line.quantity_amount }}", "{{ line.unit_price_amount }}", "=B2*C2"
    ws["E2"] = "{{ loop.index }}/{{ loop.length }}"
    ws.merge_cells("E2:F2")
    ws["A3"] = "{% endfor %}"
    ws["D4"] = "=SUM(D2:D2)"
    ws["D5"] = "=D4*1.19"
    other = wb.create_sheet("Summary")
    other["A1"] = "=Lines!D4+SUM(Lines!$B$2:$B$2)"
    out = io.BytesIO()
    wb.save(out)
    lines = _lines("de", True)
    result = openpyxl.load_workbook(io.BytesIO(xlsx_engine.render(out.getvalue(), {"lines": lines}, FILTERS)))
    ws, other = result["Lines"], result["Summary"]
    assert [ws.cell(row=r, column=1).value for r in (1, 2, 3)] == [line["sku"] for line in lines]
    assert [ws.cell(row=r, column=4).value for r in (1, 2, 3)] == ["=B1*C1", "=B2*C2", "=B3*C3"]
    assert [ws.cell(row=r, column=5).value for r in (1, 2, 3)] == ["1/3", "2/3", "3/3"]
    assert sorted(str(r) for r in ws.merged_cells.ranges) == ["E1:F1", "E2:F2", "E3:F3"]
    assert ws["D4"].value == "=SUM(D1:D3)" and ws["D5"].value == "=D4*1.19"
    assert other["A1"].value == "=Lines!D4+SUM(Lines!$B$1:$B$3)"


def test_xlsx_broken_placeholder_says_which_cell() -> None:
    error = syntax_error(xlsx_engine, make_xlsx({"A1": "{{ report.title }}", "B4": "{{ report.title"}))
    assert error.code == TemplateError.TEMPLATE_SYNTAX
    assert error.where == "sheet Pipeline, cell B4"


@pytest.mark.parametrize(
    ("cells", "message", "where"),
    [
        ({"A5": "{% for stage in pipeline.stages %}", "A6": "{{ stage.name }}"}, "never closed", "cell A5"),
        ({"A6": "{{ stage.name }}", "A7": "{% endfor %}"}, "closes no loop", "cell A7"),
        ({"A5": "{% for stage in pipeline.stages %}", "B5": "x", "A7": "{% endfor %}"}, "alone in its row", "cell A5"),
        ({"A5": "{% for s in a %}", "A6": "{% for t in b %}", "A8": "{% endfor %}"}, "do not nest", "cell A6"),
        ({"A5": "{% for stage in pipeline.stages if stage.count %}", "A7": "{% endfor %}"}, "no condition", "cell A5"),
        ({"A5": "{% for stage in %}", "A7": "{% endfor %}"}, "for stage in", "cell A5"),
    ],
)
def test_xlsx_unbalanced_or_odd_loops(cells: dict[str, str], message: str, where: str) -> None:
    error = syntax_error(xlsx_engine, make_xlsx(cells))
    assert error.code == TemplateError.TEMPLATE_SYNTAX
    assert message in error.message and error.where == f"sheet Pipeline, {where}"


def test_xlsx_failing_cell_says_which_item() -> None:
    template = make_xlsx({"A1": "{% for stage in pipeline.stages %}", "B2": "{{ stage.amount / stage.count }}", "A3": "{% endfor %}"})
    context = report_context(2)
    context["pipeline"]["stages"][1]["count"] = 0
    with pytest.raises(TemplateError) as caught:
        xlsx_engine.render(template, context, FILTERS)
    assert caught.value.code == TemplateError.RENDER_FAILED
    assert caught.value.where == "sheet Pipeline, cell B2 (item 2 of the loop)"
