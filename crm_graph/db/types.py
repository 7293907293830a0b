"""Column types shared by every domain."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

# Primary keys: 64-bit on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the rowid alias.
IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# JSON documents: JSONB on PostgreSQL (indexable), JSON text on SQLite.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text, so comparisons in SQL stay
    lexicographic and correct. Naive datetimes are refused: they are a bug waiting to happen.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def enum_column(enum_type: type[enum.Enum]) -> sa.Enum:
    """An enum stored by name as VARCHAR, not a native PostgreSQL enum: new values need no migration."""
    return sa.Enum(enum_type, native_enum=False, length=32, validate_strings=True)
