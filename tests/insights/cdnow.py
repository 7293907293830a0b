"""The CDNOW sample of the BG/NBD and Gamma-Gamma papers, as the `lifetimes` wheel on PyPI ships
it: downloaded once per test run (``pip download``, no install) and read straight from the wheel.
Only the data files are read; no code of that library is imported or run."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL = "lifetimes==0.11.3"
SUMMARY = "lifetimes/datasets/cdnow_customers_summary.csv"  # ID, frequency, recency, T (weeks)
WITH_SPEND = "lifetimes/datasets/cdnow_customers_summary_with_transactions.csv"  # ID, x, t_x, T, zbar


def download(directory: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "--only-binary=:all:", "-d", str(directory), "-q"],
        check=True, timeout=300,
    )
    return next(directory.glob("*.whl"))


def read_csv(wheel: Path, member: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(member).decode()
    return list(csv.DictReader(io.StringIO(text)))
