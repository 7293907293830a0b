"""GraphQL API of customer insights: the customer-value model (BG/NBD and Gamma-Gamma) runs.

The per-customer figures are ``Customer.lifetimeValue`` (``customer_fields.py``) and the
``lifetimeValue`` filter condition (``filters.py``), both registered by ``plugin.py``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from crm_graph.core.errors import DomainError
from crm_graph.graphql.enums import graphql_enum
from crm_graph.domains import SchemaPart
from crm_graph.graphql import access
from crm_graph.graphql.errors import ClientError, UserError, user_errors
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.core.pagination import paginate
from crm_graph.graphql.money import Money
from crm_graph.graphql.relay import Connection, page_args
from crm_graph.insights.config import insights_settings
from crm_graph.insights.models import ChurnRisk as ChurnRiskModel
from crm_graph.insights.models import CustomerValueRun, TimeUnit
from crm_graph.graphql.relay import decode_global_id
from crm_graph.customers.schema import LifecycleStage  # the GraphQL enum is declared there: import it decorated
from crm_graph.insights.customer_fields import CustomerLifecycleInfo
from crm_graph.insights.models import LifecycleRun
from crm_graph.insights.models import AssociationRun, ProductAssociation
from crm_graph.insights.service import associations, churn, lifecycle, runs

if TYPE_CHECKING:
    from crm_graph.customers.schema import Customer
    from crm_graph.sales.schema.types import Product

ProductRef = Annotated["Product", strawberry.lazy("crm_graph.sales.schema.types")]

graphql_enum(TimeUnit, "The unit the model counts time in: DAY, or WEEK (7 days, the unit of the original papers).", {
    "DAY": "Time is counted in days.",
    "WEEK": "Time is counted in weeks of 7 days.",
}, name="CustomerValueTimeUnit")


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
    b: float = strawberry.field(description="The second shape of that Beta distribution.")
    log_likelihood: float = strawberry.field(description="Log-likelihood of the BG/NBD fit.")
    p: float = strawberry.field(description="Shape of the value of one purchase (Gamma).")
    q: float = strawberry.field(description="Shape of the spend scale across customers (Gamma).")
    gamma: float = strawberry.field(description="Scale of the spend scale across customers.")
    spend_log_likelihood: float = strawberry.field(description="Log-likelihood of the Gamma-Gamma fit.")
    customers: int = strawberry.field(description="Customers fitted: every live customer with a counted order in the currency.")
    repeat_customers: int = strawberry.field(description="Of them, those who bought on more than one day.")
    horizon_days: int = strawberry.field(description="Horizon of the stored expected purchases and CLV.")
    discount_rate: float = strawberry.field(description="Annual discount rate of the stored CLV.")
    computed_at: datetime = strawberry.field(description="When the run was stored.")

    @classmethod
    def of(cls, run: CustomerValueRun) -> CustomerValueModel:
        return cls(
            as_of=run.as_of, time_unit=run.time_unit, currency=run.currency, r=run.r, alpha=run.alpha, a=run.a, b=run.b,
            log_likelihood=run.log_likelihood, p=run.p, q=run.q, gamma=run.gamma,
            spend_log_likelihood=run.spend_log_likelihood, customers=run.customer_count,
            repeat_customers=run.repeat_customers, horizon_days=run.horizon_days, discount_rate=run.discount_rate,
            computed_at=run.created_at,
        )


@strawberry.input(description="What to fit the customer-value models on; every field has a default.")
class RefreshCustomerValueModelInput:
    as_of: date | None = strawberry.field(default=None, description="Fit on orders up to and including this day (UTC); default today.")
    time_unit: TimeUnit = strawberry.field(default=TimeUnit.WEEK, description="Default WEEK.")
    currency: str | None = strawberry.field(
        default=None, description="Fit on the orders of this currency; default the one with most counted orders up to asOf.")


@strawberry.type(description="What `refreshCustomerValueModel` answers: the new run, or why there is none.")
class CustomerValueModelPayload:
    model: CustomerValueModel | None = strawberry.field(description="The run stored; null on errors.")
    errors: list[UserError]


@strawberry.type(description="How one of a customer's RFM scores moved between two runs (5 is best).")
class ScoreChange:
    before: int = strawberry.field(description="In the earlier run.")
    now: int = strawberry.field(description="In the newer run.")

    @strawberry.field(description="How many points it fell (`before - now`).")
    def drop(self) -> int:
        return self.before - self.now


@strawberry.type(
    description="A customer likely to leave: their recency and frequency scores fell between the two latest RFM runs "
    "and their probability alive is low. `reasons` says it in words; the figures say it in numbers."
)
class ChurnRisk:
    customer_pk: strawberry.Private[int]
    raised_at: datetime = strawberry.field(description="When the customer became a churn risk (this time).")
    assessed_at: datetime = strawberry.field(description="The newest assessment that found them at risk.")
    as_of: date = strawberry.field(description="The newer RFM run's day.")
    previous_as_of: date = strawberry.field(description="The earlier RFM run's day.")
    recency_score: ScoreChange = strawberry.field(description="The RFM recency score in the earlier and the newer run.")
    frequency_score: ScoreChange = strawberry.field(description="The RFM frequency score in the earlier and the newer run.")
    days_since_last_order: int = strawberry.field(description="As of the newer RFM run.")
    probability_alive: float = strawberry.field(description="In the newest customer-value run (0 to 1).")
    monetary: Money = strawberry.field(description="Revenue in the newer RFM run's window: what the list is ranked by.")
    clv: Money = strawberry.field(description="Lifetime value in the newest customer-value run.")

    @strawberry.field(description="Why the customer is on the list, one sentence per reason.")
    def reasons(self) -> list[str]:
        r, f = self.recency_score, self.frequency_score
        return [
            f"Recency score fell from {r.before} to {r.now} ({self.days_since_last_order} days since the last order).",
            f"Frequency score fell from {f.before} to {f.now}." if f.drop() else f"Frequency score stayed at {f.now}.",
            f"Probability alive is {self.probability_alive:.0%}.",
            f"Brought {self.monetary.amount} {self.monetary.currency} in the RFM window; lifetime value "
            f"{self.clv.amount} {self.clv.currency}.",
        ]

    @strawberry.field(description="The customer; null if you may no longer see them.")
    async def customer(self, info: Info) -> Annotated["Customer", strawberry.lazy("crm_graph.customers.schema")] | None:
        from crm_graph.customers.schema import load_customer

        return await load_customer(info, self.customer_pk)

    @classmethod
    def of(cls, row: ChurnRiskModel) -> ChurnRisk:
        return cls(
            customer_pk=row.customer_id, raised_at=row.raised_at, assessed_at=row.assessed_at, as_of=row.as_of,
            previous_as_of=row.previous_as_of,
            recency_score=ScoreChange(before=row.recency_score_before, now=row.recency_score),
            frequency_score=ScoreChange(before=row.frequency_score_before, now=row.frequency_score),
            days_since_last_order=row.recency_days, probability_alive=row.probability_alive,
            monetary=Money.of(row.monetary, row.currency), clv=Money.of(row.clv, row.clv_currency),
        )


@strawberry.type(description="A page of churn risks.")
class ChurnRiskConnection(Connection[ChurnRisk]):
    pass


@strawberry.type(description="What one churn-risk assessment changed.")
class ChurnAssessment:
    as_of: date = strawberry.field(description="The newer RFM run's day.")
    previous_as_of: date = strawberry.field(description="The earlier RFM run's day.")
    raised: int = strawberry.field(description="Customers who became a churn risk (one `customer.churn_risk_raised` each).")
    still_at_risk: int = strawberry.field(description="Customers at risk before and still (no new event).")
    cleared: int = strawberry.field(description="Customers no longer at risk.")


@strawberry.type(description="What `assessChurnRisks` answers: what the assessment changed, or why there is none.")
class ChurnAssessmentPayload:
    assessment: ChurnAssessment | None = strawberry.field(description="Null on errors.")
    errors: list[UserError]


@strawberry.type(description="One computation of every customer's lifecycle stage, with the thresholds it used.")
class LifecycleRunInfo:
    as_of: date = strawberry.field(description="Orders up to and including this day were read.")
    window_days: int = strawberry.field(description="Length of each of the two windows whose volumes are compared.")
    churned_after_days: int = strawberry.field(description="CHURNED: no counted order for at least this many days.")
    trial_orders: int = strawberry.field(description="EXPLORATION: at most this many counted orders in all.")
    growth_ratio: float = strawberry.field(
        description="FORMATION: the latest window's volume is above 0 and at least this multiple of the one before.")
    decline_ratio: float = strawberry.field(
        description="DECLINE: the latest window's volume is at most this multiple of the one before.")
    customers: int = strawberry.field(description="Customers with a counted order by `asOf` (of those the run covers): "
                                      "each got a computed stage.")
    changed: int = strawberry.field(description="Customers whose stage changed with this run (pinned ones excepted).")
    complete: bool = strawberry.field(description="Over every customer (the scheduled job, an administrator); false: over "
                                      "the customers its caller may change only.")
    computed_at: datetime = strawberry.field(description="When the run was stored.")

    @classmethod
    def of(cls, run: LifecycleRun) -> LifecycleRunInfo:
        return cls(as_of=run.as_of, window_days=run.window_days, churned_after_days=run.churned_after_days,
                   trial_orders=run.trial_orders, growth_ratio=run.growth_ratio, decline_ratio=run.decline_ratio,
                   customers=run.customer_count, changed=run.changed, complete=run.complete,
                   computed_at=run.created_at)


@strawberry.input(description="What a lifecycle run reads; every field has a default.")
class RefreshLifecycleStagesInput:
    as_of: date | None = strawberry.field(default=None, description="Read orders up to and including this day (UTC); default today.")


@strawberry.type(description="What `refreshLifecycleStages` answers: the new run, or why there is none.")
class LifecycleRunPayload:
    run: LifecycleRunInfo | None = strawberry.field(description="The run stored; null on errors.")
    errors: list[UserError]


@strawberry.input(description="The stage to pin on a customer.")
class PinLifecycleStageInput:
    customer_id: strawberry.ID = strawberry.field(description="Global ID of the customer.")
    stage: LifecycleStage = strawberry.field(description="The stage the customer keeps until it is unpinned.")
    note: str | None = strawberry.field(default=None, description="Why (at most 500 characters).")


@strawberry.input(description="The customer whose pinned stage to lift.")
class UnpinLifecycleStageInput:
    customer_id: strawberry.ID = strawberry.field(description="Global ID of the customer.")


@strawberry.type(description="What pinning or unpinning a lifecycle stage answers: how the stage is kept now, or why not.")
class CustomerLifecyclePayload:
    lifecycle: CustomerLifecycleInfo | None = strawberry.field(description="The customer's lifecycle now; null on errors.")
    errors: list[UserError]


@strawberry.type(description="Buyers of `antecedent` also buy `consequent`: a rule of a product association run. Counts "
                 "are of customers who bought in the run's window.")
class ProductAssociationRule:
    antecedent_pk: strawberry.Private[int]
    consequent_pk: strawberry.Private[int]
    both: int = strawberry.field(description="Customers who bought both.")
    antecedent_buyers: int = strawberry.field(description="Customers who bought `antecedent`.")
    consequent_buyers: int = strawberry.field(description="Customers who bought `consequent`.")
    support: float = strawberry.field(description="both / customers of the run.")
    confidence: float = strawberry.field(description="both / antecedentBuyers.")
    lift: float = strawberry.field(description="confidence / (consequentBuyers / customers of the run).")

    @strawberry.field(description="The product the rule starts from; null when you may not see it.")
    async def antecedent(self, info: Info) -> ProductRef | None:
        from crm_graph.sales.schema.types import load_product

        return await load_product(info, self.antecedent_pk)

    @strawberry.field(description="The product buyers of `antecedent` also buy; null when you may not see it.")
    async def consequent(self, info: Info) -> ProductRef | None:
        from crm_graph.sales.schema.types import load_product

        return await load_product(info, self.consequent_pk)

    @classmethod
    def of(cls, row: ProductAssociation) -> ProductAssociationRule:
        return cls(antecedent_pk=row.antecedent_id, consequent_pk=row.consequent_id, both=row.both,
                   antecedent_buyers=row.antecedent_count, consequent_buyers=row.consequent_count, support=row.support,
                   confidence=row.confidence, lift=row.lift)


@strawberry.type(description="One computation of product association rules (cross-sell) over what customers bought in a window.")
class ProductAssociationRun:
    run: strawberry.Private[AssociationRun]
    as_of: date = strawberry.field(description="The last day of purchases read (UTC).")
    window_days: int = strawberry.field(description="Days of purchases read, ending on `asOf`.")
    customers: int = strawberry.field(description="Customers who bought a product in the window: the N of support and lift.")
    min_support_count: int = strawberry.field(description="Rules kept: at least this many customers bought both products ...")
    min_confidence: float = strawberry.field(description="... with at least this confidence ...")
    min_lift: float = strawberry.field(description="... and a lift above this.")
    rule_count: int = strawberry.field(description="Rules the run stored.")
    computed_at: datetime = strawberry.field(description="When the run was stored.")

    @strawberry.field(description="Rules by lift, then confidence (at most `first`, 1 to 100, default 20); of one "
                      "antecedent product when `productId` is given.")
    async def rules(self, info: Info, first: int = 20, product_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="Global ID of a product: only the rules that start from it; null: all.")] = None,
    ) -> list[ProductAssociationRule]:
        if not 1 <= first <= 100:
            raise ClientError("first is 1 to 100.")
        pk = decode_global_id(product_id, "Product")[1] if product_id is not None else None
        async with info.context.db.reader() as session:
            found = await associations.rules_of(session, self.run, first=first, product_id=pk)
        return [ProductAssociationRule.of(r) for r in found]

    @classmethod
    def of(cls, run: AssociationRun) -> ProductAssociationRun:
        return cls(run=run, as_of=run.as_of, window_days=run.window_days, customers=run.customers,
                   min_support_count=run.min_support_count, min_confidence=run.min_confidence, min_lift=run.min_lift,
                   rule_count=run.rule_count, computed_at=run.created_at)


@strawberry.input(description="What a product association run reads; every field has a default.")
class RefreshProductAssociationsInput:
    as_of: date | None = strawberry.field(default=None, description="Last day of purchases read (UTC); default today.")
    window_days: int | None = strawberry.field(
        default=None, description="Days of purchases read, ending on asOf; default CRM_INSIGHTS_ASSOCIATIONS_WINDOW_DAYS (365).")


@strawberry.type(description="What `refreshProductAssociations` answers: the new run, or why there is none.")
class ProductAssociationRunPayload:
    run: ProductAssociationRun | None = strawberry.field(description="The run stored; null on errors.")
    errors: list[UserError]


def _customer_pk(value: strawberry.ID) -> int:
    return decode_global_id(value, "Customer")[1]


@strawberry.type
class InsightsQuery:
    @access.query("insights", description="The newest product association run (cross-sell rules); null before the first "
                  "`refreshProductAssociations`.")
    async def product_association_run(self, info: Info) -> ProductAssociationRun | None:
        async with info.context.db.reader() as session:
            run = await associations.latest_run(session)
        return ProductAssociationRun.of(run) if run is not None else None

    @access.query("insights", description="The newest lifecycle run; null before the first `refreshLifecycleStages`.")
    async def lifecycle_run(self, info: Info) -> LifecycleRunInfo | None:
        async with info.context.db.reader() as session:
            run = await lifecycle.latest_run(session)
        return LifecycleRunInfo.of(run) if run is not None else None

    @access.query(
        "insights",
        description="Customers at risk of leaving, most revenue first (the ones most worth keeping), as of the newest "
        "`assessChurnRisks`; each says why. Only the customers you may see.",
    )
    async def churn_risks(self, info: Info, first: int | None = None, after: str | None = None,
                          last: int | None = None, before: str | None = None) -> ChurnRiskConnection:
        page = await paginate(info.context.db.reader, churn.open_risks_select(), churn.RISK_ORDER,
                              page_args(first, after, last, before))
        return ChurnRiskConnection.from_page(page, ChurnRisk.of)

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
        self, info: Info, input: Annotated[RefreshCustomerValueModelInput | None, strawberry.argument(
            description="What to fit on; null: every default.")] = None,
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

    @access.mutation(
        "insights", "update",
        description="Compare the two latest RFM runs (of one window and currency) and the newest customer-value run: "
        "customers whose recency and frequency scores fell (CRM_INSIGHTS_CHURN_MIN_SCORE_DROP points together, neither "
        "rising) with a probability alive under CRM_INSIGHTS_CHURN_MAX_PROBABILITY_ALIVE are churn risks. Those new to the "
        "list raise `customer.churn_risk_raised`, once; those no longer at risk leave it. Errors: fewer than two RFM runs "
        "(NO_RFM_RUNS), no customer-value run (NO_VALUE_MODEL).",
    )
    async def assess_churn_risks(self, info: Info) -> ChurnAssessmentPayload:
        config = insights_settings()
        found, errors = await unit_of_work(info, lambda s: churn.assess(s, actor=info.context.actor, config=config))
        if found is None:
            return ChurnAssessmentPayload(assessment=None, errors=errors)
        return ChurnAssessmentPayload(assessment=ChurnAssessment(
            as_of=found.as_of, previous_as_of=found.previous_as_of, raised=found.raised, still_at_risk=found.still,
            cleared=found.cleared), errors=[])

    @access.mutation(
        "insights", "update",
        description="Compute every customer's lifecycle stage from their order volume up to `asOf` and store the run; "
        "each customer whose stage changes (pinned ones excepted) gets a history row and `customer.lifecycle_changed`. "
        "The run covers the customers you may change (the scheduled job covers everyone). "
        "Errors: `asOf` in the future (INVALID_VALUE).",
    )
    async def refresh_lifecycle_stages(
        self, info: Info, input: Annotated[RefreshLifecycleStagesInput | None, strawberry.argument(
            description="The day to compute as of; null: today.")] = None,
    ) -> LifecycleRunPayload:
        data = input or RefreshLifecycleStagesInput()
        config = insights_settings()
        run, errors = await unit_of_work(
            info, lambda s: lifecycle.refresh_stages(s, actor=info.context.actor, config=config, as_of=data.as_of))
        return LifecycleRunPayload(run=LifecycleRunInfo.of(run) if run is not None else None, errors=errors)

    @access.mutation(
        "insights", "update",
        description="Set a customer's lifecycle stage by hand: it stays until `unpinLifecycleStage`, whatever runs compute "
        "(they keep computing `computedStage`). Raises `customer.lifecycle_changed` when the stage changes. Errors: "
        "unknown customer (NOT_FOUND), a customer you may not change (FORBIDDEN), a note over 500 characters (INVALID_VALUE).",
    )
    async def pin_lifecycle_stage(self, info: Info, input: Annotated[PinLifecycleStageInput, strawberry.argument(
            description="The customer, the stage and why.")]) -> CustomerLifecyclePayload:
        pk = _customer_pk(input.customer_id)
        found, errors = await unit_of_work(info, lambda s: _pinned(s, info, pk, input.stage, input.note))
        return CustomerLifecyclePayload(lifecycle=found, errors=errors)

    @access.mutation(
        "insights", "update",
        description="Lift a pinned lifecycle stage: the customer's stage is the newest computed one again (unchanged if no run "
        "covered them yet). Errors: unknown customer (NOT_FOUND), a stage that is not pinned (INVALID_STATE).",
    )
    async def unpin_lifecycle_stage(self, info: Info, input: Annotated[UnpinLifecycleStageInput, strawberry.argument(
            description="The customer.")]) -> CustomerLifecyclePayload:
        pk = _customer_pk(input.customer_id)
        found, errors = await unit_of_work(info, lambda s: _unpinned(s, info, pk))
        return CustomerLifecyclePayload(lifecycle=found, errors=errors)

    @access.mutation(
        "insights", "update",
        description="Compute association rules over every customer's purchases in the window (support, confidence, lift; "
        "the thresholds are CRM_INSIGHTS_ASSOCIATIONS_*) and store the run `Customer.recommendations` reads. Errors: "
        "`asOf` in the future, `windowDays` outside 1 to 36600 (INVALID_VALUE).",
    )
    async def refresh_product_associations(
        self, info: Info, input: Annotated[RefreshProductAssociationsInput | None, strawberry.argument(
            description="The window of purchases to read; null: every default.")] = None,
    ) -> ProductAssociationRunPayload:
        data = input or RefreshProductAssociationsInput()
        config = insights_settings()
        run, errors = await unit_of_work(
            info, lambda s: associations.refresh_rules(s, config=config, as_of=data.as_of, window_days=data.window_days))
        return ProductAssociationRunPayload(run=ProductAssociationRun.of(run) if run is not None else None, errors=errors)


async def _info_of(session: Any, pk: int) -> CustomerLifecycleInfo:
    found = (await lifecycle.states_for(session, [pk]))[pk]
    return CustomerLifecycleInfo.of(*found)


async def _pinned(session: Any, info: Info, pk: int, stage: LifecycleStage, note: str | None) -> CustomerLifecycleInfo:
    await lifecycle.pin_stage(session, actor=info.context.actor, customer_id=pk, stage=stage, note=note)
    return await _info_of(session, pk)


async def _unpinned(session: Any, info: Info, pk: int) -> CustomerLifecycleInfo:
    await lifecycle.unpin_stage(session, actor=info.context.actor, customer_id=pk)
    return await _info_of(session, pk)


SCHEMA = SchemaPart(query=InsightsQuery, mutation=InsightsMutation)
