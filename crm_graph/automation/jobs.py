"""The automation jobs of `serve` and `crm-graph worker`: due steps every
CRM_AUTOMATION_STEP_INTERVAL seconds, trigger scans every CRM_AUTOMATION_SCAN_INTERVAL."""

from __future__ import annotations

from typing import Any

from crm_graph.automation import engine
from crm_graph.core.jobs import Job


async def run_steps(db: Any, runtime: engine.Runtime) -> str:
    r = await engine.drain(db, runtime, max_rounds=20)
    if not r.claimed:
        return ""
    return f"{r.claimed} enrolments run, {r.steps} steps, {r.finished} finished, {r.failed} failed"


async def scan_triggers(db: Any, runtime: engine.Runtime) -> str:
    from crm_graph.automation.triggers import scan

    return f"{await scan(db, runtime)} enrolled by date, inactivity and schedule triggers"


def jobs_of(app: Any) -> list[Job]:
    runtime = engine.runtime_of(app.state.settings, app.state.plugins)
    db, out = app.state.db, []
    if runtime.config.step_interval:
        out.append(Job("automation-steps", runtime.config.step_interval, lambda: run_steps(db, runtime)))
    if runtime.config.scan_interval:
        out.append(Job("automation-triggers", runtime.config.scan_interval, lambda: scan_triggers(db, runtime)))
    return out
