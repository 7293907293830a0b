"""``crm_automation_actions``: a partner's action is named by a flow's step like a built-in one,
checked when the flow is saved (its problems with the step's path), run once per enrolment and
step in the step's transaction, its result kept for later steps; two actions of one name are a
PluginError naming both plugins."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm_graph import hookimpl
from crm_graph.automation import engine
from crm_graph.automation.models import AutomationActionRun
from crm_graph.core.automation import ActionError
from crm_graph.core.errors import FieldError
from crm_graph.plugins import PluginError, make_plugin_manager
from tests.plugins.support import clock, create_customer, server_factory, settings  # noqa: F401 - fixtures

CREATE_FLOW = """
mutation($input: CreateAutomationFlowInput!) {
  createAutomationFlow(input: $input) { automationFlow { id status } errors { field code message } }
}
"""
ACTIVATE = "mutation($id: ID!) { activateAutomationFlow(id: $id) { automationFlow { status } errors { field code } } }"


class Stamp:
    """A database action: it writes a loyalty stamp card row of the partner's, here a list."""

    name = "stamp_card"
    description = "Give the customer `stamps` stamps on the partner's card."
    external = False
    message = False

    def __init__(self) -> None:
        self.runs: list[tuple[int, int, str]] = []

    async def validate(self, session, params):  # noqa: ANN001, ANN201
        stamps = params.get("stamps")
        return [] if isinstance(stamps, int) and stamps > 0 else [FieldError("stamps", "INVALID_VALUE", "Stamps, 1 or more.")]

    async def run(self, ctx):  # noqa: ANN001, ANN201
        if ctx.session is None:
            raise ActionError("a database action gets the step's session", retry=False)
        self.runs.append((ctx.customer_id, ctx.params["stamps"], ctx.idempotency_key))
        return {"stamps": ctx.params["stamps"]}

    def describe(self, params, customer):  # noqa: ANN001, ANN201
        return f"would give {params.get('stamps')} stamps"


class StampPlugin:
    name = "stamps"

    def __init__(self) -> None:
        self.action = Stamp()

    @hookimpl
    def crm_automation_actions(self):  # noqa: ANN201
        return [self.action]


def flow(stamps) -> dict:  # noqa: ANN001
    return {"name": "Stamp on sign-up", "trigger": {"kind": "EVENT", "eventType": "customer.created"},
            "steps": [{"key": "stamp", "type": "ACTION", "action": "stamp_card", "params": {"stamps": stamps}}]}


async def test_hook_crm_automation_actions_a_partners_action_runs_once_in_a_flow(server_factory, db, clock):
    plugin = StampPlugin()
    server = await server_factory(plugin)
    refused = await server.client.execute(CREATE_FLOW, {"input": flow(0)})
    assert refused["createAutomationFlow"]["errors"] == [
        {"field": "steps.0.params.stamps", "code": "INVALID_VALUE", "message": "Stamps, 1 or more."}]
    created = await server.client.mutate(CREATE_FLOW, {"input": flow(3)})
    await server.client.mutate(ACTIVATE, {"id": created["automationFlow"]["id"]})

    customer = await create_customer(server.client, firstName="Ana", lastName="Lima")
    await server.drain()  # customer.created reaches the flows: Ana is enrolled
    runtime = engine.runtime_of(server.app.state.settings, server.plugins)
    assert "stamp_card" in runtime.actions and "send_email" in runtime.actions
    await engine.drain(db, runtime)
    await engine.drain(db, runtime)  # nothing left to do: not run again

    (run,) = plugin.action.runs
    assert run[1] == 3 and run[2].startswith("automation:") and run[2].endswith(":stamp")
    async with db.reader() as session:
        (row,) = (await session.scalars(sa.select(AutomationActionRun))).all()
    assert (row.action, row.result) == ("stamp_card", {"stamps": 3})
    assert customer["id"]


class Clash:
    name = "clash"

    @hookimpl
    def crm_automation_actions(self):  # noqa: ANN201
        action = Stamp()
        action.name = "send_email"
        return action


def test_hook_crm_automation_actions_two_of_one_name_are_refused(settings):
    with pytest.raises(PluginError, match="automation action 'send_email' clashes"):
        engine.actions_of(make_plugin_manager(settings, plugins=[Clash()], entry_points=False))
