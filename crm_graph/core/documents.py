"""The contract between the document plugins: engines fill templates, converters turn them into PDF.

A plugin returns engines from ``crm_document_engines()`` and converters from
``crm_document_converters(settings)`` (``crm_graph/hookspecs.py``; docs/plugin_hooks.md has
the sections). The built-in ones (DOCX on docxtpl, XLSX on openpyxl, PDF through LibreOffice)
are the ``crm_documents`` plugin's; a partner adds an ODT or HTML engine, or another converter,
the same way, without touching the core. Nothing here imports a plugin.

Engines are synchronous and pure (bytes in, bytes out): the host runs them in a worker thread.
Converters are asynchronous, because converting usually means another process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class TemplateError(Exception):
    """A template that cannot be used, and where: ``code`` is one of the codes below (or an
    engine's own, in SCREAMING_SNAKE_CASE), ``where`` says where in the file when known
    (``"word/document.xml, paragraph 12"``, ``"sheet Pipeline, cell B4"``)."""

    # The file is not of the format it claims (a PDF called quote.docx, a ZIP of something else).
    NOT_THIS_FORMAT = "NOT_THIS_FORMAT"
    # The file is too big, unpacked (a zip bomb), or has too many parts.
    TOO_LARGE = "TOO_LARGE"
    # A broken tag: unbalanced {% %}, an unknown statement, a {%tr %} split by Word across rows.
    TEMPLATE_SYNTAX = "TEMPLATE_SYNTAX"
    # The template could not be filled (a tag that fails on the data it was given).
    RENDER_FAILED = "RENDER_FAILED"

    def __init__(self, code: str, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.message} ({self.where})" if self.where else self.message


@dataclass(frozen=True)
class TemplateInfo:
    """What an engine found in a template: the names of the context variables it reads (the
    first part of each, ``quote`` for ``{{ quote.total }}``; loop variables and names the
    template sets itself are not counted), and where each one is first used."""

    variables: frozenset[str]
    where: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class DocumentEngine(Protocol):
    """Fills templates of one format."""

    format: str  # the template format it reads, upper case: "DOCX", "XLSX", "ODT", "HTML"
    content_type: str  # of the filled document: "application/vnd.openxmlformats-officedocument..."
    extension: str  # of the filled document's file name, without the dot: "docx"

    def inspect(self, template: bytes) -> TemplateInfo:
        """Check ``template`` (its bytes as uploaded): is it this format, does it parse, what
        does it read? Raise ``TemplateError`` with where the problem is. Must refuse files that
        would unpack to far more than they weigh (zip bombs) before unpacking them."""
        ...

    def render(self, template: bytes, context: Mapping[str, Any], filters: Mapping[str, Callable[..., Any]]) -> bytes:
        """The filled document. ``context`` is the kind's context (docs/documents.md of the
        plugin); ``filters`` are formatting helpers bound to the template's locale (``money``,
        ``date``, ``datetime``, ``number``, ``percent``) that the template may call. Raise
        ``TemplateError(RENDER_FAILED, ...)`` when the data does not fit the template."""
        ...


class ConversionError(Exception):
    """A conversion that did not produce a document. ``retry``: worth trying again (a crashed or
    hung converter); False for a file the converter cannot read at all."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


@runtime_checkable
class DocumentConverter(Protocol):
    """Turns filled documents into another format (PDF)."""

    name: str  # shown on failures and in logs: "libreoffice"
    sources: frozenset[str]  # document formats it reads: {"DOCX", "XLSX"}
    target: str  # the format it writes: "PDF"

    async def convert(self, document: bytes, source: str, *, timeout: float) -> bytes:
        """The converted document. Give up after ``timeout`` seconds, and leave nothing hung
        behind (kill what hangs); raise ``ConversionError``."""
        ...

    async def aclose(self) -> None:
        """Stop what the converter started (processes, connections)."""
        ...


@dataclass(frozen=True)
class Attachment:
    """A file to attach to a message (``crm_document_attachments``)."""

    file_name: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Image:
    """A picture in a context (the seller's logo): the engine places it where the template names
    it, ``width_mm`` wide (the height follows the picture's proportions)."""

    content: bytes  # PNG or JPEG
    width_mm: float = 40.0
