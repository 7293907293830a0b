"""The DOCX engine: Word templates with Jinja tags, filled by docxtpl.

A template is an ordinary Word document whose text holds Jinja tags: ``{{ customer.name }}``,
``{% if ... %}``, and docxtpl's structural tags, which replace the whole element they stand in
by the tag: ``{%tr for line in lines %}`` / ``{%tr endfor %}`` in rows of their own repeat the
table rows between them, ``{%p if has_discount %}`` / ``{%p endif %}`` in paragraphs of their
own keep or drop what lies between, ``{%tc %}`` does the same for cells.

Word stores a paragraph's text in runs and often splits a tag across several (a spelling mark,
a change of formatting in the middle): docxtpl joins them again. What it cannot repair is a
tag cut across paragraphs or rows, a structural tag outside the element it names, or blocks
opened and closed at different levels (``{%tr for %}`` ... ``{%p endfor %}``): those would give
a corrupt document, so ``inspect`` and ``render`` refuse them first with ``TEMPLATE_SYNTAX``
and where (``"word/document.xml, table 1, row 3 (...)"``).

Rendering: autoescape is on (a customer called ``<Tom & Jerry>`` stays text, the XML stays
valid); a missing variable or attribute renders as nothing, while handing one to a helper or
computing with it fails with ``RENDER_FAILED``; every ``Image`` of the context, however deep
(``seller.logo``), becomes a picture of its ``width_mm``. Write ``{% if seller.logo %}{{
seller.logo }}{% endif %}`` so that a seller without a logo leaves no trace.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from docx.image.image import Image as DocxImage
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.oxml import parse_xml
from docx.oxml.ns import qn
from docx.shared import Mm
from docxtpl import DocxTemplate, InlineImage
from jinja2 import meta
from lxml import etree

from crm_graph.core.documents import Image, TemplateError, TemplateInfo

from . import _jinja
from .package import PackageLimits, check_package

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
BODY_PART = "word/document.xml"
_FOOTNOTES_CT = "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"
# Core properties docxtpl fills too (File > Properties: title, subject ...).
_PROPERTIES = ("author", "comments", "identifier", "language", "subject", "title")
# docxtpl's own tags, handled before Jinja sees the XML.
_DOCXTPL_TAGS = frozenset({"colspan", "cellbg", "vm", "hm"})
# Statements that open a block, with the tag that closes it; statements that sit inside one.
_BLOCKS = {
    "for": "endfor",
    "if": "endif",
    "with": "endwith",
    "macro": "endmacro",
    "call": "endcall",
    "filter": "endfilter",
    "autoescape": "endautoescape",
    "raw": "endraw",
    "block": "endblock",
    "set": "endset",
}
_MIDDLES = {"else": ("for", "if"), "elif": ("if",)}
_ENDS = {end: start for start, end in _BLOCKS.items()}
_OPENERS = re.compile(r"\{[{%#]")
_CLOSERS = {"{{": "}}", "{%": "%}", "{#": "#}"}
_PREFIX = re.compile(r"(tr|tc|p|r) ")
_TAGS_IN_XML = re.compile(r"<[^>]+>")
_LIMIT_SNIPPET = 90


def _snippet(text: str, at: int = 0) -> str:
    text = text.strip()
    if len(text) <= _LIMIT_SNIPPET:
        return text
    start = max(0, min(at - 20, len(text) - _LIMIT_SNIPPET))
    return ("…" if start else "") + text[start : start + _LIMIT_SNIPPET] + "…"


@dataclass
class _Tag:
    opener: str  # "{{", "{%" or "{#"
    prefix: str  # "tr", "tc", "p", "r" or ""
    statement: str  # the tag's inside without prefix and whitespace control: "for line in lines"
    raw: str  # as written: "{%tr for line in lines %}"
    where: str

    @property
    def keyword(self) -> str:
        return self.statement.split(None, 1)[0] if self.statement else ""

    def shown(self, statement: str | None = None) -> str:
        return f"{{%{self.prefix} {statement or self.statement} %}}" if self.prefix else f"{{% {statement or self.statement} %}}"


@dataclass
class _Level:
    """Where a block tag acts: its kind ("tr", "tc", "p" or "" for a tag inside the text) and
    the element whose children it repeats or drops (a table, a row, a body or cell)."""

    kind: str
    container: etree._Element


class _Scanner:
    """Walks the paragraphs of one part of a template, checking its tags and collecting the
    names they read."""

    def __init__(self, part: str, root: etree._Element) -> None:
        self.part = part
        self.root = root
        # The list keeps the element proxies alive, so that their ids stay theirs.
        self._table_list = list(root.iter(qn("w:tbl")))
        self.tables = {id(t): n for n, t in enumerate(self._table_list, start=1)}
        self.first_use: dict[str, str] = {}

    def _location(self, paragraph: etree._Element, number: int) -> str:
        cell = next(paragraph.iterancestors(qn("w:tc")), None)
        if cell is None:
            return f"{self.part}, paragraph {number}"
        row = cell.getparent()
        table = row.getparent()
        rows = table.findall(qn("w:tr"))
        cells = row.findall(qn("w:tc"))
        return (
            f"{self.part}, table {self.tables.get(id(table), '?')}, row {rows.index(row) + 1}, "
            f"cell {cells.index(cell) + 1}"
        )

    @staticmethod
    def _text(paragraph: etree._Element) -> str:
        parts = []
        for t in paragraph.iter(qn("w:t")):
            if next(t.iterancestors(qn("w:p")), None) is paragraph:
                parts.append(t.text or "")
        return "".join(parts)

    def _syntax(self, message: str, where: str) -> TemplateError:
        return TemplateError(TemplateError.TEMPLATE_SYNTAX, message, where)

    def scan(self) -> None:
        stack: list[tuple[_Tag, _Level, str]] = []  # open blocks: tag, level, how to close it
        prefixed: dict[int, tuple[etree._Element, _Tag]] = {}  # element replaced by a structural tag
        for number, paragraph in enumerate(self.root.iter(qn("w:p")), start=1):
            text = self._text(paragraph)
            if "{" not in text:
                continue
            location = self._location(paragraph, number)
            for tag in self._tags(text, location):
                holder = self._holder(tag, paragraph)
                if tag.prefix in ("tr", "tc", "p"):
                    if id(holder) in prefixed:
                        other = prefixed[id(holder)][1]
                        element = {"tr": "table row", "tc": "table cell", "p": "paragraph"}[tag.prefix]
                        raise self._syntax(
                            f"This {element} holds two {{%{tag.prefix} %}} tags ({other.raw} and {tag.raw}); each "
                            f"replaces its whole {element}, so each needs a {element} of its own",
                            tag.where,
                        )
                    prefixed[id(holder)] = (holder, tag)
                if tag.opener == "{{":
                    self._check_expression(tag)
                elif tag.opener == "{%":
                    self._check_statement(tag, _Level(tag.prefix if tag.prefix != "r" else "", holder.getparent()), stack)
        if stack:
            tag, _, close = stack[-1]
            raise self._syntax(f"{tag.raw} is never closed: {close}", tag.where)

    def _tags(self, text: str, location: str) -> Iterator[_Tag]:
        position = 0
        while (match := _OPENERS.search(text, position)) is not None:
            opener = match.group()
            end = text.find(_CLOSERS[opener], match.end())
            if end < 0:
                raise self._syntax(
                    f"A tag is not closed in its paragraph: {_snippet(text[match.start():])!r} (a tag must open and "
                    f"close in one paragraph; Word may have moved part of it to the next line or cell)",
                    f"{location} ({_snippet(text, match.start())})",
                )
            inside = _jinja.straighten_quotes(text[match.end() : end])
            prefix_match = _PREFIX.match(inside)
            prefix = prefix_match.group(1) if prefix_match else ""
            statement = inside[prefix_match.end() :] if prefix_match else inside
            # Whitespace control: a "-" or "+" touching the delimiter ("{%- if x -%}").
            if statement[:1] in ("-", "+"):
                statement = statement[1:]
            if statement[-1:] in ("-", "+"):
                statement = statement[:-1]
            statement = statement.strip()
            raw = text[match.start() : end + 2]
            yield _Tag(opener, prefix, statement, raw, f"{location} ({_snippet(text, match.start())})")
            position = end + 2

    def _holder(self, tag: _Tag, paragraph: etree._Element) -> etree._Element:
        """The element a tag's block structure lives in: the table for ``{%tr``, the row for
        ``{%tc``, the paragraph's container otherwise."""
        if tag.prefix == "tr":
            row = next(paragraph.iterancestors(qn("w:tr")), None)
            if row is None:
                raise self._syntax(f"{tag.raw} must stand in a table row (it repeats or drops whole rows)", tag.where)
            return row
        if tag.prefix == "tc":
            cell = next(paragraph.iterancestors(qn("w:tc")), None)
            if cell is None:
                raise self._syntax(f"{tag.raw} must stand in a table cell", tag.where)
            return cell
        return paragraph

    def _record(self, tree: jinja2.nodes.Node, tag: _Tag) -> None:
        for name, _ in _jinja.loaded_names(tree):
            self.first_use.setdefault(name, tag.where)

    def _check_expression(self, tag: _Tag) -> None:
        try:
            tree = _jinja.PARSE_ENV.parse("{{ " + tag.statement + " }}")
        except jinja2.TemplateSyntaxError as exc:
            raise self._syntax(f"{tag.raw}: {exc.message}", tag.where) from None
        self._record(tree, tag)

    def _check_statement(self, tag: _Tag, level: _Level, stack: list[tuple[_Tag, _Level, str]]) -> None:
        keyword = tag.keyword
        if keyword in _DOCXTPL_TAGS:
            return
        if keyword in _ENDS:
            if not stack:
                raise self._syntax(f"{tag.raw} closes nothing: no {{% {_ENDS[keyword]} %}} is open before it", tag.where)
            opened, opened_level, close = stack[-1]
            if opened.keyword != _ENDS[keyword]:
                raise self._syntax(f"{tag.raw} comes before the {opened.raw} opened at {opened.where} is closed: {close}", tag.where)
            self._same_level(tag, opened, level, opened_level, close)
            stack.pop()
            return
        if keyword in _MIDDLES:
            if not stack or stack[-1][0].keyword not in _MIDDLES[keyword]:
                raise self._syntax(f"{tag.raw} stands outside any {{% {' or '.join(_MIDDLES[keyword])} %}} block", tag.where)
            opened, opened_level, close = stack[-1]
            self._same_level(tag, opened, level, opened_level, close)
            source = "{% if x %}{% " + tag.statement + " %}{% endif %}"
        elif keyword in _BLOCKS and not (keyword == "set" and "=" in tag.statement):
            source = "{% " + tag.statement + " %}{% " + _BLOCKS[keyword] + " %}"
            stack.append((tag, level, self._how_to_close(tag)))
        else:
            source = "{% " + tag.statement + " %}"
        try:
            tree = _jinja.PARSE_ENV.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            raise self._syntax(f"{tag.raw}: {exc.message}", tag.where) from None
        self._record(tree, tag)

    @staticmethod
    def _how_to_close(tag: _Tag) -> str:
        end = tag.shown(_BLOCKS[tag.keyword])
        return {
            "tr": f"add a row holding only {end} to the same table",
            "tc": f"add a cell holding only {end} to the same row",
            "p": f"add a paragraph holding only {end} in the same place (the body, or the same table cell)",
        }.get(tag.prefix, f"add {end} in the same paragraph, or in a paragraph of the same cell or body")

    def _same_level(self, tag: _Tag, opened: _Tag, level: _Level, opened_level: _Level, close: str) -> None:
        if level.kind == opened_level.kind and level.container is opened_level.container:
            return
        if level.kind != opened_level.kind:
            raise self._syntax(
                f"{tag.raw} does not match {opened.raw} (at {opened.where}): a block opened with "
                f"{{%{opened_level.kind or ' '}...%}} must continue and close with the same kind of tag: {close}",
                tag.where,
            )
        raise self._syntax(
            f"{tag.raw} is not in the same place as {opened.raw} (at {opened.where}): {close}",
            tag.where,
        )


class _Template(DocxTemplate):
    """docxtpl's template, remembering which part and which source it is rendering (for
    errors), and refusing XML that a tag broke instead of silently repairing it."""

    part_name = BODY_PART
    source_lines: list[str] = []

    def render_xml_part(self, src_xml: str, part: Any, context: Any, jinja_env: Any = None) -> str:
        self.part_name = str(part.partname).lstrip("/")
        self.source_lines = re.sub(r"<w:p([ >])", r"\n<w:p\1", src_xml).splitlines()
        return super().render_xml_part(src_xml, part, context, jinja_env)

    def render_properties(self, context: Any, jinja_env: Any = None) -> None:
        self.part_name, self.source_lines = "docProps/core.xml", []
        super().render_properties(context, jinja_env)

    def fix_tables(self, xml: str) -> Any:
        try:
            etree.fromstring(xml)
        except etree.XMLSyntaxError as exc:
            raise TemplateError(
                TemplateError.RENDER_FAILED,
                f"The filled document is not valid XML ({exc}): a tag cuts across the document's structure",
                self.part_name,
            ) from None
        return super().fix_tables(xml)

    def near(self, line: int | None) -> str:
        if not line or not self.source_lines:
            return self.part_name
        around = " ".join(_TAGS_IN_XML.sub("", text) for text in self.source_lines[max(0, line - 2) : line + 1])
        return f"{self.part_name}, near {_snippet(around)!r}"


def _parts(tpl: _Template) -> Iterator[tuple[str, etree._Element]]:
    """The parts docxtpl fills: body, headers, footers, footnotes."""
    document = tpl.docx
    yield BODY_PART, document.element.body
    seen: set[str] = set()
    for rel in document.part.rels.values():
        if rel.is_external or rel.reltype not in (RT.HEADER, RT.FOOTER):
            continue
        part = rel.target_part
        name = str(part.partname).lstrip("/")
        if name not in seen and part.blob:
            seen.add(name)
            yield name, parse_xml(part.blob)
    for part in document.part.package.iter_parts():
        if part.content_type == _FOOTNOTES_CT:
            yield str(part.partname).lstrip("/"), parse_xml(part.blob)


def _load(template: bytes) -> _Template:
    tpl = _Template(io.BytesIO(template))
    try:
        tpl.init_docx()
    except Exception as exc:  # python-docx raises many kinds for a damaged package
        raise TemplateError(TemplateError.NOT_THIS_FORMAT, f"The file cannot be read as a Word document: {exc}") from None
    return tpl


def _analyse(tpl: _Template) -> TemplateInfo:
    variables: set[str] = set()
    where: dict[str, str] = {}
    for name, root in _parts(tpl):
        scanner = _Scanner(name, root)
        scanner.scan()
        xml = tpl.patch_xml(tpl.xml_to_string(root))
        source = re.sub(r"<w:p([ >])", r"\n<w:p\1", xml)
        try:
            tree = _jinja.PARSE_ENV.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            lines = source.splitlines()
            line = exc.lineno or 1
            around = " ".join(_TAGS_IN_XML.sub("", text) for text in lines[max(0, line - 2) : line + 1])
            raise TemplateError(TemplateError.TEMPLATE_SYNTAX, exc.message or str(exc), f"{name}, near {_snippet(around)!r}") from None
        found = meta.find_undeclared_variables(tree) - _jinja.HELPER_NAMES
        for variable in sorted(found):
            where.setdefault(variable, scanner.first_use.get(variable, name))
        variables |= found
    properties = tpl.docx.core_properties
    for prop in _PROPERTIES:
        value = getattr(properties, prop) or ""
        if "{" not in value:
            continue
        try:
            tree = _jinja.PARSE_ENV.parse(value)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(TemplateError.TEMPLATE_SYNTAX, exc.message or str(exc), f"docProps/core.xml, {prop}") from None
        found = meta.find_undeclared_variables(tree) - _jinja.HELPER_NAMES
        for variable in found:
            where.setdefault(variable, f"docProps/core.xml, {prop}")
        variables |= found
    return TemplateInfo(variables=frozenset(variables), where=where)


def _prepare(value: Any, tpl: _Template, path: str) -> Any:
    """The context as docxtpl needs it: pictures as InlineImages, strings without characters XML
    forbids. Mappings and sequences are copied; other objects are passed as they are."""
    if isinstance(value, Image):
        if not 1 <= value.width_mm <= 1000:
            raise TemplateError(TemplateError.RENDER_FAILED, f"The picture's width of {value.width_mm} mm is not usable", path)
        try:
            DocxImage.from_blob(value.content)
        except Exception:
            raise TemplateError(TemplateError.RENDER_FAILED, "The picture is not a PNG or JPEG image", path) from None
        return InlineImage(tpl, io.BytesIO(value.content), width=Mm(value.width_mm))
    if isinstance(value, str):
        return _jinja.clean_string(value)
    if isinstance(value, Mapping):
        return {key: _prepare(item, tpl, f"{path}.{key}" if path else str(key)) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_prepare(item, tpl, f"{path}[{n}]") for n, item in enumerate(value)]
    return value


class DocxEngine:
    """Word templates (docxtpl)."""

    format = "DOCX"
    content_type = CONTENT_TYPE
    extension = "docx"

    def __init__(self, limits: PackageLimits | None = None) -> None:
        self.limits = limits or PackageLimits()

    def inspect(self, template: bytes) -> TemplateInfo:
        check_package(template, "DOCX", self.limits)
        return self._read(template)[1]

    @staticmethod
    def _read(template: bytes) -> tuple[_Template, TemplateInfo]:
        tpl = _load(template)
        try:
            return tpl, _analyse(tpl)
        except TemplateError:
            raise
        except Exception as exc:  # a part python-docx loaded but that is not what Word writes
            raise TemplateError(TemplateError.NOT_THIS_FORMAT, f"The file cannot be read as a Word document: {exc}") from None

    def render(self, template: bytes, context: Mapping[str, Any], filters: Mapping[str, Callable[..., Any]]) -> bytes:
        check_package(template, "DOCX", self.limits)
        tpl, _ = self._read(template)
        env = _jinja.environment(filters, autoescape=True)
        prepared = _prepare(context, tpl, "")
        try:
            tpl.render(prepared, jinja_env=env, autoescape=True)
            out = io.BytesIO()
            tpl.save(out)
        except TemplateError:
            raise
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(TemplateError.TEMPLATE_SYNTAX, _jinja.describe(exc), tpl.near(exc.lineno)) from None
        except Exception as exc:
            raise TemplateError(
                TemplateError.RENDER_FAILED,
                f"The template could not be filled: {_jinja.describe(exc)}",
                tpl.near(_jinja.template_line(exc)),
            ) from None
        return out.getvalue()
