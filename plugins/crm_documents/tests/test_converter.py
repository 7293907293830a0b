"""The LibreOffice PDF converter, against the real LibreOffice: text and pages of the PDFs, a pool
of two under ten concurrent jobs, a hung and a crashed process killed and started again, bad input,
and no process of ours left behind."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import zipfile
from pathlib import Path

import docx
import openpyxl
import pytest
from docx.enum.text import WD_BREAK
from pypdf import PdfReader

from crm_documents.convert import LibreOfficeConverter, libreoffice_available
from crm_graph.core.documents import ConversionError, DocumentConverter

# Touches no CRM database: runs in the --db sqlite pass of `make test` only.
pytestmark = pytest.mark.one_pass

TIMEOUT = 60.0  # generous: a conversion here takes well under a second, the machine is shared


def make_docx(*pages: list[str]) -> bytes:
    """A Word document with one page per argument (explicit page breaks between them)."""
    document = docx.Document()
    for n, lines in enumerate(pages):
        for line in lines:
            document.add_paragraph(line)
        if n < len(pages) - 1:
            document.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_xlsx(sheets: dict[str, list[list[object]]]) -> bytes:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
        for column in "ABC":
            sheet.column_dimensions[column].width = 30  # wide enough that no text is cut at the cell edge
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def make_odf(mimetype: str, body: str) -> bytes:
    """A minimal OpenDocument file (ODT or ODS) written by hand."""
    content = ('<?xml version="1.0" encoding="UTF-8"?>'
               '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
               'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" office:version="1.2">'
               f'<office:body>{body}</office:body></office:document-content>')
    manifest = ('<?xml version="1.0" encoding="UTF-8"?>'
                '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
                'manifest:version="1.2">'
                f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{mimetype}"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                '</manifest:manifest>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), mimetype)  # first and stored, as the format wants
        z.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def pdf_pages(pdf: bytes) -> list[str]:
    assert pdf.startswith(b"%PDF-")
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def group(pgid: int) -> dict[int, str]:
    """pid -> command name of every process (zombies too) in process group ``pgid``."""
    members = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if int(fields[2]) == pgid:
            members[int(name)] = stat[stat.find(b"(") + 1:stat.rfind(b")")].decode()
    return members


def office_pid(pgid: int) -> int:
    (pid,) = [pid for pid, name in group(pgid).items() if name == "soffice.bin"]
    return pid


def exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()  # a zombie still exists


def ours_running(work_dir: Path) -> str:
    """The command lines of processes (soffice, the server) that mention our work directory."""
    return subprocess.run(["pgrep", "-af", str(work_dir)], capture_output=True, text=True).stdout.strip()


QUOTE = make_docx(["Angebot Nr. 2026-0042", "Kunde: Müller GmbH, Hauptstraße 5", "张伟 北京市朝阳区"],
                  ["Seite zwei: Straße", "第二页"])


@pytest.fixture(scope="module")
async def converter(tmp_path_factory: pytest.TempPathFactory):
    pool = LibreOfficeConverter(tmp_path_factory.mktemp("libreoffice"), processes=2)
    yield pool
    await pool.aclose()


def test_libreoffice_is_here_and_the_converter_follows_the_protocol() -> None:
    assert libreoffice_available() is None
    pool = LibreOfficeConverter(Path("/nonexistent"))
    assert isinstance(pool, DocumentConverter)
    assert (pool.name, pool.target, pool.sources) == ("libreoffice", "PDF", frozenset({"DOCX", "XLSX", "ODT", "ODS"}))
    assert pool.process_groups == ()  # nothing starts before the first job


async def test_docx_with_chinese_and_german_text_and_a_page_break(converter: LibreOfficeConverter) -> None:
    pages = pdf_pages(await converter.convert(QUOTE, "DOCX", timeout=TIMEOUT))
    assert len(pages) == 2
    assert all(text in pages[0] for text in ("Müller GmbH", "Hauptstraße", "张伟", "北京市朝阳区"))
    assert "Straße" in pages[1] and "第二页" in pages[1] and "Müller" not in pages[1]
    single = pdf_pages(await converter.convert(make_docx(["Nur eine Seite"]), "docx", timeout=TIMEOUT))
    assert len(single) == 1 and "Nur eine Seite" in single[0]


async def test_xlsx_prints_one_page_per_sheet(converter: LibreOfficeConverter) -> None:
    workbook = make_xlsx({"Kunden": [["Kunde", "Ort"], ["Müller GmbH", "Straße 1"], ["张伟", "北京市朝阳区"]],
                          "Umsatz": [["Monat", "Betrag"], ["Januar", 1234.5]]})
    pages = pdf_pages(await converter.convert(workbook, "XLSX", timeout=TIMEOUT))
    assert len(pages) == 2
    assert "Müller GmbH" in pages[0] and "张伟" in pages[0] and "北京市朝阳区" in pages[0]
    assert "Januar" in pages[1] and "1234" in pages[1].replace(",", "").replace(".", "")


async def test_odt_and_ods(converter: LibreOfficeConverter) -> None:
    odt = make_odf("application/vnd.oasis.opendocument.text",
                   "<office:text><text:p>Müller GmbH 张伟</text:p></office:text>")
    ods = make_odf("application/vnd.oasis.opendocument.spreadsheet",
                   '<office:spreadsheet><table:table table:name="Kunden"><table:table-row><table:table-cell>'
                   "<text:p>北京市朝阳区 Straße</text:p></table:table-cell></table:table-row></table:table>"
                   "</office:spreadsheet>")
    text, sheet = await asyncio.gather(converter.convert(odt, "ODT", timeout=TIMEOUT),
                                       converter.convert(ods, "ODS", timeout=TIMEOUT))
    assert "Müller GmbH 张伟" in pdf_pages(text)[0]
    assert "北京市朝阳区 Straße" in pdf_pages(sheet)[0]


async def test_ten_concurrent_conversions_on_two_processes(converter: LibreOfficeConverter) -> None:
    documents = [make_docx([f"Angebot Nr. {n:04d}", "Müller GmbH"], [f"Anhang {n:04d} 张伟"]) for n in range(10)]
    pdfs = await asyncio.gather(*(converter.convert(d, "DOCX", timeout=TIMEOUT) for d in documents))
    for n, pdf in enumerate(pdfs):
        pages = pdf_pages(pdf)
        assert len(pages) == 2
        assert f"Angebot Nr. {n:04d}" in pages[0] and f"Anhang {n:04d} 张伟" in pages[1]  # each its own document
    assert len(converter.process_groups) == 2


async def test_a_hung_job_is_killed_at_its_timeout_and_the_others_finish(converter: LibreOfficeConverter) -> None:
    await asyncio.gather(*(converter.convert(QUOTE, "DOCX", timeout=TIMEOUT) for _ in range(2)))  # both warm
    hung_group = converter.process_groups[0]
    healthy_group = converter.process_groups[1]
    hung_office = office_pid(hung_group)
    os.kill(hung_office, signal.SIGSTOP)  # whichever job this process takes now never comes back
    documents = [make_docx([f"Auftrag {n}", "Müller GmbH"]) for n in range(10)]
    results = await asyncio.gather(*(converter.convert(d, "DOCX", timeout=10) for d in documents),
                                   return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], ConversionError), failed
    assert failed[0].retry and "timed out" in str(failed[0])
    for n, result in enumerate(results):
        if not isinstance(result, BaseException):
            assert f"Auftrag {n}" in pdf_pages(result)[0]
    assert not exists(hung_office) and not exists(hung_group) and group(hung_group) == {}  # killed and reaped
    assert exists(healthy_group)  # the other process went on untouched
    # Two at once: one of them needs the slot that was killed, which starts again.
    again = await asyncio.gather(*(converter.convert(QUOTE, "DOCX", timeout=TIMEOUT) for _ in range(2)))
    assert all("Müller GmbH" in pdf_pages(pdf)[0] for pdf in again)
    assert healthy_group in converter.process_groups and hung_group not in converter.process_groups
    assert len(converter.process_groups) == 2


async def test_a_process_that_dies_mid_job_fails_that_job_and_starts_again(converter: LibreOfficeConverter) -> None:
    await asyncio.gather(*(converter.convert(QUOTE, "DOCX", timeout=TIMEOUT) for _ in range(2)))
    groups = converter.process_groups
    offices = [office_pid(g) for g in groups]
    for pid in offices:
        os.kill(pid, signal.SIGSTOP)  # the job hangs on whichever it takes ...
    job = asyncio.ensure_future(converter.convert(QUOTE, "DOCX", timeout=TIMEOUT))
    await asyncio.sleep(1)
    for pid in offices:
        os.kill(pid, signal.SIGKILL)  # ... until its LibreOffice dies (the other dies idle)
    with pytest.raises(ConversionError) as failure:
        await job
    assert failure.value.retry and "died" in str(failure.value) and "timed out" not in str(failure.value)
    pdfs = await asyncio.gather(*(converter.convert(QUOTE, "DOCX", timeout=TIMEOUT) for _ in range(2)))
    assert all(len(pdf_pages(pdf)) == 2 for pdf in pdfs)
    assert not set(converter.process_groups) & set(groups) and len(converter.process_groups) == 2
    assert not any(exists(pid) for g in groups for pid in [g, *offices])


async def test_bad_input_is_refused_without_hanging(converter: LibreOfficeConverter) -> None:
    spreadsheet = make_xlsx({"Blatt": [["Müller GmbH"]]})
    other_zip = io.BytesIO()
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("notes.txt", "Straße")
    truncated = QUOTE[: len(QUOTE) // 3]
    for document in (os.urandom(4096), other_zip.getvalue(), spreadsheet, truncated, b""):
        with pytest.raises(ConversionError, match="not in DOCX format") as failure:
            await converter.convert(document, "DOCX", timeout=TIMEOUT)
        assert not failure.value.retry, failure.value
    # A package that looks right, so only LibreOffice can tell: its document.xml is not XML.
    damaged = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(QUOTE)) as good, zipfile.ZipFile(damaged, "w") as bad:
        for member in good.infolist():
            bad.writestr(member, b"<w:document><<<" if member.filename == "word/document.xml" else good.read(member))
    with pytest.raises(ConversionError, match="LibreOffice could not read") as failure:
        await converter.convert(damaged.getvalue(), "DOCX", timeout=TIMEOUT)
    assert not failure.value.retry
    with pytest.raises(ConversionError, match="not in ODS format"):
        await converter.convert(spreadsheet, "ODS", timeout=TIMEOUT)
    with pytest.raises(ConversionError, match="not PPTX") as failure:
        await converter.convert(QUOTE, "PPTX", timeout=TIMEOUT)
    assert not failure.value.retry
    # The processes that refused them still convert.
    assert "Müller GmbH" in pdf_pages(await converter.convert(QUOTE, "DOCX", timeout=TIMEOUT))[0]


async def test_aclose_leaves_no_process_or_profile(tmp_path: Path) -> None:
    pool = LibreOfficeConverter(tmp_path, processes=2)
    await asyncio.gather(*(pool.convert(QUOTE, "DOCX", timeout=TIMEOUT) for _ in range(2)))
    assert len(pool.process_groups) == 2
    started = [pid for g in pool.process_groups for pid in group(g)]
    assert any(name == "soffice.bin" for g in pool.process_groups for name in group(g).values())
    assert "soffice" in ours_running(tmp_path)
    await pool.aclose()
    assert ours_running(tmp_path) == ""
    assert [pid for pid in started if exists(pid)] == []  # nor zombies
    assert list(tmp_path.iterdir()) == []  # profiles gone
    with pytest.raises(ConversionError, match="closed"):
        await pool.convert(QUOTE, "DOCX", timeout=TIMEOUT)
    await pool.aclose()  # twice is fine


async def test_missing_libreoffice_is_a_clear_error(tmp_path: Path) -> None:
    reason = libreoffice_available(soffice=tmp_path / "soffice")
    assert reason and "LibreOffice is not installed" in reason and "libreoffice-writer-nogui" in reason
    pool = LibreOfficeConverter(tmp_path, soffice=tmp_path / "soffice")
    with pytest.raises(ConversionError, match="LibreOffice is not installed") as failure:
        await pool.convert(QUOTE, "DOCX", timeout=TIMEOUT)
    assert not failure.value.retry
    no_uno = LibreOfficeConverter(tmp_path, python=tmp_path / "python3")
    with pytest.raises(ConversionError, match="python3-uno") as failure:
        await no_uno.convert(QUOTE, "DOCX", timeout=TIMEOUT)
    assert not failure.value.retry
    assert "python3-uno" in (libreoffice_available(python=tmp_path / "python3") or "")
    await pool.aclose()
    await no_uno.aclose()
