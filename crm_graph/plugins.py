"""The plugin manager: hook specs, the built-in plugins, and plugins installed through the
``crm_graph`` entry-point group, minus the ones ``CRM_PLUGINS_BLOCK`` names.

``make_plugin_manager(settings)`` is the one factory; the server, the worker, the CLI and the
tests all use it. Errors a plugin causes while loading or registering (an import error, a
misspelt hook, a clashing schema field) are ``PluginError``s naming the plugin, raised at
start-up rather than on the first request.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from crm_graph import __version__, hookspecs
from crm_graph.core.hooks import implementations, trace_calls
from crm_graph.hookspecs import PluginMigrations
from crm_graph.settings import Settings

log = logging.getLogger("crm_graph.plugins")

ENTRY_POINT_GROUP = "crm_graph"

# Built-in plugins: modules of this package that implement hooks, registered on the same
# manager as third-party plugins (and blockable the same way).
CORE_PLUGINS: tuple[str, ...] = (
    "crm_graph.auth.plugin",
    "crm_graph.activities.plugin",
    "crm_graph.sales.plugin",
    "crm_graph.support.plugin",
    "crm_graph.segments.plugin",
    "crm_graph.webhooks.plugin",
    "crm_graph.insights.plugin",
    "crm_graph.mail.plugin",
    "crm_graph.automation.plugin",
    "crm_graph.loyalty.plugin",
    "crm_graph.dedupe.plugin",
    "crm_graph.exports.plugin",
)


class PluginError(Exception):
    """A plugin cannot be loaded or registered. The message names the plugin and how to block it."""

    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        super().__init__(
            f"plugin {plugin!r}: {message} (to start without it, set CRM_PLUGINS_BLOCK={plugin})"
        )


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus the settings it was built with and where each plugin came from."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(ENTRY_POINT_GROUP)
        self.settings = settings
        self.sources: dict[str, str] = {}  # plugin name -> "core", "entry point" or "registered"
        self.versions: dict[str, str | None] = {}
        self.distributions: dict[str, str] = {}


def make_plugin_manager(
    settings: Settings,
    *,
    plugins: Iterable[Any] = (),
    entry_points: bool = True,
) -> PluginManager:
    """Build the manager: specs, core plugins, installed plugins, then ``plugins`` (objects or
    modules, e.g. a test's plugin class) — all minus ``settings.plugins_block``.

    Runs ``check_pending()`` so a hook implementation without a spec (a misspelt name) fails
    here, and calls the historic ``crm_configure(settings)``.
    """
    pm = PluginManager(settings)
    pm.add_hookspecs(hookspecs)
    for name in settings.plugins_block:
        pm.set_blocked(name)
    for module_name in CORE_PLUGINS:
        if pm.is_blocked(module_name):
            continue
        _register(pm, importlib.import_module(module_name), module_name, "core", __version__)
    if entry_points:
        _load_entry_points(pm)
    for plugin in plugins:
        name = getattr(plugin, "name", None) or getattr(plugin, "__name__", None) or type(plugin).__name__
        if pm.is_blocked(name):
            continue
        _register(pm, plugin, name, "registered", getattr(plugin, "version", None))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(pm.get_name(exc.plugin) or repr(exc.plugin), _pending_message(str(exc))) from None
    if settings.trace_plugins:
        trace_calls(pm)
    pm.hook.crm_configure.call_historic(kwargs={"settings": settings})
    return pm


def _pending_message(text: str) -> str:
    # pluggy says "unknown hook 'crm_on_evnt' in plugin <...>"; keep the useful part.
    hook = text.split("'")[1] if "'" in text else text
    return f"implements {hook!r}, which is not a crm-graph hook (misspelt? see docs/plugin_hooks.md)"


def _register(pm: PluginManager, plugin: Any, name: str, source: str, version: str | None) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(name, str(exc)) from None
    except ValueError as exc:  # registered twice, or the name is taken
        raise PluginError(name, str(exc)) from None
    pm.sources[name] = source
    pm.versions[name] = version


def _load_entry_points(pm: PluginManager) -> None:
    seen: set[str] = set()
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or ep.name in seen:
                continue
            seen.add(ep.name)  # a distribution found twice on sys.path loads once
            if pm.is_blocked(ep.name):
                log.info("plugin %s is blocked by CRM_PLUGINS_BLOCK", ep.name)
                continue
            if pm.has_plugin(ep.name):
                raise PluginError(ep.name, "the name is taken by another plugin")
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - any import failure is reported with the plugin's name
                raise PluginError(ep.name, f"cannot be imported ({type(exc).__name__}: {exc})") from exc
            _register(pm, plugin, ep.name, "entry point", dist.version)
            pm.distributions[ep.name] = dist.metadata["Name"]


# --- what `crm-graph plugins` shows ---------------------------------------------------------------


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str | None
    source: str
    distribution: str | None
    hooks: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "distribution": self.distribution,
            "hooks": self.hooks,
        }


def plugin_info(pm: PluginManager) -> list[PluginInfo]:
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:  # a blocked name
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        out.append(
            PluginInfo(
                name=name,
                version=pm.versions.get(name),
                source=pm.sources.get(name, "registered"),
                distribution=pm.distributions.get(name),
                hooks=hooks,
            )
        )
    return out


# --- registration hooks: called per implementation, so an error names its plugin -------------------


def collect(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call a synchronous registration hook implementation by implementation.

    Returns ``[(plugin name, result)]`` for results that are not None; an exception becomes a
    ``PluginError`` naming the plugin.
    """
    results = []
    for impl in implementations(pm, hook_name):
        try:
            value = impl.invoke(kwargs)
        except PluginError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported with the plugin's name
            raise PluginError(impl.plugin_name, f"{hook_name} failed: {type(exc).__name__}: {exc}") from exc
        if value is not None:
            results.append((impl.plugin_name, value))
    return results


def schema_parts(pm: pluggy.PluginManager) -> dict[str, list[Any]]:
    """Each plugin's ``SchemaPart``s, by plugin name."""
    from crm_graph.domains import SchemaPart

    parts: dict[str, list[Any]] = {}
    for name, value in collect(pm, "crm_register_schema"):
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if not isinstance(item, SchemaPart):
                raise PluginError(name, f"crm_register_schema returned {type(item).__name__}, not a SchemaPart")
        parts.setdefault(name, []).extend(items)
    return parts


def routes(pm: pluggy.PluginManager, taken: Iterable[str] = ()) -> list[Any]:
    """The plugins' Starlette routes; a path the core (or an earlier plugin) serves is an error."""
    from starlette.routing import BaseRoute

    used = {path: "the core" for path in taken}
    out: list[Any] = []
    for name, value in collect(pm, "crm_register_routes"):
        for route in value:
            if not isinstance(route, BaseRoute):
                raise PluginError(name, f"crm_register_routes returned {type(route).__name__}, not a Starlette route")
            path = getattr(route, "path", None)
            if path is not None:
                if path in used:
                    raise PluginError(name, f"route {path} clashes with {used[path]}")
                used[path] = f"plugin {name!r}"
            out.append(route)
    return out


def register_commands(pm: pluggy.PluginManager, cli: Any) -> None:
    collect(pm, "crm_register_commands", cli=cli)


def migrations(pm: pluggy.PluginManager) -> list[tuple[str, PluginMigrations]]:
    """Each plugin's migrations, with the version directory checked to exist."""
    out = []
    for name, value in collect(pm, "crm_register_migrations"):
        found = value if isinstance(value, PluginMigrations) else PluginMigrations(versions=value)
        if not isinstance(found.versions, (str, Path)) or not Path(found.versions).is_dir():
            raise PluginError(name, f"crm_register_migrations: {found.versions!r} is not a directory")
        out.append((name, found))
    return out


def collect_by_key(pm: pluggy.PluginManager, hook_name: str, *, protocol: type, key: Callable[[Any], str],
                   what: Callable[[str], str], **kwargs: Any) -> dict[str, Any]:
    """The providers an adapter hook returns (one, or a list per plugin), checked against
    ``protocol`` and keyed by ``key(provider)``, in registration order. A provider that does not
    follow the protocol, or a key two plugins claim, stops start-up naming the plugins;
    ``what(key)`` names the provider in that message ("accounting backend 'fava'")."""
    out: dict[str, Any] = {}
    owners: dict[str, str] = {}
    for plugin, value in reversed(collect(pm, hook_name, **kwargs)):
        for item in value if isinstance(value, (list, tuple)) else [value]:
            try:
                name = key(item) if isinstance(item, protocol) else None
            except Exception:  # noqa: BLE001 - a provider without its key is refused below
                name = None
            if not isinstance(name, str) or not name:
                raise PluginError(plugin, f"{hook_name} returned {type(item).__name__}, not a {protocol.__name__}")
            if name in out:
                raise PluginError(plugin, f"{what(name)} clashes with plugin {owners[name]!r}")
            out[name], owners[name] = item, plugin
    return out


# --- Alembic with the plugins' version locations --------------------------------------------------


def alembic_config(settings: Settings, pm: pluggy.PluginManager | None = None) -> Any:
    """The project's Alembic config, with every plugin's version location added.

    ``config.attributes["plugin_metadata"]`` lists the plugins' MetaData for an env.py that
    compares models (``alembic check``, autogenerate).
    """
    from crm_graph.db import migrate

    pm = pm if pm is not None else make_plugin_manager(settings)
    config = migrate.alembic_config(settings)
    found = migrations(pm)
    if found:
        # The core's config sets path_separator = os, so locations are joined by os.pathsep.
        import os

        locations = [migrate.VERSIONS_DIR, *(Path(m.versions).resolve() for _, m in found)]
        config.set_main_option("version_locations", os.pathsep.join(migrate.option_path(p) for p in locations))
        config.attributes["plugin_metadata"] = [m.metadata for _, m in found if m.metadata is not None]
    return config


def upgrade(settings: Settings, revision: str = "heads", pm: pluggy.PluginManager | None = None) -> None:
    """Upgrade the database: the core's revisions and every plugin's."""
    from alembic import command

    command.upgrade(alembic_config(settings, pm), revision)


def downgrade(settings: Settings, revision: str = "-1", pm: pluggy.PluginManager | None = None) -> None:
    from alembic import command

    command.downgrade(alembic_config(settings, pm), revision)
