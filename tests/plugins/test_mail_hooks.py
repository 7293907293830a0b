"""``crm_mail_transports`` and ``crm_marketing_providers``, as a partner uses them beside the
marketing plugin (plugins/crm_marketing): a partner's transport (an email service provider's API,
kept in the test process: the partner's program) carries a finished campaign message and says
when an address is refused for good; a partner's provider exports a segment in its own list
format (only who may receive marketing mail) and its report comes back once, suppressing who
unsubscribed; two of one name stop start-up. The built-in SMTP transport and csv provider are
tested against a real SMTP server and real files in plugins/crm_marketing/tests.

The marketing plugin's runtime (``crm_marketing.runtime.Runtime``) is what collects both hooks;
these tests build it from the app's plugin manager as the plugin's own code does."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default

import pytest
import sqlalchemy as sa

from crm_graph import hookimpl
from crm_graph.core import ids
from crm_graph.core.errors import DomainError
from crm_graph.core.mail import ExportedList, MailError, OutgoingMail, ProviderError, ProviderResult
from crm_graph.plugins import PluginError, make_plugin_manager

CUSTOMER = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } errors { code } } }"
SEGMENT = "mutation($i: CreateSegmentInput!) { createSegment(input: $i) { segment { id } errors { code } } }"


@dataclass
class Esp:
    """The partner's email service: what it accepted, and addresses it refuses for good."""

    accepted: list[OutgoingMail] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)
    sessions: int = 0
    closed: int = 0


class EspSession:
    def __init__(self, esp: Esp, config) -> None:  # noqa: ANN001
        self.esp, self.config = esp, dict(config)

    async def send(self, mail: OutgoingMail) -> str:
        if set(mail.recipients) & self.esp.refused:
            raise MailError("550 5.1.1 no such mailbox", permanent=True, code=550)
        self.esp.accepted.append(mail)
        return f"queued as esp-{len(self.esp.accepted)}"

    async def aclose(self) -> None:
        self.esp.closed += 1


class EspTransport:
    name = "partner-esp"
    description = "The partner's email service provider"

    def __init__(self, esp: Esp) -> None:
        self.esp = esp

    async def open(self, config) -> EspSession:  # noqa: ANN001
        self.esp.sessions += 1
        return EspSession(self.esp, config)


class JsonLines:
    """The partner's marketing tool speaks JSON Lines."""

    name = "jsonl"
    description = "JSON Lines lists and reports"

    def export_audience(self, name, members):  # noqa: ANN001, ANN201
        lines = [json.dumps({"email": m.email, "name": m.display_name, "ref": m.customer_id}) for m in members]
        return ExportedList(f"{name}.jsonl", "application/x-ndjson", "\n".join(lines).encode(), len(members))

    def parse_results(self, content):  # noqa: ANN001, ANN201
        for number, line in enumerate(content.decode().splitlines(), 1):
            try:
                row = json.loads(line)
                yield ProviderResult(row["id"], row["email"], row["type"].upper(), datetime.fromisoformat(row["time"]))
            except (ValueError, KeyError) as exc:
                raise ProviderError(f"line {number}: {type(exc).__name__} {exc}", line=number) from None


class Partner:
    name = "partner"

    def __init__(self) -> None:
        self.esp = Esp()

    @hookimpl
    def crm_mail_transports(self):  # noqa: ANN201
        return EspTransport(self.esp)

    @hookimpl
    def crm_marketing_providers(self):  # noqa: ANN201
        return [JsonLines()]


def runtime(settings, plugins, transport: str | None = None):  # noqa: ANN001, ANN201
    from crm_marketing.config import MarketingSettings, MarketingTuning
    from crm_marketing.runtime import Runtime

    config = MarketingSettings(tuning=replace(MarketingTuning(), transport=transport or "smtp"))
    return Runtime(settings, plugins, config)


async def test_hook_crm_mail_transports_a_partners_transport_carries_the_campaign_mail(server_factory, settings):
    from crm_marketing import message

    partner = Partner()
    server = await server_factory(partner, entry_points=True)
    chosen = runtime(settings, server.plugins, transport="partner-esp")
    assert {"smtp", "partner-esp"} <= set(chosen.transports)
    assert chosen.transport() is not None and chosen.transport().name == "partner-esp"
    content = message.build(chosen.config, from_address="Shop <shop@example.com>", to_address="ana@example.com",
                            to_name="Ana", subject="Winter sale", html="<p>Boots</p>", text="Boots",
                            msgid=message.message_id(chosen.config, 1, 7),
                            unsubscribe_url=chosen.url("/mail/u/token"))
    session = await chosen.transport().open(chosen.transport_config())
    answer = await session.send(OutgoingMail(content, "bounces+r7-abc@crm.localhost", ["ana@example.com"],
                                             message.message_id(chosen.config, 1, 7)))
    partner.esp.refused.add("gone@example.com")
    with pytest.raises(MailError) as refused:
        await session.send(OutgoingMail(content, "bounces+r8-abc@crm.localhost", ["gone@example.com"]))
    await session.aclose()
    assert answer == "queued as esp-1" and refused.value.permanent and refused.value.code == 550
    (mail,) = partner.esp.accepted
    sent = message_from_bytes(mail.content, policy=default)
    assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" and sent["Subject"] == "Winter sale"
    assert (partner.esp.sessions, partner.esp.closed) == (1, 1)
    # Without the setting the built-in SMTP transport is used; a name nobody registered is a clear error.
    assert runtime(settings, server.plugins).transport().name == "smtp"
    with pytest.raises(LookupError, match="no mail transport 'sendgrid' .* known: partner-esp, smtp"):
        runtime(settings, server.plugins, transport="sendgrid").transport()


async def test_hook_crm_marketing_providers_a_partners_tool_gets_the_audience_and_gives_results_back(server_factory, settings):
    from crm_marketing.models import Campaign, CampaignStatus, Engagement, EngagementKind, Suppression
    from crm_marketing.providers import export_segment, import_results

    server = await server_factory(Partner(), entry_points=True)
    client, db = server.client, server.app.state.db
    made = {}
    for name, consent in (("Ana", "OPTED_IN"), ("Bo", "OPTED_IN"), ("Cy", "OPTED_OUT")):
        data = {"kind": "PERSON", "lastName": name, "emails": [{"address": f"{name.lower()}@example.com"}],
                "tags": ["vip"], "emailConsent": {"status": consent}}
        made[name] = (await client.mutate(CUSTOMER, {"i": data}))["customer"]["id"]
    segment = (await client.mutate(SEGMENT, {"i": {"name": "VIP", "kind": "DYNAMIC",
                                                   "filter": {"tags": {"containsAny": ["vip"]}}}}))["segment"]["id"]
    tools = runtime(settings, server.plugins)
    assert {"csv", "jsonl"} <= set(tools.providers)
    exported = await export_segment(db, tools, provider="jsonl", segment_id=ids.decode(segment)[1])
    assert exported.filename == "VIP.jsonl" and exported.count == 2
    assert [json.loads(line) for line in exported.content.decode().splitlines()] == [
        {"email": "ana@example.com", "name": "Ana", "ref": made["Ana"]},
        {"email": "bo@example.com", "name": "Bo", "ref": made["Bo"]}]

    now = datetime(2026, 11, 22, 9, tzinfo=UTC)
    async with db.writer() as session, session.begin():
        campaign = Campaign(name="VIP", subject="s", from_address="shop@example.com", segment_id=ids.decode(segment)[1],
                            html="<p/>", track_opens=True, track_clicks=True, status=CampaignStatus.SENT,
                            created_by="test", created_at=now, updated_at=now)
        session.add(campaign)
    report = "\n".join(json.dumps(r) for r in [
        {"id": "r-1", "email": "ana@example.com", "type": "opened", "time": "2026-11-22T10:00:00+00:00"},
        {"id": "r-2", "email": "bo@example.com", "type": "unsubscribed", "time": "2026-11-22T11:00:00+00:00"},
    ]).encode()
    summary = await import_results(db, tools, provider="jsonl", campaign_id=campaign.id, content=report)
    assert (summary.imported, summary.repeated, summary.unknown, summary.suppressed) == (2, 0, 0, 1)
    again = await import_results(db, tools, provider="jsonl", campaign_id=campaign.id, content=report)
    assert (again.imported, again.repeated) == (0, 2)
    async with db.reader() as session:
        kinds = list(await session.scalars(sa.select(Engagement.kind).order_by(Engagement.at)))
        suppressed = list(await session.scalars(sa.select(Suppression.email)))
    assert kinds == [EngagementKind.OPENED, EngagementKind.UNSUBSCRIBED] and suppressed == ["bo@example.com"]
    # Bo unsubscribed: the next export leaves him out.
    exported = await export_segment(db, tools, provider="jsonl", segment_id=ids.decode(segment)[1])
    assert [json.loads(line)["email"] for line in exported.content.decode().splitlines()] == ["ana@example.com"]
    # A report the provider cannot read is refused with its line; nothing of it is recorded.
    unreadable = b'{"id": "r-3", "email": "ana@example.com", "type": "clicked", "time": "2026-11-22T12:00:00Z"}\n{"id": 4}'
    with pytest.raises(DomainError) as bad:
        await import_results(db, tools, provider="jsonl", campaign_id=campaign.id, content=unreadable)
    assert [(e.field, e.code) for e in bad.value.errors] == [("content", "INVALID_RESULTS")]
    assert bad.value.errors[0].message.startswith("line 2: KeyError")
    async with db.reader() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Engagement)) == 2


class TwinTransport:
    name = "twin"

    @hookimpl
    def crm_mail_transports(self):  # noqa: ANN201
        transport = EspTransport(Esp())
        transport.name = "smtp"  # type: ignore[misc]
        return transport


class TwinProvider:
    name = "twin"

    @hookimpl
    def crm_marketing_providers(self):  # noqa: ANN201
        provider = JsonLines()
        provider.name = "csv"  # type: ignore[misc]
        return provider


def test_hook_crm_mail_transports_two_of_one_name_stop_start_up(settings):
    from crm_marketing.runtime import Runtime

    with pytest.raises(PluginError, match=r"plugin 'twin': mail transport 'smtp' clashes with plugin 'crm_graph.mail.plugin'"):
        Runtime(settings, make_plugin_manager(settings, plugins=[TwinTransport()]))


def test_hook_crm_marketing_providers_two_of_one_name_stop_start_up(settings):
    from crm_marketing.runtime import Runtime

    with pytest.raises(PluginError, match=r"plugin 'twin': marketing provider 'csv' clashes with plugin 'crm_marketing'"):
        Runtime(settings, make_plugin_manager(settings, plugins=[TwinProvider()]))
