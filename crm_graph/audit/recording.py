"""Where the audit log is written: once, for every root field, not in each mutation.

- ``audit_mutations(Mutation)`` (called by the schema assembly) gives every root mutation field
  the ``AuditedMutation`` field extension. It sits inside the permission check, so it runs only
  for calls that were allowed, and records each call after its resolver returned: OK, or
  USER_ERROR / DENIED from the payload's ``errors``, or USER_ERROR / ERROR when it raised.
- ``record_denial`` is the request context's ``on_denied``: the permission check calls it for
  queries and mutations it refuses (UNAUTHENTICATED, or DENIED by the role or ``crm_authorize``).

What is kept of the arguments: the global IDs among values of GraphQL type ``ID`` (found through
the schema's types, so no ``String`` value, such as a password, is ever looked at), and the names
of the input fields the client set. What is kept of the result: the IDs of the ``Node`` objects
in the payload. Never a value.

Rows go through the unscoped database (``ctx.base_db``), each in its own transaction, after the
mutation's own transaction ended: a rolled-back mutation is audited too. A failure to write the
log is logged and does not change the response (the mutation has committed; failing the request
would make clients retry a write that happened).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

from graphql import (
    GraphQLID,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    Undefined,
    VariableNode,
    value_from_ast_untyped,
)
from strawberry.extensions import FieldExtension
from strawberry.types import Info
from strawberry.types.base import has_object_definition

from crm_graph.audit import service
from crm_graph.audit.models import AuditOutcome
from crm_graph.core import ids as global_ids
from crm_graph.core.access import FORBIDDEN
from crm_graph.core.actor import ANONYMOUS
from crm_graph.graphql.access import UNAUTHENTICATED, rule_of
from crm_graph.graphql.errors import SAFE_EXCEPTIONS
from crm_graph.graphql.relay import Node

log = logging.getLogger("crm_graph.audit")

MAX_DEPTH = 4  # how deep arguments and payloads are searched for IDs
_pending: set[asyncio.Task[Any]] = set()


def audit_mutations(mutation_type: type | None) -> None:
    """Give every field of the assembled ``Mutation`` type the audit extension (once)."""
    if mutation_type is None or not has_object_definition(mutation_type):
        return
    for field in mutation_type.__strawberry_definition__.fields:
        if not any(isinstance(e, AuditedMutation) for e in field.extensions):
            # First in the list = innermost: it wraps the resolver, inside the permission check.
            field.extensions = [AuditedMutation(), *field.extensions]


class AuditedMutation(FieldExtension):
    async def resolve_async(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        try:
            result = next_(source, info, **kwargs)
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                result = await result
        except Exception as exc:
            await _record_failure(info, exc)
            raise
        await _record_result(info, result)
        return result

    def resolve(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        """Synchronous resolvers (none in the core): the row is written by a task on the loop."""
        try:
            result = next_(source, info, **kwargs)
        except Exception as exc:
            _spawn(_record_failure(info, exc))
            raise
        _spawn(_record_result(info, result))
        return result


def _spawn(coro: Any) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _record_result(info: Info, result: Any) -> None:
    errors = list(getattr(result, "errors", None) or [])
    codes = [str(getattr(e, "code", "")) for e in errors if getattr(e, "code", None)]
    if not errors:
        outcome = AuditOutcome.OK
    elif FORBIDDEN in codes:
        outcome = AuditOutcome.DENIED  # the record's write rule refused (AccessDenied)
    else:
        outcome = AuditOutcome.USER_ERROR
    await _write(info, outcome, codes, result=result)


async def _record_failure(info: Info, exc: Exception) -> None:
    if isinstance(exc, SAFE_EXCEPTIONS):
        code = str(getattr(exc, "code", "BAD_REQUEST"))
        outcome = {UNAUTHENTICATED: AuditOutcome.UNAUTHENTICATED, FORBIDDEN: AuditOutcome.DENIED}.get(
            code, AuditOutcome.USER_ERROR
        )
        await _write(info, outcome, [code])
    else:
        await _write(info, AuditOutcome.ERROR, ["INTERNAL_SERVER_ERROR"])


async def record_denial(info: Info, code: str, reason: str) -> None:
    """``Context.on_denied``: a root field refused the actor (before its resolver ran)."""
    ctx = info.context
    seen = getattr(ctx, "_audited_denials", None)
    if seen is None:
        seen = set()
        setattr(ctx, "_audited_denials", seen)
    key = (info.field_name, code)
    if key in seen:  # the same refusal twice in one request (aliases) is one row
        return
    seen.add(key)
    outcome = AuditOutcome.UNAUTHENTICATED if code == UNAUTHENTICATED else AuditOutcome.DENIED
    await _write(info, outcome, [code], reason=reason)


async def _write(info: Info, outcome: AuditOutcome, codes: list[str], *, result: Any = None, reason: str | None = None) -> None:
    ctx = info.context
    db = getattr(ctx, "base_db", None) or getattr(ctx, "db", None)
    if db is None:
        return
    try:
        rule = rule_of(info._field)
        changed, argument_ids = inspect_arguments(info)
        request = getattr(ctx, "request", None)
        client = getattr(request, "client", None)
        headers = getattr(request, "headers", None)
        await service.record(
            db,
            actor=getattr(ctx, "actor", None) or ANONYMOUS,
            operation=info.field_name,
            action=rule.action if rule is not None else None,
            object=rule.obj if rule is not None else None,
            outcome=outcome,
            entity_ids=[*argument_ids, *payload_ids(result)],
            changed_fields=changed,
            error_codes=codes,
            reason=reason,
            address=getattr(client, "host", None),
            user_agent=headers.get("user-agent") if headers is not None else None,
        )
    except Exception:  # noqa: BLE001 - see the module docstring: logged, the response stands
        log.exception("could not write the audit log for %s (%s)", info.field_name, outcome.name)


# --- what is kept of a call ----------------------------------------------------------------------


def inspect_arguments(info: Info) -> tuple[list[str], list[str]]:
    """(names of the input fields and arguments the client set, global IDs among the arguments).

    Reads the arguments the query wrote (literals, or variables as GraphQL coerced them) with
    their schema types: a field left at its declared default does not count as set, and only
    values of type ``ID`` are read, as IDs.
    """
    raw = info._raw_info
    field_def = raw.parent_type.fields.get(raw.field_name)
    if field_def is None:
        return [], []
    variables = raw.variable_values or {}
    names: list[str] = []
    found: list[str] = []
    for node in raw.field_nodes[0].arguments or ():
        name = node.name.value
        arg_def = field_def.args.get(name)
        if arg_def is None:
            continue
        if isinstance(node.value, VariableNode):
            value = variables.get(node.value.name.value)
        else:
            value = value_from_ast_untyped(node.value, variables)
        named = _named(arg_def.type)
        if isinstance(named, GraphQLInputObjectType):
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    names.extend(_set_fields(named, item))
        elif not _is_id_type(named) and not _is_default(arg_def.default_value, value):
            names.append(name)
        found.extend(_ids(arg_def.type, value, 0))
    return names, [i for i in found if _is_global_id(i)]


def _named(type_: Any) -> Any:
    while isinstance(type_, (GraphQLNonNull, GraphQLList)):
        type_ = type_.of_type
    return type_


def _is_default(default: Any, value: Any) -> bool:
    return default is not Undefined and value == default


def _set_fields(input_type: GraphQLInputObjectType, value: dict[str, Any]) -> Iterator[str]:
    for name, field in input_type.fields.items():
        key = field.out_name or name
        if key in value and not _is_default(field.default_value, value[key]):
            yield name


def _ids(type_: Any, value: Any, depth: int) -> Iterator[str]:
    if value is None or depth > MAX_DEPTH:
        return
    if isinstance(type_, GraphQLNonNull):
        yield from _ids(type_.of_type, value, depth)
    elif isinstance(type_, GraphQLList):
        for item in value if isinstance(value, list) else [value]:
            yield from _ids(type_.of_type, item, depth)
    elif _is_id_type(type_):
        if isinstance(value, str):
            yield value
    elif isinstance(type_, GraphQLInputObjectType) and isinstance(value, dict):
        for name, field in type_.fields.items():
            key = field.out_name or name
            if key in value:
                yield from _ids(field.type, value[key], depth + 1)


def _is_id_type(type_: Any) -> bool:
    return isinstance(type_, GraphQLScalarType) and type_.name == GraphQLID.name


def payload_ids(result: Any, depth: int = 0) -> Iterator[str]:
    """The IDs of the ``Node`` objects in a payload (not inside them: their own relations are
    not what the mutation touched)."""
    if result is None or depth > MAX_DEPTH:
        return
    if isinstance(result, (list, tuple)):
        for item in result:
            yield from payload_ids(item, depth + 1)
        return
    if isinstance(result, Node):
        yield str(result.id)
        return
    definition = getattr(type(result), "__strawberry_definition__", None)
    if definition is None or not hasattr(definition, "fields"):
        return  # a scalar, or an enum value (enums have a definition too, without fields)
    for field in definition.fields:
        if field.base_resolver is None:
            yield from payload_ids(getattr(result, field.python_name, None), depth + 1)


def _is_global_id(value: str) -> bool:
    try:
        global_ids.decode(value)
    except ValueError:
        return False
    return True
