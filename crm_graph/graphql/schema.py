"""Schema assembly: the domains' query and mutation parts, plus what plugins register."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.tools import merge_types
from strawberry.types import Info

from crm_graph.domains import SchemaPart, schema_parts
from crm_graph.graphql.errors import SAFE_EXCEPTIONS, should_mask
from crm_graph.graphql.relay import Node, resolve_nodes
from crm_graph.settings import Settings

MAX_NODES = 100


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Any object by its global ID; null if unknown or deleted.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return (await resolve_nodes(info, [id]))[0]

    @strawberry.field(description=f"Several objects by global ID, in the order asked (at most {MAX_NODES}); null for unknown ones.")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        from crm_graph.graphql.errors import ClientError

        if len(ids) > MAX_NODES:
            raise ClientError(f"`ids` takes at most {MAX_NODES} IDs.")
        return await resolve_nodes(info, ids)


class ErrorPolicy(MaskErrors):
    """Mask unexpected errors (no SQL, paths or tracebacks leak); tag client errors with a code."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask, error_message="Internal server error.")

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        out = []
        for error in errors:
            if self.should_mask_error(error):
                masked = self.anonymise_error(error)
                masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
                out.append(masked)
                continue
            original = error.original_error
            if isinstance(original, SAFE_EXCEPTIONS):
                error.extensions = {**(error.extensions or {}), "code": getattr(original, "code", "BAD_REQUEST")}
            out.append(error)
        return out


def build_schema(settings: Settings, extra_parts: list[SchemaPart] | None = None) -> strawberry.Schema:
    """The schema of the core domains plus ``extra_parts`` (what plugins register)."""
    parts = [SchemaPart(query=NodeQuery), *schema_parts(), *(extra_parts or [])]
    query = merge_types("Query", tuple(p.query for p in parts if p.query is not None))
    mutation = merge_types("Mutation", tuple(p.mutation for p in parts if p.mutation is not None))
    types = [t for p in parts for t in p.types]
    # Factories, not instances: each request gets fresh extension objects (they keep state).
    # The parser and validation caches are module-level LRU caches inside Strawberry, so they
    # are shared across requests all the same.
    extensions: list[Any] = [
        ErrorPolicy,
        lambda: ParserCache(maxsize=1000),
        lambda: ValidationCache(maxsize=1000),
        lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
        lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
    ]
    if settings.is_production:
        extensions.append(DisableIntrospection)
    return CrmSchema(query=query, mutation=mutation, types=types, extensions=extensions)


class CrmSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Client mistakes are not server errors: ``ErrorPolicy`` logs the unexpected ones only."""
