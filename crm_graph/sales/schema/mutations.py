"""Sales mutations. Each is one unit of work; expected failures come back as `errors`."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from crm_graph.graphql import access
from crm_graph.graphql.inputs import to_plain
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.graphql.relay import decode_global_id
from crm_graph.sales import models as m
from crm_graph.sales.schema.inputs import (
    AcceptQuotePayload,
    CreateOpportunityInput,
    CreateOrderInput,
    CreatePipelineInput,
    CreateProductInput,
    CreateQuoteInput,
    OpportunityPayload,
    OrderPayload,
    PipelinePayload,
    ProductPayload,
    QuotePayload,
    RecordPaymentInput,
    RecordPaymentPayload,
    UpdateOpportunityInput,
    UpdatePipelineInput,
    UpdateProductInput,
    UpsertOrderInput,
    UpsertOrderPayload,
    WinOpportunityPayload,
)
from crm_graph.sales.schema.types import (
    Opportunity,
    Order,
    Payment,
    Pipeline,
    Product,
    Quote,
)
from crm_graph.sales.service import opportunities, orders, pipelines, products, quotes

Version = Annotated[
    int | None,
    strawberry.argument(description="The version you last read; if the record changed since, VERSION_CONFLICT and nothing changes."),
]


def _pk(value: Any, kind: str) -> int | None:
    return decode_global_id(value, kind)[1] if value is not None else None


def _decode(data: dict[str, Any], key: str, kind: str) -> None:
    if data.get(key) is not None:
        data[key] = _pk(data[key], kind)


def _decode_lines(data: dict[str, Any]) -> None:
    for item in data.get("lineItems") or []:
        _decode(item, "productId", "Product")


def _convert(model: Any, cls: Any) -> Any:
    return cls.from_model(model) if model is not None else None


@strawberry.type
class SalesMutation:
    # --- products -------------------------------------------------------------------------

    @access.mutation("products", "create", description="Add a product to the catalogue.")
    async def create_product(
        self,
        info: Info,
        input: Annotated[CreateProductInput, strawberry.argument(description="The product to add.")],
    ) -> ProductPayload:
        data, actor = to_plain(input), info.context.actor
        model, errors = await unit_of_work(info, lambda s: products.create_product(s, actor=actor, data=data))
        return ProductPayload(product=_convert(model, Product), errors=errors)

    @access.mutation("products", "update", description="Change a product. Existing line items keep the prices they were written with.")
    async def update_product(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The product to change (Product ID).")],
        input: Annotated[UpdateProductInput, strawberry.argument(description="What to change.")],
        expected_version: Version = None,
    ) -> ProductPayload:
        pk, data, actor = _pk(id, "Product"), to_plain(input, keep_null=True), info.context.actor
        model, errors = await unit_of_work(
            info, lambda s: products.update_product(s, actor=actor, product_id=pk, data=data, expected_version=expected_version)
        )
        return ProductPayload(product=_convert(model, Product), errors=errors)

    # --- pipelines ------------------------------------------------------------------------

    @access.mutation("pipelines", "create", description="Create a pipeline with its ordered stages.")
    async def create_pipeline(
        self,
        info: Info,
        input: Annotated[CreatePipelineInput, strawberry.argument(description="The pipeline and its stages.")],
    ) -> PipelinePayload:
        data, actor = to_plain(input), info.context.actor
        model, errors = await unit_of_work(info, lambda s: pipelines.create_pipeline(s, actor=actor, data=data))
        return PipelinePayload(pipeline=_convert(model, Pipeline), errors=errors)

    @access.mutation(
        "pipelines", "update",
        description="Rename a pipeline, make it the default, or change its stages: rename, add, re-order, re-weight; "
        "remove a stage that holds opportunities only by moving them with `moveOpportunities`."
    )
    async def update_pipeline(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The pipeline to change (Pipeline ID).")],
        input: Annotated[UpdatePipelineInput, strawberry.argument(description="What to change.")],
        expected_version: Version = None,
    ) -> PipelinePayload:
        pk, data, actor = _pk(id, "Pipeline"), to_plain(input, keep_null=True), info.context.actor
        for stage in data.get("stages") or []:
            _decode(stage, "id", "PipelineStage")
        for move in data.get("moveOpportunities") or []:
            _decode(move, "fromStageId", "PipelineStage")
            _decode(move, "toStageId", "PipelineStage")
        model, errors = await unit_of_work(
            info, lambda s: pipelines.update_pipeline(s, actor=actor, pipeline_id=pk, data=data, expected_version=expected_version)
        )
        return PipelinePayload(pipeline=_convert(model, Pipeline), errors=errors)

    # --- opportunities --------------------------------------------------------------------

    @access.mutation("opportunities", "create", description="Open an opportunity, with line items or an amount.")
    async def create_opportunity(
        self,
        info: Info,
        input: Annotated[CreateOpportunityInput, strawberry.argument(description="The opportunity to open.")],
    ) -> OpportunityPayload:
        data, actor = to_plain(input), info.context.actor
        _decode(data, "customerId", "Customer")
        _decode(data, "pipelineId", "Pipeline")
        _decode(data, "stageId", "PipelineStage")
        _decode_lines(data)
        model, errors = await unit_of_work(info, lambda s: opportunities.create_opportunity(s, actor=actor, data=data))
        return OpportunityPayload(opportunity=_convert(model, Opportunity), errors=errors)

    @access.mutation("opportunities", "update", description="Change an opportunity. Its stage changes through moveOpportunity, winOpportunity and loseOpportunity.")
    async def update_opportunity(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The opportunity to change (Opportunity ID).")],
        input: Annotated[UpdateOpportunityInput, strawberry.argument(description="What to change.")],
        expected_version: Version = None,
    ) -> OpportunityPayload:
        pk, data, actor = _pk(id, "Opportunity"), to_plain(input, keep_null=True), info.context.actor
        _decode(data, "customerId", "Customer")
        _decode_lines(data)
        model, errors = await unit_of_work(
            info,
            lambda s: opportunities.update_opportunity(s, actor=actor, opportunity_id=pk, data=data, expected_version=expected_version),
        )
        return OpportunityPayload(opportunity=_convert(model, Opportunity), errors=errors)

    @access.mutation("opportunities", "update", description="Move an opportunity to another OPEN stage of its pipeline (this revives a lost one).")
    async def move_opportunity(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="The opportunity to move (Opportunity ID); a WON one cannot move (INVALID_STATE)."
            ),
        ],
        stage_id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="An OPEN stage of the opportunity's pipeline (PipelineStage ID); WRONG_PIPELINE or CLOSED_STAGE "
                "otherwise. Its current stage changes nothing."
            ),
        ],
        expected_version: Version = None,
    ) -> OpportunityPayload:
        pk, stage, actor = _pk(id, "Opportunity"), _pk(stage_id, "PipelineStage"), info.context.actor
        model, errors = await unit_of_work(
            info,
            lambda s: opportunities.move_opportunity(s, actor=actor, opportunity_id=pk, stage_id=stage, expected_version=expected_version),
        )
        return OpportunityPayload(opportunity=_convert(model, Opportunity), errors=errors)

    # Winning creates the order too; the permission is the opportunity's (as for acceptQuote).
    @access.mutation("opportunities", "update", description="Close as won: move to the WON stage and create the order. Winning again returns the same order.")
    async def win_opportunity(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="The opportunity to win (Opportunity ID); a LOST one must first move to an OPEN stage."
            ),
        ],
        expected_version: Version = None,
    ) -> WinOpportunityPayload:
        pk, actor = _pk(id, "Opportunity"), info.context.actor
        result, errors = await unit_of_work(
            info, lambda s: opportunities.win_opportunity(s, actor=actor, opportunity_id=pk, expected_version=expected_version)
        )
        opportunity, order = result if result is not None else (None, None)
        return WinOpportunityPayload(opportunity=_convert(opportunity, Opportunity), order=_convert(order, Order), errors=errors)

    @access.mutation("opportunities", "update", description="Close as lost, with a reason.")
    async def lose_opportunity(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="The opportunity to lose (Opportunity ID); a WON one cannot be lost (INVALID_STATE), a LOST one "
                "stays as it is."
            ),
        ],
        reason: Annotated[str | None, strawberry.argument(description="Why it was lost, at most 500 characters.")] = None,
        expected_version: Version = None,
    ) -> OpportunityPayload:
        pk, actor = _pk(id, "Opportunity"), info.context.actor
        model, errors = await unit_of_work(
            info,
            lambda s: opportunities.lose_opportunity(s, actor=actor, opportunity_id=pk, reason=reason, expected_version=expected_version),
        )
        return OpportunityPayload(opportunity=_convert(model, Opportunity), errors=errors)

    @access.mutation("opportunities", "delete", description="Soft-delete an opportunity: it leaves lists, the customer and the summary until restored.")
    async def delete_opportunity(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The opportunity to delete (Opportunity ID).")],
    ) -> OpportunityPayload:
        pk, actor = _pk(id, "Opportunity"), info.context.actor
        model, errors = await unit_of_work(info, lambda s: opportunities.delete_opportunity(s, actor=actor, opportunity_id=pk))
        return OpportunityPayload(opportunity=_convert(model, Opportunity), errors=errors)

    # Restoring undoes a delete, so it needs what deleting needs.
    @access.mutation("opportunities", "delete", description="Bring back a deleted opportunity.")
    async def restore_opportunity(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="The deleted opportunity (Opportunity ID); restoring a live one changes nothing."
            ),
        ],
    ) -> OpportunityPayload:
        pk, actor = _pk(id, "Opportunity"), info.context.actor
        model, errors = await unit_of_work(info, lambda s: opportunities.restore_opportunity(s, actor=actor, opportunity_id=pk))
        return OpportunityPayload(opportunity=_convert(model, Opportunity), errors=errors)

    # --- quotes ---------------------------------------------------------------------------

    @access.mutation("quotes", "create", description="Make a DRAFT quote from an open opportunity; it copies the line items.")
    async def create_quote(
        self,
        info: Info,
        input: Annotated[CreateQuoteInput, strawberry.argument(description="What to quote.")],
    ) -> QuotePayload:
        data, actor = to_plain(input), info.context.actor
        _decode(data, "opportunityId", "Opportunity")
        model, errors = await unit_of_work(info, lambda s: quotes.create_quote(s, actor=actor, data=data))
        return QuotePayload(quote=_convert(model, Quote), errors=errors)

    @access.mutation("quotes", "update", description="Mark a DRAFT quote as SENT to the customer.")
    async def send_quote(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="The DRAFT quote (Quote ID); a SENT one stays as it is, an EXPIRED one is QUOTE_EXPIRED."
            ),
        ],
    ) -> QuotePayload:
        pk, actor = _pk(id, "Quote"), info.context.actor
        model, errors = await unit_of_work(info, lambda s: quotes.send_quote(s, actor=actor, quote_id=pk))
        return QuotePayload(quote=_convert(model, Quote), errors=errors)

    # Accepting creates the order and wins the opportunity; the permission is the quote's.
    @access.mutation("quotes", "update", description="The customer accepted a SENT quote: creates the order and wins the opportunity.")
    async def accept_quote(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="The SENT quote (Quote ID); accepting it again returns the same order. EXPIRED: QUOTE_EXPIRED; "
                "DRAFT: INVALID_STATE."
            ),
        ],
    ) -> AcceptQuotePayload:
        pk, actor = _pk(id, "Quote"), info.context.actor
        result, errors = await unit_of_work(info, lambda s: quotes.accept_quote(s, actor=actor, quote_id=pk))
        quote, order = result if result is not None else (None, None)
        return AcceptQuotePayload(quote=_convert(quote, Quote), order=_convert(order, Order), errors=errors)

    @access.mutation("quotes", "update", description="The customer declined a SENT quote.")
    async def reject_quote(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="The SENT quote (Quote ID), expired or not; rejecting it again changes nothing."
            ),
        ],
        reason: Annotated[
            str | None, strawberry.argument(description="Why the customer declined, at most 500 characters.")
        ] = None,
    ) -> QuotePayload:
        pk, actor = _pk(id, "Quote"), info.context.actor
        model, errors = await unit_of_work(info, lambda s: quotes.reject_quote(s, actor=actor, quote_id=pk, reason=reason))
        return QuotePayload(quote=_convert(model, Quote), errors=errors)

    # --- orders and payments ----------------------------------------------------------------

    @access.mutation("orders", "create", description="Record an order. With an `externalRef` that exists already, returns that order unchanged.")
    async def create_order(
        self,
        info: Info,
        input: Annotated[CreateOrderInput, strawberry.argument(description="The order to record.")],
    ) -> OrderPayload:
        data, actor = to_plain(input), info.context.actor
        _decode(data, "customerId", "Customer")
        _decode_lines(data)
        model, errors = await unit_of_work(info, lambda s: orders.create_order(s, actor=actor, data=data))
        return OrderPayload(order=_convert(model, Order), errors=errors)

    # An upsert creates or updates; syncing systems mostly create, so it needs `orders:create`.
    @access.mutation(
        "orders", "create",
        description="Create or update the order with this `externalRef` (for systems that sync orders): the same "
        "payload twice yields one order and no change; a changed payload updates it and bumps its version."
    )
    async def upsert_order(
        self,
        info: Info,
        input: Annotated[UpsertOrderInput, strawberry.argument(description="The order as the other system has it now.")],
    ) -> UpsertOrderPayload:
        data, actor = to_plain(input), info.context.actor
        _decode(data, "customerId", "Customer")
        _decode_lines(data)
        result, errors = await unit_of_work(info, lambda s: orders.upsert_order(s, actor=actor, data=data))
        order, created = result if result is not None else (None, False)
        return UpsertOrderPayload(order=_convert(order, Order), created=created, errors=errors)

    @access.mutation("orders", "update", description="Move an order along PENDING -> CONFIRMED -> FULFILLED, or cancel or refund it.")
    async def update_order_status(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The order (Order ID).")],
        status: Annotated[
            m.OrderStatus,
            strawberry.argument(
                description="The new status; a move the order does not allow is INVALID_STATE. Its current status changes "
                "nothing."
            ),
        ],
        expected_version: Version = None,
    ) -> OrderPayload:
        pk, actor = _pk(id, "Order"), info.context.actor
        model, errors = await unit_of_work(
            info,
            lambda s: orders.update_order_status(s, actor=actor, order_id=pk, status=status, expected_version=expected_version),
        )
        return OrderPayload(order=_convert(model, Order), errors=errors)

    @access.mutation("orders", "update", description="Record a payment for an order. With `externalRef`, sending it twice records it once.")
    async def record_payment(
        self,
        info: Info,
        input: Annotated[RecordPaymentInput, strawberry.argument(description="The payment received.")],
    ) -> RecordPaymentPayload:
        data, actor = to_plain(input), info.context.actor
        _decode(data, "orderId", "Order")
        result, errors = await unit_of_work(info, lambda s: orders.record_payment(s, actor=actor, data=data))
        payment, order = result if result is not None else (None, None)
        return RecordPaymentPayload(payment=_convert(payment, Payment), order=_convert(order, Order), errors=errors)
