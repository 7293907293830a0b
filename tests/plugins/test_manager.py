"""The plugin manager: discovery through the entry point, blocking, and loud start-up errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from crm_graph import hookimpl
from crm_graph.plugins import PluginError, make_plugin_manager, plugin_info
from crm_graph.settings import PROJECT_ROOT, Settings


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real `crm-graph` command, in a process of its own, as an administrator runs it."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "crm_graph.cli", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=environment,
        timeout=120,
    )


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.settings: list[Settings] = []

    @hookimpl
    def crm_configure(self, settings: Settings) -> None:
        self.settings.append(settings)


def test_hook_crm_configure_reaches_every_plugin_once_even_when_registered_late(settings):
    early = Recorder()
    pm = make_plugin_manager(settings, plugins=[early], entry_points=False)
    assert early.settings == [settings]

    late = Recorder()
    pm.register(late, name="late")  # historic: a plugin registered afterwards still gets the call
    assert late.settings == [settings]
    assert early.settings == [settings]


def test_installed_plugin_is_found_through_its_entry_point(settings):
    pm = make_plugin_manager(settings)
    info = {i.name: i for i in plugin_info(pm)}
    audit = info["crm_audit"]
    assert audit.source == "entry point"
    assert audit.distribution == "crm-graph-audit"
    assert audit.version == "0.1.0"
    assert {"crm_on_event", "crm_register_schema", "crm_register_migrations", "crm_register_commands"} <= set(audit.hooks)
    # Built-in plugins sit on the same manager.
    assert info["crm_graph.webhooks.plugin"].source == "core"


def test_a_blocked_plugin_is_not_loaded(settings):
    pm = make_plugin_manager(Settings(database_url=settings.database_url, plugins_block=("crm_audit",)))
    assert "crm_audit" not in {i.name for i in plugin_info(pm)}
    assert "crm_graph.webhooks.plugin" in {i.name for i in plugin_info(pm)}


def test_a_misspelt_hook_stops_start_up_naming_the_plugin(settings):
    class Typo:
        name = "typo"

        @hookimpl
        def crm_on_evnt(self, event):  # noqa: ANN001 - the misspelling is the point
            pass

    with pytest.raises(PluginError) as raised:
        make_plugin_manager(settings, plugins=[Typo()], entry_points=False)
    message = str(raised.value)
    assert "'typo'" in message and "crm_on_evnt" in message
    assert "CRM_PLUGINS_BLOCK=typo" in message


def test_an_argument_the_hook_does_not_offer_stops_start_up(settings):
    class Greedy:
        name = "greedy"

        @hookimpl
        def crm_on_event(self, event, request):  # noqa: ANN001 - crm_on_event has no `request`
            pass

    with pytest.raises(PluginError, match="greedy"):
        make_plugin_manager(settings, plugins=[Greedy()], entry_points=False)


def test_crm_graph_plugins_lists_name_version_and_hooks():
    listed = run_cli("plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    by_name = {p["name"]: p for p in json.loads(listed.stdout)}
    assert by_name["crm_audit"]["version"] == "0.1.0"
    assert "crm_on_event" in by_name["crm_audit"]["hooks"]
    assert by_name["crm_graph.webhooks.plugin"]["hooks"] == ["crm_register_commands", "crm_register_subscribers"]

    table = run_cli("plugins", CRM_PLUGINS_BLOCK="crm_audit")
    assert table.returncode == 0, table.stderr
    assert "crm_audit" not in table.stdout.split("blocked:")[0]
    assert "blocked: crm_audit" in table.stdout
