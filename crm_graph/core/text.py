"""What a text input may hold, for every domain: tabs and line breaks but no other control
characters (U+0000 cannot even be stored by PostgreSQL), and never only invisible characters.

Two layers use it. The GraphQL layer refuses a request whose variables or string literals hold a
control character, before anything runs (``crm_graph.graphql.cost.DocumentLimits``); the domain
services' ``text()`` readers trim a value and refuse one that shows nothing (``"\\u200b"``, a
Hangul filler, a lone combining mark), so a name or subject can always be read by a person.
"""

from __future__ import annotations

import re
import unicodedata

# C0 controls but tab, line feed and carriage return; DEL; the C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Letters by category that render as nothing: the Hangul fillers and the Mongolian vowel separator.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u180e")
# What shows nothing on its own: controls, format characters (zero-width space, joiners, BOM,
# direction marks), separators (spaces) and marks (combining, enclosing, variation selectors).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me"})


def control_character(value: str) -> str | None:
    """The first control character of ``value`` that no text input may hold, or None."""
    found = _CONTROL.search(value)
    return found.group() if found is not None else None


def describe(char: str) -> str:
    """``U+0000`` style, for messages (the character itself would not show)."""
    return f"U+{ord(char):04X}"


def _invisible(char: str) -> bool:
    return char in _BLANK_LETTERS or unicodedata.category(char) in _INVISIBLE_CATEGORIES


def shows_something(value: str) -> bool:
    return not all(_invisible(c) for c in value)


def trim(value: str) -> str:
    """``value`` without the whitespace and format characters around it (a zero-width space
    pasted after a name does not make it another name)."""
    start, end = 0, len(value)
    while start < end and (value[start].isspace() or unicodedata.category(value[start]) == "Cf"):
        start += 1
    while end > start and (value[end - 1].isspace() or unicodedata.category(value[end - 1]) == "Cf"):
        end -= 1
    return value[start:end]


def clean(value: str) -> str:
    """A non-empty text input, trimmed; ``ValueError`` (its message for the client) when it holds
    a control character or shows nothing."""
    char = control_character(value)
    if char is not None:
        raise ValueError(f"Contains the control character {describe(char)}; text may hold tabs and line breaks, no other controls.")
    if not shows_something(value):
        raise ValueError("Contains only invisible characters.")
    return trim(value)
