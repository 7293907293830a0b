"""``Customer.lifetimeValue``, added to the ``Customer`` type by ``crm_graph.insights.plugin``.

The customer's row of the newest run is loaded for the whole page at once (one query for the
run and one for the rows, whatever the page size); ``expectedPurchases(days)`` and
``clv(horizonDays, discountRate)`` are then computed from the stored inputs and parameters, so
any horizon costs no further query.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from crm_graph.core.errors import DomainError
from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.errors import ClientError
from crm_graph.graphql.money import Money
from crm_graph.customers.schema import LifecycleStage  # the GraphQL enum is declared there: import it decorated
from crm_graph.insights.models import (
    CustomerLifecycle,
    CustomerLifecycleState,
    CustomerValue,
    CustomerValueRun,
    LifecycleChangeSource,
)
from crm_graph.core.costs import sent_message_sources
from crm_graph.customers.models import Customer
from crm_graph.insights.config import insights_settings
from crm_graph.insights.service import associations, lifecycle, profitability, runs

if TYPE_CHECKING:
    from crm_graph.sales.schema.types import Product


def _checked(check: Any, value: Any, name: str) -> None:
    try:
        check(value, name)
    except DomainError as exc:
        raise ClientError(exc.errors[0].message) from None


@strawberry.type(
    description="What the newest customer-value run (`customerValueModel`) predicts for the customer: from the BG/NBD "
    "purchase model and the Gamma-Gamma spend model fitted on every customer's orders in the run's currency "
    "(docs/insights.md). Purchases are counted per day."
)
class CustomerLifetimeValue:
    value: strawberry.Private[CustomerValue]
    run: strawberry.Private[CustomerValueRun]
    as_of: date = strawberry.field(description="The run's last day of orders.")
    frequency: int = strawberry.field(description="Repeat purchases: days with a counted order after the first one.")
    recency_days: int = strawberry.field(description="Days from the first purchase to the last one.")
    age_days: int = strawberry.field(description="Days from the first purchase to the run's asOf.")
    average_spend: Money | None = strawberry.field(description="Mean value of the repeat purchases; null without any.")
    expected_spend: Money = strawberry.field(
        description="Expected value of one future purchase: the average spend pulled towards everyone's mean, "
        "the more so the fewer purchases it rests on.")
    probability_alive: float = strawberry.field(description="Probability that the customer still buys at all (0 to 1).")

    @strawberry.field(description="Purchases expected in the next `days` days (default: CRM_CLV_HORIZON_DAYS).")
    def expected_purchases(self, days: Annotated[int | None, strawberry.argument(
            description="Days ahead, 1 to 36600; null: the run's horizon.")] = None) -> float:
        if days is None:
            return self.value.expected_purchases
        _checked(runs.check_horizon, days, "days")
        return runs.predict(self.value, self.run, days=days)[0]

    @strawberry.field(
        description="Customer lifetime value: the revenue expected over the next `horizonDays` (default "
        "CRM_CLV_HORIZON_DAYS), discounted at the annual `discountRate` (default CRM_CLV_DISCOUNT_RATE; 0.1 = 10%), "
        "in the run's currency."
    )
    def clv(
        self,
        horizon_days: Annotated[int | None, strawberry.argument(
            description="Days ahead, 1 to 36600; null: the run's horizon.")] = None,
        discount_rate: Annotated[float | None, strawberry.argument(
            description="Annual rate, 0 to 10 (0.1 = 10%); null: the run's rate.")] = None,
    ) -> Money:
        currency = self.run.currency
        if horizon_days is None and discount_rate is None:
            return Money.of(self.value.clv, currency)
        if horizon_days is not None:
            _checked(runs.check_horizon, horizon_days, "horizonDays")
        if discount_rate is not None:
            _checked(runs.check_discount_rate, discount_rate, "discountRate")
        return Money.of(runs.predict(self.value, self.run, days=horizon_days, discount_rate=discount_rate)[1], currency)

    @classmethod
    def of(cls, value: CustomerValue, run: CustomerValueRun) -> CustomerLifetimeValue:
        currency = run.currency
        return cls(
            value=value, run=run, as_of=run.as_of, frequency=value.frequency, recency_days=value.recency_days,
            age_days=value.age_days, average_spend=Money.maybe(value.average_spend, currency),
            expected_spend=Money.of(value.expected_spend, currency), probability_alive=value.probability_alive,
        )


@strawberry.type
class CustomerValueFields:
    """Resolvers here read ``self.pk``, the customer's primary key."""

    @strawberry.field(description="The customer's predicted value in the newest customer-value run; null when the run "
                      "does not cover them (no counted order in its currency by its asOf) or there is no run.")
    async def lifetime_value(self, info: Info) -> CustomerLifetimeValue | None:
        found = await info.context.loader("customer.lifetimeValue", runs.values_for).load(self.pk)  # type: ignore[attr-defined]
        return CustomerLifetimeValue.of(*found) if found is not None else None


# --- lifecycle stages --------------------------------------------------------------------------------

graphql_enum(LifecycleChangeSource, "What changed a lifecycle stage: a RUN, a PIN by hand, or an UNPIN.", {
    "RUN": "A lifecycle run computed another stage.",
    "PIN": "Someone pinned a stage by hand (`pinLifecycleStage`).",
    "UNPIN": "A pin was lifted: back to the computed stage (`unpinLifecycleStage`).",
})


@strawberry.type(
    description="How the customer's `lifecycleStage` is kept: computed by lifecycle runs from the order volume "
    "(docs/insights.md), or pinned by hand; with the figures of the newest run that covered them."
)
class CustomerLifecycleInfo:
    computed_stage: LifecycleStage | None = strawberry.field(
        description="What the newest run computed (whether or not the stage is pinned); null before a run covered them.")
    since: datetime = strawberry.field(description="When a run or a pin last changed the stage.")
    pinned: bool = strawberry.field(description="Set by hand: runs do not change it until it is unpinned.")
    pinned_at: datetime | None = strawberry.field(description="When it was pinned; null when not pinned.")
    pinned_by: str | None = strawberry.field(description="Who pinned it (`user:<id>`, `api_key:<id>`).")
    pin_note: str | None = strawberry.field(description="The note given when it was pinned; null without one.")
    as_of: date | None = strawberry.field(description="The day of the newest run that covered the customer.")
    orders: int | None = strawberry.field(description="Counted orders up to that day, in the customer's main currency.")
    volume: Money | None = strawberry.field(description="Order volume in the latest window (CRM_INSIGHTS_LIFECYCLE_WINDOW_DAYS).")
    previous_volume: Money | None = strawberry.field(description="Order volume in the window before it.")
    days_since_last_order: int | None = strawberry.field(description="Days from the last counted order to `asOf`.")

    @classmethod
    def of(cls, state: CustomerLifecycleState, row: CustomerLifecycle | None, run_day: date | None) -> CustomerLifecycleInfo:
        return cls(
            computed_stage=state.computed_stage, since=state.since, pinned=state.pinned,
            pinned_at=state.pinned_at, pinned_by=state.pinned_by, pin_note=state.pin_note,
            as_of=run_day if row is not None else None, orders=row.orders if row else None,
            volume=Money.of(row.volume, row.currency) if row else None,
            previous_volume=Money.of(row.previous_volume, row.currency) if row else None,
            days_since_last_order=row.days_since_last_order if row else None,
        )


@strawberry.type(description="One change of a customer's lifecycle stage.")
class LifecycleStageChangeInfo:
    from_stage: LifecycleStage | None = strawberry.field(description="The stage before; null: none.")
    to_stage: LifecycleStage | None = strawberry.field(description="The stage after.")
    source: LifecycleChangeSource = strawberry.field(description="What made the change.")
    actor: str = strawberry.field(description="Who made it: `system` for a scheduled run, else the user or key.")
    changed_at: datetime = strawberry.field(description="When the stage changed.")


async def _lifecycle_states(session: Any, customer_ids: list[int]) -> dict[int, Any]:
    return await lifecycle.states_for(session, customer_ids)


@strawberry.type
class CustomerLifecycleFields:
    """Resolvers here read ``self.pk``, the customer's primary key."""

    @strawberry.field(description="Whether `lifecycleStage` is pinned, what the newest lifecycle run computed and its "
                      "figures; null before a run covered the customer or anyone pinned a stage.")
    async def lifecycle(self, info: Info) -> CustomerLifecycleInfo | None:
        found = await info.context.loader("customer.lifecycle", _lifecycle_states).load(self.pk)  # type: ignore[attr-defined]
        return CustomerLifecycleInfo.of(*found) if found is not None else None

    @strawberry.field(description="Changes of the lifecycle stage, newest first (at most `first`, 1 to 100, default 10).")
    async def lifecycle_history(self, info: Info, first: int = 10) -> list[LifecycleStageChangeInfo]:
        if not 1 <= first <= 100:
            raise ClientError("first is 1 to 100.")

        async def batch(session: Any, customer_ids: list[int]) -> dict[int, Any]:
            return await lifecycle.history_for(session, customer_ids, first=first)

        rows = await info.context.loader(("customer.lifecycleHistory", first), batch, list).load(self.pk)  # type: ignore[attr-defined]
        return [LifecycleStageChangeInfo(from_stage=r.from_stage, to_stage=r.to_stage, source=r.source, actor=r.actor,
                                         changed_at=r.changed_at) for r in rows]


# --- recommendations -------------------------------------------------------------------------------


class RecommendationKind(enum.Enum):
    CROSS_SELL = "CROSS_SELL"
    UP_SELL = "UP_SELL"


graphql_enum(
    RecommendationKind,
    "CROSS_SELL: another product that buyers of one the customer bought also buy. UP_SELL: "
    "such a product that shares a tag with the one bought and costs more (same currency).",
    {
        "CROSS_SELL": "Another product that buyers of `basedOn` also buy.",
        "UP_SELL": "Such a product that shares `tag` with `basedOn` and costs more, in the same currency.",
    },
)


@strawberry.type(description="A product the customer has not bought, offered because of an association rule from one "
                 "they did buy (the newest `productAssociationRun`).")
class Recommendation:
    product_pk: strawberry.Private[int]
    based_on_pk: strawberry.Private[int]
    kind: RecommendationKind = strawberry.field(description="A cross-sell or an up-sell.")
    tag: str | None = strawberry.field(description="For an up-sell: the tag the two products share.")
    support: float = strawberry.field(description="Share of all buying customers who bought both products (0 to 1).")
    confidence: float = strawberry.field(description="Share of the buyers of `basedOn` who also bought `product` (0 to 1).")
    lift: float = strawberry.field(description="How much likelier buyers of `basedOn` buy `product` than customers at large.")
    buyers: int = strawberry.field(description="Customers who bought `basedOn` in the run's window.")

    @strawberry.field(description="The product recommended; null if you may not see products.")
    async def product(self, info: Info) -> Annotated["Product", strawberry.lazy("crm_graph.sales.schema.types")] | None:
        from crm_graph.sales.schema.types import load_product

        return await load_product(info, self.product_pk)

    @strawberry.field(description="The product the customer bought that the rule starts from.")
    async def based_on(self, info: Info) -> Annotated["Product", strawberry.lazy("crm_graph.sales.schema.types")] | None:
        from crm_graph.sales.schema.types import load_product

        return await load_product(info, self.based_on_pk)

    @strawberry.field(description='Why, in words: "bought by 34% of buyers of X, lift 3.1".')
    async def reason(self, info: Info) -> str:
        from crm_graph.sales.schema.types import load_product

        base = await load_product(info, self.based_on_pk)
        name = base.name if base is not None else "a product they bought"
        words = f"bought by {self.confidence:.0%} of buyers of {name}, lift {self.lift:.1f}"
        if self.kind is RecommendationKind.UP_SELL:
            words = f"a step up from {name} (tag '{self.tag}'): " + words
        return words[0].upper() + words[1:]


@strawberry.type
class CustomerRecommendationFields:
    """Resolvers here read ``self.pk``, the customer's primary key."""

    @strawberry.field(description="Products to offer the customer, strongest first (at most `first`, 1 to 100, default 5): "
                      "ones they have not bought that buyers of what they bought also buy, from the newest product "
                      "association run. Empty before the first `refreshProductAssociations`.")
    async def recommendations(self, info: Info, first: int = 5) -> list[Recommendation]:
        if not 1 <= first <= associations.MAX_RECOMMENDATIONS:
            raise ClientError(f"first is 1 to {associations.MAX_RECOMMENDATIONS}.")

        async def batch(session: Any, customer_ids: list[int]) -> dict[int, Any]:
            return await associations.recommendations_for(session, customer_ids, first=first)

        rows = await info.context.loader(("customer.recommendations", first), batch, list).load(self.pk)  # type: ignore[attr-defined]
        return [Recommendation(product_pk=r.product_id, based_on_pk=r.based_on_id,
                               kind=RecommendationKind.UP_SELL if r.up_sell else RecommendationKind.CROSS_SELL, tag=r.tag,
                               support=r.support, confidence=r.confidence, lift=r.lift, buyers=r.antecedent_count)
                for r in rows]


# --- profitability ---------------------------------------------------------------------------------


def _profit_fields(p: profitability.Profitability) -> dict[str, Any]:
    c = p.currency
    return dict(
        currency=c, window_days=p.window_days, orders=p.orders, revenue=Money.of(p.revenue, c),
        discounts=Money.of(p.discounts, c), tickets=p.tickets, agent_replies=p.agent_replies,
        support_minutes=p.support_minutes, support_cost=Money.of(p.support_cost, c), messages_sent=p.messages,
        marketing_cost=Money.of(p.marketing_cost, c), cost_to_serve=Money.of(p.cost_to_serve, c),
        profit=Money.of(p.profit, c),
    )


@strawberry.type(description="Revenue minus the cost to serve (docs/insights.md), in CRM_INSIGHTS_COST_CURRENCY, from what "
                 "you may see: over the whole history, or the last `windowDays`.")
class CustomerProfitability:
    currency: str = strawberry.field(description="CRM_INSIGHTS_COST_CURRENCY: orders in other currencies are left out.")
    window_days: int | None = strawberry.field(description="Null: the whole history.")
    orders: int = strawberry.field(description="Counted orders (paid or fulfilled, not cancelled or refunded).")
    revenue: Money = strawberry.field(description="Their list value: subtotals before discounts, without tax.")
    discounts: Money = strawberry.field(description="Discounts given on them.")
    tickets: int = strawberry.field(description="The customer's tickets created in the period.")
    agent_replies: int = strawberry.field(description="Comments agents wrote on the tickets.")
    support_minutes: float = strawberry.field(description="Tickets and replies at their standard handling times.")
    support_cost: Money = strawberry.field(description="supportMinutes at CRM_INSIGHTS_SUPPORT_HOURLY_RATE.")
    messages_sent: int = strawberry.field(description="Marketing messages sent (sources registered by plugins).")
    marketing_cost: Money = strawberry.field(description="messagesSent at CRM_INSIGHTS_MARKETING_COST_PER_MESSAGE.")
    cost_to_serve: Money = strawberry.field(description="discounts + supportCost + marketingCost.")
    profit: Money = strawberry.field(description="revenue - costToServe.")


@strawberry.type(description="The profitability of a segment's members, summed.")
class SegmentProfitability(CustomerProfitability):
    customers: int = strawberry.field(description="Members counted (those you may see).")

    @strawberry.field(description="profit / customers; null without members.")
    def profit_per_customer(self) -> Money | None:
        if not self.customers:
            return None
        return Money.of((self.profit.amount / self.customers).quantize(profitability.CENT), self.currency)


def _window(window_days: int | None) -> None:
    if window_days is not None and not 1 <= window_days <= profitability.MAX_WINDOW_DAYS:
        raise ClientError(f"windowDays is 1 to {profitability.MAX_WINDOW_DAYS}.")


@strawberry.type
class CustomerProfitabilityFields:
    """Resolvers here read ``self.pk``, the customer's primary key."""

    @strawberry.field(description="What the customer brought minus what serving them cost (support time, discounts, "
                      "marketing messages); over the last `windowDays` (1 to 36600) or, by default, the whole history. "
                      "Null without `insights:read`.")
    async def profitability(self, info: Info, window_days: Annotated[int | None, strawberry.argument(
            description="The last this many days, 1 to 36600; null: the whole history.")] = None,
    ) -> CustomerProfitability | None:
        _window(window_days)
        ctx = info.context
        if not ctx.actor.can("insights", "read"):
            return None
        config = insights_settings()
        sources = sent_message_sources(ctx.plugins)

        async def batch(session: Any, customer_ids: list[int]) -> dict[int, Any]:
            return await profitability.for_customers(session, customer_ids, config=config, window_days=window_days,
                                                     sources=sources)

        found = await ctx.loader(("customer.profitability", window_days), batch).load(self.pk)  # type: ignore[attr-defined]
        return CustomerProfitability(**_profit_fields(found)) if found is not None else None


@strawberry.type
class SegmentProfitabilityFields:
    """Resolvers here read ``self.model``, the segment's row."""

    @strawberry.field(description="The summed profitability of the segment's members (as `Customer.profitability`); null "
                      "without `insights:read` or when the stored filter no longer validates.")
    async def profitability(self, info: Info, window_days: Annotated[int | None, strawberry.argument(
            description="The last this many days, 1 to 36600; null: the whole history.")] = None,
    ) -> SegmentProfitability | None:
        from crm_graph.core.filters import FilterError
        from crm_graph.segments.service.reads import members_select

        _window(window_days)
        ctx = info.context
        if not ctx.actor.can("insights", "read"):
            return None
        config = insights_settings()
        async with ctx.db.reader() as session:
            try:
                members = (await members_select(session, self.model)).with_only_columns(Customer.id)  # type: ignore[attr-defined]
            except FilterError:
                return None
            found = await profitability.for_members(session, members, config=config, window_days=window_days,
                                                    sources=sent_message_sources(ctx.plugins))
        return SegmentProfitability(customers=found.customers, **_profit_fields(found))
