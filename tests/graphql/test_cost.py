"""Query cost and the document limits: figures computed by hand, refusals before any resolver runs."""

from __future__ import annotations

import pytest
from graphql import parse

from crm_graph.app import create_app
from crm_graph.graphql import cost
from crm_graph.graphql.cost import Analysis, DocumentCache, measure
from crm_graph.settings import Settings
from crm_graph.testing.auth import TEST_SECRET
from crm_graph.testing.client import GraphQLClient, asgi_client


def figures(client: GraphQLClient, document: str, variables: dict | None = None) -> cost.Figures:
    return measure(client.app.state.schema._schema, parse(document), variables)


def fan_out(levels: int, leaf: str = "id organization { id }") -> str:
    """``levels`` fragments, each spreading the next twice: 2**levels copies of ``leaf``."""
    fragments = [f"fragment F{i} on Customer {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on Customer {{ {leaf} }}")
    return "{ customers(first: 100) { edges { node { ...F0 } } } }\n" + "\n".join(fragments)


@pytest.mark.parametrize(("document", "expected"), [
    # a connection: 1, and per row its edge and its node
    ("{ customers(first: 20) { edges { node { id displayName } } } }", 1 + 20 * (1 + 1)),
    ("{ customers { edges { cursor node { id } } } }", 1 + 20 * 2),  # default page: 20
    ("{ customers(last: 3) { edges { node { id } } } }", 1 + 3 * 2),
    ("{ customers(first: 500) { edges { node { id } } } }", 1 + 100 * 2),  # the cap (refused when run)
    ("{ customers { totalCount pageInfo { hasNextPage } } }", 1 + 1),
    # nested objects and connections multiply
    ("{ customers(first: 10) { edges { node { organization { id } } } } }", 1 + 10 * (1 + 1 + 1)),
    ("{ customers(first: 10) { edges { node { orders(first: 5) { edges { node { id } } } } } } }",
     1 + 10 * (1 + 1 + (1 + 5 * 2))),
    # a list without `first`: 10 items
    ("{ customers(first: 2) { edges { node { emails { address } } } } }", 1 + 2 * (1 + 1 + 10 * 1)),
    # scalars and __typename are free; introspection is flat
    ("{ __typename }", 0),
    ("{ __schema { types { name fields { name } } } }", cost.INTROSPECTION_COST),
    # a mutation's root field costs 10 more
    ('mutation { createCustomer(input: {kind: PERSON, lastName: "X"}) { customer { id } errors { code } } }',
     10 + 1 + 1 + 10 * 1),
])
async def test_costs_computed_by_hand(client, document, expected):
    assert figures(client, document).cost == expected


async def test_page_sizes_given_as_variables_count(client):
    document = "query($n: Int, $m: Int = 7) { a: customers(first: $n) { edges { node { id } } } b: customers(first: $m) { edges { node { id } } } }"
    assert figures(client, document, {"n": 5}).cost == (1 + 5 * 2) + (1 + 7 * 2)
    assert figures(client, document, {}).cost == (1 + 20 * 2) + (1 + 7 * 2)


async def test_the_cost_is_reported_in_extensions(client):
    body = await client.post("{ customers(first: 20) { edges { node { id } } } }")
    assert body["extensions"]["cost"] == {"requested": 41, "limit": 5000}


async def test_a_nested_fragment_fan_out_is_analysed_once_per_fragment_and_refused_unrun(client, sql_counter, monkeypatch):
    document = fan_out(30)

    visits = 0
    original = Analysis.field

    def counting(self, *args):  # type: ignore[no-untyped-def]
        nonlocal visits
        visits += 1
        return original(self, *args)

    found = measure(client.app.state.schema._schema, parse(document))
    assert found.cost == 1 + 100 * (1 + 1 + 2**30 * 1)  # each copy: organization, an object
    monkeypatch.setattr(Analysis, "field", counting)
    measure(client.app.state.schema._schema, parse(document))
    monkeypatch.undo()
    # customers, edges, node, and the last fragment's id, organization and its id: not 2**30 copies
    assert visits == 6

    await client.warm_up()
    sql_counter.count = 0
    body = await client.post(document)
    assert sql_counter.count == 0
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["cost"]["limit"] == 5000
    assert "data" not in body  # a request error: nothing ran


async def test_a_fragment_cycle_ends_the_analysis_and_is_refused(client, sql_counter):
    document = "{ customers { edges { node { ...A } } } } fragment A on Customer { organization { ...B } } fragment B on Customer { organization { ...A } }"
    assert figures(client, document).depth == 5  # the cycle is cut where it closes
    await client.warm_up()
    sql_counter.count = 0
    body = await client.post(document)
    assert "Cannot spread fragment" in body["errors"][0]["message"]
    assert sql_counter.count == 0


async def test_depth_is_measured_through_fragments_without_walking_every_path(client):
    levels = 20
    fragments = [f"fragment D{i} on Customer {{ organization {{ ...D{i + 1} ...D{i + 1} }} }}" for i in range(levels)]
    fragments.append(f"fragment D{levels} on Customer {{ id }}")
    document = "{ customers { edges { node { ...D0 } } } }\n" + "\n".join(fragments)
    assert figures(client, document).depth == 3 + levels
    body = await client.post(document)
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_DEEP"
    assert "exceeds maximum operation depth of 12" in body["errors"][0]["message"]


async def test_aliases_and_directives_are_counted_with_fragments_expanded(client):
    # 2 aliases in a fragment spread 16 times: 32 aliases, over the 30 allowed
    document = ("{ customers { edges { node { ...A ...A ...A ...A ...A ...A ...A ...A ...A ...A ...A ...A ...A ...A ...A ...A } } } }"
                " fragment A on Customer { a: id b: displayName }")
    assert figures(client, document).aliases == 32
    body = await client.post(document)
    assert body["errors"][0]["extensions"]["code"] == "TOO_MANY_ALIASES"

    document = "{ customers { edges { node { ...B ...B ...B ...B } } } } fragment B on Customer { " + "id @include(if: true) " * 13 + "}"
    assert figures(client, document).directives == 52
    body = await client.post(document)
    assert body["errors"][0]["extensions"]["code"] == "TOO_MANY_DIRECTIVES"
    few = "{ customers { edges { node { " + " ".join(f"f{i}: id @skip(if: false)" for i in range(5)) + " } } } }"
    assert figures(client, few).directives == 5
    many = "{ customers { edges { node { id " + " ".join("... @include(if: true) { id }" for _ in range(51)) + " } } } }"
    body = await client.post(many)
    assert body["errors"][0]["extensions"]["code"] == "TOO_MANY_DIRECTIVES"


async def test_comments_and_whitespace_count_towards_the_document_length(database_url, db, admin_key):
    settings = Settings(database_url=database_url, secret_key=TEST_SECRET, max_query_length=2_000)
    app = create_app(settings, db=db)
    async with asgi_client(app, admin_key) as http:
        client = GraphQLClient(http, app)
        assert (await client.execute("{ customers { totalCount } }")) == {"customers": {"totalCount": 0}}
        padded = "# " + "x" * 3_000 + "\n{ customers { totalCount } }"
        body = await client.post(padded)
        assert "data" not in body  # a request error: nothing ran
        assert "2000" in body["errors"][0]["message"]
        spaced = "{ customers " + " " * 3_000 + "{ totalCount } }"
        assert "errors" in await client.post(spaced)


def test_the_document_cache_is_bounded_by_the_size_of_what_it_holds():
    cache = DocumentCache(max_total=1_000, max_entry=100)
    document = parse("{ __typename }")
    big = "{ __typename }" + " " * 200
    cache.put(big, document)
    assert cache.get(big) is None  # too large to keep
    texts = [f"{{ __typename }} # {i:080d}" for i in range(50)]
    for text in texts:
        cache.put(text, document)
        assert cache.size <= 1_000
    assert cache.get(texts[-1]) is not None and cache.get(texts[0]) is None  # oldest dropped first


async def test_readme_examples_cost_what_docs_api_md_says(client):
    from crm_graph.settings import PROJECT_ROOT
    from tests.test_readme import readme_examples

    docs = (PROJECT_ROOT / "docs" / "api.md").read_text()
    for number, example in enumerate(readme_examples(), 1):
        found = figures(client, example).cost
        assert found <= 5000
        root = parse(example).definitions[0].selection_set.selections[0].name.value
        assert f"| {number} | `{root}` | {found} |" in docs, (number, root, found)


def _graphql_core_tokens(document: str) -> int:
    from graphql.language import Lexer, Source, TokenKind

    lexer, count = Lexer(Source(document)), 0
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


def test_the_fast_token_count_agrees_with_graphql_core():
    from tests.test_readme import readme_examples

    tricky = ['{ a(b: "x \\" y # no comment", c: -1.5e3, d: """blk \\""" "q" # """) { ...F @include(if: $v) } } # c { d }\n'
              "fragment F on T { x }", 'query($a: [Int!]! = [1, 2, 3]) { x(a: $a, s: "é\\u00e9 \\\\") }']
    for document in [*readme_examples(), *tricky]:
        tokens = _graphql_core_tokens(document)
        assert not cost.over_token_limit(document, tokens) and cost.over_token_limit(document, tokens - 1), document
