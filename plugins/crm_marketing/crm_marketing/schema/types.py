"""The marketing plugin's GraphQL types."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from crm_graph.graphql.errors import UserError
from crm_graph.graphql.money import Money
from crm_graph.graphql.relay import Connection, Node, encode_global_id
from crm_marketing import campaigns as service
from crm_marketing.models import Campaign as CampaignModel
from crm_marketing.models import CampaignStatus as CampaignStatusModel
from crm_marketing.models import ConsentAction as ConsentActionModel
from crm_marketing.models import ConsentRecord as ConsentModel
from crm_marketing.models import MarketingList as ListModel
from crm_marketing.models import Suppression as SuppressionModel
from crm_marketing.models import SuppressionReason as SuppressionReasonModel

CampaignStatus = strawberry.enum(CampaignStatusModel, name="CampaignStatus",
                                 description="DRAFT, SCHEDULED (starts at scheduledAt), SENDING, PAUSED, SENT or CANCELLED.")
SuppressionReason = strawberry.enum(SuppressionReasonModel, name="SuppressionReason",
                                    description="Why an address receives no marketing mail.")
ConsentAction = strawberry.enum(ConsentActionModel, name="ConsentAction",
                                description="REQUESTED (signed up, link mailed), CONFIRMED (opted in) or WITHDRAWN.")


@strawberry.type(description="Clicks on one link of a campaign.")
class CampaignLinkStats:
    url: str
    clicks: int = strawberry.field(description="Every click, repeats included.")
    unique_clicks: int = strawberry.field(description="Recipients who clicked it.")


@strawberry.type(description="What followed a campaign within CRM_MARKETING_ATTRIBUTION_DAYS of a recipient's first "
                 "click, or of a sign-up through the form with the campaign as utm_campaign.")
class CampaignAttribution:
    window_days: int
    leads: int = strawberry.field(description="Customers created in the window (sign-ups among them).")
    opportunities: int
    orders: int
    revenue: list[Money] = strawberry.field(description="The orders' totals, by currency.")


@strawberry.type(description="A campaign's figures, from its recipients and their engagement.")
class CampaignStats:
    recipients: int = strawberry.field(description="The audience taken when sending started.")
    sent: int
    pending: int = strawberry.field(description="Not sent yet (queued, or waiting for a retry).")
    failed: int = strawberry.field(description="Refused by the mail server, or out of retries.")
    skipped: int = strawberry.field(description="Suppressed or withdrawn after the audience was taken, or cancelled.")
    unconfirmed: int = strawberry.field(description="Their sender stopped mid-send: maybe delivered; never sent again.")
    bounced: int = strawberry.field(description="Recipients whose mail bounced for good.")
    soft_bounced: int
    opened: int = strawberry.field(description="Recipients who opened it (when opens are tracked).")
    opens: int = strawberry.field(description="Every open, repeats included.")
    clicked: int = strawberry.field(description="Recipients who clicked a link (when clicks are tracked).")
    clicks: int
    unsubscribed: int
    complained: int
    links: list[CampaignLinkStats]
    attributed: CampaignAttribution


def stats_type(s: Any, window: int) -> CampaignStats:
    return CampaignStats(
        recipients=s.recipients, sent=s.sent, pending=s.pending, failed=s.failed, skipped=s.skipped,
        unconfirmed=s.unconfirmed, bounced=s.bounced, soft_bounced=s.soft_bounced, opened=s.opened, opens=s.opens,
        clicked=s.clicked, clicks=s.clicks, unsubscribed=s.unsubscribed, complained=s.complained,
        links=[CampaignLinkStats(url=link.url, clicks=link.clicks, unique_clicks=link.unique_clicks) for link in s.links],
        attributed=CampaignAttribution(window_days=window, leads=s.leads, opportunities=s.opportunities, orders=s.orders,
                                       revenue=[Money.of(m.amount, m.currency) for m in s.revenue]),
    )


@strawberry.type(description="An email campaign to a segment.")
class Campaign(Node):
    pk: strawberry.Private[int]
    name: str
    subject: str = strawberry.field(description="A template like the HTML (Jinja2).")
    from_address: str
    reply_to: str | None
    segment_id: strawberry.ID
    list: str | None = strawberry.field(description="The mailing list: its unsubscribes apply (and global ones always).")
    html: str = strawberry.field(description="The HTML template (Jinja2, sandboxed): `customer.*`, `campaign.*`, "
                                 "`unsubscribe_url`. CSS is inlined when sent.")
    text: str | None = strawberry.field(description="The plain-text template; null: made from the HTML.")
    track_opens: bool
    track_clicks: bool
    status: CampaignStatus  # type: ignore[valid-type]
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    audience: int | None = strawberry.field(description="Recipients taken when sending started (fixed from then on).")
    created_by: str
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="Sent, bounced, opened, clicked, unsubscribed, complained, per link, and what "
                      "followed (leads, opportunities, orders).")
    async def stats(self, info: Info) -> CampaignStats:
        from crm_marketing import stats
        from crm_marketing.runtime import runtime_of

        window = runtime_of(info.context.settings, info.context.plugins).config.tuning.attribution_days

        async def load(session: Any, pks: list[int]) -> dict[int, Any]:
            return await stats.campaign_stats(session, list(pks), attribution_days=window)

        found = await info.context.loader("crm_marketing.stats", load).load(self.pk)
        return stats_type(found, window)

    @strawberry.field(description="The segment it goes to.")
    async def segment(self, info: Info) -> Node | None:
        from crm_graph.graphql.relay import resolve_nodes

        try:
            return (await resolve_nodes(info, [self.segment_id]))[0]
        except Exception:  # noqa: BLE001 - a segment deleted since
            return None

    @classmethod
    def from_model(cls, m: CampaignModel) -> Campaign:
        return cls(
            id=encode_global_id("Campaign", m.id), pk=m.id, name=m.name, subject=m.subject, from_address=m.from_address,
            reply_to=m.reply_to, segment_id=encode_global_id("Segment", m.segment_id), list=m.list_key or None,
            html=m.html, text=m.text, track_opens=m.track_opens, track_clicks=m.track_clicks, status=m.status,
            scheduled_at=m.scheduled_at, started_at=m.started_at, finished_at=m.finished_at, audience=m.audience,
            created_by=m.created_by, created_at=m.created_at, updated_at=m.updated_at,
        )


@strawberry.type(description="A page of campaigns.")
class CampaignConnection(Connection[Campaign]):
    pass


@strawberry.type(description="A mailing list: customers unsubscribe from it alone, or from everything.")
class MailingList:
    key: str
    name: str
    description: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, m: ListModel) -> MailingList:
        return cls(key=m.key, name=m.name, description=m.description, created_at=m.created_at)


@strawberry.type(description="An address that receives no marketing mail (from any list, or from `list`).")
class Suppression:
    email: str
    list: str | None
    reason: SuppressionReason  # type: ignore[valid-type]
    detail: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, m: SuppressionModel) -> Suppression:
        return cls(email=m.email, list=m.list_key or None, reason=m.reason, detail=m.detail, created_at=m.created_at)


@strawberry.type(description="One step of a customer's email-marketing consent: when, from where, through which form "
                 "and under which policy text.")
class ConsentRecord:
    action: ConsentAction  # type: ignore[valid-type]
    email: str
    list: str | None
    form: str | None
    policy_text: str | None
    ip: str | None
    user_agent: str | None
    utm: JSON
    at: datetime

    @classmethod
    def from_model(cls, m: ConsentModel) -> ConsentRecord:
        return cls(action=m.action, email=m.email, list=m.list_key or None, form=m.form, policy_text=m.policy_text,
                   ip=m.ip, user_agent=m.user_agent, utm=m.utm or {}, at=m.at)


@strawberry.type(description="A campaign as one customer would get it.")
class CampaignPreview:
    recipient: str
    subject: str
    html: str
    text: str

    @classmethod
    def of(cls, p: service.Preview) -> CampaignPreview:
        return cls(recipient=p.recipient, subject=p.subject, html=p.html, text=p.text)


@strawberry.type
class CampaignPayload:
    campaign: Campaign | None
    errors: list[UserError]


@strawberry.type(description="What happened to one address of a test send.")
class TestSendResult:
    address: str
    sent: bool
    error: str | None = strawberry.field(description="The mail server's answer when it refused.")


@strawberry.type
class TestSendPayload:
    results: list[TestSendResult]
    errors: list[UserError]


@strawberry.type
class MailingListPayload:
    mailing_list: MailingList | None
    errors: list[UserError]


@strawberry.type
class SuppressionPayload:
    suppression: Suppression | None
    removed: bool = strawberry.field(description="For removeSuppression: whether there was one.")
    errors: list[UserError]


@strawberry.type(description="A segment's audience in a marketing provider's list format.")
class AudienceExportPayload:
    filename: str | None
    content_type: str | None
    content_base64: str | None
    count: int
    errors: list[UserError]


@strawberry.type(description="What an import of a provider's results recorded.")
class ResultsImportPayload:
    imported: int
    repeated: int = strawberry.field(description="Rows recorded by an earlier import: not counted again.")
    unknown: int = strawberry.field(description="Rows for addresses the CRM does not know.")
    suppressed: int = strawberry.field(description="Addresses suppressed by this import.")
    errors: list[UserError]
