"""No "Did you mean ...?" in production.

graphql-core suggests close names when a document asks for an unknown field, argument, type,
enum value or input field. Those names are the schema, which switching introspection off is
meant to keep to its clients: with suggestions on, anyone can read it back a guess at a time.
Production servers add ``NoSuggestions`` beside ``DisableIntrospection`` (crm_graph/graphql/schema.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")  # names hold no "?"; a sentence may follow


def without_suggestion(message: str) -> str:
    return SUGGESTION.sub("", message)


class NoSuggestions(SchemaExtension):
    """Cut the suggestion off every error message of a result (validation and variable errors)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        for error in getattr(result, "errors", None) or ():
            error.message = without_suggestion(error.message)
