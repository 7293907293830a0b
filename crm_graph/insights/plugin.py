"""The insights domain's built-in plugin: ``Customer.lifetimeValue`` and the ``lifetimeValue``
filter condition, added through the same hooks a partner's plugin uses."""

from __future__ import annotations

from crm_graph import hookimpl
from crm_graph.core.extensions import FilterCondition, TypeExtension
from crm_graph.insights import events  # noqa: F401 - registers the event types


@hookimpl
def crm_configure(settings: object) -> None:
    """Refuse bad CRM_INSIGHTS_* settings when the application starts, not at the first run."""
    from crm_graph.insights.config import insights_settings

    insights_settings()


@hookimpl
def crm_startup(app: object) -> None:
    from crm_graph.insights.jobs import jobs_of

    app.state.scheduler.jobs.extend(jobs_of(app))  # type: ignore[attr-defined]


@hookimpl
def crm_register_type_extensions() -> list[TypeExtension]:
    from crm_graph.insights.customer_fields import (
        CustomerLifecycleFields,
        CustomerProfitabilityFields,
        CustomerRecommendationFields,
        CustomerValueFields,
        SegmentProfitabilityFields,
    )

    return [*(TypeExtension("Customer", fields) for fields in (
        CustomerValueFields, CustomerLifecycleFields, CustomerRecommendationFields, CustomerProfitabilityFields)),
        TypeExtension("Segment", SegmentProfitabilityFields)]


@hookimpl
def crm_register_filters() -> list[FilterCondition]:
    from crm_graph.insights.filters import (
        LifecycleFilter,
        LifetimeValueFilter,
        lifecycle_condition,
        lifetime_value_condition,
        prepare_value_run,
    )

    return [
        FilterCondition(
            "Customer", "lifetimeValue", lifetime_value_condition, LifetimeValueFilter,
            description="Figures in the newest customer-value run (probability alive, CLV...).", prepare=prepare_value_run,
        ),
        FilterCondition(
            "Customer", "lifecycle", lifecycle_condition, LifecycleFilter,
            description="How the lifecycle stage is kept: pinned or not, the stage the newest lifecycle run computed.",
        ),
    ]
