"""Fields the sales domain adds to the `Customer` type (through ``crm_graph.sales.plugin``).

The customer's opportunities, orders and quotes are nested connections batched across all the
customers of a request (one page query and one count query per field, whatever the number of
customers); `stats` is one ``GROUP BY`` for all of them. The sales types are referenced lazily:
this module imports no other schema module at import time.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from crm_graph.graphql.inputs import DateTimeFilter, DecimalFilter, IntFilter, to_plain
from crm_graph.graphql.money import Money
from crm_graph.graphql.relay import page_args
from crm_graph.sales import filters
from crm_graph.sales.loaders import grouped_connection, loader
from crm_graph.sales.models import Opportunity as OpportunityModel
from crm_graph.sales.models import Order as OrderModel
from crm_graph.sales.models import Quote as QuoteModel
from crm_graph.sales.service import opportunities, orders, quotes, reports

if TYPE_CHECKING:
    from crm_graph.sales.schema.inputs import (
        OpportunityFilter,
        OrderFilter,
        QuoteFilter,
    )
    from crm_graph.sales.schema.types import (
        OpportunityConnection,
        OrderConnection,
        QuoteConnection,
    )

_TYPES = "crm_graph.sales.schema.types"
_INPUTS = "crm_graph.sales.schema.inputs"


@strawberry.type(description="A customer's purchases in one currency.")
class CurrencyOrderStats:
    currency: str = strawberry.field(description="ISO 4217 code.")
    order_count: int = strawberry.field(description="Counted orders in this currency.")
    total_spent: Money = strawberry.field(description="Sum of their totals.")
    average_order_value: Money = strawberry.field(description="totalSpent / orderCount, rounded to the currency.")
    first_order_at: datetime = strawberry.field(description="When the first of them was placed (UTC).")
    last_order_at: datetime = strawberry.field(description="When the latest of them was placed (UTC).")


@strawberry.type(
    description="What a customer has bought: paid or fulfilled orders, never cancelled or refunded ones. Amounts are in "
    "the customer's main currency (the one most of their orders are in); `byCurrency` has every currency."
)
class CustomerSalesStats:
    order_count: int = strawberry.field(description="Orders that count, in every currency.")
    first_order_at: datetime | None = strawberry.field(
        description="When the first counted order was placed, in any currency (UTC); null without orders."
    )
    last_order_at: datetime | None = strawberry.field(
        description="When the latest counted order was placed, in any currency (UTC); null without orders."
    )
    currency: str | None = strawberry.field(description="The main currency; null without orders.")
    total_spent: Money | None = strawberry.field(description="Sum of the order totals in the main currency.")
    average_order_value: Money | None = strawberry.field(description="totalSpent / orders in the main currency.")
    by_currency: list[CurrencyOrderStats] = strawberry.field(
        description="The figures of each currency the customer bought in, by currency code."
    )

    @classmethod
    def from_stats(cls, stats: reports.CustomerStats) -> CustomerSalesStats:
        parts = [
            CurrencyOrderStats(
                currency=c.currency, order_count=c.order_count, total_spent=Money.of(c.total_spent, c.currency),
                average_order_value=Money.of(c.average, c.currency), first_order_at=c.first_order_at,
                last_order_at=c.last_order_at,
            )
            for c in stats.by_currency
        ]
        main = stats.main
        return cls(
            order_count=stats.order_count,
            first_order_at=stats.first_order_at,
            last_order_at=stats.last_order_at,
            currency=main.currency if main else None,
            total_spent=Money.of(main.total_spent, main.currency) if main else None,
            average_order_value=Money.of(main.average, main.currency) if main else None,
            by_currency=parts,
        )


def _ids(plain: Any, kinds: dict[str, str]) -> Any:
    from crm_graph.sales.schema.inputs import decode_ids

    return decode_ids(plain, kinds)


@strawberry.type
class CustomerSalesFields:
    """Resolvers here read `self.pk`, the customer's primary key (declared by Customer)."""

    @strawberry.field(description="The customer's live opportunities, newest first.")
    async def opportunities(
        self,
        info: Info,
        filter: Annotated[
            Annotated[OpportunityFilter, strawberry.lazy(_INPUTS)] | None,
            strawberry.argument(description="Only opportunities that match."),
        ] = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Annotated[OpportunityConnection, strawberry.lazy(_TYPES)]:
        from crm_graph.sales.schema.inputs import OPPORTUNITY_IDS
        from crm_graph.sales.schema.types import Opportunity, OpportunityConnection

        args = page_args(first, after, last, before)
        plain = _ids(to_plain(filter), OPPORTUNITY_IDS)
        return await grouped_connection(
            info, ("customer.opportunities", args, repr(plain)), lambda: opportunities.opportunity_select(plain),
            OpportunityModel, OpportunityModel.customer_id, self.pk, filters.opportunity_sort(None), args,
            OpportunityConnection, Opportunity.from_model,
        )

    @strawberry.field(description="The customer's orders, most recent first.")
    async def orders(
        self,
        info: Info,
        filter: Annotated[
            Annotated[OrderFilter, strawberry.lazy(_INPUTS)] | None,
            strawberry.argument(description="Only orders that match."),
        ] = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Annotated[OrderConnection, strawberry.lazy(_TYPES)]:
        from crm_graph.sales.schema.inputs import ORDER_IDS
        from crm_graph.sales.schema.types import Order, OrderConnection

        args = page_args(first, after, last, before)
        plain = _ids(to_plain(filter), ORDER_IDS)
        return await grouped_connection(
            info, ("customer.orders", args, repr(plain)), lambda: orders.order_select(plain), OrderModel, OrderModel.customer_id,
            self.pk, filters.order_sort(None), args, OrderConnection, Order.from_model,
        )

    @strawberry.field(description="The customer's quotes, newest first.")
    async def quotes(
        self,
        info: Info,
        filter: Annotated[
            Annotated[QuoteFilter, strawberry.lazy(_INPUTS)] | None,
            strawberry.argument(description="Only quotes that match."),
        ] = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Annotated[QuoteConnection, strawberry.lazy(_TYPES)]:
        from crm_graph.sales.schema.inputs import QUOTE_IDS
        from crm_graph.sales.schema.types import Quote, QuoteConnection

        args = page_args(first, after, last, before)
        plain = _ids(to_plain(filter), QUOTE_IDS)
        return await grouped_connection(
            info, ("customer.quotes", args, repr(plain)), lambda: quotes.quote_select(plain), QuoteModel, QuoteModel.customer_id,
            self.pk, filters.quote_sort(None), args, QuoteConnection, Quote.from_model,
        )

    @strawberry.field(description="Purchase statistics (paid or fulfilled orders), computed in the database.")
    async def stats(self, info: Info) -> CustomerSalesStats:
        found = await loader(info, "customer.stats", reports.customer_stats, reports.CustomerStats).load(self.pk)
        return CustomerSalesStats.from_stats(found)


# --- inputs of the conditions sales adds to CustomerFilter (see crm_graph.sales.plugin) ----------


@strawberry.input(
    description="Conditions on the customer's counted orders (paid or fulfilled; not cancelled or refunded), "
    "optionally within the last `windowDays` days and in one `currency`."
)
class OrdersBehaviourFilter:
    window_days: int | None = strawberry.field(
        default=None, description="Only orders placed in the last this many days (1 to 36600); omitted: all of them."
    )
    currency: str | None = strawberry.field(default=None, description="Only orders in this currency; give it when comparing amounts in a business that sells in several.")
    count: IntFilter | None = strawberry.field(default=None, description="The number of counted orders.")
    total_spent: DecimalFilter | None = strawberry.field(default=None, description="The sum of their totals (0 without orders).")
    average_order_value: DecimalFilter | None = strawberry.field(
        default=None, description="The mean of their totals; without orders there is none, so only `isNull: true` matches."
    )
    first_order_at: DateTimeFilter | None = strawberry.field(default=None, description="When the first of them was placed.")
    last_order_at: DateTimeFilter | None = strawberry.field(default=None, description="When the latest of them was placed.")


@strawberry.input(
    description="True when a counted order of the customer has one of these products (or a product with one of "
    "these tags). Give `productIds`, `productTags` or both."
)
class PurchasedFilter:
    product_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="The products (Product IDs).")
    product_tags: list[str] | None = strawberry.field(default=None, description="Product tags (ignoring case).")
    window_days: int | None = strawberry.field(
        default=None, description="Only orders placed in the last this many days (1 to 36600); omitted: all of them."
    )
