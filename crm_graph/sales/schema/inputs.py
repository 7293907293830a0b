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
    eq: strawberry.ID | None = None
    neq: strawberry.ID | None = None
    in_: list[strawberry.ID] | None = strawberry.field(default=None, name="in")
    is_null: bool | None = None


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
    and_: list[ProductFilter] | None = strawberry.field(default=None, name="and")
    or_: list[ProductFilter] | None = strawberry.field(default=None, name="or")
    not_: ProductFilter | None = strawberry.field(default=None, name="not")
    sku: StringFilter | None = None
    name: StringFilter | None = None
    active: bool | None = strawberry.field(default=None, description="true: only products for sale.")
    tags: TagsFilter | None = None
    currency: StringFilter | None = None
    unit_price: DecimalFilter | None = strawberry.field(default=None, description="On the amount, in the product's own currency.")
    created_at: DateTimeFilter | None = None
    updated_at: DateTimeFilter | None = None


@strawberry.input(description="Conditions on opportunities; fields combine with AND, and `and`/`or`/`not` nest.")
class OpportunityFilter:
    and_: list[OpportunityFilter] | None = strawberry.field(default=None, name="and")
    or_: list[OpportunityFilter] | None = strawberry.field(default=None, name="or")
    not_: OpportunityFilter | None = strawberry.field(default=None, name="not")
    title: StringFilter | None = None
    status: OpportunityStatusFilter | None = None  # type: ignore[valid-type]
    stage: SalesIdFilter | None = None
    pipeline: SalesIdFilter | None = None
    customer: SalesIdFilter | None = None
    amount: DecimalFilter | None = strawberry.field(default=None, description="On the amount, in the opportunity's currency.")
    currency: StringFilter | None = None
    expected_close_date: DateFilter | None = None
    owner: StringFilter | None = None
    source: AcquisitionChannelFilter | None = None  # type: ignore[valid-type]
    closed_at: DateTimeFilter | None = None
    created_at: DateTimeFilter | None = None
    updated_at: DateTimeFilter | None = None


OPPORTUNITY_IDS = {"stage": "PipelineStage", "pipeline": "Pipeline", "customer": "Customer"}


@strawberry.input(description="Conditions on quotes. `status: {eq: EXPIRED}` finds open quotes past their validity date.")
class QuoteFilter:
    and_: list[QuoteFilter] | None = strawberry.field(default=None, name="and")
    or_: list[QuoteFilter] | None = strawberry.field(default=None, name="or")
    not_: QuoteFilter | None = strawberry.field(default=None, name="not")
    number: StringFilter | None = None
    status: QuoteStatusFilter | None = None  # type: ignore[valid-type]
    customer: SalesIdFilter | None = None
    opportunity: SalesIdFilter | None = None
    currency: StringFilter | None = None
    total: DecimalFilter | None = None
    valid_until: DateFilter | None = None
    created_at: DateTimeFilter | None = None


QUOTE_IDS = {"customer": "Customer", "opportunity": "Opportunity"}


@strawberry.input(description="An order's reference in another system; both parts are compared exactly.")
class ExternalRefFilter:
    system: str | None = None
    external_id: str | None = None


@strawberry.input(description="Conditions on orders; fields combine with AND, and `and`/`or`/`not` nest.")
class OrderFilter:
    and_: list[OrderFilter] | None = strawberry.field(default=None, name="and")
    or_: list[OrderFilter] | None = strawberry.field(default=None, name="or")
    not_: OrderFilter | None = strawberry.field(default=None, name="not")
    number: StringFilter | None = None
    status: OrderStatusFilter | None = None  # type: ignore[valid-type]
    payment_status: PaymentStatusFilter | None = None  # type: ignore[valid-type]
    origin: OrderOriginFilter | None = None  # type: ignore[valid-type]
    customer: SalesIdFilter | None = None
    opportunity: SalesIdFilter | None = None
    currency: StringFilter | None = None
    total: DecimalFilter | None = None
    ordered_at: DateTimeFilter | None = None
    created_at: DateTimeFilter | None = None
    external_ref: ExternalRefFilter | None = None


ORDER_IDS = {"customer": "Customer", "opportunity": "Opportunity"}


# --- orderings ----------------------------------------------------------------------------------


@strawberry.enum(description="Fields products can be sorted by.")
class ProductOrderField(enum.Enum):
    NAME = "NAME"
    SKU = "SKU"
    UNIT_PRICE = "UNIT_PRICE"
    CREATED_AT = "CREATED_AT"


ProductOrder = order_input(ProductOrderField, "ProductOrder")


@strawberry.enum(description="Fields opportunities can be sorted by. EXPECTED_CLOSE_DATE puts missing dates last (ascending).")
class OpportunityOrderField(enum.Enum):
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"
    EXPECTED_CLOSE_DATE = "EXPECTED_CLOSE_DATE"
    AMOUNT = "AMOUNT"
    TITLE = "TITLE"


OpportunityOrder = order_input(OpportunityOrderField, "OpportunityOrder")


@strawberry.enum(description="Fields quotes can be sorted by.")
class QuoteOrderField(enum.Enum):
    CREATED_AT = "CREATED_AT"
    NUMBER = "NUMBER"
    VALID_UNTIL = "VALID_UNTIL"
    TOTAL = "TOTAL"


QuoteOrder = order_input(QuoteOrderField, "QuoteOrder")


@strawberry.enum(description="Fields orders can be sorted by.")
class OrderOrderField(enum.Enum):
    ORDERED_AT = "ORDERED_AT"
    CREATED_AT = "CREATED_AT"
    NUMBER = "NUMBER"
    TOTAL = "TOTAL"


OrderOrder = order_input(OrderOrderField, "OrderOrder")


# --- mutation inputs ------------------------------------------------------------------------------


@strawberry.input
class CreateProductInput:
    sku: str = strawberry.field(description="Unique; letters, digits, `.`, `-`, `_`, `/`.")
    name: str
    unit_price: MoneyInput = strawberry.field(description="List price; at most 4 decimal places.")
    description: str | None = None
    active: bool | None = strawberry.field(default=None, description="Defaults to true.")
    tags: list[str] | None = None


@strawberry.input(description="Fields to change; omitted fields stay as they are.")
class UpdateProductInput:
    sku: str | None = UNSET
    name: str | None = UNSET
    description: str | None = UNSET
    unit_price: MoneyInput | None = UNSET
    active: bool | None = UNSET
    tags: list[str] | None = UNSET


@strawberry.input(description="A stage of a pipeline. In updatePipeline, give the `id` of a stage to keep it.")
class StageInput:
    name: str
    id: strawberry.ID | None = strawberry.field(default=None, description="An existing stage to keep (rename, re-weight, re-order).")
    kind: m.StageKind = m.StageKind.OPEN
    probability: int | None = strawberry.field(default=None, description="0-100; required for OPEN stages (WON is 100, LOST 0).")


@strawberry.input
class CreatePipelineInput:
    name: str
    stages: list[StageInput] = strawberry.field(description="In order: at least one OPEN, exactly one WON and one LOST stage.")
    is_default: bool | None = strawberry.field(default=None, description="Make it the default pipeline.")


@strawberry.input(description="Where the opportunities of a removed stage go.")
class StageMoveInput:
    from_stage_id: strawberry.ID
    to_stage_id: strawberry.ID


@strawberry.input(description="Omitted fields stay as they are. `stages` is the whole new ordered list.")
class UpdatePipelineInput:
    name: str | None = UNSET
    is_default: bool | None = UNSET
    stages: list[StageInput] | None = UNSET
    move_opportunities: list[StageMoveInput] | None = strawberry.field(
        default=UNSET, description="For each removed stage that holds opportunities: the kept stage they move to."
    )


@strawberry.input(description="A line of an opportunity.")
class OpportunityLineInput:
    product_id: strawberry.ID
    quantity: Decimal | None = strawberry.field(default=None, description="Defaults to 1; up to 4 decimal places.")
    unit_price: MoneyInput | None = strawberry.field(default=None, description="Defaults to the product's price.")
    discount_percent: Decimal | None = strawberry.field(default=None, description="0-100; defaults to 0.")
    description: str | None = strawberry.field(default=None, description="Defaults to the product's name.")


@strawberry.input
class CreateOpportunityInput:
    title: str
    customer_id: strawberry.ID
    pipeline_id: strawberry.ID | None = strawberry.field(default=None, description="Defaults to the default pipeline.")
    stage_id: strawberry.ID | None = strawberry.field(default=None, description="An OPEN stage; defaults to the pipeline's first.")
    owner: str | None = None
    amount: MoneyInput | None = strawberry.field(default=None, description="Only without line items (then the amount is their sum).")
    currency: str | None = strawberry.field(default=None, description="Defaults to the amount's or the first line's currency.")
    expected_close_date: date | None = None
    source: AcquisitionChannel | None = None
    probability: int | None = strawberry.field(default=None, description="Set by hand (0-100); otherwise the stage's.")
    line_items: list[OpportunityLineInput] | None = None


@strawberry.input(description="Fields to change. Omitted fields stay; null clears; `lineItems` is replaced whole. "
                  "`probability: null` goes back to the stage's probability.")
class UpdateOpportunityInput:
    title: str | None = UNSET
    customer_id: strawberry.ID | None = UNSET
    owner: str | None = UNSET
    amount: MoneyInput | None = UNSET
    currency: str | None = UNSET
    expected_close_date: date | None = UNSET
    source: AcquisitionChannel | None = UNSET
    probability: int | None = UNSET
    line_items: list[OpportunityLineInput] | None = UNSET


@strawberry.input
class CreateQuoteInput:
    opportunity_id: strawberry.ID = strawberry.field(description="The quote copies the opportunity's line items.")
    valid_until: date | None = strawberry.field(default=None, description="Defaults to 30 days from today.")
    tax_rate: Decimal | None = strawberry.field(default=None, description="Percent, e.g. `19`; defaults to 0.")


@strawberry.input(description="A line of an order: a product (by ID or SKU), or a description and a unit price.")
class OrderLineInput:
    product_id: strawberry.ID | None = None
    sku: str | None = strawberry.field(default=None, description="Links the product with this SKU, if there is one.")
    description: str | None = None
    quantity: Decimal | None = strawberry.field(default=None, description="Defaults to 1.")
    unit_price: MoneyInput | None = strawberry.field(default=None, description="Defaults to the product's price.")
    discount_percent: Decimal | None = None


@strawberry.input
class CreateOrderInput:
    customer_id: strawberry.ID
    line_items: list[OrderLineInput]
    currency: str | None = strawberry.field(default=None, description="Defaults to the first line's currency.")
    tax_rate: Decimal | None = strawberry.field(default=None, description="Percent; defaults to 0.")
    ordered_at: datetime | None = strawberry.field(default=None, description="Defaults to now.")
    status: m.OrderStatus | None = strawberry.field(default=None, description="PENDING (default), CONFIRMED or FULFILLED.")
    external_ref: ExternalRefInput | None = strawberry.field(
        default=None, description="With a reference that exists already, the existing order is returned unchanged."
    )


@strawberry.input(description="An order from another system, identified by its external reference.")
class UpsertOrderInput:
    external_ref: ExternalRefInput
    customer_id: strawberry.ID
    line_items: list[OrderLineInput]
    currency: str | None = None
    tax_rate: Decimal | None = None
    ordered_at: datetime | None = None
    status: m.OrderStatus | None = strawberry.field(default=None, description="A change must follow the allowed transitions.")


@strawberry.input
class RecordPaymentInput:
    order_id: strawberry.ID
    amount: MoneyInput = strawberry.field(description="More than 0, at most the balance due, in the order's currency.")
    paid_at: datetime | None = strawberry.field(default=None, description="Defaults to now.")
    external_ref: ExternalRefInput | None = strawberry.field(
        default=None, description="The payment's ID in the payment system: sending it twice records one payment."
    )


# --- payloads ---------------------------------------------------------------------------------------


@strawberry.type
class ProductPayload:
    product: Product | None
    errors: list[UserError]


@strawberry.type
class PipelinePayload:
    pipeline: Pipeline | None
    errors: list[UserError]


@strawberry.type
class OpportunityPayload:
    opportunity: Opportunity | None
    errors: list[UserError]


@strawberry.type
class WinOpportunityPayload:
    opportunity: Opportunity | None
    order: Order | None = strawberry.field(description="Created from the line items (or the amount); null if there was nothing to sell.")
    errors: list[UserError]


@strawberry.type
class QuotePayload:
    quote: Quote | None
    errors: list[UserError]


@strawberry.type
class AcceptQuotePayload:
    quote: Quote | None
    order: Order | None
    errors: list[UserError]


@strawberry.type
class OrderPayload:
    order: Order | None
    errors: list[UserError]


@strawberry.type
class UpsertOrderPayload:
    order: Order | None
    created: bool = strawberry.field(description="True when this call created the order; false when it existed.")
    errors: list[UserError]


@strawberry.type
class RecordPaymentPayload:
    payment: Payment | None
    order: Order | None
    errors: list[UserError]
