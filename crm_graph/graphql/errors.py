"""The one error contract of every mutation, and the GraphQL errors a client may see.

Expected failures (validation, not found, version conflict) are ``UserError``s in a payload's
``errors`` list. Malformed arguments that make a query meaningless (a bad cursor or global ID, a
page size over the cap, an unknown filter field) are GraphQL errors raised as ``ClientError``.
Anything else is a bug: its message is masked so no SQL, path or traceback reaches a client.
"""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError

from crm_graph.core.errors import DomainError, FieldError
from crm_graph.core.filters import FilterError
from crm_graph.core.pagination import PaginationError

log = logging.getLogger("crm_graph.graphql")


@strawberry.type(description="An expected failure of a mutation: which input field, what went wrong.")
class UserError:
    field: str | None = strawberry.field(
        description="camelCase path of the input field at fault (e.g. `emails.1.address`); null when the whole input is at fault."
    )
    code: str = strawberry.field(description="Stable SCREAMING_SNAKE_CASE code; see docs/api.md.")
    message: str = strawberry.field(description="Human-readable explanation, in English.")

    @classmethod
    def from_field_error(cls, error: FieldError) -> UserError:
        return cls(field=error.field, code=error.code, message=error.message)


def user_errors(error: DomainError, prefix: str | None = None) -> list[UserError]:
    return [UserError.from_field_error(e.prefixed(prefix) if prefix else e) for e in error.errors]


class ClientError(Exception):
    """A GraphQL error whose message is meant for the client and is never masked."""

    def __init__(self, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.code = code


SAFE_EXCEPTIONS = (ClientError, PaginationError, FilterError)

# What a client is told when SQLite stayed locked by another process (a CLI command, a second
# server) for longer than CRM_SQLITE_BUSY_TIMEOUT: nothing was written, the same request may be
# sent again. Writers inside one server queue for the lock and never see this.
BUSY_MESSAGE = "The database is busy with another program's write; nothing was changed: retry in a moment."
BUSY_EXTENSIONS = {"code": "DATABASE_BUSY", "retryable": True, "retryAfter": 1}


def database_busy(original: BaseException | None) -> bool:
    """Whether ``original`` is SQLite giving up on a lock another connection holds."""
    from sqlalchemy.exc import OperationalError

    return isinstance(original, OperationalError) and "database is locked" in str(original.orig)


def should_mask(error: GraphQLError) -> bool:
    """Mask every error that came from an unexpected exception; keep validation/syntax errors."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return False
    if isinstance(original, SAFE_EXCEPTIONS):
        return False
    if database_busy(original):
        log.warning("database busy in %s: %s", error.path, original)
        return True
    log.error("unexpected error in %s", error.path, exc_info=original)
    return True
