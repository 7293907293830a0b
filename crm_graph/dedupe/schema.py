"""GraphQL API of duplicates and merges: ``duplicateCandidates``, ``dismissDuplicate``,
``mergeCustomers``, ``customerMerge`` and ``undoMerge``. Thin: the rules live in
``service.py`` and ``merge.py``. ``Customer.possibleDuplicates`` and the payloads'
``possibleDuplicates`` are in ``customer_fields.py``, registered by ``plugin.py``."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from crm_graph.core.extensions import NodeType
from crm_graph.core.pagination import SortKey, paginate
from crm_graph.customers.schema import Customer, load_customer
from crm_graph.dedupe import matching as m
from crm_graph.dedupe import merge as merging
from crm_graph.dedupe import service
from crm_graph.dedupe.models import CustomerMerge as MergeModel
from crm_graph.dedupe.models import DuplicateCandidate as CandidateModel
from crm_graph.domains import SchemaPart
from crm_graph.graphql import access
from crm_graph.graphql.enums import graphql_enum
from crm_graph.graphql.errors import UserError
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.graphql.relay import Connection, Node, encode_global_id, page_args, try_decode_global_id


class DuplicateRule(enum.Enum):
    EMAIL = m.EMAIL
    PHONE = m.PHONE
    NAME_IN_ORGANIZATION = m.NAME_IN_ORGANIZATION
    NAME_IN_CITY = m.NAME_IN_CITY


graphql_enum(
    DuplicateRule,
    "A rule that finds duplicate customers; docs/duplicates.md gives the scores.",
    {
        "EMAIL": "The same email address once normalised (case, `+tags`, dots of Gmail addresses): score 95.",
        "PHONE": "The same phone number in E.164 form: score 90.",
        "NAME_IN_ORGANIZATION": "Similar names of people of the same organization (accents, case, order, spaces and "
        "Chinese characters read as pinyin do not matter): score up to 85.",
        "NAME_IN_CITY": "Similar names of customers of the same kind in the same city: score up to 85.",
    },
)


class MergeField(enum.Enum):
    DISPLAY_NAME = "displayName"
    FIRST_NAME = "firstName"
    LAST_NAME = "lastName"
    ORGANIZATION_NAME = "organizationName"
    JOB_TITLE = "jobTitle"
    ORGANIZATION = "organization"
    OWNER = "owner"
    SOURCE = "source"
    LIFECYCLE_STAGE = "lifecycleStage"
    EMAIL_CONSENT = "emailConsent"
    BIRTHDAY = "birthday"
    GENDER = "gender"
    LOCALE = "locale"
    TIME_ZONE = "timeZone"
    COUNTRY = "country"
    REGION = "region"
    CITY = "city"
    EXTERNAL_REF = "externalRef"


graphql_enum(
    MergeField,
    "A field of the surviving customer whose value a merge can take from one of the customers.",
    {
        "DISPLAY_NAME": "The whole name (first and last name of a person, name of an organization).",
        "FIRST_NAME": "A person's first name.",
        "LAST_NAME": "A person's last name.",
        "ORGANIZATION_NAME": "An organization's name.",
        "JOB_TITLE": "Job title.",
        "ORGANIZATION": "The organization a person belongs to.",
        "OWNER": "Owner and team; never taken from another customer unless chosen (needs `customers:assign`).",
        "SOURCE": "Acquisition channel.",
        "LIFECYCLE_STAGE": "Stage of the relationship.",
        "EMAIL_CONSENT": "Email-marketing consent; never taken unless chosen, and an opt-out of any customer always wins.",
        "BIRTHDAY": "Date of birth.",
        "GENDER": "Gender.",
        "LOCALE": "Language tag.",
        "TIME_ZONE": "Time zone.",
        "COUNTRY": "Country code.",
        "REGION": "State, province or region.",
        "CITY": "City or town.",
        "EXTERNAL_REF": "The record in another system (the merged customers lose theirs).",
    },
)


@strawberry.type(description="Why two customers look alike: one rule, the field it compared and both values.")
class DuplicateReason:
    rule: DuplicateRule = strawberry.field(description="The rule that matched.")
    field: str = strawberry.field(description="The field compared: `emails`, `phones` or `name`.")
    values: list[str] = strawberry.field(
        description="The two values compared: this customer's first (for a pair, `customer`'s), then the other's."
    )
    score: int = strawberry.field(description="What this rule alone scores, 0 to 100.")
    similarity: float | None = strawberry.field(description="For names: how similar they are, 0 to 100; null for other rules.")

    @classmethod
    def from_reason(cls, r: m.Reason) -> DuplicateReason:
        return cls(rule=DuplicateRule(r.rule), field=r.field, values=list(r.values), score=r.score, similarity=r.similarity)


@strawberry.type(description="A customer that looks like another one: a warning, never merged without a `mergeCustomers`.")
class PossibleDuplicate:
    customer_pk: strawberry.Private[int]
    score: int = strawberry.field(
        description="0 to 100: the best reason's score plus 5 for each further reason (at most 100)."
    )
    reasons: list[DuplicateReason] = strawberry.field(description="Every rule that matched, best first.")

    @strawberry.field(description="The customer that looks alike.")
    async def customer(self, info: Info) -> Customer | None:
        return await load_customer(info, self.customer_pk)

    @classmethod
    def from_candidate(cls, c: service.Candidate) -> PossibleDuplicate:
        reasons = sorted(c.reasons, key=lambda r: -r.score)
        return cls(customer_pk=c.customer_id, score=c.score, reasons=[DuplicateReason.from_reason(r) for r in reasons])


@strawberry.type(description="Two customers that look alike, with the score and reasons of the rules.")
class DuplicateCandidate:
    customer_pk: strawberry.Private[int]
    duplicate_pk: strawberry.Private[int]
    score: int = strawberry.field(
        description="0 to 100: the best reason's score plus 5 for each further reason (at most 100)."
    )
    reasons: list[DuplicateReason] = strawberry.field(description="Every rule that matched, best first.")
    computed_at: datetime = strawberry.field(description="When the pair was last scored (UTC).")

    @strawberry.field(description="One of the two customers (the older one).")
    async def customer(self, info: Info) -> Customer | None:
        return await load_customer(info, self.customer_pk)

    @strawberry.field(description="The other customer (the newer one).")
    async def duplicate(self, info: Info) -> Customer | None:
        return await load_customer(info, self.duplicate_pk)

    @classmethod
    def from_model(cls, row: CandidateModel) -> DuplicateCandidate:
        reasons = sorted(service.reasons_of(row), key=lambda r: -r.score)
        return cls(
            customer_pk=row.customer_a_id, duplicate_pk=row.customer_b_id, score=row.score,
            reasons=[DuplicateReason.from_reason(r) for r in reasons], computed_at=row.computed_at,
        )


@strawberry.type(description="A page of duplicate candidates, best score first.")
class DuplicateCandidateConnection(Connection[DuplicateCandidate]):
    pass


# Both descending, so one index (score, id) read backwards serves the order on SQLite and PostgreSQL.
CANDIDATE_ORDER = [SortKey(CandidateModel.score, "score", True, int), SortKey(CandidateModel.id, "id", True, int)]


# --- merges ------------------------------------------------------------------------------------------


@strawberry.type(description="A row a merge moved (or would move) to the survivor, or a column it adjusted.")
class MergeMovedRow:
    table: str = strawberry.field(description="The table, e.g. `orders` or `segment_members`.")
    row: JSON = strawberry.field(description="The row's primary key values before the change, e.g. `{\"id\": 12}`.")
    column: str = strawberry.field(description="The column changed, e.g. `customer_id`.")
    from_: JSON | None = strawberry.field(name="from", description="Its value before.")
    to: JSON | None = strawberry.field(description="Its value after.")


@strawberry.type(description="A row a merge removed because the survivor had the same one (a tag, a segment membership, an email...).")
class MergeRemovedRow:
    table: str = strawberry.field(description="The table.")
    row: JSON = strawberry.field(description="The row's primary key values.")
    values: JSON = strawberry.field(description="Every column of the row, as it was; an undo inserts it again.")


@strawberry.type(description="How many rows of one table a merge moves and removes.")
class MergeTableCount:
    table: str = strawberry.field(description="The table.")
    moved: int = strawberry.field(description="Rows moved to the survivor.")
    removed: int = strawberry.field(description="Rows removed because the survivor had the same one.")


@strawberry.type(description="Everything a merge changes: the survivor's fields, each row moved or removed, and the plugins' reports.")
class MergePlan:
    dry_run: bool = strawberry.field(description="True when nothing was written (`dryRun: true`).")
    survivor_before: JSON = strawberry.field(description="The survivor's fields before the merge (column names).")
    survivor_after: JSON = strawberry.field(description="The survivor's fields after the merge.")
    counts: list[MergeTableCount] = strawberry.field(description="Rows moved and removed, by table.")
    moved: list[MergeMovedRow] = strawberry.field(description="Every row moved (table, row, column, from, to).")
    removed: list[MergeRemovedRow] = strawberry.field(description="Every row removed, with its values.")
    plugins: JSON = strawberry.field(description="What each plugin's `crm_merge_customers` reported, by plugin name.")

    @classmethod
    def from_plan(cls, plan: merging.Plan) -> MergePlan:
        return cls(
            dry_run=plan.dry_run,
            survivor_before=plan.fields.get("before", {}),
            survivor_after=plan.fields.get("after", {}),
            counts=[MergeTableCount(table=t, moved=a, removed=b) for t, a, b in plan.counts()],
            moved=[MergeMovedRow(table=c["table"], row=c["row"], column=c["column"], from_=c["from"], to=c["to"]) for c in plan.changes],
            removed=[MergeRemovedRow(table=r["table"], row=r["row"], values=r["values"]) for r in plan.removed],
            plugins=plan.plugins,
        )


@strawberry.type(description="A merge of customers into one: what it changed, and whether it can still be undone.")
class CustomerMerge(Node):
    survivor_pk: strawberry.Private[int]
    merged_ids: list[strawberry.ID] = strawberry.field(description="Global IDs of the merged customers; they resolve to the survivor.")
    created_at: datetime = strawberry.field(description="When the merge happened (UTC).")
    created_by: str | None = strawberry.field(description="Who merged (`user:5`, `api_key:3`), if known.")
    undo_until: datetime | None = strawberry.field(description="Until when `undoMerge` can undo it.")
    undone_at: datetime | None = strawberry.field(description="When it was undone; null while it stands.")
    plan: MergePlan = strawberry.field(description="Everything the merge changed.")

    @strawberry.field(description="The customer that survived.")
    async def survivor(self, info: Info) -> Customer | None:
        return await load_customer(info, self.survivor_pk)

    @classmethod
    def from_model(cls, r: MergeModel) -> CustomerMerge:
        return cls(
            id=encode_global_id("CustomerMerge", r.id), survivor_pk=r.survivor_id,
            merged_ids=[encode_global_id("Customer", pk) for pk in r.merged_ids], created_at=r.created_at,
            created_by=r.created_by, undo_until=r.undo_until, undone_at=r.undone_at,
            plan=MergePlan.from_plan(merging.plan_of(r)),
        )


@strawberry.input(description="Which customer's value of one field the survivor keeps.")
class MergeFieldChoice:
    field: MergeField = strawberry.field(description="The field.")
    customer_id: strawberry.ID = strawberry.field(description="The survivor or one of the merged customers.")


@strawberry.input(description="Customers to merge into one.")
class MergeCustomersInput:
    survivor_id: strawberry.ID = strawberry.field(description="The customer that stays; it keeps its ID.")
    merged_ids: list[strawberry.ID] = strawberry.field(
        description="Customers merged into the survivor (1 to 10): their rows move to it, they are deleted and "
        "their IDs resolve to it."
    )
    field_choices: list[MergeFieldChoice] | None = strawberry.field(
        default=None,
        description="Which customer's value each field keeps. Without a choice a field keeps the survivor's value, "
        "or a merged customer's when the survivor has none (owner and consent only when chosen; an opt-out wins).",
    )
    dry_run: bool = strawberry.field(default=False, description="Only say what would change; nothing is written.")


@strawberry.type(description="The outcome of `mergeCustomers`.")
class MergeCustomersPayload:
    customer: Customer | None = strawberry.field(description="The survivor as stored; for a dry run as it is now (`plan.survivorAfter` says what would change); null on errors.")
    merge: CustomerMerge | None = strawberry.field(description="The merge record; null for a dry run and on errors.")
    plan: MergePlan | None = strawberry.field(description="What was (or would be) changed; null on errors.")
    errors: list[UserError] = strawberry.field(description="Why nothing was merged; empty on success.")


@strawberry.input(description="A merge to undo.")
class UndoMergeInput:
    merge_id: strawberry.ID = strawberry.field(description="Global ID of the CustomerMerge.")


@strawberry.type(description="The outcome of `undoMerge`.")
class UndoMergePayload:
    merge: CustomerMerge | None = strawberry.field(description="The merge, now undone; null on errors.")
    errors: list[UserError] = strawberry.field(description="Why nothing was undone; empty on success.")


@strawberry.input(description="Two customers that are not duplicates of each other.")
class DismissDuplicateInput:
    customer_id: strawberry.ID = strawberry.field(description="Global ID of one customer.")
    other_id: strawberry.ID = strawberry.field(description="Global ID of the other.")


@strawberry.type(description="The outcome of `dismissDuplicate`.")
class DismissDuplicatePayload:
    customer: Customer | None = strawberry.field(description="The first customer; null on errors.")
    other: Customer | None = strawberry.field(description="The second customer; null on errors.")
    errors: list[UserError] = strawberry.field(description="Why nothing changed; empty on success.")


def _ids(value: str, field: str) -> int:
    pk = try_decode_global_id(value, "Customer")
    if pk is None:
        raise _NotFound(field)
    return pk


class _NotFound(Exception):
    def __init__(self, field: str) -> None:
        self.field = field


def _not_found(field: str, what: str = "Customer") -> list[UserError]:
    return [UserError(field=field, code="NOT_FOUND", message=f"{what} was not found.")]


async def refresh(info: Info) -> None:
    """Bring the stored keys and pairs up to date (a short system transaction)."""
    async with info.context.base_db.writer() as session, session.begin():
        await service.refresh_changed(session)


async def _load_merges(info: Info, pks: list[int]) -> list[CustomerMerge | None]:
    loaded = await info.context.loader("dedupe.merge", merging.merges_by_ids).load_many(pks)
    return [CustomerMerge.from_model(r) if r is not None else None for r in loaded]


@strawberry.type
class DedupeQuery:
    @access.query("customers", description="Pairs of customers that look like duplicates, best score first. Both "
                  "customers of every pair are ones the caller can read; dismissed pairs never show.")
    async def duplicate_candidates(
        self, info: Info, first: int | None = None, after: str | None = None,
    ) -> DuplicateCandidateConnection:
        args = page_args(first, after, None, None)
        await refresh(info)
        page = await paginate(info.context.db.reader, service.candidate_select(), CANDIDATE_ORDER, args)
        return DuplicateCandidateConnection.from_page(page, DuplicateCandidate.from_model)

    @access.query("customers", description="One merge by ID, with everything it changed; null if unknown or its survivor is hidden.")
    async def customer_merge(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of a CustomerMerge.")]
    ) -> CustomerMerge | None:
        pk = try_decode_global_id(id, "CustomerMerge")
        return (await _load_merges(info, [pk]))[0] if pk is not None else None


@strawberry.type
class DedupeMutation:
    @access.mutation("customers", "delete", description="Merge customers into one survivor: every row of theirs "
                     "moves to it (see docs/duplicates.md), they are deleted and their IDs resolve to it. Also needs "
                     "`customers:update`. `dryRun: true` returns the same plan and writes nothing.")
    async def merge_customers(
        self, info: Info, input: Annotated[MergeCustomersInput, strawberry.argument(description="What to merge.")]
    ) -> MergeCustomersPayload:
        try:
            survivor = _ids(input.survivor_id, "survivorId")
            merged = [_ids(v, f"mergedIds.{i}") for i, v in enumerate(input.merged_ids)]
            choices: dict[str, int] = {}
            for i, choice in enumerate(input.field_choices or []):
                choices[choice.field.value] = _ids(choice.customer_id, f"fieldChoices.{i}.customerId")
        except _NotFound as exc:
            return MergeCustomersPayload(customer=None, merge=None, plan=None, errors=_not_found(exc.field))
        actor, dry_run = info.context.actor, input.dry_run

        async def work(session: Any) -> tuple[Customer, MergePlan, CustomerMerge | None]:
            model, plan, record = await merging.merge_customers(
                session, actor=actor, survivor_id=survivor, merged_ids=merged, field_choices=choices, dry_run=dry_run,
            )
            shown = Customer.from_model(model)
            return shown, MergePlan.from_plan(plan), CustomerMerge.from_model(record) if record is not None else None

        result, errors = await unit_of_work(info, work)
        if result is None:
            return MergeCustomersPayload(customer=None, merge=None, plan=None, errors=errors)
        customer, plan, record = result
        return MergeCustomersPayload(customer=customer, merge=record, plan=plan, errors=[])

    @access.mutation("customers", "delete", description="Undo a merge within 30 days: exactly the rows it moved go back, "
                     "the rows it removed return and the merged customers are live again. Also needs `customers:update`.")
    async def undo_merge(
        self, info: Info, input: Annotated[UndoMergeInput, strawberry.argument(description="The merge to undo.")]
    ) -> UndoMergePayload:
        pk = try_decode_global_id(input.merge_id, "CustomerMerge")
        if pk is None:
            return UndoMergePayload(merge=None, errors=_not_found("mergeId", "CustomerMerge"))
        actor = info.context.actor

        async def work(session: Any) -> CustomerMerge:
            return CustomerMerge.from_model(await merging.undo_merge(session, actor=actor, merge_id=pk))

        record, errors = await unit_of_work(info, work)
        return UndoMergePayload(merge=record, errors=[e if e.field != "id" else UserError(field="mergeId", code=e.code, message=e.message) for e in errors])

    @access.mutation("customers", "update", description="Say two customers are not duplicates: the pair leaves "
                     "`duplicateCandidates` and `possibleDuplicates` for good.")
    async def dismiss_duplicate(
        self, info: Info, input: Annotated[DismissDuplicateInput, strawberry.argument(description="The two customers.")]
    ) -> DismissDuplicatePayload:
        try:
            a, b = _ids(input.customer_id, "customerId"), _ids(input.other_id, "otherId")
        except _NotFound as exc:
            return DismissDuplicatePayload(customer=None, other=None, errors=_not_found(exc.field))
        actor = info.context.actor
        _, errors = await unit_of_work(info, lambda s: service.dismiss_duplicate(s, actor=actor, customer_id=a, other_id=b))
        if errors:
            return DismissDuplicatePayload(customer=None, other=None, errors=errors)
        return DismissDuplicatePayload(customer=await load_customer(info, a), other=await load_customer(info, b), errors=[])


NODES = [NodeType("CustomerMerge", _load_merges, CustomerMerge)]

SCHEMA = SchemaPart(
    query=DedupeQuery, mutation=DedupeMutation, nodes=NODES,
    types=[PossibleDuplicate, DuplicateCandidate, CustomerMerge],
)
