"""Checks on an uploaded Office file before anything unpacks it.

DOCX and XLSX files are ZIP archives (Open Packaging Conventions): a ``[Content_Types].xml``
member names the content type of every part, and the main part's type says what the file is
(a Word document, an Excel workbook, a presentation ...). ``check_package`` answers three
questions from the bytes alone, in this order, and raises ``TemplateError`` on the first "no":

1. Is it a ZIP at all? The magic bytes say so; a PDF, a picture, an old binary ``.doc`` or
   ``.xls`` or a text file gets ``NOT_THIS_FORMAT`` with a message naming what it looks like.
2. Would it unpack to something reasonable? Only the ZIP's central directory is read (the sizes
   each member declares): too many members, too many bytes in all, or a member that inflates
   far beyond its compressed size gives ``TOO_LARGE``. Python's ``zipfile`` never hands out more
   bytes than a member declares, so a member lying about its size fails its CRC check instead
   of growing past the limit.
3. Is it the right kind of package? ``[Content_Types].xml`` (small, checked first) must name the
   main part of the expected kind: an XLSX uploaded as a DOCX, a macro-enabled ``.docm``, an
   OpenDocument file or a plain ZIP gets ``NOT_THIS_FORMAT`` saying which it is.

Office parts never declare a DTD; a part that does (the way XML entity bombs are built) is
refused too, before python-docx or openpyxl parse it.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from typing import Literal

from lxml import etree

from crm_graph.core.documents import TemplateError

Kind = Literal["DOCX", "XLSX"]

# Default limits. 50 MB unpacked is far beyond any real template (a letterhead with a logo is
# well under 1 MB); 2,000 members is more than a workbook with hundreds of sheets needs.
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
MAX_MEMBERS = 2_000
# XML compresses well (10-30 times for Office parts), pictures hardly at all; zeros compress
# about 1,000 times. A member inflating more than this many times is refused ...
MAX_COMPRESSION_RATIO = 200
# ... once it unpacks to more than this: small parts of repeated XML may legitimately compress
# far better than 200:1, and a small member cannot do harm whatever its ratio.
RATIO_CHECK_FROM_BYTES = 1024 * 1024
# How much of each XML part is searched for a DTD (a DTD comes before the root element).
DTD_SCAN_BYTES = 64 * 1024
# [Content_Types].xml larger than this is not an Office file's.
MAX_CONTENT_TYPES_BYTES = 1024 * 1024


@dataclass(frozen=True)
class PackageLimits:
    """The limits ``check_package`` applies; the engines take one (the defaults above)."""

    max_unpacked_bytes: int = MAX_UNPACKED_BYTES
    max_members: int = MAX_MEMBERS
    max_compression_ratio: float = MAX_COMPRESSION_RATIO
    ratio_check_from_bytes: int = RATIO_CHECK_FROM_BYTES


_CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
_OOXML = "application/vnd.openxmlformats-officedocument."

# Main-part content types: what each one is, in words, and the kind it is for the engines.
_MAIN_PARTS: dict[str, tuple[str, Kind | None]] = {
    _OOXML + "wordprocessingml.document.main+xml": ("a Word document (DOCX)", "DOCX"),
    _OOXML + "wordprocessingml.template.main+xml": ("a Word template (DOTX); save it as a .docx document", None),
    "application/vnd.ms-word.document.macroEnabled.main+xml": (
        "a macro-enabled Word document (DOCM); save it as a .docx document",
        None,
    ),
    "application/vnd.ms-word.template.macroEnabledTemplate.main+xml": (
        "a macro-enabled Word template (DOTM); save it as a .docx document",
        None,
    ),
    _OOXML + "spreadsheetml.sheet.main+xml": ("an Excel workbook (XLSX)", "XLSX"),
    _OOXML + "spreadsheetml.template.main+xml": ("an Excel template (XLTX); save it as an .xlsx workbook", None),
    "application/vnd.ms-excel.sheet.macroEnabled.main+xml": (
        "a macro-enabled Excel workbook (XLSM); save it as an .xlsx workbook",
        None,
    ),
    "application/vnd.ms-excel.template.macroEnabled.main+xml": (
        "a macro-enabled Excel template (XLTM); save it as an .xlsx workbook",
        None,
    ),
    "application/vnd.ms-excel.sheet.binary.macroEnabled.main": ("a binary Excel workbook (XLSB)", None),
    _OOXML + "presentationml.presentation.main+xml": ("a PowerPoint presentation (PPTX)", None),
    _OOXML + "presentationml.slideshow.main+xml": ("a PowerPoint slide show (PPSX)", None),
}

_KIND_WORDS: dict[Kind, str] = {"DOCX": "a Word document (DOCX)", "XLSX": "an Excel workbook (XLSX)"}

# What a file that is not a ZIP looks like, by its first bytes.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old binary Office file (.doc or .xls) or an encrypted Office file"),
    (b"\x89PNG\r\n\x1a\n", "a PNG picture"),
    (b"\xff\xd8\xff", "a JPEG picture"),
    (b"GIF8", "a GIF picture"),
    (b"{\\rtf", "an RTF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
)


def _not_this_format(kind: Kind, what: str) -> TemplateError:
    return TemplateError(TemplateError.NOT_THIS_FORMAT, f"The file is {what}, not {_KIND_WORDS[kind]}")


def _describe_non_zip(data: bytes) -> str:
    if not data:
        return "empty"
    for magic, what in _MAGIC:
        if data.startswith(magic):
            return what
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if head.startswith(b"<?xml") or head.startswith(b"<"):
        return "an XML or text file (a Word 2003 XML or flat ODF file is not supported)"
    try:
        data[:512].decode("utf-8")
    except UnicodeDecodeError:
        return "not a ZIP-based Office file (its first bytes match no known format)"
    return "a text file"


def _refuse_bombs(archive: zipfile.ZipFile, limits: PackageLimits) -> None:
    members = archive.infolist()
    if len(members) > limits.max_members:
        raise TemplateError(
            TemplateError.TOO_LARGE,
            f"The file has {len(members):,} parts; at most {limits.max_members:,} are accepted",
        )
    total = 0
    for info in members:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.ratio_check_from_bytes and ratio > limits.max_compression_ratio:
            raise TemplateError(
                TemplateError.TOO_LARGE,
                f"The part {info.filename} would unpack to {info.file_size:,} bytes from {info.compress_size:,} "
                f"({ratio:,.0f} times; at most {limits.max_compression_ratio:,.0f} are accepted)",
                info.filename,
            )
    if total > limits.max_unpacked_bytes:
        raise TemplateError(
            TemplateError.TOO_LARGE,
            f"The file would unpack to {total:,} bytes; at most {limits.max_unpacked_bytes:,} are accepted",
        )


def _main_content_types(archive: zipfile.ZipFile) -> list[str] | None:
    """The content types [Content_Types].xml declares for parts, or None without that member."""
    try:
        info = archive.getinfo("[Content_Types].xml")
    except KeyError:
        return None
    if info.file_size > MAX_CONTENT_TYPES_BYTES:
        return []
    raw = archive.read(info)
    if b"<!DOCTYPE" in raw:
        return []
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError:
        return []
    return [el.get("ContentType", "") for el in root.iter(f"{{{_CT_NS}}}Override")]


def _refuse_dtds(archive: zipfile.ZipFile) -> None:
    for info in archive.infolist():
        name = info.filename.lower()
        if info.is_dir() or not (name.endswith(".xml") or name.endswith(".rels")):
            continue
        with archive.open(info) as member:
            head = member.read(DTD_SCAN_BYTES)
        if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
            raise TemplateError(
                TemplateError.NOT_THIS_FORMAT,
                f"The part {info.filename} declares a DTD, which Office files never do",
                info.filename,
            )


def check_package(data: bytes, kind: Kind, limits: PackageLimits | None = None) -> None:
    """Raise ``TemplateError`` unless ``data`` is a reasonably sized Office package of ``kind``."""
    limits = limits or PackageLimits()
    if not data.startswith(b"PK\x03\x04"):
        if data.startswith(b"PK\x05\x06"):
            raise _not_this_format(kind, "an empty ZIP archive")
        raise _not_this_format(kind, _describe_non_zip(data))
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise _not_this_format(kind, f"a damaged ZIP archive ({exc})") from None
    with archive:
        _refuse_bombs(archive, limits)
        names = set(archive.namelist())
        if any(info.flag_bits & 0x1 for info in archive.infolist()):
            raise _not_this_format(kind, "a password-protected ZIP archive")
        try:
            declared = _main_content_types(archive)
            if declared is None:
                if "mimetype" in names and archive.getinfo("mimetype").file_size < 200:
                    mimetype = archive.read("mimetype").decode("ascii", "replace").strip()
                    if mimetype.startswith("application/vnd.oasis.opendocument."):
                        what = mimetype.removeprefix("application/vnd.oasis.opendocument.")
                        raise _not_this_format(kind, f"an OpenDocument file ({what}); save it in the Office format")
                raise _not_this_format(kind, "a ZIP archive without [Content_Types].xml, not an Office file")
            found = [_MAIN_PARTS[ct] for ct in declared if ct in _MAIN_PARTS]
            if not found:
                raise _not_this_format(kind, "a ZIP archive whose [Content_Types].xml names no Office main part")
            if not any(found_kind == kind for _, found_kind in found):
                raise _not_this_format(kind, found[0][0])
            _refuse_dtds(archive)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            # A member that does not inflate to what the directory says (a damaged file or one
            # lying about its sizes).
            raise _not_this_format(kind, f"a damaged ZIP archive ({exc})") from None

