"""Sales queries: products, pipelines, opportunities, quotes, orders and the pipeline summary."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry
from strawberry.types import Info

from crm_graph.core import money
from crm_graph.core.pagination import paginate
from crm_graph.graphql import access
from crm_graph.graphql.context import Context
from crm_graph.graphql.errors import ClientError
from crm_graph.graphql.inputs import to_plain
from crm_graph.graphql.relay import decode_global_id, page_args
from crm_graph.sales import filters
from crm_graph.sales.schema.inputs import (
    OPPORTUNITY_IDS,
    ORDER_IDS,
    QUOTE_IDS,
    OpportunityFilter,
    OpportunityOrder,
    OrderFilter,
    OrderOrder,
    ProductFilter,
    ProductOrder,
    QuoteFilter,
    QuoteOrder,
    decode_ids,
)
from crm_graph.sales.schema.reports import PipelineSummary
from crm_graph.sales.schema.types import (
    Opportunity,
    OpportunityConnection,
    Order,
    OrderConnection,
    Pipeline,
    PipelineConnection,
    Product,
    ProductConnection,
    Quote,
    QuoteConnection,
    load_opportunity,
    load_order,
    load_pipeline,
    load_product,
    load_quote,
)
from crm_graph.sales.service import (
    opportunities,
    orders,
    pipelines,
    products,
    quotes,
    reports,
)

Page = Annotated[int | None, strawberry.argument(description="Page size (default 20, at most 100).")]


@strawberry.type
class SalesQuery:
    @access.query("products", description="One product by ID.")
    async def product(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A Product ID.")],
    ) -> Product | None:
        return await load_product(info, decode_global_id(id, "Product")[1])

    @access.query("products", description="The catalogue, by name unless `orderBy` says otherwise.")
    async def products(
        self,
        info: Info,
        filter: Annotated[ProductFilter | None, strawberry.argument(description="Only products that match.")] = None,
        order_by: list[ProductOrder] | None = None,
        first: Page = None, after: str | None = None, last: Page = None, before: str | None = None,
    ) -> ProductConnection:
        ctx: Context = info.context
        args = page_args(first, after, last, before)
        stmt = products.product_select(to_plain(filter))
        page = await paginate(ctx.db.reader, stmt, filters.product_sort(to_plain(order_by)), args)
        return ProductConnection.from_page(page, Product.from_model)

    @access.query("pipelines", description="One pipeline by ID.")
    async def pipeline(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A Pipeline ID.")],
    ) -> Pipeline | None:
        return await load_pipeline(info, decode_global_id(id, "Pipeline")[1])

    @access.query("pipelines", description="All pipelines, oldest first (the default pipeline from installation comes first).")
    async def pipelines(
        self, info: Info, first: Page = None, after: str | None = None, last: Page = None, before: str | None = None
    ) -> PipelineConnection:
        ctx: Context = info.context
        args = page_args(first, after, last, before)
        page = await paginate(ctx.db.reader, pipelines.pipeline_select(), filters.pipeline_sort(), args)
        return PipelineConnection.from_page(page, Pipeline.from_model)

    @access.query("opportunities", description="One opportunity by ID; null if unknown or deleted.")
    async def opportunity(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="An Opportunity ID.")],
    ) -> Opportunity | None:
        return await load_opportunity(info, decode_global_id(id, "Opportunity")[1])

    @access.query("opportunities", description="Opportunities of live customers, newest first unless `orderBy` says otherwise.")
    async def opportunities(
        self,
        info: Info,
        filter: Annotated[OpportunityFilter | None, strawberry.argument(description="Only opportunities that match.")] = None,
        order_by: list[OpportunityOrder] | None = None,
        first: Page = None, after: str | None = None, last: Page = None, before: str | None = None,
    ) -> OpportunityConnection:
        ctx: Context = info.context
        args = page_args(first, after, last, before)
        stmt = opportunities.opportunity_select(decode_ids(to_plain(filter), OPPORTUNITY_IDS))
        page = await paginate(ctx.db.reader, stmt, filters.opportunity_sort(to_plain(order_by)), args)
        return OpportunityConnection.from_page(page, Opportunity.from_model)

    @access.query("quotes", description="One quote by ID.")
    async def quote(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A Quote ID.")],
    ) -> Quote | None:
        return await load_quote(info, decode_global_id(id, "Quote")[1])

    @access.query("quotes", description="Quotes, newest first unless `orderBy` says otherwise.")
    async def quotes(
        self,
        info: Info,
        filter: Annotated[QuoteFilter | None, strawberry.argument(description="Only quotes that match.")] = None,
        order_by: list[QuoteOrder] | None = None,
        first: Page = None, after: str | None = None, last: Page = None, before: str | None = None,
    ) -> QuoteConnection:
        ctx: Context = info.context
        args = page_args(first, after, last, before)
        stmt = quotes.quote_select(decode_ids(to_plain(filter), QUOTE_IDS))
        page = await paginate(ctx.db.reader, stmt, filters.quote_sort(to_plain(order_by)), args)
        return QuoteConnection.from_page(page, Quote.from_model)

    @access.query("orders", description="One order by ID.")
    async def order(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="An Order ID.")],
    ) -> Order | None:
        return await load_order(info, decode_global_id(id, "Order")[1])

    @access.query("orders", description="Orders, most recently ordered first unless `orderBy` says otherwise.")
    async def orders(
        self,
        info: Info,
        filter: Annotated[OrderFilter | None, strawberry.argument(description="Only orders that match.")] = None,
        order_by: list[OrderOrder] | None = None,
        first: Page = None, after: str | None = None, last: Page = None, before: str | None = None,
    ) -> OrderConnection:
        ctx: Context = info.context
        args = page_args(first, after, last, before)
        stmt = orders.order_select(decode_ids(to_plain(filter), ORDER_IDS))
        page = await paginate(ctx.db.reader, stmt, filters.order_sort(to_plain(order_by)), args)
        return OrderConnection.from_page(page, Order.from_model)

    @access.query("opportunities", description="Forecast and funnel of a pipeline (the default one if `pipelineId` is omitted).")
    async def pipeline_summary(
        self,
        info: Info,
        pipeline_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="A Pipeline ID; omitted: the default pipeline.")
        ] = None,
        from_: Annotated[date | None, strawberry.argument(name="from", description="First day of the range.")] = None,
        to: Annotated[date | None, strawberry.argument(description="Last day of the range (included).")] = None,
        currency: Annotated[str | None, strawberry.argument(description="ISO 4217; defaults to the most used.")] = None,
    ) -> PipelineSummary | None:
        ctx: Context = info.context
        if from_ is not None and to is not None and from_ > to:
            raise ClientError("`from` must not be after `to`.")
        if currency is not None:
            try:
                currency = money.currency_code(currency)
            except money.InvalidCurrency as exc:
                raise ClientError(str(exc), "INVALID_CURRENCY") from None
        async with ctx.db.reader() as session:
            if pipeline_id is None:
                default = await pipelines.default_pipeline(session)
                if default is None:
                    return None
                pk = default.id
            else:
                pk = decode_global_id(pipeline_id, "Pipeline")[1]
            summary = await reports.pipeline_summary(session, pipeline_id=pk, date_from=from_, date_to=to, currency=currency)
        return PipelineSummary.from_summary(summary) if summary is not None else None
