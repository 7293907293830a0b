"""Typed domain errors. Services raise them; the GraphQL layer turns them into ``UserError``s.

Error codes are SCREAMING_SNAKE_CASE and listed in docs/api.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# The codes a client can rely on. Add new ones here and in docs/api.md.
REQUIRED = "REQUIRED"
INVALID_EMAIL = "INVALID_EMAIL"
INVALID_PHONE = "INVALID_PHONE"
INVALID_VALUE = "INVALID_VALUE"
NOT_FOUND = "NOT_FOUND"
VERSION_CONFLICT = "VERSION_CONFLICT"
DUPLICATE = "DUPLICATE"
TOO_MANY = "TOO_MANY"
INVALID_STATE = "INVALID_STATE"


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field. ``field`` is the camelCase path, e.g. ``emails.1.address``."""

    field: str | None
    code: str
    message: str

    def prefixed(self, prefix: str) -> FieldError:
        path = prefix if not self.field else f"{prefix}.{self.field}"
        return FieldError(path, self.code, self.message)


class DomainError(Exception):
    """Base of expected failures: the request was understood but cannot be carried out."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{e.field}: {e.code}" for e in self.errors))


class ValidationFailed(DomainError):
    pass


class NotFound(DomainError):
    def __init__(self, what: str, field: str | None = "id") -> None:
        super().__init__([FieldError(field, NOT_FOUND, f"{what} was not found.")])


class VersionConflict(DomainError):
    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(
            [
                FieldError(
                    "expectedVersion",
                    VERSION_CONFLICT,
                    f"The record is at version {actual}, not {expected}: reload it and retry.",
                )
            ]
        )


class ErrorCollector:
    """Collects field errors while validating an input, then raises them all at once."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str | None, code: str, message: str) -> None:
        self.errors.append(FieldError(field, code, message))

    def extend(self, errors: Iterable[FieldError], prefix: str | None = None) -> None:
        for error in errors:
            self.errors.append(error.prefixed(prefix) if prefix else error)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)
