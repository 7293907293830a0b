"""Customer-value rules: ``fit`` holds the models' likelihoods, fits and predictions (numpy and
scipy only), ``summary`` reads their inputs from the orders in SQL, ``runs`` stores and reads runs."""

from __future__ import annotations

from crm_graph.insights.service.runs import (
    FIT_FAILED,
    NO_ORDERS,
    NOT_ENOUGH_DATA,
    Computed,
    ValueConfig,
    compute_model,
    config_from,
    latest_run,
    predict,
    refresh_model,
    store_model,
    values_for,
)

__all__ = [
    "FIT_FAILED", "NOT_ENOUGH_DATA", "NO_ORDERS", "Computed", "ValueConfig", "compute_model", "config_from",
    "latest_run", "predict", "refresh_model", "store_model", "values_for",
]
