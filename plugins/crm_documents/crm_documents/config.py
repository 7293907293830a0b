"""The plugin's settings, read from ``CRM_DOCUMENTS_*`` environment variables (beside the
server's ``CRM_*`` settings, with the same rules: crm_graph.settings.env_values)."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from crm_graph.settings import Settings, env_values

PREFIX = "CRM_DOCUMENTS_"


@dataclass(frozen=True)
class DocumentSettings:
    # "database" keeps file bodies in the database; a directory path keeps them there (one file
    # per body, named by its SHA-256; the database keeps the rest). Relative: under CRM_DATA_DIR.
    storage: str = "database"
    # Largest template file accepted, in bytes. Uploads travel base64-encoded in the GraphQL
    # request, so the request body limit (CRM_MAX_REQUEST_BYTES, 1 MiB by default) must hold 4/3
    # of it: raise that too for templates over ~750 KB.
    max_template_bytes: int = 5_000_000
    # Seconds one conversion to PDF may take before its converter process is killed.
    convert_timeout: float = 60.0
    # Warm LibreOffice processes per server process (each with its own profile).
    converter_processes: int = 2
    # Seconds generateDocument(wait: true) waits for a PDF made elsewhere before it answers
    # with the document still PENDING.
    wait_timeout: float = 90.0
    # Tries before a document that fails to convert is FAILED (asking again starts over).
    max_attempts: int = 3
    # Seconds a download URL stays valid.
    url_ttl: int = 900
    # The server's address as clients reach it, for download URLs ("https://crm.example.com");
    # empty: the address of the request that asked (right unless a proxy rewrites it).
    public_url: str = ""
    # LibreOffice's soffice (empty: found on PATH) and a Python with LibreOffice's uno module.
    soffice: str = ""
    uno_python: str = "/usr/bin/python3"
    # The locale of documents for customers without one.
    default_locale: str = "en_US"
    # Days from an invoice's date to its due date.
    payment_days: int = 30
    # Who sends the documents: printed on every one.
    seller_name: str = "crm-graph Demo GmbH"
    seller_address: str = "Hauptstraße 1|10115 Berlin|Germany"  # lines separated by "|"
    seller_email: str = "sales@example.com"
    seller_phone: str = "+49 30 1234567"
    seller_vat_id: str = "DE123456789"
    seller_bank: str = "IBAN DE02 1203 0000 0000 2020 51 · BIC BYLADEM1001"
    seller_website: str = "https://example.com"
    seller_logo: str = ""  # a PNG or JPEG file; empty: no logo

    def validate(self) -> None:
        if self.max_template_bytes < 1 or self.converter_processes < 1 or self.max_attempts < 1 or self.url_ttl < 1:
            raise ValueError(
                "CRM_DOCUMENTS_MAX_TEMPLATE_BYTES, _CONVERTER_PROCESSES, _MAX_ATTEMPTS and _URL_TTL must be at least 1"
            )
        if not (self.convert_timeout > 0 and self.wait_timeout >= 0):
            raise ValueError("CRM_DOCUMENTS_CONVERT_TIMEOUT must be positive, CRM_DOCUMENTS_WAIT_TIMEOUT not negative")
        if self.payment_days < 0:
            raise ValueError("CRM_DOCUMENTS_PAYMENT_DAYS must not be negative")

    def storage_dir(self, settings: Settings) -> Path | None:
        if self.storage == "database":
            return None
        path = Path(self.storage).expanduser()
        return path if path.is_absolute() else settings.data_dir / path


@functools.lru_cache(maxsize=32)
def _read(items: tuple[tuple[str, str], ...]) -> DocumentSettings:
    config = DocumentSettings(**env_values(DocumentSettings, PREFIX, dict(items)))  # type: ignore[arg-type]
    config.validate()
    return config


def document_settings(environ: Mapping[str, str] | None = None) -> DocumentSettings:
    """The settings in ``environ`` (default: the process environment). Raises ValueError with
    the variable's name for a value that does not parse or does not fit."""
    env = os.environ if environ is None else environ
    names = {f"{PREFIX}{f.name.upper()}" for f in fields(DocumentSettings)}
    return _read(tuple(sorted((k, v) for k, v in env.items() if k in names)))
