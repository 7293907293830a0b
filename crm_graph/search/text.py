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

import re
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


_CJK = re.compile("[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in _CJK_RANGES) + "]")
# A CJK character, or a run of other letters and digits (what str.isalnum calls so).
_TOKEN = re.compile(f"{_CJK.pattern}|(?:(?!{_CJK.pattern})[^\\W_])+")
# Combining marks (accents), removed from the NFD form for ``plain``.
_COMBINING = {code: None for code in range(0x2FFFF) if unicodedata.combining(chr(code))}


def is_cjk(char: str) -> bool:
    return _CJK.match(char) is not None


def fold(value: str) -> str:
    """NFKC, then Unicode case folding, then NFKC again: what ``contains`` compares, too."""
    return fold_text(value) or ""


def plain(folded: str) -> str:
    """``folded`` without combining marks (accents): ``müller`` -> ``muller``, ``çağrı`` -> ``cagri``.
    (NFC puts Hangul syllables, which NFD splits into letters, back together.)"""
    if folded.isascii():
        return folded
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", folded).translate(_COMBINING))


def token_list(folded: str) -> list[str]:
    """Words (runs of letters and digits) and single CJK characters, in order."""
    return _TOKEN.findall(folded)


def tokens(folded: str) -> str:
    return " ".join(token_list(folded))


# Base 35 (0-9, a-y): 'z' never occurs inside a code, so it always starts one.
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxy"
_KEPT = frozenset(_DIGITS)


class _Codes(dict[int, str]):
    """``str.translate`` table of ``trigram_key``, filled as characters are met."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if char in _KEPT:
            spelled = char
        else:
            digits = []
            for _ in range(4):  # 35**4 > 0x10FFFF
                code, rest = divmod(code, 35)
                digits.append(_DIGITS[rest])
            spelled = "z" + "".join(reversed(digits))
        self[ord(char)] = spelled
        return spelled


_CODES = _Codes()


def trigram_key(folded: str) -> str:
    """``folded`` in ASCII letters and digits: 0-9 and a-y stay, every other character (CJK,
    accented letters, spaces, punctuation, z) becomes ``z`` and four base-35 digits. A substring
    of the text is a substring of its key; a match of keys is confirmed on the text itself, since
    a key can also match across the code of a character."""
    return folded.translate(_CODES)
