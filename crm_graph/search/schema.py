"""GraphQL API of search: the root query ``search`` (docs/search.md)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from crm_graph.core.errors import ValidationFailed
from crm_graph.domains import SchemaPart
from crm_graph.graphql import access
from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.errors import ClientError
from crm_graph.graphql.relay import Node
from crm_graph.search import service
from crm_graph.search.service import MAX_FIRST, SearchKind

graphql_enum(SearchKind, "The kinds of record `search` looks through.", {
    "CUSTOMER": "Customers: display, first, last and organization names, emails, phones, city, external reference.",
    "OPPORTUNITY": "Opportunities: title.",
    "TICKET": "Support tickets: subject.",
    "PRODUCT": "Products: name and SKU.",
})

_NODE_TYPES = {
    SearchKind.CUSTOMER: "Customer",
    SearchKind.OPPORTUNITY: "Opportunity",
    SearchKind.TICKET: "Ticket",
    SearchKind.PRODUCT: "Product",
}


@strawberry.type(description="One record `search` found, with the field that matched it best.")
class SearchHit:
    node: Node = strawberry.field(description="The record (a Customer, Opportunity, Ticket or Product).")
    kind: SearchKind = strawberry.field(description="What kind of record `node` is.")
    matched_field: str = strawberry.field(
        description="The record's field that matched best, by its GraphQL name: displayName, firstName, lastName, "
        "organizationName, emails, phones, city, externalRef (customers), title, subject, name, sku."
    )
    matched_text: str = strawberry.field(description="That field's value (for `emails` and `phones`: the one that matched).")
    score: float = strawberry.field(
        description="Relevance from 0 to 1, the same on every database (docs/search.md, \"Ranking\"); hits come best first."
    )


@strawberry.type(description="What `search` found: the best hits first, and how many records match in all.")
class SearchResults:
    hits: list[SearchHit] = strawberry.field(description="At most `first` hits, best first.")
    total_count: int = strawberry.field(description="Records that match and that you may read, over all hits (not only these).")


@strawberry.type
class SearchQuery:
    @access.signed_in(
        description="Search customers, opportunities, tickets and products by text, in any script: case-insensitive "
        "(Unicode case folding), optionally accent-insensitive, and substrings of Chinese, Japanese and Korean text. "
        "Every word must occur in the same field; words of one or two characters match the beginning of a word (a "
        "CJK character is a word of its own). Only records you may read are found or counted (docs/search.md)."
    )
    async def search(
        self,
        info: Info,
        query: Annotated[str, strawberry.argument(description="What to look for: 1 to 200 characters, at most 8 words.")],
        first: Annotated[int, strawberry.argument(description=f"How many hits to return, 1 to {MAX_FIRST}.")] = 20,
        kinds: Annotated[
            list[SearchKind] | None, strawberry.argument(description="Only these kinds of record; null or absent: all.")
        ] = None,
        ignore_accents: Annotated[
            bool, strawberry.argument(description="Also match letters without their accents (`muller` finds Müller).")
        ] = False,
    ) -> SearchResults:
        try:
            async with info.context.db.reader() as session:
                found = await service.search(
                    session, query=query, first=first, kinds=[k.value for k in kinds] if kinds else None,
                    ignore_accents=ignore_accents,
                )
        except ValidationFailed as exc:
            error = exc.errors[0]
            raise ClientError(f"`{error.field}`: {error.message}", error.code) from exc
        resolvers = info.schema.crm_nodes  # type: ignore[attr-defined]
        by_kind: dict[SearchKind, list[int]] = {}
        for hit in found.hits:
            by_kind.setdefault(SearchKind(hit.entity), []).append(hit.entity_id)
        nodes: dict[tuple[SearchKind, int], object] = {}
        for kind, pks in by_kind.items():  # one batch per kind, whatever `first` is
            for pk, obj in zip(pks, await resolvers[_NODE_TYPES[kind]](info, pks), strict=True):
                nodes[(kind, pk)] = obj
        hits = []
        for hit in found.hits:
            kind = SearchKind(hit.entity)
            obj = nodes.get((kind, hit.entity_id))
            if obj is not None:
                hits.append(SearchHit(node=obj, kind=kind, matched_field=hit.field, matched_text=hit.value, score=hit.score))
        return SearchResults(hits=hits, total_count=found.total)


SCHEMA = SchemaPart(query=SearchQuery, types=[SearchHit, SearchResults])
