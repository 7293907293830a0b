"""Schema assembly: the domains' query, mutation and subscription parts, plus what plugins register."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, MaskErrors
from strawberry.schema.name_converter import NameConverter
from strawberry.tools import merge_types
from strawberry.types import Info
from strawberry.types.graphql import OperationType as StrawberryOperationType
from strawberry.types.base import StrawberryObjectDefinition, has_object_definition
from strawberry.types.field import StrawberryField

from crm_graph.audit.recording import audit_mutations
from crm_graph.domains import SchemaPart, schema_parts
from crm_graph.graphql.access import fail_closed, signed_in
from crm_graph.graphql.cost import DocumentCache, DocumentLimits
from crm_graph.graphql.ratelimit import RateLimiter
from crm_graph.graphql.errors import BUSY_EXTENSIONS, BUSY_MESSAGE, SAFE_EXCEPTIONS, database_busy, should_mask
from crm_graph.core.extensions import Registry
from crm_graph.graphql.extend import Extensions
from crm_graph.graphql.inputs import finite_decimal_scalar
from crm_graph.graphql.suggestions import NoSuggestions
from crm_graph.graphql.relay import Node, NodeResolver, resolve_nodes
from crm_graph.graphql.subscriptions import LiveSubscription
from crm_graph.graphql.standard_descriptions import describe_standard_members
from crm_graph.observability import context as request_context
from crm_graph.observability.operations import ObserveOperations
from crm_graph.plugins import PluginError
from crm_graph.settings import Settings

MAX_NODES = 100

log = logging.getLogger("crm_graph.graphql")


_GLOBAL_ID = "A global ID, exactly as the API returned it (any `id` field)."


@strawberry.type
class NodeQuery:
    @signed_in(description="Any object by its global ID; null if unknown, deleted or not visible to you.")
    async def node(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description=_GLOBAL_ID)]) -> Node | None:
        return (await resolve_nodes(info, [id]))[0]

    @signed_in(description=f"Several objects by global ID, in the order asked (at most {MAX_NODES}); null for unknown ones.")
    async def nodes(
        self, info: Info, ids: Annotated[list[strawberry.ID], strawberry.argument(description="Global IDs, as the API returned them.")]
    ) -> list[Node | None]:
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
                if database_busy(error.original_error):
                    masked.message, masked.extensions = BUSY_MESSAGE, dict(BUSY_EXTENSIONS)
                else:
                    masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
                request_id = request_context.request_id()
                if request_id is not None:  # what to quote to an operator, who finds the log lines by it
                    masked.extensions["requestId"] = request_id
                out.append(masked)
                continue
            original = error.original_error
            if isinstance(original, SAFE_EXCEPTIONS):
                error.extensions = {**(error.extensions or {}), "code": getattr(original, "code", "BAD_REQUEST")}
            elif original is None and not (error.extensions or {}).get("code"):
                # graphql-core's own refusals of a document: it did not parse, or it does not fit the schema
                code = "GRAPHQL_PARSE_FAILED" if error.message.startswith("Syntax Error") else "GRAPHQL_VALIDATION_FAILED"
                error.extensions = {**(error.extensions or {}), "code": code}
            out.append(error)
        return out


def build_schema(settings: Settings, pm: Any, extra_parts: list[SchemaPart] | None = None) -> CrmSchema:
    """The schema of the core domains plus ``extra_parts`` plus what the plugins of ``pm`` register:
    root fields and node types (``crm_register_schema``), fields on core types
    (``crm_register_type_extensions``) and filter conditions (``crm_register_filters``).

    A plugin field whose name the core or another plugin uses already, or a plugin type that
    cannot join the schema, raises a ``PluginError`` naming the plugin.
    """
    from crm_graph.core.extensions import build_registry
    from crm_graph.plugins import schema_parts as plugin_schema_parts

    registry = build_registry(pm)
    core = [SchemaPart(query=NodeQuery), SchemaPart(subscription=LiveSubscription), *schema_parts(), *(extra_parts or [])]
    plugin_parts = plugin_schema_parts(pm)
    if not plugin_parts:
        return _assemble(settings, core, registry)
    _check_clashes(core, plugin_parts)
    try:
        return _assemble(settings, [*core, *(p for parts in plugin_parts.values() for p in parts)], registry)
    except PluginError:
        raise
    except Exception as failure:
        for name, parts in plugin_parts.items():  # find the plugin whose part breaks the schema
            try:
                _assemble(settings, [*core, *parts], registry)
            except Exception as exc:  # noqa: BLE001 - reported with the plugin's name
                raise PluginError(name, f"its schema part cannot be added: {exc}") from exc
        raise PluginError(", ".join(plugin_parts), f"their schema parts do not fit together: {failure}") from failure


def root_field_names(part_type: type | None) -> list[str]:
    """The GraphQL names of the fields of a query or mutation part."""
    if part_type is None or not has_object_definition(part_type):
        return []
    converter = NameConverter()
    return [converter.get_graphql_name(f) for f in part_type.__strawberry_definition__.fields]


def _check_clashes(core: Sequence[SchemaPart], plugin_parts: Mapping[str, Sequence[SchemaPart]]) -> None:
    nodes = {node.name: "the core" for part in core for node in part.nodes}
    for plugin, parts in plugin_parts.items():
        for node in (n for part in parts for n in part.nodes):
            if node.name in nodes:
                raise PluginError(plugin, f"node type {node.name!r} clashes with {nodes[node.name]}")
            nodes[node.name] = f"plugin {plugin!r}"
    for root in ("query", "mutation", "subscription"):
        owners = {name: "the core" for part in core for name in root_field_names(getattr(part, root))}
        for plugin, parts in plugin_parts.items():
            for part in parts:
                for name in root_field_names(getattr(part, root)):
                    if name in owners:
                        raise PluginError(plugin, f"{root} field {name!r} clashes with {owners[name]}")
                    owners[name] = f"plugin {plugin!r}"


def _assemble(settings: Settings, parts: list[SchemaPart], registry: Registry) -> CrmSchema:
    for part in parts:  # a root field that declares no permission is for administrators only
        for root in (part.query, part.mutation, part.subscription):
            for name in fail_closed(root):
                log.warning("root field %s of %s declares no permission: administrators only", name, root.__name__)
    query = merge_types("Query", tuple(p.query for p in parts if p.query is not None))
    mutation = merge_types("Mutation", tuple(p.mutation for p in parts if p.mutation is not None))
    audit_mutations(mutation)  # every mutation is audited, whoever defined it (crm_graph/audit)
    live = tuple(p.subscription for p in parts if p.subscription is not None)
    subscription = merge_types("Subscription", live) if live else None
    types = [t for p in parts for t in p.types] + [n.type for p in parts for n in p.nodes if n.type is not None]
    # Factories, not instances: each request gets fresh extension objects (they keep state).
    # The document cache and the rate limiter's buckets belong to the schema, so requests share
    # them. DocumentLimits parses, validates, measures and charges (crm_graph/graphql/cost.py).
    cache = DocumentCache(settings.document_cache_chars, settings.document_cache_chars // 100)
    limiter = RateLimiter.from_settings(settings)
    extensions: list[Any] = [ObserveOperations, ErrorPolicy, lambda: DocumentLimits(settings, cache, limiter)]
    if settings.is_production:
        extensions.append(DisableIntrospection)
        extensions.append(NoSuggestions)  # suggestions would give the schema away (graphql/suggestions.py)
    extended = Extensions(registry)
    try:
        schema = CrmSchema(
            query=query, mutation=mutation, subscription=subscription, types=types, extensions=extensions,
            fields=extended, nodes={n.name: n.resolve for p in parts for n in p.nodes},
            timeout=settings.request_timeout, scalar_overrides={Decimal: finite_decimal_scalar()},
        )
    except Exception as exc:  # graphql-core wraps what get_fields raised: give the plugin's error back
        cause: BaseException | None = exc
        seen: set[int] = set()  # an exception's chain can loop back on itself
        while cause is not None and not isinstance(cause, PluginError) and id(cause) not in seen:
            seen.add(id(cause))
            cause = cause.__cause__ or cause.__context__
        if cause is not None and not isinstance(cause, PluginError):
            cause = None
        if cause is not None:
            raise cause from None
        raise
    extended.check_all_used()
    describe_standard_members(schema._schema)
    schema.document_cache = cache  # type: ignore[attr-defined]  # for operators and tests to inspect
    return schema


class CrmSchema(strawberry.Schema):
    """The assembled schema: it knows its node types (``node(id)``) and its type extensions."""

    def __init__(self, *args: Any, fields: Extensions, nodes: dict[str, NodeResolver], timeout: float | None = None,
                 **kwargs: Any) -> None:
        self.crm_timeout = timeout  # seconds a query may run (CRM_REQUEST_TIMEOUT)
        self.crm_fields = fields
        self.crm_nodes = nodes
        self.crm_registry = fields.registry
        super().__init__(*args, **kwargs)

    def get_fields(self, type_definition: StrawberryObjectDefinition) -> list[StrawberryField]:
        return self.crm_fields.fields(type_definition)

    async def _execute_operation(self, execution_context: Any, *args: Any, **kwargs: Any) -> Any:
        """Run the operation; a query still running after ``crm_timeout`` seconds is cancelled
        (its resolvers, loaders and SQL) and answered ``REQUEST_TIMEOUT``. Mutations are not cut
        short: cancelling one between its commit and its answer would leave the client unsure
        whether it was applied."""
        if self.crm_timeout is None or execution_context.operation_type is not StrawberryOperationType.QUERY:
            return await super()._execute_operation(execution_context, *args, **kwargs)
        try:
            async with asyncio.timeout(self.crm_timeout):
                return await super()._execute_operation(execution_context, *args, **kwargs)
        except TimeoutError:
            result = GraphQLExecutionResult(data=None, errors=[GraphQLError(
                f"The query ran longer than {self.crm_timeout:g} s and was stopped; ask for less (docs/api.md, Limits).",
                extensions={"code": "REQUEST_TIMEOUT"},
            )])
            execution_context.result = result
            return result

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Client mistakes are not server errors: ``ErrorPolicy`` logs the unexpected ones only."""
