"""The marketing plugin's GraphQL types."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from crm_graph.graphql.enums import graphql_enum
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

CampaignStatus = graphql_enum(
    CampaignStatusModel,
    "DRAFT, SCHEDULED (starts at scheduledAt), SENDING, PAUSED, SENT or CANCELLED.",
    {
        "DRAFT": "Being written; `updateCampaign` changes it, `startCampaign` sends it.",
        "SCHEDULED": "Started with a future `scheduledAt`: the audience is taken and sending begins at that time.",
        "SENDING": "The audience is taken and the worker is sending.",
        "PAUSED": "Sending stopped by `pauseCampaign`; `resumeCampaign` goes on.",
        "SENT": "Every recipient has been dealt with (a scheduled campaign with nobody to send to ends here too).",
        "CANCELLED": "Cancelled: what was not sent will not be.",
    },
    name="CampaignStatus",
)
SuppressionReason = graphql_enum(
    SuppressionReasonModel,
    "Why an address receives no marketing mail.",
    {
        "UNSUBSCRIBED": "The recipient unsubscribed.",
        "HARD_BOUNCE": "Mail to the address bounced for good.",
        "SOFT_BOUNCES": "Too many temporary bounces in 30 days (CRM_MARKETING_SOFT_BOUNCE_LIMIT, 3 by default).",
        "COMPLAINT": "The recipient marked mail as spam; a new sign-up does not lift it.",
        "MANUAL": "Added by hand (`addSuppression`); a new sign-up does not lift it.",
    },
    name="SuppressionReason",
)
ConsentAction = graphql_enum(
    ConsentActionModel,
    "REQUESTED (signed up, link mailed), CONFIRMED (opted in) or WITHDRAWN.",
    {
        "REQUESTED": "Signed up through a form; a confirmation link was mailed (double opt-in).",
        "CONFIRMED": "The confirmation link was followed: the customer is OPTED_IN.",
        "WITHDRAWN": "Unsubscribed, from every list or from the one named in `list`.",
    },
    name="ConsentAction",
)


@strawberry.type(description="Clicks on one link of a campaign.")
class CampaignLinkStats:
    url: str = strawberry.field(description="The link's target, as written in the campaign's HTML.")
    clicks: int = strawberry.field(description="Every click, repeats included.")
    unique_clicks: int = strawberry.field(description="Recipients who clicked it.")


@strawberry.type(description="What followed a campaign within CRM_MARKETING_ATTRIBUTION_DAYS of a recipient's first "
                 "click, or of a sign-up through the form with the campaign as utm_campaign.")
class CampaignAttribution:
    window_days: int = strawberry.field(description="The attribution window in days (CRM_MARKETING_ATTRIBUTION_DAYS), "
                                        "both ends included.")
    leads: int = strawberry.field(description="Customers created in the window (sign-ups among them).")
    opportunities: int = strawberry.field(description="Opportunities of touched customers created in the window "
                                          "(deleted ones left out).")
    orders: int = strawberry.field(description="Orders of touched customers placed in the window, not cancelled or "
                                   "refunded.")
    revenue: list[Money] = strawberry.field(description="The orders' totals, by currency.")


@strawberry.type(description="A campaign's figures, from its recipients and their engagement.")
class CampaignStats:
    recipients: int = strawberry.field(description="The audience taken when sending started.")
    sent: int = strawberry.field(description="Accepted by the mail server.")
    pending: int = strawberry.field(description="Not sent yet (queued, or waiting for a retry).")
    failed: int = strawberry.field(description="Refused by the mail server, or out of retries.")
    skipped: int = strawberry.field(description="Suppressed or withdrawn after the audience was taken, or cancelled.")
    unconfirmed: int = strawberry.field(description="Their sender stopped mid-send: maybe delivered; never sent again.")
    bounced: int = strawberry.field(description="Recipients whose mail bounced for good.")
    soft_bounced: int = strawberry.field(description="Recipients whose mail bounced temporarily.")
    opened: int = strawberry.field(description="Recipients who opened it (when opens are tracked).")
    opens: int = strawberry.field(description="Every open, repeats included.")
    clicked: int = strawberry.field(description="Recipients who clicked a link (when clicks are tracked).")
    clicks: int = strawberry.field(description="Every click, repeats included.")
    unsubscribed: int = strawberry.field(description="Recipients who unsubscribed from it.")
    complained: int = strawberry.field(description="Recipients who marked it as spam.")
    links: list[CampaignLinkStats] = strawberry.field(description="Each tracked link, most clicked first.")
    attributed: CampaignAttribution = strawberry.field(description="Leads, opportunities, orders and revenue that "
                                                       "followed it.")


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
    name: str = strawberry.field(description="The campaign's own name, for the team (recipients do not see it).")
    subject: str = strawberry.field(description="A template like the HTML (Jinja2).")
    from_address: str = strawberry.field(description='The From header, e.g. "Shop <news@shop.example>".')
    reply_to: str | None = strawberry.field(description="The Reply-To address; null: replies go to `fromAddress`.")
    segment_id: strawberry.ID = strawberry.field(description="Global ID of the Segment it goes to.")
    list: str | None = strawberry.field(description="The mailing list: its unsubscribes apply (and global ones always).")
    html: str = strawberry.field(description="The HTML template (Jinja2, sandboxed): `customer.*`, `campaign.*`, "
                                 "`unsubscribe_url`. CSS is inlined when sent.")
    text: str | None = strawberry.field(description="The plain-text template; null: made from the HTML.")
    track_opens: bool = strawberry.field(description="Whether a tracking pixel records opens.")
    track_clicks: bool = strawberry.field(description="Whether links are rewritten to record clicks.")
    status: CampaignStatus = strawberry.field(description="Where the campaign is.")  # type: ignore[valid-type]
    scheduled_at: datetime | None = strawberry.field(description="When sending is to start (UTC); null: when started.")
    started_at: datetime | None = strawberry.field(description="When the audience was taken and sending began (UTC).")
    finished_at: datetime | None = strawberry.field(description="When it was SENT or CANCELLED (UTC).")
    audience: int | None = strawberry.field(description="Recipients taken when sending started (fixed from then on).")
    created_by: str = strawberry.field(description='Who created it, e.g. "user:42".')
    created_at: datetime = strawberry.field(description="When it was created (UTC).")
    updated_at: datetime = strawberry.field(description="When it was last changed (UTC).")

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
    key: str = strawberry.field(description="What forms, campaigns and suppressions name it by.")
    name: str = strawberry.field(description="Its display name.")
    description: str | None = strawberry.field(description="What it is about, if given.")
    created_at: datetime = strawberry.field(description="When it was created (UTC).")

    @classmethod
    def from_model(cls, m: ListModel) -> MailingList:
        return cls(key=m.key, name=m.name, description=m.description, created_at=m.created_at)


@strawberry.type(description="An address that receives no marketing mail (from any list, or from `list`).")
class Suppression:
    email: str = strawberry.field(description="The address, lower-cased.")
    list: str | None = strawberry.field(description="The mailing list's key; null: every list.")
    reason: SuppressionReason = strawberry.field(description="Why it was suppressed.")  # type: ignore[valid-type]
    detail: str | None = strawberry.field(description="More about it when known, e.g. the bounce's diagnostic.")
    created_at: datetime = strawberry.field(description="When it was suppressed (UTC).")

    @classmethod
    def from_model(cls, m: SuppressionModel) -> Suppression:
        return cls(email=m.email, list=m.list_key or None, reason=m.reason, detail=m.detail, created_at=m.created_at)


@strawberry.type(description="One step of a customer's email-marketing consent: when, from where, through which form "
                 "and under which policy text.")
class ConsentRecord:
    action: ConsentAction = strawberry.field(description="What happened.")  # type: ignore[valid-type]
    email: str = strawberry.field(description="The address it is about.")
    list: str | None = strawberry.field(description="The mailing list's key; null: all marketing mail.")
    form: str | None = strawberry.field(description='Through what it happened, e.g. "subscribe form" or "unsubscribe '
                                        'link".')
    policy_text: str | None = strawberry.field(description="The consent text shown when the customer signed up.")
    ip: str | None = strawberry.field(description="The client's IP address, when known.")
    user_agent: str | None = strawberry.field(description="The client's User-Agent header, when known.")
    utm: JSON = strawberry.field(description="The sign-up's UTM parameters (utm_source, utm_campaign, ...); {} without "
                                 "any.")
    at: datetime = strawberry.field(description="When it happened (UTC).")

    @classmethod
    def from_model(cls, m: ConsentModel) -> ConsentRecord:
        return cls(action=m.action, email=m.email, list=m.list_key or None, form=m.form, policy_text=m.policy_text,
                   ip=m.ip, user_agent=m.user_agent, utm=m.utm or {}, at=m.at)


@strawberry.type(description="A campaign as one customer would get it.")
class CampaignPreview:
    recipient: str = strawberry.field(description="The address it would go to: the customer's primary email (empty "
                                      "without one), or the sample's.")
    subject: str = strawberry.field(description="The rendered subject.")
    html: str = strawberry.field(description="The rendered HTML, links as written (not rewritten for tracking).")
    text: str = strawberry.field(description="The plain-text part: the text template rendered, or text made from "
                                 "the HTML.")

    @classmethod
    def of(cls, p: service.Preview) -> CampaignPreview:
        return cls(recipient=p.recipient, subject=p.subject, html=p.html, text=p.text)


@strawberry.type(description="The result of a campaign mutation.")
class CampaignPayload:
    campaign: Campaign | None = strawberry.field(description="The campaign as the mutation left it; null when `errors` "
                                                 "is not empty.")
    errors: list[UserError]


@strawberry.type(description="What happened to one address of a test send.")
class TestSendResult:
    address: str = strawberry.field(description="The address, as checked.")
    sent: bool = strawberry.field(description="Whether the mail server accepted it.")
    error: str | None = strawberry.field(description="The mail server's answer when it refused.")


@strawberry.type(description="The result of `testSendCampaign`.")
class TestSendPayload:
    results: list[TestSendResult] = strawberry.field(description="One per distinct address; empty when `errors` is "
                                                     "not.")
    errors: list[UserError]


@strawberry.type(description="The result of `createMailingList`.")
class MailingListPayload:
    mailing_list: MailingList | None = strawberry.field(description="The new list; null when `errors` is not empty.")
    errors: list[UserError]


@strawberry.type(description="The result of `addSuppression` or `removeSuppression`.")
class SuppressionPayload:
    suppression: Suppression | None = strawberry.field(description="For addSuppression: the address's suppression (an "
                                                       "existing one is kept as it was); null for removeSuppression.")
    removed: bool = strawberry.field(description="For removeSuppression: whether there was one.")
    errors: list[UserError]


@strawberry.type(description="A segment's audience in a marketing provider's list format.")
class AudienceExportPayload:
    filename: str | None = strawberry.field(description='A file name for it, e.g. "Newsletter.csv"; null on errors.')
    content_type: str | None = strawberry.field(description='The file\'s media type, e.g. "text/csv; charset=utf-8"; '
                                                'null on errors.')
    content_base64: str | None = strawberry.field(description="The file, base64-encoded; null on errors.")
    count: int = strawberry.field(description="Addresses in the file.")
    errors: list[UserError]


@strawberry.type(description="What an import of a provider's results recorded.")
class ResultsImportPayload:
    imported: int = strawberry.field(description="Rows recorded for the first time (`unknown` ones included).")
    repeated: int = strawberry.field(description="Rows recorded by an earlier import: not counted again.")
    unknown: int = strawberry.field(description="Rows for addresses the CRM does not know.")
    suppressed: int = strawberry.field(description="Addresses suppressed by this import.")
    errors: list[UserError]
