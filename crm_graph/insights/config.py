"""Settings of the insights analyses other than the lifetime-value model's (those are
``CRM_CLV_*`` in ``crm_graph/settings.py``): ``CRM_INSIGHTS_*`` from the environment. What each
default means and why it was chosen is in docs/insights.md."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from crm_graph.settings import env_values


@dataclass(frozen=True)
class InsightsSettings:
    # Churn risk: the recency and frequency scores of the two latest comparable RFM runs may not
    # rise, and together they must fall by at least this many points (1 to 8)...
    churn_min_score_drop: int = 2
    # ... and the customer's probability alive in the newest customer-value run is under this.
    churn_max_probability_alive: float = 0.5

    # Lifecycle stages: order volume (counted orders' totals) over consecutive windows of this
    # many days, the latest ending on the run's as-of day.
    lifecycle_window_days: int = 90
    # CHURNED: no counted order for this many days.
    lifecycle_churned_after_days: int = 365
    # EXPLORATION: at most this many counted orders in all (trial orders)...
    lifecycle_trial_orders: int = 2
    # FORMATION: the latest window's volume is at least this multiple of the one before.
    lifecycle_growth_ratio: float = 1.5
    # DECLINE: the latest window's volume is at most this multiple of the one before.
    lifecycle_decline_ratio: float = 0.67

    # Cross-sell: association rules over what each customer bought (counted orders) in the last
    # this many days, kept when at least `min_support_count` customers bought both products...
    associations_window_days: int = 365
    associations_min_support_count: int = 2
    # ... with at least this confidence and a lift above this.
    associations_min_confidence: float = 0.05
    associations_min_lift: float = 1.0

    # Profitability: the currency of the rates below (and of the revenue counted), the cost of one
    # hour of support work, the minutes counted per ticket and per agent comment, and the cost of
    # one marketing message sent.
    cost_currency: str = "EUR"
    support_hourly_rate: float = 40.0
    support_minutes_per_ticket: float = 15.0
    support_minutes_per_reply: float = 10.0
    marketing_cost_per_message: float = 0.01

    # Seconds between two runs of the insights job (lifecycle stages, churn risks, product rules; 0: off).
    job_interval: float = 86400.0


def insights_settings(environ: Mapping[str, str] | None = None) -> InsightsSettings:
    env = os.environ if environ is None else environ
    out = InsightsSettings(**env_values(InsightsSettings, "CRM_INSIGHTS_", env))  # type: ignore[arg-type]
    check(out)
    return out


def check(value: InsightsSettings) -> None:
    """Refuse settings no analysis could use, naming the variable."""
    problems = []
    if not 1 <= value.churn_min_score_drop <= 8:
        problems.append("CHURN_MIN_SCORE_DROP is 1 to 8")
    if not 0 < value.churn_max_probability_alive <= 1:
        problems.append("CHURN_MAX_PROBABILITY_ALIVE is above 0, at most 1")
    if value.lifecycle_window_days < 1 or value.lifecycle_churned_after_days < 2 * value.lifecycle_window_days:
        problems.append("LIFECYCLE_WINDOW_DAYS >= 1 and LIFECYCLE_CHURNED_AFTER_DAYS >= twice it")
    if value.lifecycle_trial_orders < 1 or not 0 <= value.lifecycle_decline_ratio < 1 < value.lifecycle_growth_ratio:
        problems.append("LIFECYCLE_TRIAL_ORDERS >= 1 and LIFECYCLE_DECLINE_RATIO < 1 < LIFECYCLE_GROWTH_RATIO")
    if value.associations_window_days < 1 or value.associations_min_support_count < 1:
        problems.append("ASSOCIATIONS_WINDOW_DAYS and ASSOCIATIONS_MIN_SUPPORT_COUNT >= 1")
    if not 0 <= value.associations_min_confidence <= 1 or value.associations_min_lift < 0:
        problems.append("ASSOCIATIONS_MIN_CONFIDENCE is 0 to 1, ASSOCIATIONS_MIN_LIFT >= 0")
    if not (len(value.cost_currency) == 3 and value.cost_currency.isalpha() and value.cost_currency.isupper()):
        problems.append("COST_CURRENCY is an ISO 4217 code (EUR)")
    if value.job_interval < 0:
        problems.append("JOB_INTERVAL >= 0")
    names = ("support_hourly_rate", "support_minutes_per_ticket", "support_minutes_per_reply", "marketing_cost_per_message")
    if min(getattr(value, n) for n in names) < 0:
        problems.append("the cost settings are >= 0")
    if problems:
        raise ValueError("CRM_INSIGHTS_*: " + "; ".join(problems))


SETTING_NAMES = tuple(f"CRM_INSIGHTS_{f.name.upper()}" for f in fields(InsightsSettings))
