"""Loyalty program settings, ``CRM_LOYALTY_*`` from the environment (docs/loyalty.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from crm_graph.settings import env_values


@dataclass(frozen=True)
class LoyaltySettings:
    # Points earned on a payment stay pending this many days (the return window), then count.
    return_window_days: int = 30
    # Points expire this many days after they become available (0: never), unless the rule that
    # awarded them says otherwise.
    expiry_days: int = 365
    # `loyalty.points_expiring` is raised this many days before points expire.
    expiry_notice_days: int = 14
    # Tiers are earned by the qualifying points of this many days, and reviewed (downgraded)
    # this many days after they were reached.
    tier_window_days: int = 365
    # Seconds between two runs of the expiry, notice and tier review job (0: off).
    job_interval: float = 3600.0


def loyalty_settings(environ: Mapping[str, str] | None = None) -> LoyaltySettings:
    env = os.environ if environ is None else environ
    out = LoyaltySettings(**env_values(LoyaltySettings, "CRM_LOYALTY_", env))  # type: ignore[arg-type]
    if min(out.return_window_days, out.expiry_days, out.expiry_notice_days, out.job_interval) < 0 or out.tier_window_days < 1:
        raise ValueError("CRM_LOYALTY_* day counts must be >= 0 (TIER_WINDOW_DAYS >= 1)")
    return out
