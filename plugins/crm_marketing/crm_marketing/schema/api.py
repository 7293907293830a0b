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
    name: str = strawberry.field(description="1 to 200 characters; for the team, recipients do not see it.")
    subject: str = strawberry.field(description="1 to 500 characters; a template like `html`.")
    segment_id: strawberry.ID = strawberry.field(description="Global ID of the Segment to send to (NOT_FOUND if it is "
                                                 "gone).")
    html: str = strawberry.field(description="The HTML template; required.")
    text: str | None = strawberry.field(default=None, description="The plain-text template; default: text made from "
                                        "the HTML.")
    track_opens: bool = strawberry.field(default=False, description="Add a tracking pixel to record opens.")
    track_clicks: bool = strawberry.field(default=False, description="Rewrite links to record clicks.")
    from_address: str | None = strawberry.field(default=None, description="Default: CRM_MAIL_FROM.")
    reply_to: str | None = strawberry.field(default=None, description="A Reply-To address; default: none (replies go "
                                            "to the From address).")
    list: str | None = strawberry.field(default=None, description="A mailing list's key: its unsubscribes apply too.")
    scheduled_at: datetime | None = strawberry.field(default=None, description="startCampaign then waits until this time.")


@strawberry.input(description="Changes to a DRAFT or SCHEDULED campaign: only the fields given change.")
class UpdateCampaignInput:
    name: str | None = strawberry.field(default=strawberry.UNSET, description="1 to 200 characters.")
    subject: str | None = strawberry.field(default=strawberry.UNSET, description="1 to 500 characters; a template like "
                                           "`html`.")
    segment_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET, description="Global ID of the Segment "
                                                        "to send to.")
    html: str | None = strawberry.field(default=strawberry.UNSET, description="The HTML template (Jinja2, sandboxed).")
    text: str | None = strawberry.field(default=strawberry.UNSET, description="The plain-text template; null: made "
                                        "from the HTML.")
    track_opens: bool | None = strawberry.field(default=strawberry.UNSET, description="Record opens with a tracking "
                                                "pixel.")
    track_clicks: bool | None = strawberry.field(default=strawberry.UNSET, description="Rewrite links to record "
                                                 "clicks.")
    from_address: str | None = strawberry.field(default=strawberry.UNSET, description='The From address ("Name '
                                                '<address>" allowed); null: CRM_MAIL_FROM.')
    reply_to: str | None = strawberry.field(default=strawberry.UNSET, description="The Reply-To address; null: none.")
    list: str | None = strawberry.field(default=strawberry.UNSET, description="A mailing list's key; null: no list.")
    scheduled_at: datetime | None = strawberry.field(default=strawberry.UNSET, description="When to start sending, in "
                                                     "the future; null: when started.")


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
    key: str = strawberry.field(description="1 to 64 letters, digits, - or _; unique (else DUPLICATE).")
    name: str = strawberry.field(description="1 to 200 characters.")
    description: str | None = strawberry.field(default=None, description="What the list is about.")


@strawberry.type
class MarketingQuery:
    @query("campaigns", description="Campaigns, newest first.")
    async def campaigns(
        self, info: Info,
        status: Annotated[
            CampaignStatus | None,  # type: ignore[valid-type]
            strawberry.argument(description="Only campaigns in this status."),
        ] = None,
        first: int | None = None, after: str | None = None, last: int | None = None, before: str | None = None,
    ) -> CampaignConnection:
        stmt = sa.select(CampaignModel)
        if status is not None:
            stmt = stmt.where(CampaignModel.status == CampaignStatusModel(status.value))
        page = await paginate(info.context.db.reader, stmt, NEWEST_FIRST, page_args(first, after, last, before))
        return CampaignConnection.from_page(page, Campaign.from_model)

    @query("campaigns", description="A campaign as one customer would get it (their fields; links as written), or with "
           "sample fields when no customer is named.")
    async def campaign_preview(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the Campaign.")],
        customer_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Global ID of the Customer to render it for; default: sample fields."),
        ] = None,
    ) -> CampaignPreview:
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
    async def suppressions(
        self, info: Info,
        email: Annotated[str | None, strawberry.argument(description="Only this address (any case).")] = None,
    ) -> list[Suppression]:
        stmt = sa.select(SuppressionModel).order_by(SuppressionModel.id.desc()).limit(500)
        if email:
            stmt = stmt.where(SuppressionModel.email == email.strip().lower())
        async with info.context.db.reader() as session:
            return [Suppression.from_model(m) for m in await session.scalars(stmt)]


@strawberry.type
class MarketingMutation:
    @mutation("campaigns", "create", description="A campaign draft. Its templates are checked now: a syntax error, an "
              "unknown variable or code the sandbox refuses is an error on `html`, `text` or `subject`.")
    async def create_campaign(
        self, info: Info, input: Annotated[CreateCampaignInput, strawberry.argument(description="The new campaign.")],
    ) -> CampaignPayload:
        ctx: Context = info.context
        model, errors = await unit_of_work(info, lambda s: service.create_campaign(
            s, _runtime(info), actor=ctx.actor, data=_data(input)))
        return CampaignPayload(campaign=Campaign.from_model(model) if model else None, errors=errors)

    @mutation("campaigns", "update", description="Change a DRAFT or SCHEDULED campaign.")
    async def update_campaign(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the Campaign; INVALID_STATE unless it "
                                                         "is DRAFT or SCHEDULED.")],
        input: Annotated[UpdateCampaignInput, strawberry.argument(description="The fields to change.")],
    ) -> CampaignPayload:
        ctx: Context = info.context
        model, errors = await unit_of_work(info, lambda s: service.update_campaign(
            s, _runtime(info), actor=ctx.actor, campaign_id=_pk(id, "Campaign", "id"), data=_data(input)))
        return CampaignPayload(campaign=Campaign.from_model(model) if model else None, errors=errors)

    @mutation("campaigns", "update", description="Start sending: the audience is taken now (the segment's OPTED_IN, "
              "unsuppressed members with an email) and the worker sends. With a future `scheduledAt` the campaign waits "
              "(SCHEDULED). `NO_RECIPIENTS` when nobody may receive it.")
    async def start_campaign(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of a DRAFT or SCHEDULED Campaign "
                                                         "(else INVALID_STATE).")],
    ) -> CampaignPayload:
        ctx: Context = info.context
        model, errors = await unit_of_work(info, lambda s: service.start_campaign(
            s, _runtime(info), actor=ctx.actor, campaign_id=_pk(id, "Campaign", "id")))
        return CampaignPayload(campaign=Campaign.from_model(model) if model else None, errors=errors)

    @mutation("campaigns", "update", description="Stop sending for now; resumeCampaign goes on where it stopped.")
    async def pause_campaign(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of a SENDING Campaign (else "
                                                         "INVALID_STATE).")],
    ) -> CampaignPayload:
        ctx: Context = info.context
        model, errors = await unit_of_work(info, lambda s: service.pause_campaign(
            s, actor=ctx.actor, campaign_id=_pk(id, "Campaign", "id")))
        return CampaignPayload(campaign=Campaign.from_model(model) if model else None, errors=errors)

    @mutation("campaigns", "update", description="Go on sending a PAUSED campaign.")
    async def resume_campaign(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of a PAUSED Campaign (else "
                                                         "INVALID_STATE).")],
    ) -> CampaignPayload:
        ctx: Context = info.context
        model, errors = await unit_of_work(info, lambda s: service.resume_campaign(
            s, actor=ctx.actor, campaign_id=_pk(id, "Campaign", "id")))
        return CampaignPayload(campaign=Campaign.from_model(model) if model else None, errors=errors)

    @mutation("campaigns", "update", description="Cancel: what is not sent yet will not be.")
    async def cancel_campaign(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the Campaign; INVALID_STATE when it "
                                                         "is SENT or CANCELLED already.")],
    ) -> CampaignPayload:
        ctx: Context = info.context
        model, errors = await unit_of_work(info, lambda s: service.cancel_campaign(
            s, actor=ctx.actor, campaign_id=_pk(id, "Campaign", "id")))
        return CampaignPayload(campaign=Campaign.from_model(model) if model else None, errors=errors)

    @mutation("campaigns", "update", description="Send the campaign now to up to 10 addresses, with sample customer "
              "fields and \"[Test]\" in the subject; links are not tracked. Not recorded, not retried.")
    async def test_send_campaign(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the Campaign.")],
        addresses: Annotated[list[str], strawberry.argument(description="1 to 10 email addresses (else REQUIRED or "
                                                            "TOO_MANY); duplicates are sent once.")],
    ) -> TestSendPayload:
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
    async def create_mailing_list(
        self, info: Info, input: Annotated[CreateMailingListInput, strawberry.argument(description="The new list.")],
    ) -> MailingListPayload:
        model, errors = await unit_of_work(info, lambda s: _create_list(s, input))
        return MailingListPayload(mailing_list=MailingList.from_model(model) if model else None, errors=errors)

    @mutation("campaigns", "update", description="Stop all marketing mail (or one list's) to an address.")
    async def add_suppression(
        self, info: Info,
        email: Annotated[str, strawberry.argument(description="The address (INVALID_EMAIL if it is none).")],
        list: Annotated[str | None, strawberry.argument(description="A mailing list's key (NOT_FOUND if unknown); "
                                                        "default: every list.")] = None,
        reason: Annotated[
            SuppressionReason | None,  # type: ignore[valid-type]
            strawberry.argument(description="Why; default: MANUAL."),
        ] = None,
    ) -> SuppressionPayload:
        model, errors = await unit_of_work(info, lambda s: _suppress(s, email, list or "", reason))
        return SuppressionPayload(suppression=Suppression.from_model(model) if model else None, removed=False, errors=errors)

    @mutation("campaigns", "delete", description="Take an address off the suppression list (global, or one list's). "
              "For a complaint or a hard bounce, only when you know the address works and wants the mail again.")
    async def remove_suppression(
        self, info: Info,
        email: Annotated[str, strawberry.argument(description="The address (any case).")],
        list: Annotated[str | None, strawberry.argument(description="The mailing list's key; default: the global "
                                                        "suppression.")] = None,
    ) -> SuppressionPayload:
        async def work(session: Any) -> bool:
            result = await session.execute(sa.delete(SuppressionModel).where(
                SuppressionModel.email == email.strip().lower(), SuppressionModel.list_key == (list or "")))
            return bool(result.rowcount)

        removed, errors = await unit_of_work(info, work)
        return SuppressionPayload(suppression=None, removed=bool(removed), errors=errors)

    @mutation("campaigns", "read", description="A segment's audience (OPTED_IN, unsuppressed, with an email) in a "
              "marketing provider's list format, e.g. `csv`.")
    async def export_segment_audience(
        self, info: Info,
        segment_id: Annotated[strawberry.ID, strawberry.argument(description="Global ID of the Segment; EMPTY_AUDIENCE "
                                                                 "when nobody in it may receive marketing mail.")],
        provider: Annotated[str, strawberry.argument(description="A marketing provider's name (UNKNOWN_PROVIDER if "
                                                     "none has it).")] = "csv",
    ) -> AudienceExportPayload:
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
    async def import_marketing_results(
        self, info: Info,
        file_base64: Annotated[str, strawberry.argument(description="The report file, base64-encoded, at most 10 MB "
                                                        "(TOO_LARGE); a bad row refuses the whole file (INVALID_RESULTS, "
                                                        "with its line).")],
        provider: Annotated[str, strawberry.argument(description="The marketing provider whose report format it is "
                                                     "(UNKNOWN_PROVIDER if none has that name).")] = "csv",
        campaign_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Global ID of the Campaign the results are about; default: none."),
        ] = None,
    ) -> ResultsImportPayload:
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
