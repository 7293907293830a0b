"""Queries and mutations of the marketing plugin, and what it adds to ``Customer``."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
import strawberry
from strawberry.types import Info

from crm_graph.core import ids
from crm_graph.core.errors import INVALID_VALUE, DomainError, FieldError, NotFound, ValidationFailed
from crm_graph.core.extensions import NodeType, TypeExtension
from crm_graph.core.pagination import SortKey, paginate
from crm_graph.domains import SchemaPart
from crm_graph.graphql.access import mutation, query
from crm_graph.graphql.context import Context
from crm_graph.graphql.errors import UserError, user_errors
from crm_graph.graphql.mutations import unit_of_work
from crm_graph.graphql.relay import page_args
from crm_marketing import campaigns as service
from crm_marketing.models import Campaign as CampaignModel
from crm_marketing.models import CampaignStatus as CampaignStatusModel
from crm_marketing.models import ConsentRecord as ConsentModel
from crm_marketing.models import MarketingList as ListModel
from crm_marketing.models import Suppression as SuppressionModel
from crm_marketing.models import SuppressionReason as SuppressionReasonModel
from crm_marketing.runtime import Runtime, runtime_of
from crm_marketing.schema.types import (
    AudienceExportPayload,
    Campaign,
    CampaignConnection,
    CampaignPayload,
    CampaignPreview,
    CampaignStatus,
    ConsentRecord,
    MailingList,
    MailingListPayload,
    ResultsImportPayload,
    Suppression,
    SuppressionPayload,
    SuppressionReason,
    TestSendPayload,
    TestSendResult,
)

NEWEST_FIRST = [SortKey(CampaignModel.id, "id", descending=True)]
MAX_IMPORT = 10 * 1024 * 1024


def _runtime(info: Info) -> Runtime:
    ctx: Context = info.context
    return runtime_of(ctx.settings, ctx.plugins)


def _pk(value: Any, type_name: str, field: str) -> int:
    try:
        return ids.decode_as(str(value), type_name)
    except ValueError:
        raise ValidationFailed([FieldError(field, INVALID_VALUE, f"{field} is not a {type_name} ID.")]) from None


@strawberry.input(description="A campaign. `html` and `text` are Jinja2 templates (sandboxed) over `customer` "
                  "(display_name, first_name, last_name, organization_name, email, city, country, locale, job_title, id), "
                  "`campaign` (name, id) and `unsubscribe_url`; without `{{ unsubscribe_url }}` an unsubscribe footer is "
                  "added. Tracking is off unless asked for.")
class CreateCampaignInput:
    name: str
    subject: str
    segment_id: strawberry.ID
    html: str
    text: str | None = None
    track_opens: bool = False
    track_clicks: bool = False
    from_address: str | None = strawberry.field(default=None, description="Default: CRM_MAIL_FROM.")
    reply_to: str | None = None
    list: str | None = strawberry.field(default=None, description="A mailing list's key: its unsubscribes apply too.")
    scheduled_at: datetime | None = strawberry.field(default=None, description="startCampaign then waits until this time.")


@strawberry.input(description="Changes to a DRAFT or SCHEDULED campaign: only the fields given change.")
class UpdateCampaignInput:
    name: str | None = strawberry.UNSET
    subject: str | None = strawberry.UNSET
    segment_id: strawberry.ID | None = strawberry.UNSET
    html: str | None = strawberry.UNSET
    text: str | None = strawberry.UNSET
    track_opens: bool | None = strawberry.UNSET
    track_clicks: bool | None = strawberry.UNSET
    from_address: str | None = strawberry.UNSET
    reply_to: str | None = strawberry.UNSET
    list: str | None = strawberry.UNSET
    scheduled_at: datetime | None = strawberry.UNSET


_INPUT_FIELDS = {"name": "name", "subject": "subject", "html": "html", "text": "text", "track_opens": "track_opens",
                 "track_clicks": "track_clicks", "from_address": "from_address", "reply_to": "reply_to",
                 "list": "list_key", "scheduled_at": "scheduled_at"}


def _data(input: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for attr, key in _INPUT_FIELDS.items():
        value = getattr(input, attr, strawberry.UNSET)
        if value is not strawberry.UNSET:
            data[key] = value
    segment = getattr(input, "segment_id", strawberry.UNSET)
    if segment is not strawberry.UNSET:
        data["segment_id"] = _pk(segment, "Segment", "segmentId") if segment is not None else None
    return data


@strawberry.input(description="A mailing list: `key` is what forms and campaigns name (letters, digits, - and _).")
class CreateMailingListInput:
    key: str
    name: str
    description: str | None = None


@strawberry.type
class MarketingQuery:
    @query("campaigns", description="Campaigns, newest first.")
    async def campaigns(
        self, info: Info, status: CampaignStatus | None = None,  # type: ignore[valid-type]
        first: int | None = None, after: str | None = None, last: int | None = None, before: str | None = None,
    ) -> CampaignConnection:
        stmt = sa.select(CampaignModel)
        if status is not None:
            stmt = stmt.where(CampaignModel.status == CampaignStatusModel(status.value))
        page = await paginate(info.context.db.reader, stmt, NEWEST_FIRST, page_args(first, after, last, before))
        return CampaignConnection.from_page(page, Campaign.from_model)

    @query("campaigns", description="A campaign as one customer would get it (their fields; links as written), or with "
           "sample fields when no customer is named.")
    async def campaign_preview(self, info: Info, id: strawberry.ID, customer_id: strawberry.ID | None = None) -> CampaignPreview:
        from crm_graph.graphql.errors import ClientError

        try:
            async with info.context.db.reader() as session:
                preview = await service.preview(session, _runtime(info), campaign_id=_pk(id, "Campaign", "id"),
                                                customer_id=_pk(customer_id, "Customer", "customerId") if customer_id else None)
        except DomainError as exc:
            raise ClientError("; ".join(e.message for e in exc.errors), "BAD_REQUEST") from exc
        return CampaignPreview.of(preview)

    @query("campaigns", description="The mailing lists.")
    async def mailing_lists(self, info: Info) -> list[MailingList]:
        async with info.context.db.reader() as session:
            return [MailingList.from_model(m) for m in await session.scalars(sa.select(ListModel).order_by(ListModel.key))]

    @query("campaigns", description="Suppressed addresses, newest first (at most 500), or the entries of one address.")
    async def suppressions(self, info: Info, email: str | None = None) -> list[Suppression]:
        stmt = sa.select(SuppressionModel).order_by(SuppressionModel.id.desc()).limit(500)
        if email:
            stmt = stmt.where(SuppressionModel.email == email.strip().lower())
        async with info.context.db.reader() as session:
            return [Suppression.from_model(m) for m in await session.scalars(stmt)]


@strawberry.type
class MarketingMutation:
    @mutation("campaigns", "create", description="A campaign draft. Its templates are checked now: a syntax error, an "
              "unknown variable or code the sandbox refuses is an error on `html`, `text` or `subject`.")
    async def create_campaign(self, info: Info, input: CreateCampaignInput) -> CampaignPayload:
        ctx: Context = info.context
        model, errors = await unit_of_work(info, lambda s: service.create_campaign(
            s, _runtime(info), actor=ctx.actor, data=_data(input)))
        return CampaignPayload(campaign=Campaign.from_model(model) if model else None, errors=errors)

    @mutation("campaigns", "update", description="Change a DRAFT or SCHEDULED campaign.")
    async def update_campaign(self, info: Info, id: strawberry.ID, input: UpdateCampaignInput) -> CampaignPayload:
        ctx: Context = info.context
        model, errors = await unit_of_work(info, lambda s: service.update_campaign(
            s, _runtime(info), actor=ctx.actor, campaign_id=_pk(id, "Campaign", "id"), data=_data(input)))
        return CampaignPayload(campaign=Campaign.from_model(model) if model else None, errors=errors)

    @mutation("campaigns", "update", description="Start sending: the audience is taken now (the segment's OPTED_IN, "
              "unsuppressed members with an email) and the worker sends. With a future `scheduledAt` the campaign waits "
              "(SCHEDULED). `NO_RECIPIENTS` when nobody may receive it.")
    async def start_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        ctx: Context = info.context
        model, errors = await unit_of_work(info, lambda s: service.start_campaign(
            s, _runtime(info), actor=ctx.actor, campaign_id=_pk(id, "Campaign", "id")))
        return CampaignPayload(campaign=Campaign.from_model(model) if model else None, errors=errors)

    @mutation("campaigns", "update", description="Stop sending for now; resumeCampaign goes on where it stopped.")
    async def pause_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        ctx: Context = info.context
        model, errors = await unit_of_work(info, lambda s: service.pause_campaign(
            s, actor=ctx.actor, campaign_id=_pk(id, "Campaign", "id")))
        return CampaignPayload(campaign=Campaign.from_model(model) if model else None, errors=errors)

    @mutation("campaigns", "update", description="Go on sending a PAUSED campaign.")
    async def resume_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        ctx: Context = info.context
        model, errors = await unit_of_work(info, lambda s: service.resume_campaign(
            s, actor=ctx.actor, campaign_id=_pk(id, "Campaign", "id")))
        return CampaignPayload(campaign=Campaign.from_model(model) if model else None, errors=errors)

    @mutation("campaigns", "update", description="Cancel: what is not sent yet will not be.")
    async def cancel_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        ctx: Context = info.context
        model, errors = await unit_of_work(info, lambda s: service.cancel_campaign(
            s, actor=ctx.actor, campaign_id=_pk(id, "Campaign", "id")))
        return CampaignPayload(campaign=Campaign.from_model(model) if model else None, errors=errors)

    @mutation("campaigns", "update", description="Send the campaign now to up to 10 addresses, with sample customer "
              "fields and \"[Test]\" in the subject; links are not tracked. Not recorded, not retried.")
    async def test_send_campaign(self, info: Info, id: strawberry.ID, addresses: list[str]) -> TestSendPayload:
        from crm_marketing.sender import send_test

        try:
            pk = _pk(id, "Campaign", "id")
            checked = service.checked_test_addresses(addresses)
            async with info.context.db.reader() as session:
                campaign = await service.get_campaign(session, pk)
            if campaign is None:
                raise NotFound("The campaign", "id")
        except DomainError as exc:
            return TestSendPayload(results=[], errors=user_errors(exc))
        results = await send_test(_runtime(info), campaign, checked)
        return TestSendPayload(results=[TestSendResult(address=r.address, sent=r.error is None, error=r.error)
                                        for r in results], errors=[])

    @mutation("campaigns", "create", description="A mailing list forms and campaigns can name.")
    async def create_mailing_list(self, info: Info, input: CreateMailingListInput) -> MailingListPayload:
        model, errors = await unit_of_work(info, lambda s: _create_list(s, input))
        return MailingListPayload(mailing_list=MailingList.from_model(model) if model else None, errors=errors)

    @mutation("campaigns", "update", description="Stop all marketing mail (or one list's) to an address.")
    async def add_suppression(self, info: Info, email: str, list: str | None = None,
                              reason: SuppressionReason | None = None) -> SuppressionPayload:  # type: ignore[valid-type]
        model, errors = await unit_of_work(info, lambda s: _suppress(s, email, list or "", reason))
        return SuppressionPayload(suppression=Suppression.from_model(model) if model else None, removed=False, errors=errors)

    @mutation("campaigns", "delete", description="Take an address off the suppression list (global, or one list's). "
              "For a complaint or a hard bounce, only when you know the address works and wants the mail again.")
    async def remove_suppression(self, info: Info, email: str, list: str | None = None) -> SuppressionPayload:
        async def work(session: Any) -> bool:
            result = await session.execute(sa.delete(SuppressionModel).where(
                SuppressionModel.email == email.strip().lower(), SuppressionModel.list_key == (list or "")))
            return bool(result.rowcount)

        removed, errors = await unit_of_work(info, work)
        return SuppressionPayload(suppression=None, removed=bool(removed), errors=errors)

    @mutation("campaigns", "read", description="A segment's audience (OPTED_IN, unsuppressed, with an email) in a "
              "marketing provider's list format, e.g. `csv`.")
    async def export_segment_audience(self, info: Info, segment_id: strawberry.ID, provider: str = "csv") -> AudienceExportPayload:
        from crm_marketing import providers

        runtime = _runtime(info)
        try:
            pk = _pk(segment_id, "Segment", "segmentId")
            exported = await providers.export_segment(info.context.db, runtime, provider=provider, segment_id=pk)
        except DomainError as exc:
            return AudienceExportPayload(filename=None, content_type=None, content_base64=None, count=0, errors=user_errors(exc))
        return AudienceExportPayload(filename=exported.filename, content_type=exported.content_type,
                                     content_base64=base64.b64encode(exported.content).decode(), count=exported.count, errors=[])

    @mutation("campaigns", "update", description="Record a marketing provider's results (opens, clicks, unsubscribes, "
              "bounces, complaints) from its report file, base64 encoded. Each row is recorded once, however often the "
              "file is imported; unsubscribes, hard bounces and complaints suppress the address.")
    async def import_marketing_results(self, info: Info, file_base64: str, provider: str = "csv",
                                       campaign_id: strawberry.ID | None = None) -> ResultsImportPayload:
        from crm_marketing import providers

        runtime = _runtime(info)
        empty = {"imported": 0, "repeated": 0, "unknown": 0, "suppressed": 0}
        try:
            pk = _pk(campaign_id, "Campaign", "campaignId") if campaign_id else None
            if len(file_base64) > MAX_IMPORT * 4 // 3 + 4:
                raise ValidationFailed([FieldError("fileBase64", "TOO_LARGE", "The file is larger than 10 MB.")])
            try:
                content = base64.b64decode(file_base64, validate=True)
            except (binascii.Error, ValueError):
                raise ValidationFailed([FieldError("fileBase64", INVALID_VALUE, "fileBase64 is not base64.")]) from None
            summary = await providers.import_results(info.context.db, runtime, provider=provider, campaign_id=pk,
                                                     content=content, actor=info.context.actor)
        except DomainError as exc:  # the service names the file `content`; here it is `fileBase64`
            errors = [UserError(field="fileBase64" if e.field == "content" else e.field, code=e.code, message=e.message)
                      for e in user_errors(exc)]
            return ResultsImportPayload(**empty, errors=errors)
        return ResultsImportPayload(imported=summary.imported, repeated=summary.repeated, unknown=summary.unknown,
                                    suppressed=summary.suppressed, errors=[])


async def _create_list(session: Any, input: CreateMailingListInput) -> ListModel:
    import re

    from crm_graph.core.clock import utcnow

    key = input.key.strip()
    problems = []
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key):
        problems.append(FieldError("key", INVALID_VALUE, "key is 1 to 64 letters, digits, - or _."))
    if not 1 <= len(input.name.strip()) <= 200:
        problems.append(FieldError("name", INVALID_VALUE, "name is 1 to 200 characters."))
    if not problems and await session.scalar(sa.select(ListModel.id).where(ListModel.key == key)) is not None:
        problems.append(FieldError("key", "DUPLICATE", f"There is a list {key!r} already."))
    if problems:
        raise ValidationFailed(problems)
    model = ListModel(key=key, name=input.name.strip(), description=input.description, created_at=utcnow())
    session.add(model)
    await session.flush()
    return model


async def _suppress(session: Any, email: str, list_key: str, reason: Any) -> SuppressionModel:
    from crm_graph.customers import validation
    from crm_marketing import engage

    try:
        address = validation.email(email)
    except Exception:  # noqa: BLE001 - validation's own error type
        raise ValidationFailed([FieldError("email", "INVALID_EMAIL", "email is not a valid address.")]) from None
    if list_key and await session.scalar(sa.select(ListModel.id).where(ListModel.key == list_key)) is None:
        raise ValidationFailed([FieldError("list", "NOT_FOUND", f"There is no mailing list {list_key!r}.")])
    await engage.suppress(session, email=address, list_key=list_key,
                          reason=SuppressionReasonModel(reason.value) if reason else SuppressionReasonModel.MANUAL)
    return await session.scalar(sa.select(SuppressionModel).where(SuppressionModel.email == address,
                                                                  SuppressionModel.list_key == list_key))


# --- on customers ----------------------------------------------------------------------------------


async def _consents_for(session: Any, pks: list[int]) -> dict[int, list[ConsentModel]]:
    out: dict[int, list[ConsentModel]] = {}
    rows = await session.scalars(sa.select(ConsentModel).where(ConsentModel.customer_id.in_(pks))
                                 .order_by(ConsentModel.at, ConsentModel.id))
    for row in rows:
        out.setdefault(row.customer_id, []).append(row)
    return out


@strawberry.type
class CustomerMarketingFields:
    """Joins the ``Customer`` type; ``self`` is the Customer."""

    @strawberry.field(description="The customer's email-marketing consent record, oldest first: every sign-up, "
                      "confirmation and withdrawal with when, from where, the form and the policy text.")
    async def marketing_consents(self, info: Info) -> list[ConsentRecord]:
        if not info.context.actor.can("campaigns", "read"):
            return []
        rows = await info.context.loader("crm_marketing.consents", _consents_for, list).load(self.pk)  # type: ignore[attr-defined]
        return [ConsentRecord.from_model(r) for r in rows]


async def _load_campaigns(info: Info, pks: list[int]) -> list[Campaign | None]:
    if not info.context.actor.can("campaigns", "read"):
        return [None] * len(pks)
    found = await info.context.loader("crm_marketing.campaign", service.campaigns_by_ids).load_many(pks)
    return [Campaign.from_model(m) if m is not None else None for m in found]


SCHEMA = SchemaPart(query=MarketingQuery, mutation=MarketingMutation,
                    nodes=[NodeType("Campaign", _load_campaigns, Campaign)])
EXTENSIONS = [TypeExtension("Customer", CustomerMarketingFields)]
