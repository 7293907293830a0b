"""Time PDF conversion through LibreOffice: the warm converter pool against one-shot soffice.

    .venv/bin/python bench/documents.py [--runs 20] [--processes 2] [--one-shot-runs 5]

Makes a one-page quote-like DOCX (python-docx: seller and customer blocks, a table of ten lines,
totals; German and Chinese text) and prints seconds per PDF:
  cold          the first conversion of a new LibreOfficeConverter (crm_documents.convert),
                its process start included;
  warm          the median of --runs conversions one after another on the warm pool;
  warm, N jobs  --runs conversions at once on the pool of --processes: wall time / runs;
  one-shot      `soffice --headless --convert-to pdf` per file with a private profile: the first
                run (a fresh profile) and the median of --one-shot-runs later ones (profile kept).
Needs LibreOffice, python3-uno and the CJK fonts (see crm_documents.convert). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docx  # noqa: E402
from pypdf import PdfReader  # noqa: E402

from crm_documents.convert import LibreOfficeConverter, _find_soffice, libreoffice_available  # noqa: E402


def quote_docx() -> bytes:
    document = docx.Document()
    document.add_heading("Angebot 2026-0042", level=1)
    document.add_paragraph("Müller GmbH · Hauptstraße 5 · 10115 Berlin")
    document.add_paragraph("An: 张伟, 北京市朝阳区建国路 88 号")
    document.add_paragraph("Datum: 2. Dezember 2026 · Gültig bis: 1. Januar 2027")
    table = document.add_table(rows=1, cols=4)
    table.style = "Table Grid"
    for cell, title in zip(table.rows[0].cells, ("Position", "Menge", "Einzelpreis", "Summe")):
        cell.text = title
    for n in range(1, 11):
        row = table.add_row().cells
        for cell, text in zip(row, (f"Artikel {n} – Straßenleuchte", str(n), "12,50 €", f"{12.5 * n:.2f} €")):
            cell.text = text
    document.add_paragraph("Zwischensumme: 687,50 € · MwSt. 19 %: 130,63 € · Gesamt: 818,13 €")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def one_shot(soffice: Path, profile: Path, source: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([str(soffice), "--headless", "--norestore", f"-env:UserInstallation={profile.as_uri()}",
                    "--convert-to", "pdf", "--outdir", str(out), str(source)],
                   check=True, capture_output=True, timeout=120)
    elapsed = time.perf_counter() - start
    assert len(PdfReader(out / f"{source.stem}.pdf").pages) == 1
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--one-shot-runs", type=int, default=5)
    args = parser.parse_args()
    problem = libreoffice_available()
    if problem:
        sys.exit(problem)
    document = quote_docx()
    with tempfile.TemporaryDirectory(prefix="crm-bench-documents-") as tmp:
        work = Path(tmp)
        pool = LibreOfficeConverter(work / "pool", processes=args.processes)
        try:
            start = time.perf_counter()
            pdf = await pool.convert(document, "DOCX", timeout=120)
            cold = time.perf_counter() - start
            assert len(PdfReader(io.BytesIO(pdf)).pages) == 1, "the quote should fill one page"
            warm = []
            for _ in range(args.runs):
                start = time.perf_counter()
                await pool.convert(document, "DOCX", timeout=120)
                warm.append(time.perf_counter() - start)
            await asyncio.gather(*(pool.convert(document, "DOCX", timeout=120) for _ in range(args.processes)))
            start = time.perf_counter()
            await asyncio.gather(*(pool.convert(document, "DOCX", timeout=120) for _ in range(args.runs)))
            parallel = (time.perf_counter() - start) / args.runs
        finally:
            await pool.aclose()

        soffice = _find_soffice(None)
        assert soffice is not None
        source = work / "quote.docx"
        source.write_bytes(document)
        profile, out = work / "one-shot-profile", work / "one-shot-out"
        first = one_shot(soffice, profile, source, out)
        later = [one_shot(soffice, profile, source, out) for _ in range(args.one_shot_runs)]

    print(f"one-page quote DOCX ({len(document)} bytes) -> PDF, seconds per PDF:")
    print(f"  cold                  {cold:7.3f} s  (first conversion, process start included)")
    print(f"  warm                  {statistics.median(warm):7.3f} s  (median of {args.runs}; "
          f"min {min(warm):.3f}, max {max(warm):.3f})")
    print(f"  warm, {args.runs} jobs at once {parallel:7.3f} s  (wall time / {args.runs}, pool of {args.processes})")
    print(f"  one-shot, new profile {first:7.3f} s")
    print(f"  one-shot              {statistics.median(later):7.3f} s  (median of {args.one_shot_runs}, profile kept)")
    print(f"  ratio one-shot / warm: {statistics.median(later) / statistics.median(warm):.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
