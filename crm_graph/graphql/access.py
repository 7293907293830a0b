"""Who may call which root field: declared once per query and mutation, checked before it runs.

Every root field of the schema is made with one of:

- ``query(obj, description=...)``: a read of ``obj`` (``obj:read``);
- ``mutation(obj, action, description=...)``: the shared mutation helper; the permission is
  checked, and the fail-closed ``crm_authorize`` hook asked, before the resolver (and so the
  service) runs;
- ``subscription(obj, description=...)``: a live field (``crm_graph/graphql/subscriptions.py``),
  checked once when the subscription starts; what it then delivers is checked per event;
- ``public(...)``: for the few fields an anonymous client may call (``login``).

Each field carries its rule in ``metadata["permission"]``; ``build_schema`` gives a root field
that declares none (a plugin's, say) an administrator-only rule, so a forgotten declaration
fails closed, and the permission-matrix test walks the schema to check every field's rule.

What the caller may see of records is not decided here: ``core/access.py`` limits every SQL
statement of the request to its scope.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info

from crm_graph.core.access import FORBIDDEN
from crm_graph.graphql.errors import ClientError

log = logging.getLogger("crm_graph.access")

UNAUTHENTICATED = "UNAUTHENTICATED"
PERMISSION = "permission"
SIGNED_IN = "signed-in"
SIGN_IN = (
    "Sign in with `login(email, password)` and send the token, or send an API key, as "
    "`Authorization: Bearer crm_...`."
)


@dataclass(frozen=True)
class Rule:
    obj: str | None  # None: anyone (``public``)
    action: str | None = None
    admin_only: bool = False  # the default of a field that declared nothing

    def __str__(self) -> str:
        if self.obj is None:
            return "public"
        if self.obj == SIGNED_IN:
            return "signed in"
        return "admin only" if self.admin_only else f"{self.obj}:{self.action}"


class Require(BasePermission):
    """Checks one ``Rule`` against the request's actor; raises with UNAUTHENTICATED or FORBIDDEN."""

    message = "Forbidden."

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        rule, ctx = self.rule, info.context
        if rule.obj is None:
            return True
        actor = ctx.actor
        if not actor.authenticated:
            failure = getattr(ctx, "auth_failure", None)
            await _denied(info, UNAUTHENTICATED, failure or "not signed in")
            raise ClientError(f"{failure + ' ' if failure else ''}{SIGN_IN}", UNAUTHENTICATED)
        if rule.obj == SIGNED_IN:
            return True
        allowed = actor.can("*", "*") if rule.admin_only else actor.can(rule.obj, rule.action or "read")
        if not allowed:
            needed = "an administrator" if rule.admin_only else f"the `{rule.obj}:{rule.action}` permission"
            await _denied(info, FORBIDDEN, f"needs {needed}")
            held = f"your role is {actor.role}" + (", narrowed by your key's scopes" if actor.scopes is not None else "")
            raise ClientError(f"`{info.field_name}` needs {needed}; {held}.", FORBIDDEN)
        if info._raw_info.parent_type.name == "Mutation":
            refusal = await authorize(ctx, rule, info.field_name, kwargs)
            if refusal is not None:
                await _denied(info, FORBIDDEN, refusal)
                raise ClientError(refusal, FORBIDDEN)
        return True


async def _denied(info: Info, code: str, reason: str) -> None:
    on_denied = getattr(info.context, "on_denied", None)
    if on_denied is not None:
        await on_denied(info, code, reason)


async def authorize(ctx: Any, rule: Rule, operation: str, arguments: dict[str, Any]) -> str | None:
    """Ask the plugins' ``crm_authorize``: the first refusal wins; a crash or hang refuses too."""
    from crm_graph.core.hooks import ask_authorize

    if ctx.plugins is None:
        return None
    return await ask_authorize(
        ctx.plugins, ctx.settings.plugin_hook_timeout, actor=ctx.actor, action=rule.action or "read",
        entity=rule.obj, data={"operation": operation, **arguments},
    )


def _field(maker: Callable[..., Any], rule: Rule, kwargs: dict[str, Any]) -> Any:
    metadata = {**(kwargs.pop("metadata", None) or {}), PERMISSION: rule}
    extensions = [*kwargs.pop("extensions", []), _permission(rule)]
    if rule.obj not in (None, SIGNED_IN):
        needs = f"Needs `{rule.obj}:{rule.action}`."
        kwargs["description"] = f"{kwargs['description']} {needs}" if kwargs.get("description") else needs
    return maker(metadata=metadata, extensions=extensions, **kwargs)


def _permission(rule: Rule) -> PermissionExtension:
    # No schema directive: the rule is documented in each field's description instead.
    return PermissionExtension([Require(rule)], fail_silently=False, use_directives=False)


def query(obj: str, action: str = "read", **kwargs: Any) -> Any:
    """A root query field that needs ``obj:action`` (``read`` unless said otherwise)."""
    return _field(strawberry.field, Rule(obj, action), kwargs)


def mutation(obj: str, action: str, **kwargs: Any) -> Any:
    """A root mutation that needs ``obj:action``, checked (with ``crm_authorize``) before it runs."""
    return _field(strawberry.mutation, Rule(obj, action), kwargs)


def subscription(obj: str, action: str = "read", **kwargs: Any) -> Any:
    """A root subscription field that needs ``obj:action``, checked when the subscription starts."""
    return _field(strawberry.subscription, Rule(obj, action), kwargs)


def _maker(kind: str) -> Any:
    return {"mutation": strawberry.mutation, "subscription": strawberry.subscription}.get(kind, strawberry.field)


def public(kind: str = "field", **kwargs: Any) -> Any:
    """A root field anyone may call, signed in or not (``login``)."""
    return _field(_maker(kind), Rule(None), kwargs)


def signed_in(kind: str = "field", **kwargs: Any) -> Any:
    """A root field any signed-in actor may call (``me``, ``logout``, ``node``): what it returns
    is limited by the actor's scope. ``kind`` is "field", "mutation" or "subscription"."""
    return _field(_maker(kind), Rule(SIGNED_IN), kwargs)


def rule_of(field: Any) -> Rule | None:
    return (getattr(field, "metadata", None) or {}).get(PERMISSION)


def fail_closed(part_type: type | None) -> list[str]:
    """Give every root field of ``part_type`` that declares no rule an administrator-only one.

    Returns the names of those fields (``build_schema`` logs them).
    """
    from strawberry.types.base import has_object_definition

    if part_type is None or not has_object_definition(part_type):
        return []
    changed = []
    for field in part_type.__strawberry_definition__.fields:
        if rule_of(field) is not None:
            continue
        rule = Rule("*", "*", admin_only=True)
        field.metadata = {**(field.metadata or {}), PERMISSION: rule}
        field.extensions = [*field.extensions, _permission(rule)]
        changed.append(field.python_name)
    return changed
