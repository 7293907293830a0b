"""GraphQL API of customer insights: the customer-value model (BG/NBD and Gamma-Gamma) runs.

The per-customer figures are ``Customer.lifetimeValue`` (``customer_fields.py``) and the
``lifetimeValue`` filter condition (``filters.py``), both registered by ``plugin.py``.
"""

from __future__ import annotations

from datetime import date, datetime

import strawberry
from strawberry.types import Info

from crm_graph.core.errors import DomainError
from crm_graph.domains import SchemaPart
from crm_graph.graphql import access
from crm_graph.graphql.errors import UserError, user_errors
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.insights.models import CustomerValueRun, TimeUnit
from crm_graph.insights.service import runs

strawberry.enum(TimeUnit, name="CustomerValueTimeUnit",
                description="The unit the model counts time in: DAY, or WEEK (7 days, the unit of the original papers).")


@strawberry.type(
    description="One fit of the customer-value models over every customer's counted orders in one currency up to `asOf`: "
    "BG/NBD for purchases (`r`, `alpha`, `a`, `b`) and Gamma-Gamma for spend (`p`, `q`, `gamma`). docs/insights.md "
    "says what the parameters mean."
)
class CustomerValueModel:
    as_of: date = strawberry.field(description="The last day of orders the fit used (orders of that day included).")
    time_unit: TimeUnit = strawberry.field(description="The unit of `alpha` (and of recency and age in the fit).")
    currency: str = strawberry.field(description="The currency of the orders fitted (the one with most counted orders, unless asked).")
    r: float = strawberry.field(description="Shape of the purchase-rate distribution (Gamma) across customers.")
    alpha: float = strawberry.field(description="Scale of the purchase-rate distribution, in `timeUnit`s.")
    a: float = strawberry.field(description="Dropout probability after each purchase ~ Beta(a, b).")
    b: float
    log_likelihood: float = strawberry.field(description="Log-likelihood of the BG/NBD fit.")
    p: float = strawberry.field(description="Shape of the value of one purchase (Gamma).")
    q: float = strawberry.field(description="Shape of the spend scale across customers (Gamma).")
    gamma: float = strawberry.field(description="Scale of the spend scale across customers.")
    spend_log_likelihood: float = strawberry.field(description="Log-likelihood of the Gamma-Gamma fit.")
    customers: int = strawberry.field(description="Customers fitted: every live customer with a counted order in the currency.")
    repeat_customers: int = strawberry.field(description="Of them, those who bought on more than one day.")
    horizon_days: int = strawberry.field(description="Horizon of the stored expected purchases and CLV.")
    discount_rate: float = strawberry.field(description="Annual discount rate of the stored CLV.")
    computed_at: datetime

    @classmethod
    def of(cls, run: CustomerValueRun) -> CustomerValueModel:
        return cls(
            as_of=run.as_of, time_unit=run.time_unit, currency=run.currency, r=run.r, alpha=run.alpha, a=run.a, b=run.b,
            log_likelihood=run.log_likelihood, p=run.p, q=run.q, gamma=run.gamma,
            spend_log_likelihood=run.spend_log_likelihood, customers=run.customer_count,
            repeat_customers=run.repeat_customers, horizon_days=run.horizon_days, discount_rate=run.discount_rate,
            computed_at=run.created_at,
        )


@strawberry.input
class RefreshCustomerValueModelInput:
    as_of: date | None = strawberry.field(default=None, description="Fit on orders up to and including this day (UTC); default today.")
    time_unit: TimeUnit = strawberry.field(default=TimeUnit.WEEK, description="Default WEEK.")
    currency: str | None = strawberry.field(
        default=None, description="Fit on the orders of this currency; default the one with most counted orders up to asOf.")


@strawberry.type
class CustomerValueModelPayload:
    model: CustomerValueModel | None
    errors: list[UserError]


@strawberry.type
class InsightsQuery:
    @access.query("insights", description="The newest customer-value run; null before the first `refreshCustomerValueModel`.")
    async def customer_value_model(self, info: Info) -> CustomerValueModel | None:
        async with info.context.db.reader() as session:
            run = await runs.latest_run(session)
        return CustomerValueModel.of(run) if run is not None else None


@strawberry.type
class InsightsMutation:
    @access.mutation(
        "insights", "update",
        description="Fit the customer-value models on every customer's orders up to `asOf` and store the run with each "
        "customer's figures (`Customer.lifetimeValue`, the `lifetimeValue` filter). Errors: `asOf` in the future "
        "(INVALID_VALUE), no counted order by then (NO_ORDERS), too few repeat buyers (NOT_ENOUGH_DATA), no fit (FIT_FAILED).",
    )
    async def refresh_customer_value_model(
        self, info: Info, input: RefreshCustomerValueModelInput | None = None
    ) -> CustomerValueModelPayload:
        data = input or RefreshCustomerValueModelInput()
        config = runs.config_from(info.context.settings)
        # Read and fit outside the write transaction (on SQLite, writers wait for it), then store.
        try:
            async with info.context.db.reader() as session:
                computed = await runs.compute_model(
                    session, as_of=data.as_of, time_unit=data.time_unit, currency=data.currency, config=config)
        except DomainError as exc:
            return CustomerValueModelPayload(model=None, errors=user_errors(exc))
        run, errors = await unit_of_work(info, lambda s: runs.store_model(s, computed))
        return CustomerValueModelPayload(model=CustomerValueModel.of(run) if run is not None else None, errors=errors)


SCHEMA = SchemaPart(query=InsightsQuery, mutation=InsightsMutation)
