"""The contract between automation flows and their actions (``crm_automation_actions``).

An action is what an ACTION step of a flow does for one enrolled customer: send a mail, create a
task, award points, call a webhook. The engine (crm_graph/automation/engine.py) owns when it runs,
retries, backoff and the dead letter; an action owns what it does. The rules an action follows:

- ``name`` is its key in a flow's steps (``send_email``); ``description`` says what it does.
- ``validate(session, params)`` checks a step's parameters when a flow is saved and returns
  ``FieldError``s (paths inside ``params``), so a stored flow never carries parameters its action
  cannot run.
- ``run(ctx)`` does the work once. A **database action** (``external = False``) writes through
  ``ctx.session``, the transaction that also records the step as done: either both happen or
  neither, so a retry never does it twice. An **outside action** (``external = True``: mail, an
  HTTP call) gets no session; the engine records that it started before ``run`` and that it
  finished after, and never runs it again once started (at most once; a worker that died in the
  middle leaves that one step marked "outcome unknown"). Either kind gets
  ``ctx.idempotency_key`` (``automation:<enrolment>:<step>``) to hand on to systems that dedupe
  (an ``Idempotency-Key`` header, a ledger's key).
- ``run`` returns a JSON-able mapping (or None) kept as the step's result; later steps' templates
  read it as ``results.<step key>`` (the coupon a welcome mail names).
- A failure raises ``ActionError``: ``retry=False`` when trying again cannot help (no e-mail
  address, the customer opted out); the enrolment then skips the step or fails, as ``skip`` says.
- ``message = True`` for actions that send the customer something: they count toward the flow's
  per-customer message cap and wait out its quiet hours.
- ``describe(params, customer)`` says in a sentence what the step would do, for ``simulateFlow``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from crm_graph.core.errors import FieldError


class ActionError(Exception):
    def __init__(self, message: str, *, retry: bool = True, skip: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retry = retry
        self.skip = skip  # not an error of the flow: the step is SKIPPED and the enrolment goes on


@dataclass
class ActionContext:
    params: Mapping[str, Any]
    customer_id: int
    # The customer as events show it (id, displayName, firstName, emails, ownerId, teamId, ...).
    customer: Mapping[str, Any]
    flow_id: int
    enrolment_id: int
    step_key: str
    idempotency_key: str
    now: datetime
    db: Any  # the Database
    settings: Any
    plugins: Any
    session: Any = None  # the step's transaction, for database actions; None for outside ones
    trigger: Mapping[str, Any] = field(default_factory=dict)  # the triggering event: id, type, data
    results: Mapping[str, Any] = field(default_factory=dict)  # earlier steps' results by step key


@runtime_checkable
class AutomationAction(Protocol):
    name: str
    description: str
    external: bool
    message: bool

    async def validate(self, session: Any, params: Mapping[str, Any]) -> Sequence[FieldError]: ...

    async def run(self, ctx: ActionContext) -> Mapping[str, Any] | None: ...

    def describe(self, params: Mapping[str, Any], customer: Mapping[str, Any]) -> str: ...
