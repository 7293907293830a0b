"""GraphQL inputs of the sales domain: filters, orderings, mutation inputs and payloads."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.types.unset import UNSET

from crm_graph.customers.models import AcquisitionChannel
from crm_graph.customers.schema import AcquisitionChannelFilter, ExternalRefInput
from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.errors import UserError
from crm_graph.graphql.inputs import (
    DateFilter,
    DateTimeFilter,
    DecimalFilter,
    StringFilter,
    TagsFilter,
    enum_filter,
    order_input,
)
from crm_graph.graphql.money import MoneyInput
from crm_graph.graphql.relay import decode_global_id
from crm_graph.sales import models as m
from crm_graph.sales.schema.types import (
    Opportunity,
    Order,
    Payment,
    Pipeline,
    Product,
    Quote,
)

# --- filters ----------------------------------------------------------------------------------


@strawberry.input(description="Conditions on a reference to another object, by global ID.")
class SalesIdFilter:
    eq: strawberry.ID | None = strawberry.field(
        default=None,
        description="References this object: a global ID of the type the field names (INVALID_ID for another type)."
    )
    neq: strawberry.ID | None = strawberry.field(
        default=None, description="Does not reference this object; records without a reference match too."
    )
    in_: list[strawberry.ID] | None = strawberry.field(default=None, name="in", description="References one of these objects.")
    is_null: bool | None = strawberry.field(default=None, description="true: there is no reference; false: there is one.")


OpportunityStatusFilter = enum_filter(m.OpportunityStatus, "OpportunityStatusFilter")
QuoteStatusFilter = enum_filter(m.QuoteStatus, "QuoteStatusFilter")
OrderStatusFilter = enum_filter(m.OrderStatus, "OrderStatusFilter")
PaymentStatusFilter = enum_filter(m.PaymentStatus, "PaymentStatusFilter")
OrderOriginFilter = enum_filter(m.OrderOrigin, "OrderOriginFilter")


def decode_ids(plain: Any, kinds: Mapping[str, str]) -> Any:
    """Replace the global IDs of ``SalesIdFilter`` fields (at any and/or/not depth) by primary keys."""
    if isinstance(plain, list):
        return [decode_ids(item, kinds) for item in plain]
    if not isinstance(plain, Mapping):
        return plain
    out: dict[str, Any] = {}
    for key, value in plain.items():
        if key in ("and", "or", "not"):
            out[key] = decode_ids(value, kinds)
        elif key in kinds and isinstance(value, Mapping):
            ops: dict[str, Any] = {}
            for op, operand in value.items():
                if op == "in":
                    ops[op] = [decode_global_id(v, kinds[key])[1] for v in operand]
                elif op in ("eq", "neq"):
                    ops[op] = decode_global_id(operand, kinds[key])[1]
                else:
                    ops[op] = operand
            out[key] = ops
        else:
            out[key] = value
    return out


@strawberry.input(description="Conditions on products; fields combine with AND, and `and`/`or`/`not` nest.")
class ProductFilter:
    and_: list[ProductFilter] | None = strawberry.field(
        default=None, name="and", description="Matches when every one of these filters matches."
    )
    or_: list[ProductFilter] | None = strawberry.field(
        default=None, name="or", description="Matches when at least one of these filters matches."
    )
    not_: ProductFilter | None = strawberry.field(default=None, name="not", description="Matches when this filter does not.")
    sku: StringFilter | None = strawberry.field(default=None, description="The SKU.")
    name: StringFilter | None = strawberry.field(default=None, description="The product name.")
    active: bool | None = strawberry.field(default=None, description="true: only products for sale.")
    tags: TagsFilter | None = strawberry.field(default=None, description="The product's tags.")
    currency: StringFilter | None = strawberry.field(default=None, description="The ISO 4217 code of the list price.")
    unit_price: DecimalFilter | None = strawberry.field(default=None, description="On the amount, in the product's own currency.")
    created_at: DateTimeFilter | None = strawberry.field(default=None, description="When the product was created.")
    updated_at: DateTimeFilter | None = strawberry.field(default=None, description="When the product last changed.")


@strawberry.input(description="Conditions on opportunities; fields combine with AND, and `and`/`or`/`not` nest.")
class OpportunityFilter:
    and_: list[OpportunityFilter] | None = strawberry.field(
        default=None, name="and", description="Matches when every one of these filters matches."
    )
    or_: list[OpportunityFilter] | None = strawberry.field(
        default=None, name="or", description="Matches when at least one of these filters matches."
    )
    not_: OpportunityFilter | None = strawberry.field(default=None, name="not", description="Matches when this filter does not.")
    title: StringFilter | None = strawberry.field(default=None, description="The title.")
    status: OpportunityStatusFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="The status."
    )
    stage: SalesIdFilter | None = strawberry.field(default=None, description="The stage it is in (PipelineStage IDs).")
    pipeline: SalesIdFilter | None = strawberry.field(default=None, description="Its pipeline (Pipeline IDs).")
    customer: SalesIdFilter | None = strawberry.field(default=None, description="Its customer (Customer IDs).")
    amount: DecimalFilter | None = strawberry.field(default=None, description="On the amount, in the opportunity's currency.")
    currency: StringFilter | None = strawberry.field(default=None, description="The ISO 4217 code of its amount.")
    expected_close_date: DateFilter | None = strawberry.field(
        default=None, description="The expected close date; `isNull: true` finds opportunities without one."
    )
    owner: StringFilter | None = strawberry.field(
        default=None, description="The free-text owner (see the deprecated `Opportunity.owner`)."
    )
    source: AcquisitionChannelFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="The channel the deal came from."
    )
    closed_at: DateTimeFilter | None = strawberry.field(
        default=None, description="When it was won or lost; `isNull: true` finds open ones."
    )
    created_at: DateTimeFilter | None = strawberry.field(default=None, description="When it was created.")
    updated_at: DateTimeFilter | None = strawberry.field(default=None, description="When it last changed.")


OPPORTUNITY_IDS = {"stage": "PipelineStage", "pipeline": "Pipeline", "customer": "Customer"}


@strawberry.input(description="Conditions on quotes. `status: {eq: EXPIRED}` finds open quotes past their validity date.")
class QuoteFilter:
    and_: list[QuoteFilter] | None = strawberry.field(
        default=None, name="and", description="Matches when every one of these filters matches."
    )
    or_: list[QuoteFilter] | None = strawberry.field(
        default=None, name="or", description="Matches when at least one of these filters matches."
    )
    not_: QuoteFilter | None = strawberry.field(default=None, name="not", description="Matches when this filter does not.")
    number: StringFilter | None = strawberry.field(default=None, description="The quote number, e.g. `Q-2026-0001`.")
    status: QuoteStatusFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="The status as of today, EXPIRED included."
    )
    customer: SalesIdFilter | None = strawberry.field(default=None, description="Its customer (Customer IDs).")
    opportunity: SalesIdFilter | None = strawberry.field(
        default=None, description="The opportunity it was made from (Opportunity IDs)."
    )
    currency: StringFilter | None = strawberry.field(default=None, description="The ISO 4217 code of its amounts.")
    total: DecimalFilter | None = strawberry.field(default=None, description="The total amount, in the quote's own currency.")
    valid_until: DateFilter | None = strawberry.field(default=None, description="The last valid day.")
    created_at: DateTimeFilter | None = strawberry.field(default=None, description="When it was made.")


QUOTE_IDS = {"customer": "Customer", "opportunity": "Opportunity"}


@strawberry.input(description="An order's reference in another system; both parts are compared exactly.")
class ExternalRefFilter:
    system: str | None = strawberry.field(default=None, description="The other system's name; omitted: any system.")
    external_id: str | None = strawberry.field(default=None, description="The ID in that system; omitted: any ID.")


@strawberry.input(description="Conditions on orders; fields combine with AND, and `and`/`or`/`not` nest.")
class OrderFilter:
    and_: list[OrderFilter] | None = strawberry.field(
        default=None, name="and", description="Matches when every one of these filters matches."
    )
    or_: list[OrderFilter] | None = strawberry.field(
        default=None, name="or", description="Matches when at least one of these filters matches."
    )
    not_: OrderFilter | None = strawberry.field(default=None, name="not", description="Matches when this filter does not.")
    number: StringFilter | None = strawberry.field(default=None, description="The order number, e.g. `SO-2026-000001`.")
    status: OrderStatusFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="The order status."
    )
    payment_status: PaymentStatusFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="The payment status."
    )
    origin: OrderOriginFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Where the order came from."
    )
    customer: SalesIdFilter | None = strawberry.field(default=None, description="Its customer (Customer IDs).")
    opportunity: SalesIdFilter | None = strawberry.field(
        default=None, description="The opportunity it came from (Opportunity IDs); `isNull: true` finds orders without one."
    )
    currency: StringFilter | None = strawberry.field(default=None, description="The ISO 4217 code of its amounts.")
    total: DecimalFilter | None = strawberry.field(default=None, description="The total amount, in the order's own currency.")
    ordered_at: DateTimeFilter | None = strawberry.field(default=None, description="When it was placed.")
    created_at: DateTimeFilter | None = strawberry.field(default=None, description="When it was recorded.")
    external_ref: ExternalRefFilter | None = strawberry.field(
        default=None, description="Orders that have a matching reference in another system."
    )


ORDER_IDS = {"customer": "Customer", "opportunity": "Opportunity"}


# --- orderings ----------------------------------------------------------------------------------


class ProductOrderField(enum.Enum):
    NAME = "NAME"
    SKU = "SKU"
    UNIT_PRICE = "UNIT_PRICE"
    CREATED_AT = "CREATED_AT"


graphql_enum(
    ProductOrderField,
    "Fields products can be sorted by.",
    {
        "NAME": "By name (the default).",
        "SKU": "By SKU.",
        "UNIT_PRICE": "By the amount of the list price, whatever its currency.",
        "CREATED_AT": "By creation time.",
    },
)

ProductOrder = order_input(ProductOrderField, "ProductOrder")


class OpportunityOrderField(enum.Enum):
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"
    EXPECTED_CLOSE_DATE = "EXPECTED_CLOSE_DATE"
    AMOUNT = "AMOUNT"
    TITLE = "TITLE"


graphql_enum(
    OpportunityOrderField,
    "Fields opportunities can be sorted by. EXPECTED_CLOSE_DATE puts missing dates last (ascending).",
    {
        "CREATED_AT": "By creation time (the default, newest first).",
        "UPDATED_AT": "By the time of the last change.",
        "EXPECTED_CLOSE_DATE": "By expected close date; a missing date sorts after every real one.",
        "AMOUNT": "By amount, whatever its currency.",
        "TITLE": "By title.",
    },
)

OpportunityOrder = order_input(OpportunityOrderField, "OpportunityOrder")


class QuoteOrderField(enum.Enum):
    CREATED_AT = "CREATED_AT"
    NUMBER = "NUMBER"
    VALID_UNTIL = "VALID_UNTIL"
    TOTAL = "TOTAL"


graphql_enum(
    QuoteOrderField,
    "Fields quotes can be sorted by.",
    {
        "CREATED_AT": "By creation time (the default, newest first).",
        "NUMBER": "By quote number.",
        "VALID_UNTIL": "By the last valid day.",
        "TOTAL": "By total, whatever its currency.",
    },
)

QuoteOrder = order_input(QuoteOrderField, "QuoteOrder")


class OrderOrderField(enum.Enum):
    ORDERED_AT = "ORDERED_AT"
    CREATED_AT = "CREATED_AT"
    NUMBER = "NUMBER"
    TOTAL = "TOTAL"


graphql_enum(
    OrderOrderField,
    "Fields orders can be sorted by.",
    {
        "ORDERED_AT": "By the time the order was placed (the default, most recent first).",
        "CREATED_AT": "By the time the order was recorded.",
        "NUMBER": "By order number.",
        "TOTAL": "By total, whatever its currency.",
    },
)

OrderOrder = order_input(OrderOrderField, "OrderOrder")


# --- mutation inputs ------------------------------------------------------------------------------


@strawberry.input(description="A new product; it is for sale unless `active` is false.")
class CreateProductInput:
    sku: str = strawberry.field(description="Unique; letters, digits, `.`, `-`, `_`, `/`.")
    name: str = strawberry.field(description="Display name, at most 200 characters.")
    unit_price: MoneyInput = strawberry.field(description="List price; at most 4 decimal places.")
    description: str | None = strawberry.field(default=None, description="Longer text, at most 10,000 characters.")
    active: bool | None = strawberry.field(default=None, description="Defaults to true.")
    tags: list[str] | None = strawberry.field(
        default=None, description="Trimmed, lower-cased and de-duplicated; at most 30 tags of up to 64 characters."
    )


@strawberry.input(description="Fields to change; omitted fields stay as they are.")
class UpdateProductInput:
    sku: str | None = strawberry.field(default=UNSET, description="New SKU; DUPLICATE if another product has it.")
    name: str | None = strawberry.field(default=UNSET, description="New display name, at most 200 characters.")
    description: str | None = strawberry.field(default=UNSET, description="New description; null clears it.")
    unit_price: MoneyInput | None = strawberry.field(
        default=UNSET, description="New list price; line items written before keep their prices."
    )
    active: bool | None = strawberry.field(
        default=UNSET, description="false takes the product off sale: it can no longer be added to opportunities."
    )
    tags: list[str] | None = strawberry.field(
        default=UNSET, description="Replaces the tags; null or an empty list removes them all."
    )


@strawberry.input(description="A stage of a pipeline. In updatePipeline, give the `id` of a stage to keep it.")
class StageInput:
    name: str = strawberry.field(description="Unique within the pipeline (ignoring case), at most 100 characters.")
    id: strawberry.ID | None = strawberry.field(default=None, description="An existing stage to keep (rename, re-weight, re-order).")
    kind: m.StageKind = strawberry.field(default=m.StageKind.OPEN, description="OPEN (the default), WON or LOST.")
    probability: int | None = strawberry.field(default=None, description="0-100; required for OPEN stages (WON is 100, LOST 0).")


@strawberry.input(
    description="A new pipeline. While no pipeline is the default, the new one becomes it whatever `isDefault` says."
)
class CreatePipelineInput:
    name: str = strawberry.field(description="Unique name (ignoring case), at most 100 characters; DUPLICATE otherwise.")
    stages: list[StageInput] = strawberry.field(description="In order: at least one OPEN, exactly one WON and one LOST stage.")
    is_default: bool | None = strawberry.field(default=None, description="Make it the default pipeline.")


@strawberry.input(description="Where the opportunities of a removed stage go.")
class StageMoveInput:
    from_stage_id: strawberry.ID = strawberry.field(description="A stage this update removes (PipelineStage ID).")
    to_stage_id: strawberry.ID = strawberry.field(description="A stage the pipeline keeps, of the same kind (PipelineStage ID).")


@strawberry.input(description="Omitted fields stay as they are. `stages` is the whole new ordered list.")
class UpdatePipelineInput:
    name: str | None = strawberry.field(default=UNSET, description="New name; unique, ignoring case.")
    is_default: bool | None = strawberry.field(
        default=UNSET,
        description="true makes it the default pipeline instead of the current one; false on the default pipeline is "
        "INVALID_VALUE."
    )
    stages: list[StageInput] | None = strawberry.field(
        default=UNSET,
        description="Stages with an `id` are kept, stages without one added, live stages left out removed (STAGE_IN_USE if "
        "opportunities are in them and not moved)."
    )
    move_opportunities: list[StageMoveInput] | None = strawberry.field(
        default=UNSET, description="For each removed stage that holds opportunities: the kept stage they move to."
    )


@strawberry.input(description="A line of an opportunity.")
class OpportunityLineInput:
    product_id: strawberry.ID = strawberry.field(
        description="The product sold (Product ID). An inactive product is PRODUCT_INACTIVE unless the opportunity has it "
        "already."
    )
    quantity: Decimal | None = strawberry.field(default=None, description="Defaults to 1; up to 4 decimal places.")
    unit_price: MoneyInput | None = strawberry.field(default=None, description="Defaults to the product's price.")
    discount_percent: Decimal | None = strawberry.field(default=None, description="0-100; defaults to 0.")
    description: str | None = strawberry.field(default=None, description="Defaults to the product's name.")


@strawberry.input(
    description="A new OPEN opportunity: in `stageId`, else in the first OPEN stage of its pipeline. Give line "
    "items, or an amount, or only a currency."
)
class CreateOpportunityInput:
    title: str = strawberry.field(description="What the deal is about, at most 300 characters.")
    customer_id: strawberry.ID = strawberry.field(description="The customer the deal is with (Customer ID).")
    pipeline_id: strawberry.ID | None = strawberry.field(default=None, description="Defaults to the default pipeline.")
    stage_id: strawberry.ID | None = strawberry.field(default=None, description="An OPEN stage; defaults to the pipeline's first.")
    owner: str | None = strawberry.field(
        default=None, description="Free text, at most 200 characters (see the deprecated `Opportunity.owner`)."
    )
    amount: MoneyInput | None = strawberry.field(default=None, description="Only without line items (then the amount is their sum).")
    currency: str | None = strawberry.field(default=None, description="Defaults to the amount's or the first line's currency.")
    expected_close_date: date | None = strawberry.field(default=None, description="When the deal is expected to close.")
    source: AcquisitionChannel | None = strawberry.field(default=None, description="The channel the deal came from.")
    probability: int | None = strawberry.field(default=None, description="Set by hand (0-100); otherwise the stage's.")
    line_items: list[OpportunityLineInput] | None = strawberry.field(
        default=None, description="The products of the deal (at most 100, one currency); the amount is their sum."
    )


@strawberry.input(description="Fields to change. Omitted fields stay; null clears; `lineItems` is replaced whole. "
                  "`probability: null` goes back to the stage's probability.")
class UpdateOpportunityInput:
    title: str | None = strawberry.field(default=UNSET, description="New title, at most 300 characters; cannot be cleared.")
    customer_id: strawberry.ID | None = strawberry.field(
        default=UNSET, description="Another customer for the deal (Customer ID)."
    )
    owner: str | None = strawberry.field(default=UNSET, description="Free text, at most 200 characters; null clears it.")
    amount: MoneyInput | None = strawberry.field(
        default=UNSET, description="The amount by hand, only for an opportunity without line items; null sets it to 0."
    )
    currency: str | None = strawberry.field(
        default=UNSET, description="New ISO 4217 currency; existing line items must then be sent again in it."
    )
    expected_close_date: date | None = strawberry.field(default=UNSET, description="null clears it.")
    source: AcquisitionChannel | None = strawberry.field(default=UNSET, description="null clears it.")
    probability: int | None = strawberry.field(
        default=UNSET, description="0-100 by hand; null goes back to the stage's probability."
    )
    line_items: list[OpportunityLineInput] | None = strawberry.field(
        default=UNSET, description="Replaces every line; null or an empty list removes them (the amount becomes 0)."
    )


@strawberry.input(
    description="A quote to make from an OPEN opportunity, in its currency. An opportunity without lines is "
    "quoted as one line of its amount; with neither, NOTHING_TO_QUOTE."
)
class CreateQuoteInput:
    opportunity_id: strawberry.ID = strawberry.field(description="The quote copies the opportunity's line items.")
    valid_until: date | None = strawberry.field(default=None, description="Defaults to 30 days from today.")
    tax_rate: Decimal | None = strawberry.field(default=None, description="Percent, e.g. `19`; defaults to 0.")


@strawberry.input(description="A line of an order: a product (by ID or SKU), or a description and a unit price.")
class OrderLineInput:
    product_id: strawberry.ID | None = strawberry.field(
        default=None, description="The product sold (Product ID); NOT_FOUND if there is none."
    )
    sku: str | None = strawberry.field(default=None, description="Links the product with this SKU, if there is one.")
    description: str | None = strawberry.field(
        default=None, description="Text of the line; defaults to the product's name, and is required without a product."
    )
    quantity: Decimal | None = strawberry.field(default=None, description="Defaults to 1.")
    unit_price: MoneyInput | None = strawberry.field(default=None, description="Defaults to the product's price.")
    discount_percent: Decimal | None = strawberry.field(default=None, description="0-100; defaults to 0.")


@strawberry.input(description="A new order; its payment status starts UNPAID.")
class CreateOrderInput:
    customer_id: strawberry.ID = strawberry.field(description="The customer who buys (Customer ID).")
    line_items: list[OrderLineInput] = strawberry.field(
        description="At least one line and at most 100, all in the order's currency."
    )
    currency: str | None = strawberry.field(default=None, description="Defaults to the first line's currency.")
    tax_rate: Decimal | None = strawberry.field(default=None, description="Percent; defaults to 0.")
    ordered_at: datetime | None = strawberry.field(default=None, description="Defaults to now.")
    status: m.OrderStatus | None = strawberry.field(default=None, description="PENDING (default), CONFIRMED or FULFILLED.")
    external_ref: ExternalRefInput | None = strawberry.field(
        default=None, description="With a reference that exists already, the existing order is returned unchanged."
    )


@strawberry.input(description="An order from another system, identified by its external reference.")
class UpsertOrderInput:
    external_ref: ExternalRefInput = strawberry.field(
        description="The order's ID in the other system: the same reference is always the same order."
    )
    customer_id: strawberry.ID = strawberry.field(description="The customer who buys (Customer ID).")
    line_items: list[OrderLineInput] = strawberry.field(
        description="Every line (at least one, at most 100); they replace the order's lines when they differ."
    )
    currency: str | None = strawberry.field(
        default=None, description="ISO 4217; defaults to the first line's currency. It cannot change once payments are recorded."
    )
    tax_rate: Decimal | None = strawberry.field(default=None, description="Percent; omitted means 0, on an update too.")
    ordered_at: datetime | None = strawberry.field(
        default=None, description="When it was placed; defaults to now for a new order, and omitted keeps it on an update."
    )
    status: m.OrderStatus | None = strawberry.field(default=None, description="A change must follow the allowed transitions.")


@strawberry.input(description="A payment received for an order, in the order's currency.")
class RecordPaymentInput:
    order_id: strawberry.ID = strawberry.field(
        description="The order paid for (Order ID); a CANCELLED or REFUNDED order takes none (INVALID_STATE)."
    )
    amount: MoneyInput = strawberry.field(description="More than 0, at most the balance due, in the order's currency.")
    paid_at: datetime | None = strawberry.field(default=None, description="Defaults to now.")
    external_ref: ExternalRefInput | None = strawberry.field(
        default=None, description="The payment's ID in the payment system: sending it twice records one payment."
    )


# --- payloads ---------------------------------------------------------------------------------------


@strawberry.type(description="Result of createProduct and updateProduct.")
class ProductPayload:
    product: Product | None = strawberry.field(description="The product as saved; null when there are errors.")
    errors: list[UserError]


@strawberry.type(description="Result of createPipeline and updatePipeline.")
class PipelinePayload:
    pipeline: Pipeline | None = strawberry.field(
        description="The pipeline as saved, with its stages; null when there are errors."
    )
    errors: list[UserError]


@strawberry.type(description="Result of the mutations that change one opportunity.")
class OpportunityPayload:
    opportunity: Opportunity | None = strawberry.field(
        description="The opportunity after the change; null when there are errors."
    )
    errors: list[UserError]


@strawberry.type(description="Result of winOpportunity.")
class WinOpportunityPayload:
    opportunity: Opportunity | None = strawberry.field(description="The won opportunity; null when there are errors.")
    order: Order | None = strawberry.field(description="Created from the line items (or the amount); null if there was nothing to sell.")
    errors: list[UserError]


@strawberry.type(description="Result of createQuote, sendQuote and rejectQuote.")
class QuotePayload:
    quote: Quote | None = strawberry.field(description="The quote after the change; null when there are errors.")
    errors: list[UserError]


@strawberry.type(description="Result of acceptQuote.")
class AcceptQuotePayload:
    quote: Quote | None = strawberry.field(description="The accepted quote; null when there are errors.")
    order: Order | None = strawberry.field(
        description="The order made from the quote (the same one when accepted again); null when there are errors."
    )
    errors: list[UserError]


@strawberry.type(description="Result of createOrder and updateOrderStatus.")
class OrderPayload:
    order: Order | None = strawberry.field(description="The order after the change; null when there are errors.")
    errors: list[UserError]


@strawberry.type(description="Result of upsertOrder.")
class UpsertOrderPayload:
    order: Order | None = strawberry.field(description="The created, updated or unchanged order; null when there are errors.")
    created: bool = strawberry.field(description="True when this call created the order; false when it existed.")
    errors: list[UserError]


@strawberry.type(description="Result of recordPayment.")
class RecordPaymentPayload:
    payment: Payment | None = strawberry.field(
        description="The payment recorded, or the earlier one with the same `externalRef`; null when there are errors."
    )
    order: Order | None = strawberry.field(
        description="The order with its paid amount and payment status brought up to date; null when there are errors."
    )
    errors: list[UserError]
