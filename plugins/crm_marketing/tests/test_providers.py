"""The built-in ``csv`` marketing provider and the two services providers are used through: a
segment exported as a list file (only who may receive marketing mail), and a results file
imported once (engagements on the customers and the campaign's recipients, suppressions, events),
with a bad row refused by its line and nothing written."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from crm_graph.core.errors import DomainError
from crm_graph.core.events import OutboxEvent
from crm_graph.core.mail import AudienceMember, ProviderError
from crm_marketing import engage
from crm_marketing.models import (
    Campaign,
    CampaignStatus,
    Engagement,
    EngagementKind,
    Inbound,
    Link,
    Recipient,
    RecipientStatus,
    Suppression,
    SuppressionReason,
)
from crm_marketing.providers import CsvProvider, export_segment, import_results
from crm_marketing.runtime import Runtime

CUSTOMER = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } errors { field code message } } }"
SEGMENT = "mutation($i: CreateSegmentInput!) { createSegment(input: $i) { segment { id } errors { field code message } } }"
T = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def pk(global_id: str) -> int:
    from crm_graph.core import ids

    return ids.decode(global_id)[1]


async def customer(client, first: str, last: str, email: str | None = None, consent: str | None = "OPTED_IN",  # noqa: ANN001
                   tags: list[str] | None = None) -> str:
    data = {"kind": "PERSON", "firstName": first, "lastName": last, "tags": tags or ["newsletter"]}
    if email:
        data["emails"] = [{"address": email}]
    if consent:
        data["emailConsent"] = {"status": consent, "source": "test"}
    return (await client.mutate(CUSTOMER, {"i": data}))["customer"]["id"]


async def segment(client, tag: str = "newsletter") -> int:  # noqa: ANN001
    made = await client.mutate(SEGMENT, {"i": {"name": "Newsletter, Q4", "kind": "DYNAMIC",
                                                "filter": {"tags": {"containsAny": [tag]}}}})
    return pk(made["segment"]["id"])


async def campaign_with(db, recipients: dict[str, int],  # noqa: ANN001
                        urls: tuple[str, ...] = ()) -> tuple[int, dict[str, int], dict[str, int]]:
    """A SENT campaign with one recipient row per (email -> customer pk) and tracked links."""
    async with db.writer() as session, session.begin():
        c = Campaign(name="Winter sale", subject="Sale", from_address="shop@example.com", segment_id=1, html="<p>x</p>",
                     track_opens=True, track_clicks=True, status=CampaignStatus.SENT, created_by="test",
                     created_at=T, updated_at=T)
        session.add(c)
        await session.flush()
        rows = {email: Recipient(campaign_id=c.id, customer_id=cid, email=email, status=RecipientStatus.SENT)
                for email, cid in recipients.items()}
        links = {url: Link(campaign_id=c.id, url_hash=f"{i:064d}", url=url, created_at=T) for i, url in enumerate(urls)}
        session.add_all([*rows.values(), *links.values()])
        await session.flush()
        return c.id, {e: r.id for e, r in rows.items()}, {u: link.id for u, link in links.items()}


def read_csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))


# --- the csv provider itself ------------------------------------------------------------------------


@pytest.mark.one_pass
def test_the_audience_file_is_rfc_4180_utf_8_and_safe_to_open_in_a_spreadsheet():
    members = [
        AudienceMember("Q3VzdG9tZXI6MQ", "ana@example.com", 'Ana "the boss", Ltd.', "Ana", "Müller"),
        AudienceMember("Q3VzdG9tZXI6Mg", "bo@example.com", "=HYPERLINK(\"http://evil\")", "+1", "-2"),
        AudienceMember("Q3VzdG9tZXI6Mw", "cy@example.com", "@SUM(A1)", "\tTab", "\rCR"),
        AudienceMember("Q3VzdG9tZXI6NA", "di@example.com", "Line\nbreak", None, None),
    ]
    exported = CsvProvider().export_audience("Newsletter / Q4", members)
    assert exported.filename == "Newsletter-Q4.csv" and exported.content_type == "text/csv; charset=utf-8"
    assert exported.count == 4
    assert exported.content.startswith(b"email,name,first_name,last_name,customer_id\r\n")
    assert b'"Ana ""the boss"", Ltd."' in exported.content and "Müller".encode() in exported.content
    rows = read_csv(exported.content)
    assert rows[1] == ["ana@example.com", 'Ana "the boss", Ltd.', "Ana", "Müller", "Q3VzdG9tZXI6MQ"]
    assert rows[2][1:4] == ["'=HYPERLINK(\"http://evil\")", "'+1", "'-2"]
    assert rows[3][1:4] == ["'@SUM(A1)", "'\tTab", "'\rCR"]
    assert rows[4] == ["di@example.com", "Line\nbreak", "", "", "Q3VzdG9tZXI6NA"]


@pytest.mark.one_pass
def test_results_are_read_in_any_case_with_ids_that_stay_the_same_at_every_read():
    content = (
        "\ufeffEmail,Event,At,URL,Id,Campaign name\r\n"
        "Ana@Example.com,Opened,2026-11-20T10:00:00Z,,,Winter\r\n"
        "ana@example.com,CLICKED,2026-11-20T11:00:00+01:00,https://shop.example/sale,,Winter\r\n"
        "bo@example.com,soft_bounced,2026-11-21T08:00:00Z,,esp-778,Winter\r\n"
        ",,,,,\r\n"
        "bo@example.com,complained,2026-11-21T09:00:00.5Z,,,\r\n"
    ).encode()
    results = CsvProvider().parse_results(content)
    assert [(r.email, r.kind, r.at.isoformat(), r.url) for r in results] == [
        ("ana@example.com", "OPENED", "2026-11-20T10:00:00+00:00", None),
        ("ana@example.com", "CLICKED", "2026-11-20T10:00:00+00:00", "https://shop.example/sale"),
        ("bo@example.com", "SOFT_BOUNCED", "2026-11-21T08:00:00+00:00", None),
        ("bo@example.com", "COMPLAINED", "2026-11-21T09:00:00.500000+00:00", None),
    ]
    assert results[2].external_id == "esp-778"
    assert results[0].external_id.startswith("sha256:") and len({r.external_id for r in results}) == 4
    # The same rows, written differently (case, offset, column order), are the same results.
    again = CsvProvider().parse_results(
        b"at,event,email\n2026-11-20T11:00:00+01:00,OPENED,ANA@example.com\n")
    assert again[0].external_id == results[0].external_id


@pytest.mark.one_pass
@pytest.mark.parametrize(("content", "line", "says"), [
    (b"", 1, "the file is empty"),
    (b"email,at\nana@example.com,2026-11-20T10:00:00Z\n", 1, "the header lacks event"),
    (b"email,event,at,email\n", 1, "names email twice"),
    (b"email,event,at\nana@example.com,opened,2026-11-20T10:00:00Z\nnot-an-email,opened,2026-11-20T10:00:00Z\n", 3, "email:"),
    (b"email,event,at\n\n\nana@example.com,read,2026-11-20T10:00:00Z\n", 4, "event 'read' is not one of opened, clicked"),
    (b"email,event,at\nana@example.com,opened,yesterday\n", 2, "not an ISO 8601 time"),
    (b"email,event,at\nana@example.com,opened,2026-11-20T10:00:00\n", 2, "has no time zone"),
    (b"email,event,at,url\nana@example.com,clicked,2026-11-20T10:00:00Z,javascript:alert(1)\n", 2, "url is not an http(s)"),
    (b"email,event,at\nana@example.com,opened\n", 2, "2 fields, but the header has 3"),
    (b"email,event,at\n\"ana@example.com,opened,2026-11-20T10:00:00Z\n", 2, "not valid CSV"),
    (b"email,event,at\nana@example.com,opened,2026-11-20T10:00:00Z\nb\xe9@example.com,opened,x\n", 3, "not UTF-8"),
    ("email,event,at,id\nana@example.com,opened,2026-11-20T10:00:00Z,{}\n".format("x" * 201).encode(), 2, "id has more than 200"),
])
def test_a_bad_row_stops_the_file_naming_its_line_and_what_is_wrong(content, line, says):
    with pytest.raises(ProviderError) as caught:
        CsvProvider().parse_results(content)
    assert caught.value.line == line
    assert caught.value.message.startswith(f"line {line}: ") and says in caught.value.message


@pytest.mark.one_pass
def test_files_over_the_limits_are_refused():
    with pytest.raises(ProviderError, match="at most 10 MB"):
        CsvProvider().parse_results(b"email,event,at\n" + b" " * (10 * 1024 * 1024))
    row = b"ana@example.com,opened,2026-11-20T10:00:00Z\n"
    assert len(CsvProvider().parse_results(b"email,event,at\n" + row * 100_000)) == 100_000
    with pytest.raises(ProviderError, match="line 100002: more than 100000 rows"):
        CsvProvider().parse_results(b"email,event,at\n" + row * 100_001)


# --- exporting a segment ----------------------------------------------------------------------------


async def test_a_segment_exports_only_members_who_may_receive_marketing_mail(crm_client, crm_app, crm_settings):
    db, runtime = crm_app.state.db, Runtime(crm_settings, crm_app.state.plugins)
    ana = await customer(crm_client, "=Ana", "Müller", "Ana@Example.com")
    await customer(crm_client, "Bo", "Suppressed", "bo@example.com")
    await customer(crm_client, "Cy", "Opted out", "cy@example.com", consent="OPTED_OUT")
    await customer(crm_client, "Di", "Unknown", "di@example.com", consent=None)
    await customer(crm_client, "Ed", "No email")
    await customer(crm_client, "Fay", "Not in the segment", "fay@example.com", tags=["other"])
    async with db.writer() as session, session.begin():
        await engage.suppress(session, email="BO@example.com", reason=SuppressionReason.HARD_BOUNCE)
    exported = await export_segment(db, runtime, provider="csv", segment_id=await segment(crm_client))
    assert exported.filename == "Newsletter-Q4.csv" and exported.count == 1
    assert read_csv(exported.content) == [["email", "name", "first_name", "last_name", "customer_id"],
                                          ["ana@example.com", "'=Ana Müller", "'=Ana", "Müller", ana]]


async def test_exporting_says_what_is_wrong(crm_client, crm_app, crm_settings):
    db, runtime = crm_app.state.db, Runtime(crm_settings, crm_app.state.plugins)
    await customer(crm_client, "Cy", "Opted out", "cy@example.com", consent="OPTED_OUT")
    empty = await segment(crm_client)
    for kwargs, field, code in [
        ({"provider": "mailchimp", "segment_id": empty}, "provider", "UNKNOWN_PROVIDER"),
        ({"provider": "csv", "segment_id": 999_999}, "segmentId", "NOT_FOUND"),
        ({"provider": "csv", "segment_id": empty}, "segmentId", "EMPTY_AUDIENCE"),
    ]:
        with pytest.raises(DomainError) as caught:
            await export_segment(db, runtime, **kwargs)
        assert [(e.field, e.code) for e in caught.value.errors] == [(field, code)]
    assert "known: csv" in str((await _error(export_segment(db, runtime, provider="x", segment_id=empty))).message)


async def _error(call):  # noqa: ANN001, ANN202
    with pytest.raises(DomainError) as caught:
        await call
    return caught.value.errors[0]


# --- importing results ------------------------------------------------------------------------------


async def _counts(db) -> tuple[int, int, int, int]:  # noqa: ANN001
    async with db.reader() as session:
        return tuple([await session.scalar(sa.select(sa.func.count()).select_from(model))  # type: ignore[return-value]
                      for model in (Engagement, Suppression, Inbound, OutboxEvent)])


async def test_results_are_recorded_once_on_customers_and_recipients_and_suppress(crm_client, crm_app, crm_settings, crm_events):
    db, runtime = crm_app.state.db, Runtime(crm_settings, crm_app.state.plugins)
    ana, bo = await customer(crm_client, "Ana", "A", "ana@example.com"), await customer(crm_client, "Bo", "B", "bo@example.com")
    campaign, recipients, links = await campaign_with(db, {"ana@example.com": pk(ana), "bo@example.com": pk(bo)},
                                                      ("https://shop.example/sale",))
    before = len(await crm_events.all("marketing.*"))
    report = (
        "email,event,at,url\n"
        "ana@example.com,opened,2026-11-20T10:00:00Z,\n"
        "ana@example.com,opened,2026-11-20T12:00:00Z,\n"
        "ANA@example.com,clicked,2026-11-20T12:01:00Z,https://shop.example/sale\n"
        "ana@example.com,soft_bounced,2026-11-21T08:00:00Z,\n"
        "bo@example.com,unsubscribed,2026-11-20T13:00:00Z,\n"
        "zed@example.com,complained,2026-11-20T14:00:00Z,\n"
        "ana@example.com,opened,2026-11-20T10:00:00Z,\n"  # the first row again, in the same file
    ).encode()
    summary = await import_results(db, runtime, provider="csv", campaign_id=campaign, content=report)
    assert (summary.imported, summary.repeated, summary.unknown, summary.suppressed) == (6, 1, 1, 2)
    async with db.reader() as session:
        rows = (await session.execute(
            sa.select(Engagement.kind, Engagement.campaign_id, Engagement.recipient_id, Engagement.customer_id,
                      Engagement.link_id).order_by(Engagement.at))).all()
        suppressions = dict((await session.execute(sa.select(Suppression.email, Suppression.reason))).all())
    a, b = recipients["ana@example.com"], recipients["bo@example.com"]
    assert [tuple(r) for r in rows] == [
        (EngagementKind.OPENED, campaign, a, pk(ana), None),
        (EngagementKind.OPENED, campaign, a, pk(ana), None),
        (EngagementKind.CLICKED, campaign, a, pk(ana), links["https://shop.example/sale"]),
        (EngagementKind.UNSUBSCRIBED, campaign, b, pk(bo), None),
        (EngagementKind.COMPLAINED, campaign, None, None, None),
        (EngagementKind.SOFT_BOUNCED, campaign, a, pk(ana), None),
    ]
    assert suppressions == {"bo@example.com": SuppressionReason.UNSUBSCRIBED, "zed@example.com": SuppressionReason.COMPLAINT}
    events = (await crm_events.all("marketing.*"))[before:]
    assert [(e.type, e.entity_id) for e in events] == [
        ("marketing.opened", ana), ("marketing.clicked", ana), ("marketing.bounced", ana), ("marketing.unsubscribed", bo)]
    assert events[2].data["kind"] == "SOFT" and events[1].data["url"] == "https://shop.example/sale"

    # The same report again (a retry, a second upload) records nothing.
    counts = await _counts(db)
    again = await import_results(db, runtime, provider="csv", campaign_id=campaign, content=report)
    assert (again.imported, again.repeated, again.suppressed) == (0, 7, 0)
    assert await _counts(db) == counts

    # Without a campaign, results still reach the customer (and an open raises no event).
    later = await import_results(db, runtime, provider="csv", campaign_id=None,
                                 content=b"email,event,at\nbo@example.com,opened,2026-11-23T10:00:00Z\n")
    assert later.imported == 1
    async with db.reader() as session:
        last = (await session.execute(sa.select(Engagement.campaign_id, Engagement.customer_id)
                                      .order_by(Engagement.id.desc()).limit(1))).one()
    assert tuple(last) == (None, pk(bo)) and len(await crm_events.all("marketing.*")) == before + 4


async def test_a_bad_report_writes_nothing(crm_client, crm_app, crm_settings):
    db, runtime = crm_app.state.db, Runtime(crm_settings, crm_app.state.plugins)
    ana = await customer(crm_client, "Ana", "A", "ana@example.com")
    campaign, _, _ = await campaign_with(db, {"ana@example.com": pk(ana)})
    counts = await _counts(db)
    bad = b"email,event,at\nana@example.com,unsubscribed,2026-11-20T10:00:00Z\nana@example.com,opened,soon\n"
    error = await _error(import_results(db, runtime, provider="csv", campaign_id=campaign, content=bad))
    assert (error.field, error.code) == ("content", "INVALID_RESULTS")
    assert error.message.startswith("line 3: at 'soon' is not an ISO 8601 time")
    good = b"email,event,at\nana@example.com,unsubscribed,2026-11-20T10:00:00Z\n"
    error = await _error(import_results(db, runtime, provider="csv", campaign_id=campaign + 100, content=good))
    assert (error.field, error.code) == ("campaignId", "NOT_FOUND")
    error = await _error(import_results(db, runtime, provider="xls", campaign_id=campaign, content=good))
    assert (error.field, error.code) == ("provider", "UNKNOWN_PROVIDER")
    assert await _counts(db) == counts  # no inbound row, engagement, suppression or event
    assert not await _suppressed(db, "ana@example.com")


async def _suppressed(db, email: str) -> bool:  # noqa: ANN001
    async with db.reader() as session:
        return bool(await engage.suppressed(session, [email]))
