"""The built-in template engines: Word (DOCX, docxtpl) and Excel (XLSX, openpyxl)."""

from __future__ import annotations

from .docx import DocxEngine
from .package import PackageLimits, check_package
from .xlsx import XlsxEngine

__all__ = ["DocxEngine", "PackageLimits", "XlsxEngine", "check_package"]
