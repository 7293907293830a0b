"""How text is folded for search, the same way when it is indexed and when it is looked for.

- ``fold``: NFKC (full-width letters and digits become ordinary ones, half-width katakana full
  width, ligatures letters) and Unicode case folding (``MÜLLER`` and ``müller``, ``STRASSE``
  and ``straße`` fold alike).
- ``plain``: the folded text without diacritics (``muller``), for accent-insensitive search.
- ``tokens``: the folded text as words, with each CJK character (Han, kana, Hangul) a word of
  its own, joined by spaces: what the token index holds, for queries shorter than a trigram.
- ``trigram_key``: the folded text spelled in ASCII letters and digits only (PostgreSQL).
  pg_trgm builds trigrams from what the cluster's LC_CTYPE calls alphanumeric, and a cluster
  initialised with the C locale calls no Chinese character alphanumeric: its trigram index would
  hold nothing for 北京. Spelled as ASCII, the key gets the same trigrams on every cluster.
"""

from __future__ import annotations

import unicodedata

from crm_graph.core.filters import fold_text

# Characters written without spaces between words: each is a token of its own.
_CJK_RANGES = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x312F),  # Bopomofo
    (0x3130, 0x318F),  # Hangul compatibility Jamo
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),  # Hangul Jamo extended A
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3134F),  # CJK extensions B to G
)

# The shortest term the trigram index can serve; shorter ones go to the token index.
TRIGRAM = 3


def is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def fold(value: str) -> str:
    """NFKC, then Unicode case folding, then NFKC again: what ``contains`` compares, too."""
    return fold_text(value) or ""


def plain(folded: str) -> str:
    """``folded`` without combining marks (accents): ``müller`` -> ``muller``, ``çağrı`` -> ``cagri``.
    CJK text is left as it is (NFD would split Hangul syllables into their letters)."""
    out = []
    for char in folded:
        if is_cjk(char) or ord(char) < 0x80:
            out.append(char)
            continue
        decomposed = unicodedata.normalize("NFD", char)
        out.append("".join(c for c in decomposed if not unicodedata.combining(c)))
    return unicodedata.normalize("NFC", "".join(out))


def token_list(folded: str) -> list[str]:
    """Words (runs of letters and digits) and single CJK characters, in order."""
    tokens: list[str] = []
    word: list[str] = []
    for char in folded:
        if is_cjk(char):
            if word:
                tokens.append("".join(word))
                word = []
            tokens.append(char)
        elif char.isalnum():
            word.append(char)
        elif word:
            tokens.append("".join(word))
            word = []
    if word:
        tokens.append("".join(word))
    return tokens


def tokens(folded: str) -> str:
    return " ".join(token_list(folded))


# Base 35 (0-9, a-y): 'z' never occurs inside a code, so it always starts one.
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxy"
_KEPT = frozenset(_DIGITS)


def _code(char: str) -> str:
    number = ord(char)
    digits = []
    for _ in range(4):  # 35**4 > 0x10FFFF
        number, rest = divmod(number, 35)
        digits.append(_DIGITS[rest])
    return "z" + "".join(reversed(digits))


def trigram_key(folded: str) -> str:
    """``folded`` in ASCII letters and digits: 0-9 and a-y stay, every other character (CJK,
    accented letters, spaces, punctuation, z) becomes ``z`` and four base-35 digits. A substring
    of the text is a substring of its key; a match of keys is confirmed on the text itself, since
    a key can also match across the code of a character."""
    return "".join(c if c in _KEPT else _code(c) for c in folded)
