"""GraphQL object types of the sales domain. Relations resolve through per-request DataLoaders."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.types import Info

from crm_graph.ownership.schema import OwnedFields, owned
from crm_graph.core.clock import utcnow
from crm_graph.customers.models import AcquisitionChannel
from crm_graph.customers.schema import Customer, ExternalRef, load_customer
from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.money import Money
from crm_graph.core.extensions import NodeType
from crm_graph.graphql.relay import Connection, Node, encode_global_id, node_resolver
from crm_graph.sales import models as m
from crm_graph.sales.loaders import load_list, load_one
from crm_graph.sales.service import opportunities as opportunity_service
from crm_graph.sales.service import orders as order_service
from crm_graph.sales.service import pipelines as pipeline_service
from crm_graph.sales.service import products as product_service
from crm_graph.sales.service import quotes as quote_service

graphql_enum(
    m.StageKind,
    "OPEN stages hold live deals; winning moves a deal to the WON stage, losing to the LOST stage.",
    {
        "OPEN": "A stage where the deal is still being worked on; it has its own win probability.",
        "WON": "The pipeline's one stage for won deals (probability 100).",
        "LOST": "The pipeline's one stage for lost deals (probability 0).",
    },
)
graphql_enum(
    m.OpportunityStatus,
    "OPEN until the opportunity is won or lost.",
    {
        "OPEN": "Still in play, in an OPEN stage.",
        "WON": "Won (winOpportunity or an accepted quote); it stays won.",
        "LOST": "Lost (loseOpportunity); moving it to an OPEN stage makes it OPEN again.",
    },
)
graphql_enum(
    m.QuoteStatus,
    "DRAFT -> SENT -> ACCEPTED or REJECTED. A DRAFT or SENT quote past its validity date is EXPIRED.",
    {
        "DRAFT": "Made, not sent to the customer yet.",
        "SENT": "Sent to the customer, awaiting an answer.",
        "ACCEPTED": "Accepted: its order exists and its opportunity is won.",
        "REJECTED": "Declined by the customer.",
        "EXPIRED": "A DRAFT or SENT quote past its `validUntil` date; it can no longer be sent or accepted.",
    },
)
graphql_enum(
    m.OrderStatus,
    "PENDING -> CONFIRMED -> FULFILLED; CANCELLED before anything is paid, REFUNDED after.",
    {
        "PENDING": "Recorded, not confirmed yet.",
        "CONFIRMED": "Confirmed, not fulfilled yet.",
        "FULFILLED": "Delivered; it can still be refunded.",
        "CANCELLED": "Called off before anything was paid. Final.",
        "REFUNDED": "Called off after payments were recorded. Final.",
    },
)
graphql_enum(
    m.PaymentStatus,
    "Follows the payments: UNPAID, PARTIALLY_PAID, PAID; REFUNDED with the order.",
    {
        "UNPAID": "No payment recorded.",
        "PARTIALLY_PAID": "Some paid; a balance is still due.",
        "PAID": "Paid in full.",
        "REFUNDED": "The order was refunded.",
    },
)
graphql_enum(
    m.OrderOrigin,
    "Where an order came from: a won OPPORTUNITY, an accepted QUOTE, an EXTERNAL system (it has an "
    "external reference), or DIRECT entry.",
    {
        "OPPORTUNITY": "Created by winning an opportunity.",
        "QUOTE": "Created by accepting a quote.",
        "EXTERNAL": "Created by createOrder or upsertOrder with an external reference.",
        "DIRECT": "Created by createOrder without an external reference.",
    },
)


def plain_decimal(value: Decimal) -> Decimal:
    """``2.5000`` -> ``2.5``, ``10.0000`` -> ``10`` (never ``1E+1``)."""
    return Decimal(format(value.normalize(), "f"))


# --- products -------------------------------------------------------------------------------


@strawberry.type(description="Something the business sells, with its list price.")
class Product(Node):
    pk: strawberry.Private[int]
    sku: str = strawberry.field(description="Stock keeping unit: unique.")
    name: str = strawberry.field(description="Display name, at most 200 characters; lines that sell the product default to it.")
    description: str | None = strawberry.field(description="Longer text about the product; null if none.")
    unit_price: Money = strawberry.field(description="List price of one unit; line items default to it.")
    active: bool = strawberry.field(description="Inactive products cannot be added to opportunities.")
    created_at: datetime = strawberry.field(description="When the product was created (UTC).")
    updated_at: datetime = strawberry.field(description="When the product last changed (UTC).")
    version: int = strawberry.field(description="Optimistic-concurrency version; pass it as `expectedVersion` to updateProduct.")

    @strawberry.field(description="Tags, lower-case.")
    async def tags(self, info: Info) -> list[str]:
        return await load_list(info, "product.tags", product_service.tags_for, self.pk)

    @classmethod
    def from_model(cls, p: m.Product) -> Product:
        return cls(
            id=encode_global_id("Product", p.id), pk=p.id, sku=p.sku, name=p.name, description=p.description,
            unit_price=Money.of(p.unit_price, p.currency), active=p.active, created_at=p.created_at,
            updated_at=p.updated_at, version=p.version,
        )


async def load_product(info: Info, pk: int | None) -> Product | None:
    model = await load_one(info, "product", product_service.products_by_ids, pk)
    return Product.from_model(model) if model is not None else None


@strawberry.type(description="One line of an opportunity, quote or order: product, quantity, price and discount.")
class LineItem:
    product_pk: strawberry.Private[int | None]
    sku: str | None = strawberry.field(description="The product's SKU when the line was written.")
    description: str = strawberry.field(description="Text of the line: as given, else the product's name.")
    quantity: Decimal = strawberry.field(description="Number of units: more than 0, up to 4 decimal places.")
    unit_price: Money = strawberry.field(description="Price of one unit, in the currency of the opportunity, quote or order.")
    discount_percent: Decimal = strawberry.field(description="0 to 100.")
    subtotal: Money = strawberry.field(description="quantity x unitPrice, rounded to the currency.")
    discount: Money = strawberry.field(description="discountPercent of the subtotal, rounded.")
    total: Money = strawberry.field(description="subtotal - discount.")

    @strawberry.field(description="The product, if the line refers to one.")
    async def product(self, info: Info) -> Product | None:
        return await load_product(info, self.product_pk)

    @classmethod
    def from_model(cls, row: Any, currency: str) -> LineItem:
        return cls(
            product_pk=row.product_id,
            sku=getattr(row, "sku", None),
            description=row.description,
            quantity=plain_decimal(row.quantity),
            unit_price=Money.of(row.unit_price, currency),
            discount_percent=plain_decimal(row.discount_percent),
            subtotal=Money.of(row.subtotal, currency),
            discount=Money.of(row.discount, currency),
            total=Money.of(row.total, currency),
        )


# --- pipelines --------------------------------------------------------------------------------


@strawberry.type(description="A step of a pipeline.")
class PipelineStage(Node):
    pk: strawberry.Private[int]
    pipeline_pk: strawberry.Private[int]
    name: str = strawberry.field(description="Name, unique within the pipeline (ignoring case).")
    position: int = strawberry.field(description="Order within the pipeline, from 0.")
    probability: int = strawberry.field(description="Chance (0-100) that a deal in this stage is won.")
    kind: m.StageKind = strawberry.field(description="OPEN, or the pipeline's single WON or LOST stage.")
    removed_at: datetime | None = strawberry.field(description="Set once the stage was removed from its pipeline; history still shows it.")

    @strawberry.field(description="The pipeline the stage belongs to.")
    async def pipeline(self, info: Info) -> Pipeline:
        found = await load_pipeline(info, self.pipeline_pk)
        assert found is not None
        return found

    @classmethod
    def from_model(cls, s: m.PipelineStage) -> PipelineStage:
        return cls(
            id=encode_global_id("PipelineStage", s.id), pk=s.id, pipeline_pk=s.pipeline_id, name=s.name,
            position=s.position, probability=s.probability, kind=s.kind, removed_at=s.removed_at,
        )


@strawberry.type(description="A sales process: ordered stages a deal moves through. Several may exist; one is the default.")
class Pipeline(Node):
    pk: strawberry.Private[int]
    name: str = strawberry.field(description="Unique name (ignoring case), at most 100 characters.")
    is_default: bool = strawberry.field(description="New opportunities without a pipeline go here.")
    created_at: datetime = strawberry.field(description="When the pipeline was created (UTC).")
    updated_at: datetime = strawberry.field(description="When the pipeline last changed (UTC).")
    version: int = strawberry.field(
        description="Optimistic-concurrency version; pass it as `expectedVersion` to updatePipeline."
    )

    @strawberry.field(description="The live stages, in order.")
    async def stages(self, info: Info) -> list[PipelineStage]:
        rows = await load_list(info, "pipeline.stages", pipeline_service.stages_for, self.pk)
        return [PipelineStage.from_model(s) for s in rows]

    @classmethod
    def from_model(cls, p: m.Pipeline) -> Pipeline:
        return cls(
            id=encode_global_id("Pipeline", p.id), pk=p.id, name=p.name, is_default=p.is_default,
            created_at=p.created_at, updated_at=p.updated_at, version=p.version,
        )


async def load_pipeline(info: Info, pk: int | None) -> Pipeline | None:
    model = await load_one(info, "pipeline", pipeline_service.pipelines_by_ids, pk)
    return Pipeline.from_model(model) if model is not None else None


async def load_stage_model(info: Info, pk: int) -> m.PipelineStage:
    return await load_one(info, "stage", pipeline_service.stages_by_ids, pk)


# --- opportunities ------------------------------------------------------------------------------


@strawberry.type(description="One stay of an opportunity in a stage.")
class StageHistoryEntry:
    stage_pk: strawberry.Private[int]
    entered_at: datetime = strawberry.field(description="When the opportunity entered the stage (UTC).")
    left_at: datetime | None = strawberry.field(description="Null while the opportunity is still in the stage.")
    moved_by: str = strawberry.field(description="Who moved the opportunity into the stage.")

    @strawberry.field(description="The stage; it may have been removed from its pipeline since.")
    async def stage(self, info: Info) -> PipelineStage:
        return PipelineStage.from_model(await load_stage_model(info, self.stage_pk))

    @strawberry.field(description="Seconds spent in the stage (until now, while it is still there).")
    def seconds_in_stage(self) -> int:
        return max(0, int(((self.left_at or utcnow()) - self.entered_at).total_seconds()))


@strawberry.type(description="A deal: a customer may buy something; it moves through a pipeline's stages until won or lost.")
class Opportunity(OwnedFields, Node):
    pk: strawberry.Private[int]
    customer_pk: strawberry.Private[int]
    pipeline_pk: strawberry.Private[int]
    stage_pk: strawberry.Private[int]
    probability_override: strawberry.Private[int | None]
    title: str = strawberry.field(description="What the deal is about, at most 300 characters.")
    owner: str | None = strawberry.field(
        description="Who works the deal, as free text.",
        deprecation_reason="Free text from before users existed; the owning user is `ownedBy`.",
    )
    amount: Money = strawberry.field(description="The sum of the line items when there are any; otherwise the amount set by hand (0 if none).")
    currency: str = strawberry.field(description="ISO 4217 code of the amount and of every line item.")
    expected_close_date: date | None = strawberry.field(
        description="When the deal is expected to close; null if unknown. The forecast groups open deals by it."
    )
    source: AcquisitionChannel | None = strawberry.field(description="Channel the deal came from.")
    status: m.OpportunityStatus = strawberry.field(description="OPEN, WON or LOST; follows the kind of its stage.")
    lost_reason: str | None = strawberry.field(description="The reason given when it was lost; null unless LOST.")
    closed_at: datetime | None = strawberry.field(description="When it was won or lost.")
    stage_entered_at: datetime = strawberry.field(description="When it entered its current stage.")
    created_at: datetime = strawberry.field(description="When the opportunity was created (UTC).")
    updated_at: datetime = strawberry.field(description="When the opportunity last changed, a stage move included (UTC).")
    deleted_at: datetime | None = strawberry.field(
        description="When it was soft-deleted (UTC); null while live. Deleted opportunities are hidden, so only "
        "the payload of deleteOpportunity shows it set."
    )
    version: int = strawberry.field(description="Optimistic-concurrency version; pass it as `expectedVersion`.")

    @strawberry.field(description="The customer the deal is with; null if the customer was deleted.")
    async def customer(self, info: Info) -> Customer | None:
        return await load_customer(info, self.customer_pk)

    @strawberry.field(description="The pipeline the opportunity moves through.")
    async def pipeline(self, info: Info) -> Pipeline:
        found = await load_pipeline(info, self.pipeline_pk)
        assert found is not None
        return found

    @strawberry.field(description="The stage it is in now.")
    async def stage(self, info: Info) -> PipelineStage:
        return PipelineStage.from_model(await load_stage_model(info, self.stage_pk))

    async def _probability(self, info: Info) -> int:
        stage = await load_stage_model(info, self.stage_pk)
        return opportunity_service.effective_probability(self.status, self.probability_override, stage.probability)

    @strawberry.field(description="Chance (0-100) of winning: the stage's unless set by hand; 100 when won, 0 when lost.")
    async def probability(self, info: Info) -> int:
        return await self._probability(info)

    @strawberry.field(description="True when the probability was set by hand rather than taken from the stage.")
    def probability_is_manual(self) -> bool:
        return self.status is m.OpportunityStatus.OPEN and self.probability_override is not None

    @strawberry.field(description="amount x probability / 100, rounded to the currency.")
    async def weighted_amount(self, info: Info) -> Money:
        chance = await self._probability(info)
        return Money.of(opportunity_service.weighted_amount(self.amount.amount, chance, self.currency), self.currency)

    @strawberry.field(description="The products of the deal, in order; empty when the amount is set by hand.")
    async def line_items(self, info: Info) -> list[LineItem]:
        rows = await load_list(info, "opportunity.lines", opportunity_service.lines_for, self.pk)
        return [LineItem.from_model(r, self.currency) for r in rows]

    @strawberry.field(description="Every stage the opportunity has been in, oldest first.")
    async def stage_history(self, info: Info) -> list[StageHistoryEntry]:
        rows = await load_list(info, "opportunity.history", opportunity_service.history_for, self.pk)
        return [StageHistoryEntry(stage_pk=r.stage_id, entered_at=r.entered_at, left_at=r.left_at, moved_by=r.moved_by) for r in rows]

    @strawberry.field(description="The order created when the opportunity was won.")
    async def order(self, info: Info) -> Order | None:
        model = await load_one(info, "opportunity.order", opportunity_service.orders_for, self.pk)
        return Order.from_model(model) if model is not None else None

    @classmethod
    def from_model(cls, o: m.Opportunity) -> Opportunity:
        return cls(
            **owned(o),
            id=encode_global_id("Opportunity", o.id), pk=o.id, customer_pk=o.customer_id, pipeline_pk=o.pipeline_id,
            stage_pk=o.stage_id, probability_override=o.probability_override, title=o.title, owner=o.owner,
            amount=Money.of(o.amount, o.currency), currency=o.currency, expected_close_date=o.expected_close_date,
            source=o.source, status=o.status, lost_reason=o.lost_reason, closed_at=o.closed_at,
            stage_entered_at=o.stage_entered_at, created_at=o.created_at, updated_at=o.updated_at,
            deleted_at=o.deleted_at, version=o.version,
        )


async def load_opportunity(info: Info, pk: int | None) -> Opportunity | None:
    model = await load_one(info, "opportunity", opportunity_service.opportunities_by_ids, pk)
    return Opportunity.from_model(model) if model is not None else None


# --- quotes ---------------------------------------------------------------------------------------


@strawberry.type(description="The billing address copied onto a document when it was made.")
class DocumentAddress:
    line1: str = strawberry.field(description="First address line.")
    line2: str | None = strawberry.field(description="Second address line; null if none.")
    postal_code: str | None = strawberry.field(description="Postal code; null if none.")
    city: str | None = strawberry.field(description="City; null if none.")
    region: str | None = strawberry.field(description="State, province or region; null if none.")
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code.")


@strawberry.type(description="A priced offer made from an opportunity. Its data is complete for rendering a document.")
class Quote(OwnedFields, Node):
    pk: strawberry.Private[int]
    opportunity_pk: strawberry.Private[int]
    customer_pk: strawberry.Private[int]
    number: str = strawberry.field(description="Unique per year, e.g. `Q-2026-0001`.")
    status: m.QuoteStatus = strawberry.field(
        description="The status as of today: a DRAFT or SENT quote past `validUntil` reads EXPIRED."
    )
    currency: str = strawberry.field(description="ISO 4217 code of every amount on the quote (the opportunity's currency).")
    valid_until: date = strawberry.field(description="Last day (UTC) on which the quote can be sent or accepted.")
    subtotal: Money = strawberry.field(description="Sum of the lines before discounts.")
    discount: Money = strawberry.field(description="Sum of the line discounts.")
    tax_rate: Decimal = strawberry.field(description="Percent, applied to subtotal - discount.")
    tax: Money = strawberry.field(description="taxRate percent of subtotal - discount, rounded to the currency.")
    total: Money = strawberry.field(description="subtotal - discount + tax.")
    customer_name: str = strawberry.field(description="The customer's name when the quote was made.")
    billing_address: DocumentAddress | None = strawberry.field(
        description="The customer's primary (else first) address when the quote was made; null if they had none."
    )
    sent_at: datetime | None = strawberry.field(description="When it was sent (UTC); null until then.")
    accepted_at: datetime | None = strawberry.field(description="When it was accepted (UTC); null unless ACCEPTED.")
    rejected_at: datetime | None = strawberry.field(description="When it was rejected (UTC); null unless REJECTED.")
    rejection_reason: str | None = strawberry.field(description="The reason given when it was rejected; null if none.")
    created_at: datetime = strawberry.field(description="When the quote was made (UTC).")
    updated_at: datetime = strawberry.field(description="When its status last changed (UTC).")
    version: int = strawberry.field(description="Increases with every change of the quote.")

    @strawberry.field(description="The opportunity the quote was made from; null if it was deleted.")
    async def opportunity(self, info: Info) -> Opportunity | None:
        return await load_opportunity(info, self.opportunity_pk)

    @strawberry.field(description="The customer the quote is for; null if the customer was deleted.")
    async def customer(self, info: Info) -> Customer | None:
        return await load_customer(info, self.customer_pk)

    @strawberry.field(description="The lines copied from the opportunity, with the SKUs of the time.")
    async def line_items(self, info: Info) -> list[LineItem]:
        rows = await load_list(info, "quote.lines", quote_service.lines_for, self.pk)
        return [LineItem.from_model(r, self.currency) for r in rows]

    @strawberry.field(description="The order created when the quote was accepted.")
    async def order(self, info: Info) -> Order | None:
        model = await load_one(info, "quote.order", quote_service.orders_for, self.pk)
        return Order.from_model(model) if model is not None else None

    @classmethod
    def from_model(cls, q: m.Quote) -> Quote:
        c = q.currency
        address = q.billing_address
        return cls(
            **owned(q),
            id=encode_global_id("Quote", q.id), pk=q.id, opportunity_pk=q.opportunity_id, customer_pk=q.customer_id,
            number=q.number, status=quote_service.effective_status(q), currency=c, valid_until=q.valid_until,
            subtotal=Money.of(q.subtotal, c), discount=Money.of(q.discount, c), tax_rate=plain_decimal(q.tax_rate),
            tax=Money.of(q.tax, c), total=Money.of(q.total, c), customer_name=q.customer_name,
            billing_address=DocumentAddress(
                line1=address["line1"], line2=address.get("line2"), postal_code=address.get("postalCode"),
                city=address.get("city"), region=address.get("region"), country=address["country"],
            ) if address else None,
            sent_at=q.sent_at, accepted_at=q.accepted_at, rejected_at=q.rejected_at,
            rejection_reason=q.rejection_reason, created_at=q.created_at, updated_at=q.updated_at, version=q.version,
        )


async def load_quote(info: Info, pk: int | None) -> Quote | None:
    model = await load_one(info, "quote", quote_service.quotes_by_ids, pk)
    return Quote.from_model(model) if model is not None else None


# --- orders and payments --------------------------------------------------------------------------


@strawberry.type(description="A payment received for an order.")
class Payment(Node):
    pk: strawberry.Private[int]
    order_pk: strawberry.Private[int]
    amount: Money = strawberry.field(description="Amount paid, in the order's currency.")
    paid_at: datetime = strawberry.field(description="When the money was paid (UTC); defaults to when the payment was recorded.")
    external_ref: ExternalRef | None = strawberry.field(description="The payment's ID in the payment or finance system.")
    created_at: datetime = strawberry.field(description="When the payment was recorded (UTC).")

    @strawberry.field(description="The order the payment is for.")
    async def order(self, info: Info) -> Order:
        found = await load_order(info, self.order_pk)
        assert found is not None
        return found

    @classmethod
    def from_model(cls, p: m.Payment) -> Payment:
        return cls(
            id=encode_global_id("Payment", p.id), pk=p.id, order_pk=p.order_id, amount=Money.of(p.amount, p.currency),
            paid_at=p.paid_at, created_at=p.created_at,
            external_ref=ExternalRef(system=p.external_system, external_id=p.external_id) if p.external_system else None,
        )


@strawberry.type(description="A sale: line items, totals, status and payments.")
class Order(OwnedFields, Node):
    pk: strawberry.Private[int]
    customer_pk: strawberry.Private[int]
    opportunity_pk: strawberry.Private[int | None]
    quote_pk: strawberry.Private[int | None]
    number: str = strawberry.field(description="Unique per year, e.g. `SO-2026-000001`.")
    status: m.OrderStatus = strawberry.field(description="Where the order stands; updateOrderStatus moves it.")
    payment_status: m.PaymentStatus = strawberry.field(description="Follows the payments recorded for the order.")
    currency: str = strawberry.field(description="ISO 4217 code of every amount on the order.")
    subtotal: Money = strawberry.field(description="Sum of the line subtotals, before discounts.")
    discount: Money = strawberry.field(description="Sum of the line discounts.")
    tax_rate: Decimal = strawberry.field(description="Percent, applied to subtotal - discount.")
    tax: Money = strawberry.field(description="taxRate percent of subtotal - discount, rounded to the currency.")
    total: Money = strawberry.field(description="subtotal - discount + tax.")
    paid_amount: Money = strawberry.field(description="Sum of the payments recorded.")
    balance_due: Money = strawberry.field(description="total - paidAmount (0 once refunded).")
    ordered_at: datetime = strawberry.field(description="When the order was placed (UTC); defaults to when it was recorded.")
    origin: m.OrderOrigin = strawberry.field(description="How the order came about.")
    created_at: datetime = strawberry.field(description="When the order was recorded (UTC).")
    updated_at: datetime = strawberry.field(description="When the order last changed, payments included (UTC).")
    version: int = strawberry.field(
        description="Optimistic-concurrency version; pass it as `expectedVersion` to updateOrderStatus."
    )

    @strawberry.field(description="Null if the customer was deleted.")
    async def customer(self, info: Info) -> Customer | None:
        return await load_customer(info, self.customer_pk)

    @strawberry.field(description="The won opportunity the order came from; null if none, or if it was deleted.")
    async def opportunity(self, info: Info) -> Opportunity | None:
        return await load_opportunity(info, self.opportunity_pk)

    @strawberry.field(description="The accepted quote the order came from; null if none.")
    async def quote(self, info: Info) -> Quote | None:
        return await load_quote(info, self.quote_pk)

    @strawberry.field(description="What was sold, in order.")
    async def line_items(self, info: Info) -> list[LineItem]:
        rows = await load_list(info, "order.lines", order_service.lines_for, self.pk)
        return [LineItem.from_model(r, self.currency) for r in rows]

    @strawberry.field(description="The order's IDs in other systems, unique per system.")
    async def external_refs(self, info: Info) -> list[ExternalRef]:
        rows = await load_list(info, "order.refs", order_service.refs_for, self.pk)
        return [ExternalRef(system=r.system, external_id=r.external_id) for r in rows]

    @strawberry.field(description="Payments, oldest first.")
    async def payments(self, info: Info) -> list[Payment]:
        rows = await load_list(info, "order.payments", order_service.payments_for, self.pk)
        return [Payment.from_model(p) for p in rows]

    @classmethod
    def from_model(cls, o: m.Order) -> Order:
        c = o.currency
        balance = o.total - o.paid_amount if o.status is not m.OrderStatus.REFUNDED else Decimal(0)
        return cls(
            **owned(o),
            id=encode_global_id("Order", o.id), pk=o.id, customer_pk=o.customer_id, opportunity_pk=o.opportunity_id,
            quote_pk=o.quote_id, number=o.number, status=o.status, payment_status=o.payment_status, currency=c,
            subtotal=Money.of(o.subtotal, c), discount=Money.of(o.discount, c), tax_rate=plain_decimal(o.tax_rate),
            tax=Money.of(o.tax, c), total=Money.of(o.total, c), paid_amount=Money.of(o.paid_amount, c),
            balance_due=Money.of(balance, c), ordered_at=o.ordered_at, origin=o.origin, created_at=o.created_at,
            updated_at=o.updated_at, version=o.version,
        )


async def load_order(info: Info, pk: int | None) -> Order | None:
    model = await load_one(info, "order", order_service.orders_by_ids, pk)
    return Order.from_model(model) if model is not None else None


# --- connections and node registration --------------------------------------------------------------


@strawberry.type(description="A page of products.")
class ProductConnection(Connection[Product]):
    pass


@strawberry.type(description="A page of pipelines.")
class PipelineConnection(Connection[Pipeline]):
    pass


@strawberry.type(description="A page of opportunities.")
class OpportunityConnection(Connection[Opportunity]):
    pass


@strawberry.type(description="A page of quotes.")
class QuoteConnection(Connection[Quote]):
    pass


@strawberry.type(description="A page of orders.")
class OrderConnection(Connection[Order]):
    pass


NODES = [
    NodeType("Product", node_resolver(("sales", "product"), product_service.products_by_ids, Product.from_model), Product),
    NodeType("PipelineStage", node_resolver(("sales", "stage"), pipeline_service.stages_by_ids, PipelineStage.from_model), PipelineStage),
    NodeType("Quote", node_resolver(("sales", "quote"), quote_service.quotes_by_ids, Quote.from_model), Quote),
    NodeType("Payment", node_resolver(("sales", "payment"), order_service.payments_by_ids, Payment.from_model), Payment),
    NodeType("Pipeline", node_resolver(("sales", "pipeline"), pipeline_service.pipelines_by_ids, Pipeline.from_model), Pipeline),
    NodeType("Opportunity", node_resolver(("sales", "opportunity"), opportunity_service.opportunities_by_ids, Opportunity.from_model), Opportunity),
    NodeType("Order", node_resolver(("sales", "order"), order_service.orders_by_ids, Order.from_model), Order),
]
