"""Automation settings, ``CRM_AUTOMATION_*`` from the environment (docs/automation.md). Mail
goes through the shared ``CRM_SMTP_*`` server as ``CRM_MAIL_FROM`` (crm_graph/mail/config.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from crm_graph.settings import env_values


@dataclass(frozen=True)
class AutomationSettings:
    # The mail transport of the send_email action (crm_mail_transports); "smtp" is built in.
    transport: str = "smtp"
    # Seconds between two runs of due steps in `serve` and `crm-graph worker` (0: off; `crm-graph
    # automation run` runs them once).
    step_interval: float = 2.0
    # Seconds between two scans of date, inactivity and schedule triggers (0: off).
    scan_interval: float = 300.0
    # Enrolments claimed per round, and run side by side within a round (on PostgreSQL; SQLite,
    # with its single writer, runs them one after another).
    batch_size: int = 200
    concurrency: int = 8
    # A claimed enrolment whose worker died is taken over after this many seconds.
    lease: float = 120.0
    # Attempts of a failing step before its enrolment is FAILED (the dead letter), and the
    # backoff between them: from retry_base seconds doubling up to retry_cap.
    max_attempts: int = 5
    retry_base: float = 30.0
    retry_cap: float = 3600.0
    # The time zone of customers without one of their own, for date triggers, waits until a
    # time of day and quiet hours.
    default_time_zone: str = "UTC"
    # Steps one enrolment runs in one claim before it is put back (a long chain of conditions).
    steps_per_claim: int = 50


def automation_settings(environ: Mapping[str, str] | None = None) -> AutomationSettings:
    env = os.environ if environ is None else environ
    out = AutomationSettings(**env_values(AutomationSettings, "CRM_AUTOMATION_", env))  # type: ignore[arg-type]
    if out.step_interval < 0 or out.scan_interval < 0 or out.lease <= 0 or out.retry_base <= 0:
        raise ValueError("CRM_AUTOMATION_STEP_INTERVAL and SCAN_INTERVAL must be >= 0, LEASE and RETRY_BASE > 0")
    if min(out.batch_size, out.concurrency, out.max_attempts, out.steps_per_claim) < 1:
        raise ValueError("CRM_AUTOMATION_BATCH_SIZE, CONCURRENCY, MAX_ATTEMPTS and STEPS_PER_CLAIM must be >= 1")
    from crm_graph.automation.definition import valid_zone

    if not valid_zone(out.default_time_zone):
        raise ValueError(f"CRM_AUTOMATION_DEFAULT_TIME_ZONE: {out.default_time_zone!r} is not an IANA time zone")
    return out
