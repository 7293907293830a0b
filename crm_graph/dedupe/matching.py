"""The duplicate rules as pure functions: normalising emails and names, blocking keys and scores.

No database here. ``crm_graph.dedupe.service`` stores the keys, finds customers that share one
and scores the pairs with ``score_pair``.

Names are compared in a folded Latin form: transliterated to ASCII (``anyascii``: Müller is
Muller, Łukasz is Lukasz), German umlaut spellings folded (Mueller is Muller too), case-folded,
split into tokens and sorted, so family/given order does not matter (Zhang Wei is Wei Zhang).
Chinese characters are read as pinyin (``pypinyin``) for that form, so 张伟, 张 伟 and Zhang Wei
meet; the Han characters themselves are kept too, without spaces, and two names with the same
characters score higher than two that merely sound the same (张伟 and 章伟).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from anyascii import anyascii
from rapidfuzz import fuzz

# Rules, as reasons name them.
EMAIL = "EMAIL"
PHONE = "PHONE"
NAME_IN_ORGANIZATION = "NAME_IN_ORGANIZATION"
NAME_IN_CITY = "NAME_IN_CITY"

# Scores (0 to 100) of each rule; a pair's score is its best reason's plus 5 for each further
# reason, at most 100.
EMAIL_SCORE = 95  # the same address once normalised (case, +tags, Gmail dots)
PHONE_SCORE = 90  # the same E.164 number
NAME_MIN_SIMILARITY = 85  # rapidfuzz ratio (0-100) of the folded names below which names differ
NAME_WEIGHT = 0.8  # a Latin (or mixed-script) name match scores similarity x 0.8: 68 to 80
SAME_HAN_SCORE = 85  # the same Chinese characters (spaces aside)
HOMOPHONE_WEIGHT = 0.6  # different Chinese characters with the same pinyin: similarity x 0.6
EXTRA_REASON_BONUS = 5

# A name block (the customers of one organization or city sharing one name token) larger than
# this is not compared pair by pair: "wang" in Beijing says nothing. The whole sorted name has
# a larger limit.
TOKEN_BLOCK_LIMIT = 50
FULL_NAME_BLOCK_LIMIT = 500

_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_TOKEN = re.compile(r"[a-z0-9]+")
_GMAIL = {"gmail.com", "googlemail.com"}
_FOLDS = (("ae", "a"), ("oe", "o"), ("ue", "u"), ("ss", "s"))


def normalise_email(address: str) -> str:
    """The mailbox an address reaches: lower case, without a ``+tag``, and for Gmail without dots
    in the local part (``Ada.L+crm@GoogleMail.com`` is ``adal@gmail.com``)."""
    local, _, domain = address.strip().lower().rpartition("@")
    if not local:
        return address.strip().lower()
    local = local.split("+", 1)[0] or local
    if domain in _GMAIL:
        domain = "gmail.com"
        local = local.replace(".", "")
    return f"{local}@{domain}"


@lru_cache(maxsize=4096)
def _pinyin(text: str) -> str:
    from pypinyin import lazy_pinyin

    return " ".join(lazy_pinyin(text))


def _latin(text: str) -> str:
    """ASCII, lower case: Han characters as space-separated pinyin, everything else by anyascii."""
    if _HAN.search(text):
        text = _HAN.sub(lambda m: f" {_pinyin(m.group())} ", text)
    folded = anyascii(text).lower()
    return folded


def _fold(token: str) -> str:
    for a, b in _FOLDS:
        token = token.replace(a, b)
    return token


@dataclass(frozen=True)
class NameForm:
    """A name ready for comparison."""

    original: str
    tokens: tuple[str, ...]  # folded Latin tokens, sorted
    han: str | None  # the Han characters without spaces, when the name has any

    @property
    def key(self) -> str:
        return " ".join(self.tokens)


@lru_cache(maxsize=16384)
def name_form(name: str) -> NameForm:
    tokens = tuple(sorted(_fold(t) for t in _TOKEN.findall(_latin(name))))
    han = "".join(_HAN.findall(name)) or None
    return NameForm(name, tokens, han)


def place_key(value: str | None) -> str | None:
    """A city compared loosely: 北京, Beijing and BEIJING are one place, München and Muenchen too."""
    if not value:
        return None
    tokens = _TOKEN.findall(_latin(value))
    return _fold("".join(tokens)) or None


def name_similarity(a: NameForm, b: NameForm) -> float:
    """0 to 100: the best of the sorted-token ratio and the ratio of the names written without
    spaces (in both orders), so Annalena and Anna Lena meet."""
    if not a.tokens or not b.tokens:
        return 0.0
    joined_a = "".join(a.tokens)
    return max(
        fuzz.ratio(a.key, b.key),
        fuzz.ratio(joined_a, "".join(b.tokens)),
        fuzz.ratio("".join(reversed(a.tokens)), "".join(b.tokens)),
    )


def name_score(a: NameForm, b: NameForm) -> tuple[int, float] | None:
    """The score of a name match and the similarity it rests on, or None if the names differ."""
    similarity = name_similarity(a, b)
    if a.han and b.han and a.han == b.han:
        return SAME_HAN_SCORE, 100.0
    if similarity < NAME_MIN_SIMILARITY:
        return None
    if a.han and b.han:
        return round(similarity * HOMOPHONE_WEIGHT), similarity
    return round(similarity * NAME_WEIGHT), similarity


# --- blocking keys -------------------------------------------------------------------------------


@dataclass
class Profile:
    """What the rules read of one customer."""

    id: int
    kind: str  # PERSON or ORGANIZATION
    name: str
    organization_id: int | None
    city: str | None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)


def blocking_keys(p: Profile) -> list[tuple[str, str]]:
    """``(key, value)`` pairs: customers sharing a key are compared. ``value`` is what the key was
    made from (the address, the number, the name), shown in reasons.

    - ``e:<normalised email>``, ``p:<E.164>``;
    - ``n:<kind>:o<organization id>:<token>`` and ``n:<kind>:c<city>:<token>`` for each name token
      of two or more letters, and ``...:=<sorted name>`` for the whole name.
    """
    out: dict[str, str] = {}
    for address in p.emails:
        out.setdefault(f"e:{normalise_email(address)}", address)
    for number in p.phones:
        out.setdefault(f"p:{number}", number)
    form = name_form(p.name) if p.name else None
    if form is not None and form.tokens:
        places = []
        if p.organization_id is not None and p.kind == "PERSON":
            places.append(f"o{p.organization_id}")
        city = place_key(p.city)
        if city:
            places.append(f"c{city}")
        for place in places:
            prefix = f"n:{p.kind[0]}:{place}:"
            out.setdefault(prefix + "=" + form.key[:150], p.name)
            for token in form.tokens:
                if len(token) >= 2:
                    out.setdefault(prefix + token[:60], p.name)
    return [(k[:255], v[:320]) for k, v in out.items()]


def block_limit(key: str) -> int | None:
    """How many customers a key's block may hold before it is skipped (None: no limit)."""
    if not key.startswith("n:"):
        return None
    return FULL_NAME_BLOCK_LIMIT if ":=" in key else TOKEN_BLOCK_LIMIT


@dataclass(frozen=True)
class Reason:
    """Why two customers look alike: the rule, the field it compared and both values."""

    rule: str
    field: str
    values: tuple[str, str]
    score: int
    similarity: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "field": self.field, "values": list(self.values), "score": self.score,
                "similarity": self.similarity}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reason:
        return cls(data["rule"], data["field"], tuple(data["values"]), int(data["score"]), data.get("similarity"))


def combined_score(reasons: Sequence[Reason]) -> int:
    if not reasons:
        return 0
    best = max(r.score for r in reasons)
    return min(100, best + EXTRA_REASON_BONUS * (len(reasons) - 1))


def score_pair(shared: Iterable[str], mine: dict[str, str], theirs: dict[str, str]) -> list[Reason]:
    """The reasons two customers look alike, given the keys they share and the values behind
    each side's keys."""
    reasons: list[Reason] = []
    name_places: dict[str, str] = {}
    seen_email: set[str] = set()
    seen_phone: set[str] = set()
    for key in sorted(shared):
        if key.startswith("e:") and key not in seen_email:
            seen_email.add(key)
            reasons.append(Reason(EMAIL, "emails", (mine[key], theirs[key]), EMAIL_SCORE))
        elif key.startswith("p:") and key not in seen_phone:
            seen_phone.add(key)
            reasons.append(Reason(PHONE, "phones", (mine[key], theirs[key]), PHONE_SCORE))
        elif key.startswith("n:"):
            place = key.split(":", 3)[2]
            kind = NAME_IN_ORGANIZATION if place.startswith("o") else NAME_IN_CITY
            if kind not in name_places.values() or kind == NAME_IN_ORGANIZATION:
                name_places[key] = kind
    if name_places:
        key = next(iter(name_places))
        rule = NAME_IN_ORGANIZATION if NAME_IN_ORGANIZATION in name_places.values() else NAME_IN_CITY
        a, b = mine[key], theirs[key]
        scored = name_score(name_form(a), name_form(b))
        if scored is not None:
            reasons.append(Reason(rule, "name", (a, b), scored[0], round(scored[1], 1)))
    return reasons
