"""GraphQL API of segments and customer-value analyses (RFM, value tiers)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import sqlalchemy as sa
import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry.types.unset import UNSET

from crm_graph.core.filters import FilterError
from crm_graph.core.pagination import paginate
from crm_graph.customers import filters as customer_filters
from crm_graph.customers.schema import Customer, CustomerConnection, CustomerFilter, CustomerOrder
from crm_graph.domains import SchemaPart
from crm_graph.graphql import access
from crm_graph.graphql.context import Context
from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.errors import ClientError, UserError
from crm_graph.graphql.inputs import StringFilter, enum_filter, to_plain
from crm_graph.graphql.money import Money
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.core.extensions import NodeType
from crm_graph.graphql.relay import Connection, Node, decode_global_id, encode_global_id, page_args, node_resolver
from crm_graph.segments import rfm as rfm_module
from crm_graph.segments import service
from crm_graph.segments.filter_inputs import RfmGroup, ValueTier
from crm_graph.segments.models import RfmScore, SegmentKind
from crm_graph.segments.models import Segment as SegmentModel



graphql_enum(
    SegmentKind,
    "STATIC: members added by hand. DYNAMIC: whoever matches the filter now. "
    "SNAPSHOT: whoever matched the filter when it was last applied (at creation or refreshSegment).",
    {
        "STATIC": "Members are added and removed by hand; no filter.",
        "DYNAMIC": "Members are the customers matching the filter at the moment of reading; never edited by hand.",
        "SNAPSHOT": "Members are the customers that matched the filter when it was last applied; editable by hand.",
    },
)


async def _customer_page(info: Info, stmt: Any, order_by: Any, first: int | None, after: str | None,
                         last: int | None = None, before: str | None = None) -> Any:
    args = page_args(first, after, last, before)
    keys = customer_filters.sort_keys(to_plain(order_by))
    page = await paginate(info.context.db.reader, stmt, keys, args)
    return CustomerConnection.from_page(page, Customer.from_model)


@strawberry.type(description="A named group of customers: STATIC, DYNAMIC or SNAPSHOT.")
class Segment(Node):
    pk: strawberry.Private[int]
    model: strawberry.Private[SegmentModel]
    name: str = strawberry.field(description="Name of the segment; segments are listed by it.")
    description: str | None = strawberry.field(description="Free text; null if none.")
    kind: SegmentKind = strawberry.field(description="STATIC, DYNAMIC or SNAPSHOT; fixed when the segment is created.")
    filter: JSON | None = strawberry.field(description="The CustomerFilter of a DYNAMIC or SNAPSHOT segment.")
    refreshed_at: datetime | None = strawberry.field(description="When the filter was last applied: a SNAPSHOT refresh, or the last membership diff of a DYNAMIC segment (its entry and exit events).")
    created_at: datetime = strawberry.field(description="When the segment was created (UTC).")
    updated_at: datetime = strawberry.field(description="When its name, description or filter last changed (UTC).")
    deleted_at: datetime | None = strawberry.field(description="Set while the segment is deleted (soft delete).")
    version: int = strawberry.field(description="Optimistic-concurrency version; pass it as `expectedVersion`.")

    @strawberry.field(description="False when the stored filter no longer validates (e.g. a custom field was deleted); the segment then has no members.")
    async def is_valid(self, info: Info) -> bool:
        return await self.invalid_reason(info) is None

    @strawberry.field(description="Why the segment is not valid, or null.")
    async def invalid_reason(self, info: Info) -> str | None:
        async with info.context.db.reader() as session:
            return await service.validity(session, self.model)

    @strawberry.field(description="Number of members now.")
    async def size(self, info: Info) -> int:
        async with info.context.db.reader() as session:
            try:
                return await service.size(session, self.model)
            except FilterError:
                return 0

    @strawberry.field(description="The members, newest first unless `orderBy` says otherwise.")
    async def customers(
        self, info: Info, order_by: list[CustomerOrder] | None = None, first: int | None = None,
        after: str | None = None, last: int | None = None, before: str | None = None,
    ) -> CustomerConnection:
        async with info.context.db.reader() as session:
            try:
                stmt = await service.members_select(session, self.model)
            except FilterError:
                stmt = sa.select(customer_filters.Customer).where(sa.false())
        return await _customer_page(info, stmt, order_by, first, after, last, before)

    @classmethod
    def from_model(cls, m: SegmentModel) -> Segment:
        return cls(
            id=encode_global_id("Segment", m.id), pk=m.id, model=m, name=m.name, description=m.description,
            kind=m.kind, filter=m.filter, refreshed_at=m.refreshed_at, created_at=m.created_at,
            updated_at=m.updated_at, deleted_at=m.deleted_at, version=m.version,
        )


@strawberry.type(description="A page of segments.")
class SegmentConnection(Connection[Segment]):
    pass


_load_segments = node_resolver("segment", service.segments_by_ids, Segment.from_model)
NODES = [
    NodeType("Segment", _load_segments, Segment),
]


async def load_customer_segments(info: Info, customer_pk: int) -> list[Segment]:
    ctx: Context = info.context
    rows = await ctx.loader("customer.segments", service.segments_of, list).load(customer_pk)
    return [Segment.from_model(m) for m in rows]


@strawberry.type(description="A customer's values in one RFM run.")
class CustomerRfm:
    as_of: date = strawberry.field(description="The run's date: orders up to this day count.")
    window_days: int = strawberry.field(description="Length of the run's window in days, ending at `asOf`.")
    recency_days: int | None = strawberry.field(description="Days since the last counted order.")
    frequency: int | None = strawberry.field(description="Counted orders in the window.")
    monetary: Money | None = strawberry.field(description="Revenue in the window.")
    recency_score: int | None = strawberry.field(
        description="1 to 5 (quintile among the scored customers; 5 is the most recent); null without an order in the window."
    )
    frequency_score: int | None = strawberry.field(
        description="1 to 5 (5 is the most orders); null without an order in the window."
    )
    monetary_score: int | None = strawberry.field(
        description="1 to 5 (5 is the most revenue); null without an order in the window."
    )
    cell: str | None = strawberry.field(description="The three scores as digits R, F, M, e.g. `545`.")
    group: RfmGroup | None = strawberry.field(description="The named group of the scores; null without scores.")
    value_tier: ValueTier | None = strawberry.field(description="The customer's Pareto tier in this run.")


async def _rfm_batch(session: Any, ids: Any) -> dict[int, tuple[RfmScore, Any]]:
    scores = await rfm_module.scores_for(session, list(ids))
    if not scores:
        return {}
    run = await session.get(rfm_module.RfmRun, next(iter(scores.values())).run_id)
    return {cid: (score, run) for cid, score in scores.items()}


async def load_customer_rfm(info: Info, customer_pk: int) -> CustomerRfm | None:
    found = await info.context.loader("customer.rfm", _rfm_batch).load(customer_pk)
    if found is None:
        return None
    score, run = found
    cell = f"{score.recency_score}{score.frequency_score}{score.monetary_score}" if score.recency_score else None
    return CustomerRfm(
        as_of=run.as_of, window_days=run.window_days, recency_days=score.recency_days, frequency=score.frequency,
        monetary=Money.maybe(score.monetary, run.currency), recency_score=score.recency_score,
        frequency_score=score.frequency_score, monetary_score=score.monetary_score, cell=cell,
        group=score.group, value_tier=score.value_tier,
    )


# --- analyses --------------------------------------------------------------------------------


@strawberry.type(description="One stored RFM run.")
class RfmRunInfo:
    as_of: date = strawberry.field(description="Orders up to this day count.")
    window_days: int = strawberry.field(description="Length of the window in days, ending at `asOf`.")
    currency: str = strawberry.field(description="ISO 4217 code; only orders in this currency count.")
    customers: int = strawberry.field(description="Customers scored (with counted orders in the window).")
    revenue: Money = strawberry.field(description="Revenue of the scored customers in the window.")
    computed_at: datetime = strawberry.field(description="When the run was computed and stored (UTC).")

    @classmethod
    def of(cls, run: Any) -> RfmRunInfo:
        return cls(as_of=run.as_of, window_days=run.window_days, currency=run.currency, customers=run.customer_count,
                   revenue=Money.of(run.revenue, run.currency), computed_at=run.created_at)


@strawberry.type(description="One RFM group in a run.")
class RfmGroupRow:
    group: RfmGroup = strawberry.field(description="The group.")
    customers: int = strawberry.field(description="Customers in the group.")
    revenue: Money = strawberry.field(description="Their revenue in the run's window.")
    share_of_revenue: Decimal = strawberry.field(description="Fraction of the run's revenue, 0 to 1.")


@strawberry.type(description="One cell of the recency-by-frequency grid.")
class RfmGridCell:
    recency_score: int = strawberry.field(description="Recency score of the cell, 1 to 5.")
    frequency_score: int = strawberry.field(description="Frequency score of the cell, 1 to 5.")
    customers: int = strawberry.field(description="Customers in the cell; 0 for an empty one.")
    average_monetary: Money = strawberry.field(description="Mean revenue per customer in the cell; zero for an empty one.")


@strawberry.type(description="Customers whose group changed since the previous run.")
class RfmMovement:
    from_group: RfmGroup = strawberry.field(description="Group in the previous run.")
    to_group: RfmGroup = strawberry.field(description="Group in this run.")
    customers: int = strawberry.field(description="Customers that moved from `fromGroup` to `toGroup`.")


@strawberry.type(description="RFM analysis: the group table, the 5x5 grid, and movement since the previous run.")
class RfmAnalysis:
    run: RfmRunInfo = strawberry.field(description="The run analysed.")
    groups: list[RfmGroupRow] = strawberry.field(description="Customers and revenue per RFM group.")
    grid: list[RfmGridCell] = strawberry.field(description="25 cells, recency 5 to 1, frequency 1 to 5.")
    previous_run: RfmRunInfo | None = strawberry.field(description="The previous run over the same window and currency.")
    movements: list[RfmMovement] = strawberry.field(
        description="Changes of group since `previousRun`, per pair of groups; empty without a previous run."
    )

    @classmethod
    def of(cls, a: service.RfmAnalysis) -> RfmAnalysis:
        cur = a.run.currency
        return cls(
            run=RfmRunInfo.of(a.run),
            groups=[RfmGroupRow(group=g.group, customers=g.customers, revenue=Money.of(g.revenue, cur),
                                share_of_revenue=g.share_of_revenue) for g in a.groups],
            grid=[RfmGridCell(recency_score=c.recency_score, frequency_score=c.frequency_score, customers=c.customers,
                              average_monetary=Money.of(c.average_monetary, cur)) for c in a.grid],
            previous_run=RfmRunInfo.of(a.previous) if a.previous else None,
            movements=[RfmMovement(from_group=m.from_group, to_group=m.to_group, customers=m.customers) for m in a.movements],
        )


@strawberry.type(description="One value tier of a revenue-concentration analysis.")
class ValueTierRow:
    tier: ValueTier = strawberry.field(description="The tier.")
    customers: int = strawberry.field(description="Customers in the tier.")
    revenue: Money = strawberry.field(description="Their revenue in the window.")
    share_of_revenue: Decimal = strawberry.field(description="Fraction of the window's revenue, 0 to 1.")


@strawberry.type(description="How concentrated revenue is (the 80/20 check) and the value tiers, computed live.")
class ValueConcentration:
    as_of: date = strawberry.field(description="Orders up to this day count.")
    window_days: int = strawberry.field(description="Length of the window in days, ending at `asOf`.")
    currency: str = strawberry.field(description="ISO 4217 code; only orders in this currency count.")
    customers: int = strawberry.field(description="Customers with revenue in the window.")
    revenue: Money = strawberry.field(description="Total revenue in the window.")
    tiers: list[ValueTierRow] = strawberry.field(description="Customers and revenue per value tier.")
    top_10_percent_share: Decimal = strawberry.field(description="Share of revenue of the top 10% of customers.")
    top_20_percent_share: Decimal = strawberry.field(description="Share of revenue of the top 20% of customers.")


@strawberry.type(description="What a filter selects, without saving it.")
class SegmentPreview:
    size: int = strawberry.field(description="Number of customers the filter matches now.")
    customers: CustomerConnection = strawberry.field(description="The first page of them.")


SegmentKindFilter = enum_filter(SegmentKind, "SegmentKindFilter")


@strawberry.input(description="Conditions on segments; all given ones must hold.")
class SegmentFilter:
    name: StringFilter | None = strawberry.field(default=None, description="The segment's name.")
    kind: SegmentKindFilter | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="STATIC, DYNAMIC or SNAPSHOT."
    )


AS_OF = "Last day whose orders count; default today (UTC)."
WINDOW_DAYS = "Days up to `asOf` whose orders count, 1 to 36600; default 365. Out of range is a request error."
CURRENCY = (
    "ISO 4217 code; only orders in it count. Default: the currency with the most counted orders in the window. "
    "The result is null when no order counts."
)


def _client_error(errors: list[Any]) -> ClientError:
    """Bad arguments of an analysis query: a GraphQL error naming each argument."""
    return ClientError("; ".join(f"{e.field}: {e.message}" for e in errors))


@strawberry.type
class SegmentQuery:
    @access.query("segments", description="One segment by ID; null if unknown or deleted.")
    async def segment(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of a Segment.")]
    ) -> Segment | None:
        return (await _load_segments(info, [decode_global_id(id, "Segment")[1]]))[0]

    @access.query("segments", description="Segments by name.")
    async def segments(
        self,
        info: Info,
        filter: Annotated[
            SegmentFilter | None, strawberry.argument(description="Only segments matching these conditions.")
        ] = None,
        first: int | None = None,
        after: str | None = None,
    ) -> SegmentConnection:
        from crm_graph.core.pagination import SortKey

        keys = [SortKey(SegmentModel.name, "name"), SortKey(SegmentModel.id, "id", False, int)]
        page = await paginate(info.context.db.reader, service.segment_select(to_plain(filter)), keys,
                              page_args(first, after, None, None))
        return SegmentConnection.from_page(page, Segment.from_model)

    @access.query("segments", description="The size and first page of a filter, without saving a segment.")
    async def preview_segment(
        self,
        info: Info,
        filter: Annotated[
            CustomerFilter, strawberry.argument(description="The filter a DYNAMIC or SNAPSHOT segment would have.")
        ],
        first: int | None = None,
        order_by: list[CustomerOrder] | None = None,
    ) -> SegmentPreview:
        from crm_graph.customers import service as customers

        async with info.context.db.reader() as session:
            stmt = await customers.customer_select(session, filter=to_plain(filter))
            count = await session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery()))
        return SegmentPreview(size=int(count or 0), customers=await _customer_page(info, stmt, order_by, first, None))

    @access.query("segments", description="RFM analysis as of a date (default today) over `windowDays` (default 365) in one currency "
                      "(default: the one with most orders). Reads the stored run for these parameters, computing and storing it on first use.")
    async def rfm_analysis(
        self,
        info: Info,
        as_of: Annotated[date | None, strawberry.argument(description=AS_OF)] = None,
        window_days: Annotated[int | None, strawberry.argument(description=WINDOW_DAYS)] = None,
        currency: Annotated[str | None, strawberry.argument(description=CURRENCY)] = None,
    ) -> RfmAnalysis | None:
        # A read that stores the run it computes, so it runs as a unit of work.
        result, errors = await unit_of_work(
            info, lambda s: service.rfm_analysis(s, as_of=as_of, window_days=window_days, currency=currency))
        if errors:
            raise _client_error(errors)
        return RfmAnalysis.of(result) if result else None

    @access.query("segments", description="Revenue concentration and value tiers over `windowDays` (default 365), computed live.")
    async def value_concentration(
        self,
        info: Info,
        window_days: Annotated[int | None, strawberry.argument(description=WINDOW_DAYS)] = None,
        currency: Annotated[str | None, strawberry.argument(description=CURRENCY)] = None,
        as_of: Annotated[date | None, strawberry.argument(description=AS_OF)] = None,
    ) -> ValueConcentration | None:
        from crm_graph.core.errors import DomainError

        async with info.context.db.reader() as session:
            try:
                result = await service.value_concentration(session, as_of=as_of, window_days=window_days, currency=currency)
            except DomainError as exc:
                raise _client_error(exc.errors) from None
        if result is None:
            return None
        cur = result.currency
        return ValueConcentration(
            as_of=result.as_of, window_days=result.window_days, currency=cur, customers=result.customers,
            revenue=Money.of(result.revenue, cur),
            tiers=[ValueTierRow(tier=t.tier, customers=t.customers, revenue=Money.of(t.revenue, cur),
                                share_of_revenue=t.share_of_revenue) for t in result.tiers],
            top_10_percent_share=result.top_10_percent_share, top_20_percent_share=result.top_20_percent_share,
        )


@strawberry.input(description="A new segment.")
class CreateSegmentInput:
    name: str = strawberry.field(description="Required, trimmed, at most 200 characters.")
    kind: SegmentKind = strawberry.field(description="STATIC, DYNAMIC or SNAPSHOT; it cannot be changed later.")
    description: str | None = strawberry.field(default=None, description="Free text.")
    filter: CustomerFilter | None = strawberry.field(default=None, description="Required for DYNAMIC and SNAPSHOT; none for STATIC.")


@strawberry.input(description="Changes to a segment. Omitted fields stay as they are; null clears a field.")
class UpdateSegmentInput:
    name: str | None = strawberry.field(default=UNSET, description="New name, at most 200 characters; it cannot be cleared.")
    description: str | None = strawberry.field(default=UNSET, description="Free text; null clears it.")
    filter: CustomerFilter | None = strawberry.field(default=UNSET, description="A SNAPSHOT keeps its members until refreshSegment applies the new filter.")


@strawberry.input(description="The parameters of an RFM run to compute.")
class RefreshRfmInput:
    as_of: date | None = strawberry.field(default=None, description=AS_OF)
    window_days: int | None = strawberry.field(
        default=None, description="Days up to `asOf` whose orders count, 1 to 36600; default 365."
    )
    currency: str | None = strawberry.field(
        default=None, description="ISO 4217 code; default: the currency with the most counted orders in the window."
    )


@strawberry.type(description="The outcome of a segment mutation.")
class SegmentPayload:
    segment: Segment | None = strawberry.field(description="The segment as stored; null when there are errors.")
    errors: list[UserError]


@strawberry.type(description="The outcome of computing an RFM run.")
class RfmAnalysisPayload:
    analysis: RfmAnalysis | None = strawberry.field(
        description="The analysis of the new run; null when there are errors or no order counts in the window."
    )
    errors: list[UserError]


def _segment_payload(result: tuple[Any, list[UserError]]) -> SegmentPayload:
    model, errors = result
    return SegmentPayload(segment=Segment.from_model(model) if model is not None else None, errors=errors)


def _customer_pks(ids: list[strawberry.ID]) -> list[int]:
    return [decode_global_id(i, "Customer")[1] for i in ids]


# The segment whose members addCustomersToSegment and removeCustomersFromSegment change.
MembershipSegment = Annotated[
    strawberry.ID,
    strawberry.argument(description="Global ID of a STATIC or SNAPSHOT Segment; a DYNAMIC one gives INVALID_STATE."),
]


@strawberry.type
class SegmentMutation:
    @access.mutation("segments", "create", description="Create a segment. A SNAPSHOT applies its filter at once.")
    async def create_segment(
        self, info: Info, input: Annotated[CreateSegmentInput, strawberry.argument(description="The new segment.")]
    ) -> SegmentPayload:
        data, actor = to_plain(input), info.context.actor
        return _segment_payload(await unit_of_work(info, lambda s: service.create_segment(s, actor=actor, data=data)))

    @access.mutation(
        "segments", "update",
        description="Change a segment's name, description or filter. A new filter of a DYNAMIC segment applies at once; "
        "a SNAPSHOT keeps its members until `refreshSegment`.",
    )
    async def update_segment(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the Segment.")],
        input: Annotated[UpdateSegmentInput, strawberry.argument(description="The fields to change.")],
        expected_version: int | None = None,
    ) -> SegmentPayload:
        pk, data, actor = decode_global_id(id, "Segment")[1], to_plain(input, keep_null=True), info.context.actor
        return _segment_payload(await unit_of_work(info, lambda s: service.update_segment(
            s, actor=actor, segment_id=pk, data=data, expected_version=expected_version)))

    @access.mutation("segments", "delete", description="Soft-delete a segment. Filters that refer to it stop validating until it is restored.")
    async def delete_segment(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the Segment.")]
    ) -> SegmentPayload:
        pk, actor = decode_global_id(id, "Segment")[1], info.context.actor
        return _segment_payload(await unit_of_work(info, lambda s: service.delete_segment(s, actor=actor, segment_id=pk)))

    # Restoring undoes a delete, so it needs what deleting needs.
    @access.mutation("segments", "delete", description="Bring back a soft-deleted segment.")
    async def restore_segment(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(description="Global ID of the deleted Segment; restoring a live one changes nothing."),
        ],
    ) -> SegmentPayload:
        pk, actor = decode_global_id(id, "Segment")[1], info.context.actor
        return _segment_payload(await unit_of_work(info, lambda s: service.restore_segment(s, actor=actor, segment_id=pk)))

    @access.mutation("segments", "update", description="Add customers to a STATIC or SNAPSHOT segment (at most 1000 per call; members already in stay).")
    async def add_customers_to_segment(
        self,
        info: Info,
        segment_id: MembershipSegment,
        customer_ids: Annotated[
            list[strawberry.ID],
            strawberry.argument(
                description="Global IDs of Customers, at most 1000 (TOO_MANY); an unknown or deleted one gives NOT_FOUND."
            ),
        ],
    ) -> SegmentPayload:
        pk, actor, customers = decode_global_id(segment_id, "Segment")[1], info.context.actor, _customer_pks(customer_ids)
        return _segment_payload(await unit_of_work(info, lambda s: service.add_customers(
            s, actor=actor, segment_id=pk, customer_ids=customers)))

    @access.mutation(
        "segments", "update",
        description="Remove customers from a STATIC or SNAPSHOT segment (at most 1000 per call; non-members are ignored).",
    )
    async def remove_customers_from_segment(
        self,
        info: Info,
        segment_id: MembershipSegment,
        customer_ids: Annotated[
            list[strawberry.ID],
            strawberry.argument(description="Global IDs of Customers, at most 1000 (TOO_MANY); non-members are ignored."),
        ],
    ) -> SegmentPayload:
        pk, actor, customers = decode_global_id(segment_id, "Segment")[1], info.context.actor, _customer_pks(customer_ids)
        return _segment_payload(await unit_of_work(info, lambda s: service.remove_customers(
            s, actor=actor, segment_id=pk, customer_ids=customers)))

    @access.mutation("segments", "update", description="Apply a SNAPSHOT segment's filter again (members become exactly the matching customers); for a DYNAMIC segment, diff its membership now (emitting `segment.member_added` / `segment.member_removed`).")
    async def refresh_segment(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="Global ID of a SNAPSHOT or DYNAMIC Segment; a STATIC one gives INVALID_STATE, "
                "a DYNAMIC one whose filter no longer validates INVALID_FILTER."
            ),
        ],
    ) -> SegmentPayload:
        pk, actor = decode_global_id(id, "Segment")[1], info.context.actor
        return _segment_payload(await unit_of_work(info, lambda s: service.refresh_segment(s, actor=actor, segment_id=pk)))

    @access.mutation("segments", "update", description="Compute and store a new RFM run (lists and segments filter on the newest run).")
    async def refresh_rfm_scores(
        self,
        info: Info,
        input: Annotated[
            RefreshRfmInput | None, strawberry.argument(description="The run's parameters; every one has a default.")
        ] = None,
    ) -> RfmAnalysisPayload:
        data = input or RefreshRfmInput()
        result, errors = await unit_of_work(info, lambda s: service.rfm_analysis(
            s, as_of=data.as_of, window_days=data.window_days, currency=data.currency, recompute=True))
        return RfmAnalysisPayload(analysis=RfmAnalysis.of(result) if result else None, errors=errors)


SCHEMA = SchemaPart(query=SegmentQuery, mutation=SegmentMutation, nodes=NODES)
