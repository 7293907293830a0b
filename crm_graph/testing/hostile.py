"""Requests a hostile or careless client sends to stall, grow or crash a shared server.

``hostile_requests()`` generates them, deterministically from a seed, in families: deep
nesting, alias floods, nested fragment fan-out, fragment cycles, directive floods, huge page
sizes, oversized and comment-padded bodies, batches, odd encodings, control characters, deeply
nested input values, one field repeated hundreds of times and several operations without a name. Each is a raw HTTP body with its
content type, so encodings and bodies that are not JSON can be sent as they are.

Every one of them must be refused before any resolver runs (no SQL), with a JSON error body, a
4xx (or, for a GraphQL request error answered as application/json, 200) status and no ``data``.
tests/graphql/test_hostile_documents.py asserts that; bench/hostile.py measures how long each
family takes to answer, how a small query fares beside them, and the server's memory.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

JSON = "application/json"
# Fields a hostile document reaches for: cheap scalars, an object, nested connections.
SCALARS = ("id", "displayName", "kind", "createdAt", "version", "firstName", "lastName")


@dataclass(frozen=True)
class HostileRequest:
    family: str
    body: bytes
    content_type: str = JSON

    @property
    def size(self) -> int:
        return len(self.body)


def _json(query: str, variables: dict | None = None, operation_name: str | None = None) -> bytes:
    payload: dict = {"query": query}
    if variables is not None:
        payload["variables"] = variables
    if operation_name is not None:
        payload["operationName"] = operation_name
    return json.dumps(payload).encode()


def deep_nesting(rnd: random.Random) -> bytes:
    """Organizations of organizations, far past the depth limit."""
    levels = rnd.randint(14, 400)
    inner = rnd.choice(SCALARS)
    return _json("{ customers(first: 1) { edges { node { " + "organization { " * levels + inner
                 + " }" * levels + " } } } }")


def alias_flood(rnd: random.Random) -> bytes:
    count = rnd.randint(31, 2000)
    field = rnd.choice(["customers(first: 100) { totalCount }", "__typename", "customers { edges { node { id } } }"])
    return _json("{ " + " ".join(f"a{i}: {field}" for i in range(count)) + " }")


def fragment_fan_out(rnd: random.Random) -> bytes:
    """n fragments each spreading the next k times: k**n copies of the last."""
    levels, width = rnd.randint(8, 40), rnd.randint(2, 4)
    fragments = [f"fragment F{i} on Customer {{ {' '.join([f'...F{i + 1}'] * width)} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on Customer {{ id organization {{ id displayName }} }}")
    return _json("{ customers(first: 100) { edges { node { ...F0 } } } }\n" + "\n".join(fragments))


def fragment_cycle(rnd: random.Random) -> bytes:
    length = rnd.randint(1, 30)
    fragments = [f"fragment C{i} on Customer {{ id organization {{ ...C{(i + 1) % length} }} }}" for i in range(length)]
    return _json("{ customers { edges { node { ...C0 } } } }\n" + "\n".join(fragments))


def directive_flood(rnd: random.Random) -> bytes:
    count = rnd.randint(51, 1200)
    directive = rnd.choice(["@include(if: true)", "@skip(if: false)"])
    return _json("{ customers(first: 1) { totalCount " + " ".join([directive] * count) + " } }")


def huge_page(rnd: random.Random) -> bytes:
    size = rnd.choice([101, 1000, 10**6, 2**31 - 1, -1, -(2**31)])
    argument = rnd.choice(["first", "last"])
    if rnd.random() < 0.5:
        return _json(f"query($n: Int) {{ customers({argument}: $n) {{ edges {{ node {{ id }} }} }} }}", {"n": size})
    return _json(f"{{ customers(first: 10) {{ edges {{ node {{ orders({argument}: {size}) {{ totalCount }} }} }} }} }}")


def oversized_body(rnd: random.Random) -> bytes:
    """Past the request body limit (1 MiB by default): a long string variable."""
    return _json("query($s: String) { customers(search: $s) { totalCount } }", {"s": "x" * rnd.randint(1_100_000, 3_000_000)})


def comment_padding(rnd: random.Random) -> bytes:
    """A tiny query behind comments and whitespace: past the document length limit, under the body limit."""
    pad = rnd.choice(["#" + "c" * 1000 + "\n", " " * 1000, "\n" * 1000, ",,,,"])
    repeat = (rnd.randint(110_000, 900_000) // len(pad)) + 1
    return _json(pad * repeat + "{ __typename }")


def token_flood(rnd: random.Random) -> bytes:
    """Many tokens in a short document: past the token limit."""
    count = rnd.randint(6000, 40_000)
    return _json("{ customers(first: 1) { " + " ".join(["id"] * count) + " } }")


def batch(rnd: random.Random) -> bytes:
    """A JSON array of operations: batching is not accepted."""
    count = rnd.randint(2, 500)
    return json.dumps([{"query": "{ customers(first: 100) { totalCount } }"} for _ in range(count)]).encode()


def odd_encoding(rnd: random.Random) -> bytes:
    text = json.dumps({"query": '{ customers(search: "Müller") { totalCount } }'}, ensure_ascii=False)
    choice = rnd.randrange(6)
    if choice == 0:
        return text.encode("utf-16")  # with a BOM, not UTF-8
    if choice == 1:
        return text.encode("latin-1")  # ü as one byte: invalid UTF-8
    if choice == 2:
        return b"\xff\xfe" + text.encode()[2:]
    if choice == 3:
        raw = bytearray(text.encode())
        ascii_at = [i for i, byte in enumerate(raw) if byte < 0x80]  # so the result is never valid UTF-8
        raw[rnd.choice(ascii_at)] = rnd.choice([0x80, 0xC0, 0xFE, 0xFF])
        return bytes(raw)
    if choice == 4:
        return b'{"query": "{ __typename }", "query": ' + b'"' + b"\\ud800" * 50 + b'"}'  # lone surrogates
    return b'{"query": "' + b"{" * 2000 + b'"' + b"}" * 3  # truncated JSON


def control_characters(rnd: random.Random) -> bytes:
    char = chr(rnd.choice([0, 1, 7, 8, 11, 27, 127, 0x85, 0x9F]))
    if rnd.random() < 0.5:
        return _json("mutation($n: String) { createCustomer(input: {kind: PERSON, lastName: $n}) { errors { code } } }",
                     {"n": f"Ann{char}e"})
    return _json('{ customers(search: "A' + "\\u%04x" % ord(char) + '") { totalCount } }')


def nested_input(rnd: random.Random) -> bytes:
    """A filter nested thousands of levels deep, as a variable or as a literal."""
    levels = rnd.randint(200, 20_000)
    if rnd.random() < 0.5:  # written out: too deep for json.dumps
        value = '{"and": [' * levels + '{"displayName": {"eq": "x"}}' + "]}" * levels
        query = json.dumps("query($f: CustomerFilter) { customers(filter: $f) { totalCount } }")
        return ('{"query": ' + query + ', "variables": {"f": ' + value + "}}").encode()
    literal = "{and: [" * min(levels, 3000) + '{displayName: {eq: "x"}}' + "]}" * min(levels, 3000)
    return _json("{ customers(filter: " + literal + ") { totalCount } }")


def nested_json(rnd: random.Random) -> bytes:
    """Variables nested deeper than any JSON parser should follow."""
    levels = rnd.randint(5_000, 200_000)
    return b'{"query": "query($v: JSON) { __typename }", "variables": {"v": ' + b"[" * levels + b"]" * levels + b"}}"


def repeated_fields(rnd: random.Random) -> bytes:
    """One field selected hundreds of times without aliases: cheap by cost and depth, but
    validation compares the copies pairwise."""
    count = rnd.randint(21, 1200)
    field = rnd.choice(["customers(first: 1) { totalCount }", "__typename", "id"])
    if field == "id":
        return _json("{ customers(first: 1) { edges { node { " + " ".join(["id"] * count) + " } } } }")
    return _json("{ " + " ".join([field] * count) + " }")


def unnamed_operations(rnd: random.Random) -> bytes:
    count = rnd.randint(2, 200)
    return _json("\n".join(f"query Q{i} {{ customers(first: 100) {{ totalCount }} }}" for i in range(count)))


def wrong_media_type(rnd: random.Random) -> bytes:
    return _json("{ customers(first: 100) { totalCount } }")


FAMILIES: dict[str, tuple[Callable[[random.Random], bytes], str]] = {
    "deep nesting": (deep_nesting, JSON),
    "alias flood": (alias_flood, JSON),
    "fragment fan-out": (fragment_fan_out, JSON),
    "fragment cycle": (fragment_cycle, JSON),
    "directive flood": (directive_flood, JSON),
    "huge page size": (huge_page, JSON),
    "oversized body": (oversized_body, JSON),
    "comment padding": (comment_padding, JSON),
    "token flood": (token_flood, JSON),
    "batch": (batch, JSON),
    "odd encoding": (odd_encoding, JSON),
    "control characters": (control_characters, JSON),
    "nested input": (nested_input, JSON),
    "nested JSON": (nested_json, JSON),
    "repeated fields": (repeated_fields, JSON),
    "several operations": (unnamed_operations, JSON),
    "wrong media type": (wrong_media_type, "text/plain; charset=utf-8"),
}


def hostile_requests(per_family: int = 20, seed: int = 20261203) -> Iterator[HostileRequest]:
    """``per_family`` requests of each family (17 families), the same ones for the same seed."""
    rnd = random.Random(seed)
    for _ in range(per_family):
        for family, (make, content_type) in FAMILIES.items():
            yield HostileRequest(family, make(rnd), content_type)
