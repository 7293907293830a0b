"""Calls from the core into plugins, each implementation on its own and with a timeout.

A unit of work puts the plugin manager on ``session.info["plugins"]``; services call the functions
here so they never need to know whether plugins are loaded.

Isolation: the host never calls a hook through ``pm.hook.<name>(...)``, which would run every
implementation in one go and let the first exception stop the rest. It takes the
implementations one by one and calls each on its own through pluggy's own call loop, together
with the hook's wrappers (``@hookimpl(wrapper=True)``): so wrappers run around every call and
pluggy's tracing (``CRM_TRACE_PLUGINS``) sees every call. A coroutine an implementation returns is
awaited; a plain function runs in a worker thread; either way a hung implementation hits the
timeout instead of stalling the server. (A wrapper around an ``async`` implementation sees the
coroutine as the result: it runs when the call is made, not while it is awaited.)
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core.actor import Actor
from crm_graph.core.errors import DomainError, FieldError, ValidationFailed

log = logging.getLogger("crm_graph.plugins")

# Plain-function hook implementations run here, never on the default executor: one that hangs
# keeps its thread, and must not take threads the rest of the server needs.
_executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="crm-plugin")


class HookTimeout(Exception):
    """An implementation did not finish within the hook timeout."""


class HookGarbage(Exception):
    """An implementation returned something its hook does not accept."""


@dataclass(frozen=True)
class Outcome:
    """What one implementation did: its return value, or the exception it raised."""

    plugin: str
    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Implementation:
    """One plugin's implementation of one hook, callable on its own through pluggy's call loop."""

    pm: Any
    hook_name: str
    impl: Any  # pluggy.HookImpl
    wrappers: tuple[Any, ...]

    @property
    def plugin_name(self) -> str:
        return self.impl.plugin_name

    @property
    def argnames(self) -> tuple[str, ...]:
        return self.impl.argnames

    @property
    def function(self) -> Any:
        return self.impl.function

    def invoke(self, kwargs: Mapping[str, Any]) -> Any:
        """Call it (and the hook's wrappers around it) with ``kwargs``; its return value."""
        names = {*self.impl.argnames, *(n for w in self.wrappers for n in w.argnames)}
        arguments = {name: kwargs[name] for name in names if name in kwargs}
        # pluggy's loop takes implementations in registration order and calls from the end:
        # the wrappers (registered after plain implementations) come first, then this one.
        results = self.pm._hookexec(self.hook_name, [self.impl, *self.wrappers], arguments, False)
        return results[0] if results else None


def implementations(pm: Any, hook_name: str) -> list[Implementation]:
    """The implementations of ``hook_name`` in the order pluggy would call them (wrappers apart)."""
    caller = getattr(pm.hook, hook_name, None) if pm is not None else None
    if caller is None:
        return []
    impls = caller.get_hookimpls()
    wrappers = tuple(impl for impl in impls if impl.wrapper or impl.hookwrapper)
    plain = [impl for impl in impls if not (impl.wrapper or impl.hookwrapper)]
    # pluggy calls the last registered first, honouring tryfirst/trylast
    return [Implementation(pm, hook_name, impl, wrappers) for impl in reversed(plain)]


def trace_calls(pm: Any) -> None:
    """Log every hook call of ``pm`` (``CRM_TRACE_PLUGINS``) on ``crm_graph.plugins.trace``."""
    tracer = logging.getLogger("crm_graph.plugins.trace")
    pm.trace.root.setwriter(lambda text: tracer.debug(text.rstrip()))
    pm.enable_tracing()


def find_implementation(pm: Any, hook_name: str, plugin_name: str) -> Any | None:
    return next((impl for impl in implementations(pm, hook_name) if impl.plugin_name == plugin_name), None)


async def call_implementation(impl: Implementation, kwargs: Mapping[str, Any], timeout: float) -> Any:
    """Call one implementation with the arguments it declares; raise ``HookTimeout`` if it hangs."""
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            if inspect.iscoroutinefunction(impl.function):
                result = impl.invoke(kwargs)  # the coroutine, made by pluggy's loop
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(_executor, functools.partial(impl.invoke, kwargs))
            if inspect.isawaitable(result):
                result = await result
    except TimeoutError:
        if deadline.expired():
            raise HookTimeout(f"did not finish within {timeout:g} s") from None
        raise
    return result


async def call_each(
    pm: Any, hook_name: str, timeout: float, *, expected: tuple[type[Exception], ...] = (), **kwargs: Any
) -> list[Outcome]:
    """Call every implementation of ``hook_name`` on its own, one after the other.

    Failures are returned (and logged with the plugin's name, unless ``expected``), never
    raised: one plugin's bug does not stop the others or the caller.
    """
    outcomes = []
    for impl in implementations(pm, hook_name):
        try:
            value = await call_implementation(impl, kwargs, timeout)
        except expected as exc:
            outcomes.append(Outcome(impl.plugin_name, error=exc))
            continue
        except Exception as exc:  # noqa: BLE001 - isolation: any failure of a plugin is contained
            log.error("plugin %s: %s failed: %s", impl.plugin_name, hook_name, describe(exc), exc_info=_exc_info(exc))
            outcomes.append(Outcome(impl.plugin_name, error=exc))
            continue
        outcomes.append(Outcome(impl.plugin_name, value=value))
    return outcomes


async def notify(pm: Any, hook_name: str, timeout: float, **kwargs: Any) -> list[Outcome]:
    """A notification hook (startup, shutdown): implementations return nothing."""
    outcomes = await call_each(pm, hook_name, timeout, **kwargs)
    checked = []
    for outcome in outcomes:
        if outcome.ok and outcome.value is not None:
            error = HookGarbage(f"returned {type(outcome.value).__name__}; {hook_name} implementations return None")
            log.error("plugin %s: %s failed: %s", outcome.plugin, hook_name, error)
            outcome = Outcome(outcome.plugin, error=error)
        checked.append(outcome)
    return checked


def describe(exc: BaseException) -> str:
    """A one-line account of a failure, for logs and ``lastError``."""
    text = str(exc).strip()
    if isinstance(exc, (HookTimeout, HookGarbage)):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _exc_info(exc: BaseException) -> BaseException | None:
    return None if isinstance(exc, (HookTimeout, HookGarbage)) else exc


def timeout_of(pm: Any) -> float:
    settings = getattr(pm, "settings", None)
    return float(getattr(settings, "plugin_hook_timeout", 5.0))


async def validate_with_plugins(session: AsyncSession, *, entity: str, data: Mapping[str, Any], actor: Actor) -> None:
    """Let plugins veto a write (``crm_validate``); raises ``ValidationFailed`` with their errors.

    ``entity`` is the lower-case entity name ("customer", "order", "ticket", ...); ``data`` is the
    input as the service received it. Call it after the service's own validation passed and
    before anything is written.

    An implementation rejects the write by returning a ``FieldError`` (or a list of them) or by
    raising ``ValidationFailed``. One that crashes, hangs or returns anything else is logged with
    its plugin's name and ignored: a broken plugin must not stop every write of the CRM.
    """
    plugins = session.info.get("plugins")
    if plugins is None:
        return
    outcomes = await call_each(
        plugins,
        "crm_validate",
        timeout_of(plugins),
        expected=(DomainError,),
        entity=entity,
        data=data,
        actor=actor,
        session=session,
    )
    errors: list[FieldError] = []
    for outcome in outcomes:
        if isinstance(outcome.error, DomainError):
            errors.extend(outcome.error.errors)
            continue
        if not outcome.ok:
            continue  # logged by call_each; the write goes ahead
        found = _field_errors(outcome.value)
        if found is None:
            log.error(
                "plugin %s: crm_validate failed: returned %s; return None, a FieldError or a list of FieldErrors",
                outcome.plugin,
                type(outcome.value).__name__,
            )
            continue
        errors.extend(found)
    if errors:
        raise ValidationFailed(errors)


def _field_errors(value: Any) -> list[FieldError] | None:
    if value is None:
        return []
    if isinstance(value, FieldError):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping)):
        items = list(value)
        if all(isinstance(item, FieldError) for item in items):
            return items
    return None


# --- access --------------------------------------------------------------------------------------


async def ask_authorize(pm: Any, timeout: float, *, actor: Actor, action: str, entity: str | None, data: Mapping[str, Any]) -> str | None:
    """``crm_authorize``: None when every implementation allows, else the first refusal's reason.

    Fail-closed, unlike ``crm_validate``: an implementation that crashes, hangs or returns
    something other than None/True/False/a string refuses the request.
    """
    for impl in implementations(pm, "crm_authorize"):
        try:
            value = await call_implementation(impl, {"actor": actor, "action": action, "entity": entity, "data": data}, timeout)
        except Exception as exc:  # noqa: BLE001 - fail closed, and say which plugin
            log.error("plugin %s: crm_authorize failed, refusing: %s", impl.plugin_name, describe(exc), exc_info=_exc_info(exc))
            return "The request was refused because an access check failed."
        if value is None or value is True:
            continue
        if value is False:
            return f"Refused by plugin {impl.plugin_name}."
        if isinstance(value, str) and value:
            return value
        log.error("plugin %s: crm_authorize returned %s, refusing", impl.plugin_name, type(value).__name__)
        return "The request was refused because an access check failed."
    return None


def scope_narrowing(pm: Any) -> Any:
    """A ``narrow(actor, entity) -> [conditions]`` function from ``crm_scope_sql``, or None when no
    plugin implements it. Synchronous, like the hook; an implementation that raises hides
    everything of that entity (fail closed)."""
    impls = implementations(pm, "crm_scope_sql") if pm is not None else []
    if not impls:
        return None
    import sqlalchemy as sa

    def narrow(actor: Actor, entity: str) -> list[Any]:
        out = []
        for impl in impls:
            try:
                value = impl.invoke({"actor": actor, "entity": entity})
            except Exception as exc:  # noqa: BLE001 - fail closed
                log.error("plugin %s: crm_scope_sql failed, hiding %s: %s", impl.plugin_name, entity, describe(exc))
                value = sa.false()
            if value is not None:
                out.append(value)
        return out

    return narrow


async def actor_from_request(pm: Any, request: Any, settings: Any) -> Any:
    """``crm_actor_from_request``, first answer wins. Returns the Actor, or None (anonymous).

    An implementation may return an awaitable. Exceptions propagate: the view turns a
    ``InvalidCredentials``-like refusal into UNAUTHENTICATED.
    """
    for impl in implementations(pm, "crm_actor_from_request"):
        value = impl.invoke({"request": request, "settings": settings})
        if inspect.isawaitable(value):
            value = await value
        if value is not None:
            return value
    return None
