"""Typed settings, read from ``CRM_*`` environment variables.

Every setting has a default that suits a developer's machine; production deployments set
``CRM_ENVIRONMENT=production`` and a PostgreSQL ``CRM_DATABASE_URL``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Literal

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_database_url() -> str:
    return f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'crm.sqlite3'}"


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Server settings. The environment variable of each field is ``CRM_`` + its upper-cased name."""

    database_url: str = field(default_factory=_default_database_url)
    environment: Literal["dev", "production"] = "dev"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    # Region used to read phone numbers written without a +country prefix (ISO 3166 alpha-2).
    default_phone_region: str = "US"
    # Seconds SQLite waits for a lock before giving up.
    sqlite_busy_timeout: float = 5.0
    # GraphQL limits: query depth, aliases and tokens per document.
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    # Plugins (by name) that must not be loaded even if installed.
    plugins_block: tuple[str, ...] = ()

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"CRM_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, f.type, raw)
        settings = cls(**values)
        settings = replace(settings, **overrides) if overrides else settings
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.environment not in ("dev", "production"):
            raise ValueError(f"CRM_ENVIRONMENT must be 'dev' or 'production', not {self.environment!r}")
        if not (0 < self.port < 65536):
            raise ValueError(f"CRM_PORT must be between 1 and 65535, not {self.port}")
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "CRM_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )


def _coerce(name: str, annotation: object, raw: str) -> object:
    kind = str(annotation)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind.startswith("tuple"):
            return _split(raw)
    except ValueError as exc:
        raise ValueError(f"CRM_{name.upper()}: {raw!r} is not a valid {kind}") from exc
    return raw
