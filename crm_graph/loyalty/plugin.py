"""The loyalty domain's built-in plugin: ``Customer.loyalty``, the subscriber that turns
payments, refunds and rule events into ledger entries, and the expiry and tier job."""

from __future__ import annotations

from typing import Any

from crm_graph import hookimpl
from crm_graph.core.extensions import TypeExtension
from crm_graph.loyalty import events  # noqa: F401 - registers the event types


@hookimpl
def crm_register_type_extensions() -> list[TypeExtension]:
    from crm_graph.loyalty.schema import CustomerLoyaltyFields

    return [TypeExtension("Customer", CustomerLoyaltyFields)]


@hookimpl
def crm_register_subscribers(settings: Any, plugins: Any) -> Any:
    from crm_graph.loyalty.subscriber import LoyaltyEvents

    return LoyaltyEvents(settings)


@hookimpl
def crm_startup(app: Any) -> None:
    from crm_graph.loyalty.jobs import jobs_of

    app.state.scheduler.jobs.extend(jobs_of(app))
