"""Automation flows, their published versions, enrolments and the step log.

A flow's working definition (trigger, steps, enrolment rule, goal) is edited while it is a
DRAFT or PAUSED; activating it publishes the definition as an immutable ``AutomationFlowVersion``
when it differs from the newest one. Enrolments point at the version they started on and keep
running on it whatever the flow becomes later.

An enrolment is one customer's way through one flow, started by one trigger. ``trigger_key``
makes a trigger enrol a customer at most once (``once`` for flows that enrol a customer once
ever, the event id, the local date of a date trigger...): a replayed event finds the row there.

``AutomationActionRun`` is the idempotency record of an action step: one row per (enrolment,
step), written in the transaction that carries the action out (database actions) or before the
action leaves the process (mail, webhooks), so no retry does it twice.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_graph.core.access import guard_child, guard_object
from crm_graph.core.clock import utcnow
from crm_graph.db.base import Base, IdMixin, TimestampMixin, VersionMixin
from crm_graph.db.types import IdType, JSONType, UTCDateTime, enum_column


class FlowStatus(enum.Enum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    ARCHIVED = "ARCHIVED"


class EnrolmentStatus(enum.Enum):
    ACTIVE = "ACTIVE"  # due to run its current step at next_run_at
    WAITING = "WAITING"  # waiting for an event until next_run_at
    COMPLETED = "COMPLETED"  # reached an exit or the end of the flow
    CONVERTED = "CONVERTED"  # reached the flow's goal
    UNENROLLED = "UNENROLLED"  # left early: a condition stopped holding, suppressed, flow archived
    FAILED = "FAILED"  # a step failed every attempt (the dead letter; redriveAutomationEnrolment)


OPEN_STATUSES = (EnrolmentStatus.ACTIVE, EnrolmentStatus.WAITING)


class StepOutcome(enum.Enum):
    ENTERED = "ENTERED"
    WAITING = "WAITING"
    COMPLETED = "COMPLETED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    CONVERTED = "CONVERTED"
    EXITED = "EXITED"


class AutomationFlow(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "automation_flows"

    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[FlowStatus] = mapped_column(enum_column(FlowStatus), index=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)  # the working copy
    template_key: Mapped[str | None] = mapped_column(sa.String(64))
    current_version_id: Mapped[int | None] = mapped_column(IdType)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # SCHEDULE triggers: the last occurrence enrolled, so each occurrence enrols once.
    schedule_cursor: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AutomationFlowVersion(IdMixin, Base):
    __tablename__ = "automation_flow_versions"

    flow_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("automation_flows.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(sa.Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.UniqueConstraint("flow_id", "number"),)


class AutomationEnrolment(IdMixin, Base):
    __tablename__ = "automation_enrolments"

    flow_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("automation_flows.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("automation_flow_versions.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    status: Mapped[EnrolmentStatus] = mapped_column(enum_column(EnrolmentStatus))
    trigger_key: Mapped[str] = mapped_column(sa.String(200))
    step_key: Mapped[str | None] = mapped_column(sa.String(64))
    # The WAIT step whose wait has been started (so its second visit passes on).
    wait_step: Mapped[str | None] = mapped_column(sa.String(64))
    # The event type pattern a WAIT_FOR_EVENT step waits for (status WAITING).
    waiting_for: Mapped[str | None] = mapped_column(sa.String(100))
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    # The trigger (event id, type, data) and action results (a coupon's code) later steps use.
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    claim_token: Mapped[str | None] = mapped_column(sa.String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("flow_id", "customer_id", "trigger_key"),
        sa.Index("ix_automation_enrolments_due", "status", "next_run_at"),
        sa.Index("ix_automation_enrolments_flow_status", "flow_id", "status"),
    )


class AutomationStepRun(IdMixin, Base):
    """The step log: what each enrolment did at each step, and why."""

    __tablename__ = "automation_step_runs"

    enrolment_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("automation_enrolments.id", ondelete="CASCADE"), index=True)
    flow_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("automation_flows.id", ondelete="CASCADE"))
    step_key: Mapped[str] = mapped_column(sa.String(64))
    outcome: Mapped[StepOutcome] = mapped_column(enum_column(StepOutcome))
    detail: Mapped[str | None] = mapped_column(sa.String(1000))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.Index("ix_automation_step_runs_flow_step", "flow_id", "step_key", "outcome"),)


class ActionRunStatus(enum.Enum):
    STARTED = "STARTED"  # an outside action (mail, webhook) is under way, or its worker died in it
    DONE = "DONE"


class AutomationActionRun(IdMixin, Base):
    __tablename__ = "automation_action_runs"

    enrolment_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("automation_enrolments.id", ondelete="CASCADE"))
    step_key: Mapped[str] = mapped_column(sa.String(64))
    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(sa.String(64))
    message: Mapped[bool] = mapped_column(sa.Boolean, default=False)  # counts toward the message cap
    status: Mapped[ActionRunStatus] = mapped_column(enum_column(ActionRunStatus))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("enrolment_id", "step_key"),
        sa.Index("ix_automation_action_runs_customer_message", "customer_id", "message", "started_at"),
    )


guard_object(AutomationFlow, "automation")
guard_child(AutomationFlowVersion, "automation", AutomationFlow, "flow_id")
for _model in (AutomationEnrolment, AutomationStepRun):
    guard_child(_model, "automation", AutomationFlow, "flow_id")
guard_object(AutomationActionRun, "automation")
