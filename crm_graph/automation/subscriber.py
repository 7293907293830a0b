"""Events into flows (subscriber kind ``automation``): each outbox event some ACTIVE flow or
running enrolment may care about (a trigger, a goal, a wait for an event, a segment's
membership) gets one delivery, applied by ``engine.handle_event``. Delivery is at least once; an
event applied twice enrols nobody twice (the enrolment's trigger key is the event's id)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from crm_graph.automation import engine
from crm_graph.automation.models import OPEN_STATUSES, AutomationEnrolment
from crm_graph.core.events import matches
from crm_graph.core.subscribers import Claim, EventRow, Result, Target, deliver_each


class AutomationEvents:
    kind = "automation"

    def __init__(self, settings: Any, plugins: Any) -> None:
        self.settings = settings
        self.plugins = plugins

    @property
    def runtime(self) -> engine.Runtime:
        return engine.runtime_of(self.settings, self.plugins)

    async def _patterns(self, session: Any) -> set[str]:
        """The event type patterns some flow waits for: the triggers of ACTIVE flows, and the
        goals and waits of every version that ACTIVE flows or open enrolments run. Each version
        is looked at once per call, however many flows and enrolments share it."""
        runtime = self.runtime
        patterns: set[str] = set()
        versions: dict[int, engine.Version] = {}
        for _, version in await engine.active_flows(session, runtime):
            versions[version.id] = version
            t = version.trigger
            if t.get("kind") == "EVENT":
                patterns.add(t["eventType"])
            elif t.get("kind") == "SEGMENT_ENTERED":
                patterns.add("segment.member_added")
            elif t.get("kind") == "SEGMENT_LEFT":
                patterns.add("segment.member_removed")
        for version_id in await session.scalars(sa.select(AutomationEnrolment.version_id).distinct().where(
                AutomationEnrolment.status.in_(OPEN_STATUSES))):
            if version_id not in versions:
                versions[version_id] = await runtime.version(session, version_id)
        for version in versions.values():
            patterns.update(s["eventType"] for s in version.steps.values() if s["type"] == "WAIT_FOR_EVENT")
            if version.goal:
                patterns.add(version.goal["eventType"])
        return patterns

    async def fan_out(self, db: Any, session: Any, events: Sequence[EventRow]) -> list[Target]:
        wanted = [e for e in events if not e.type.startswith("automation")]
        if not wanted:
            return []
        patterns = await self._patterns(session)
        return [Target(e.pk, "flows") for e in wanted if any(matches(p, e.type) for p in patterns)]

    def servable(self) -> sa.ColumnElement[bool] | None:
        return None

    async def deliver(self, db: Any, claims: Sequence[Claim], deadline: float) -> list[Result]:
        runtime = self.runtime

        async def one(claim: Claim) -> Result:
            await engine.handle_event(db, runtime, claim.event)
            return Result(claim, "delivered")

        return await deliver_each(claims, deadline, one)

    async def aclose(self) -> None:
        return None
