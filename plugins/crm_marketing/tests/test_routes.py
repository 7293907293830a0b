"""The public mail routes over HTTP, without sign-in: RFC 8058 one-click unsubscribe (and the page
a person sees, whose GET changes nothing), the open pixel, click redirects that lead only to the
stored URL, and DSNs posted by the mail server.

Campaign, recipient and link rows are inserted directly here: what is under test is what happens
once a mail is out, not how a campaign is made and sent (test_sending.py covers that)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from crm_graph.core import ids
from crm_graph.core.clock import utcnow
from crm_graph.core.events import global_id
from crm_graph.core.mail import OutgoingMail
from crm_graph.plugins import make_plugin_manager
from crm_marketing import bounces, consent, tokens, tracking
from crm_marketing.engage import suppressed
from crm_marketing.models import (Campaign, CampaignStatus, ConsentAction, ConsentRecord, Engagement, EngagementKind,
                                  Inbound, Link, MarketingList, Recipient, RecipientStatus, Suppression,
                                  SuppressionReason)
from crm_marketing.routes import GIF
from crm_marketing.runtime import Runtime, runtime_of

CREATE = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } errors { code message } } }"
CUSTOMER = """query($id: ID!) { node(id: $id) { ... on Customer { emailConsent { status source }
  activities { edges { node { type subject body } } } } } }"""
URL = "https://shop.test/spring?x=1&y=2"


@pytest.fixture
def extra_env() -> dict[str, str]:
    return {}


@pytest.fixture
def crm_plugins(crm_settings, monkeypatch, extra_env):
    env = {"CRM_PUBLIC_URL": "https://crm.shop.test", "CRM_MARKETING_RETURN_DOMAIN": "bounces.shop.test",
           "CRM_MARKETING_INBOUND_SECRET": "s3cret-for-the-mta", **extra_env}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return make_plugin_manager(crm_settings)


@pytest.fixture
def runtime(crm_settings, crm_plugins) -> Runtime:
    return runtime_of(crm_settings, crm_plugins)


@pytest.fixture
async def web(crm_app):
    """No credentials: what a mail program, a link scanner or a browser sends."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=crm_app, client=("198.51.100.4", 40000)),
                                 base_url="http://localhost", headers={"User-Agent": "Mail/1.0"}) as client:
        yield client


async def sent_mail(crm_client: Any, crm_db: Any, email: str, *, list_key: str = "", consent: str = "OPTED_IN") -> dict[str, int]:
    """A customer who was sent a campaign (rows inserted directly: see the module's note)."""
    made = await crm_client.mutate(CREATE, {"i": {"kind": "PERSON", "firstName": "Noor", "lastName": "Haddad",
                                                  "emails": [{"address": email, "primary": True}],
                                                  "emailConsent": {"status": consent, "source": "shop"}}})
    customer_id = ids.decode_as(made["customer"]["id"], "Customer")
    now = utcnow()
    async with crm_db.writer() as session, session.begin():
        if list_key and await session.scalar(sa.select(MarketingList.id).where(MarketingList.key == list_key)) is None:
            session.add(MarketingList(key=list_key, name=list_key.title(), created_at=now))
        campaign = Campaign(name="Spring sale", subject="Spring is here", from_address="news@shop.test", segment_id=1,
                            list_key=list_key, html="<p>hi</p>", text=None, track_opens=True, track_clicks=True,
                            status=CampaignStatus.SENT, created_by="test", created_at=now, updated_at=now)
        session.add(campaign)
        await session.flush()
        recipient = Recipient(campaign_id=campaign.id, customer_id=customer_id, email=email, status=RecipientStatus.SENT,
                              attempts=1, sent_at=now, message_id=f"<crm.c{campaign.id}@bounces.shop.test>")
        link = Link(campaign_id=campaign.id, url_hash="0" * 64, url=URL, created_at=now)
        session.add_all([recipient, link])
        await session.flush()
        return {"customer": customer_id, "campaign": campaign.id, "recipient": recipient.id, "link": link.id}


async def rows(crm_db: Any, model: Any, *where: Any) -> list[Any]:
    async with crm_db.reader() as session:
        return list(await session.scalars(sa.select(model).where(*where).order_by(model.id)))


async def test_one_click_unsubscribes_without_sign_in_and_the_page_get_changes_nothing(
        web, crm_client, crm_db, crm_events, runtime):
    sent = await sent_mail(crm_client, crm_db, "noor@example.com", list_key="offers")
    token = consent.unsubscribe_token(runtime, recipient_id=sent["recipient"])
    gid = ids.encode("Customer", sent["customer"])

    shown = await web.get(f"/mail/u/{token}")
    assert shown.status_code == 200 and '<form method="post">' in shown.text
    assert 'value="everything"' in shown.text and "Offers" in shown.text and "noor@example.com" in shown.text
    assert await rows(crm_db, ConsentRecord) == []  # a link scanner's GET unsubscribes no one

    one_click = await web.post(f"/mail/u/{token}", content=b"List-Unsubscribe=One-Click",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert one_click.status_code == 200 and "no longer receive" in one_click.text
    async with crm_db.reader() as session:
        assert await suppressed(session, ["noor@example.com"], "offers") == {"noor@example.com"}
        assert await suppressed(session, ["noor@example.com"], "") == set()  # only that list
    (withdrawn,) = await rows(crm_db, ConsentRecord)
    assert (withdrawn.action, withdrawn.list_key, withdrawn.campaign_id) == (ConsentAction.WITHDRAWN, "offers", sent["campaign"])
    assert withdrawn.form == "one-click unsubscribe (RFC 8058)" and withdrawn.user_agent == "Mail/1.0"
    (engagement,) = await rows(crm_db, Engagement)
    assert (engagement.kind, engagement.recipient_id) == (EngagementKind.UNSUBSCRIBED, sent["recipient"])
    assert (await crm_client.execute(CUSTOMER, {"id": gid}))["node"]["emailConsent"]["status"] == "OPTED_IN"

    replay = await web.post(f"/mail/u/{token}", content=b"List-Unsubscribe=One-Click",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert replay.status_code == 200 and "Already unsubscribed" in replay.text
    assert len(await rows(crm_db, ConsentRecord)) == 1 and len(await rows(crm_db, Engagement)) == 1
    left = await web.get(f"/mail/u/{token}")
    assert "no longer receives the list “Offers”" in left.text and "Stop all marketing mail" in left.text

    # The page's own form, asking for everything (multipart, as some browsers send it).
    everything = await web.post(f"/mail/u/{token}", files={"scope": (None, "everything")})
    assert everything.status_code == 200 and "all our marketing mail" in everything.text
    async with crm_db.reader() as session:
        assert await suppressed(session, ["noor@example.com"], "") == {"noor@example.com"}
    customer = (await crm_client.execute(CUSTOMER, {"id": gid}))["node"]
    assert customer["emailConsent"] == {"status": "OPTED_OUT", "source": "unsubscribe page"}
    subjects = [e["node"]["subject"] for e in customer["activities"]["edges"]]
    assert "Unsubscribed from the list Offers" in subjects and "Unsubscribed from all marketing mail" in subjects
    assert "Already unsubscribed" in (await web.get(f"/mail/u/{token}")).text

    events = await crm_events.all("marketing.unsubscribed")
    assert [e.data["list"] for e in events] == ["offers", ""]
    assert events[0].data["campaign"] == global_id("Campaign", sent["campaign"]) and events[0].entity_id == gid


async def test_one_click_multipart_without_a_list_and_a_customer_token_unsubscribe_globally(web, crm_client, crm_db,
                                                                                           runtime):
    sent = await sent_mail(crm_client, crm_db, "ravi@example.com")
    answer = await web.post(f"/mail/u/{consent.unsubscribe_token(runtime, recipient_id=sent['recipient'])}",
                            files={"List-Unsubscribe": (None, "One-Click")})
    assert answer.status_code == 200
    async with crm_db.reader() as session:
        assert await suppressed(session, ["ravi@example.com"]) == {"ravi@example.com"}

    other = await sent_mail(crm_client, crm_db, "mia@example.com")
    by_customer = consent.unsubscribe_token(runtime, customer_id=other["customer"], list_key="")
    assert "value=\"everything\"" not in (await web.get(f"/mail/u/{by_customer}")).text
    assert (await web.post(f"/mail/u/{by_customer}")).status_code == 200
    customer = (await crm_client.execute(CUSTOMER, {"id": ids.encode("Customer", other["customer"])}))["node"]
    assert customer["emailConsent"]["status"] == "OPTED_OUT"


async def test_forged_or_misused_unsubscribe_tokens_are_refused(web, crm_client, crm_db, runtime):
    sent = await sent_mail(crm_client, crm_db, "lee@example.com")
    good = consent.unsubscribe_token(runtime, recipient_id=sent["recipient"])
    forged = tokens.make(b"another server's key", "unsubscribe", {"r": sent["recipient"]})
    misused = tracking.open_token(runtime, sent["recipient"])
    gone = consent.unsubscribe_token(runtime, recipient_id=sent["recipient"] + 1000)
    for bad in (good[:-2] + "xx", forged, misused, gone, "%3Cscript%3E"):
        for answer in (await web.get(f"/mail/u/{bad}"), await web.post(f"/mail/u/{bad}", data={"scope": "everything"})):
            assert answer.status_code == 400 and "not valid" in answer.text and "<script>" not in answer.text
    assert await rows(crm_db, ConsentRecord) == [] and await rows(crm_db, Engagement) == []


async def test_the_open_pixel_is_always_a_gif_and_counts_only_signed_opens(web, crm_client, crm_db, crm_events, runtime):
    sent = await sent_mail(crm_client, crm_db, "ola@example.com")
    pixel = tracking.open_url(runtime, sent["recipient"])
    assert pixel.startswith("https://crm.shop.test/mail/o/") and pixel.endswith(".gif")
    path = pixel.removeprefix("https://crm.shop.test")
    for url in (path, path, "/mail/o/forged.gif", "/mail/o/" + tracking.open_token(runtime, 999_999) + ".gif"):
        answer = await web.get(url)
        assert answer.status_code == 200 and answer.content == GIF and len(answer.content) == 43
        assert answer.headers["content-type"] == "image/gif" and "no-store" in answer.headers["cache-control"]
    opens = await rows(crm_db, Engagement, Engagement.kind == EngagementKind.OPENED)
    assert [e.recipient_id for e in opens] == [sent["recipient"]] * 2  # the total; the forged ones count nothing
    assert len(await crm_events.all("marketing.opened")) == 1  # the first open only
    customer = (await crm_client.execute(CUSTOMER, {"id": ids.encode("Customer", sent["customer"])}))["node"]
    assert [e["node"]["subject"] for e in customer["activities"]["edges"]] == ["Opened the campaign “Spring sale”"]


async def test_a_click_redirects_only_to_the_stored_url(web, crm_client, crm_db, crm_events, runtime):
    sent = await sent_mail(crm_client, crm_db, "ana@example.com")
    elsewhere = await sent_mail(crm_client, crm_db, "eve@example.com")
    link = tracking.click_url(runtime, sent["recipient"], sent["link"]).removeprefix("https://crm.shop.test")
    for _ in range(2):
        answer = await web.get(link)
        assert answer.status_code == 302 and answer.headers["location"] == URL
    clicks = await rows(crm_db, Engagement, Engagement.kind == EngagementKind.CLICKED)
    assert [(c.recipient_id, c.link_id) for c in clicks] == [(sent["recipient"], sent["link"])] * 2
    events = await crm_events.all("marketing.clicked")
    assert [e.data["url"] for e in events] == [URL, URL] and [e.data["first"] for e in events] == [True, False]
    customer = (await crm_client.execute(CUSTOMER, {"id": ids.encode("Customer", sent["customer"])}))["node"]
    assert [e["node"]["body"] for e in customer["activities"]["edges"]] == [URL]  # the first click of the link

    # A token edited to point elsewhere, one signed with another key, and a valid signature naming
    # another campaign's link: a 400 page, never a redirect.
    signed_elsewhere = tokens.make(b"attacker", "click", {"r": sent["recipient"], "l": sent["link"], "u": "https://evil.test"})
    other_link = tracking.click_url(runtime, sent["recipient"], elsewhere["link"]).removeprefix("https://crm.shop.test")
    for bad in (link[:-4] + "AAAA", "/mail/c/" + signed_elsewhere, other_link, "/mail/c/evil.test"):
        answer = await web.get(bad)
        assert answer.status_code == 400 and "location" not in answer.headers, bad
        assert "evil.test" not in answer.text
    assert len(await rows(crm_db, Engagement, Engagement.kind == EngagementKind.CLICKED)) == 2


def _bearer(secret: str = "s3cret-for-the-mta") -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "Content-Type": "message/rfc822"}


async def test_a_real_bounce_from_exim_posted_by_the_mta_suppresses_the_address_once(
        web, crm_client, crm_db, crm_events, runtime, exim):
    sent = await sent_mail(crm_client, crm_db, "gone@example.com")
    verp = tokens.verp_token(runtime.key, sent["recipient"])
    exim.reject("gone@example.com")
    mail = (b"From: Shop News <news@shop.test>\r\nTo: gone@example.com\r\nSubject: Spring is here\r\n"
            b"Message-ID: <crm.routes." + verp.encode() + b"@shop.test>\r\n\r\nHello\r\n")
    session = await runtime.transport().open({"host": exim.host, "port": exim.port, "timeout": 30})
    try:
        await session.send(OutgoingMail(content=mail, envelope_from=exim.return_path(verp), recipients=["gone@example.com"]))
    finally:
        await session.aclose()
    dsn = await exim.catcher.wait_for_match(lambda m: verp.encode() in m.raw, timeout=60)

    assert (await web.post("/mail/bounces", content=dsn.raw, headers={"Content-Type": "message/rfc822"})).status_code == 401
    wrong = await web.post("/mail/bounces", content=dsn.raw, headers=_bearer("guess"))
    assert wrong.status_code == 401 and "guess" not in wrong.text
    assert await rows(crm_db, Inbound) == []

    first = await web.post("/mail/bounces", content=dsn.raw, headers=_bearer())
    assert first.status_code == 202, first.text
    assert first.json() == {"kind": "HARD", "repeat": False, "suppressed": ["gone@example.com"]}
    again = await web.post("/mail/bounces", content=dsn.raw, headers=_bearer())
    assert again.status_code == 202 and again.json()["repeat"] is True

    (suppression,) = await rows(crm_db, Suppression)
    assert (suppression.email, suppression.list_key, suppression.reason) == ("gone@example.com", "", SuppressionReason.HARD_BOUNCE)
    assert suppression.campaign_id == sent["campaign"] and "5.1.1" in (suppression.detail or "")
    (bounce,) = await rows(crm_db, Engagement)
    assert (bounce.kind, bounce.recipient_id) == (EngagementKind.BOUNCED, sent["recipient"])
    (event,) = await crm_events.all("marketing.bounced")
    assert event.data["kind"] == "HARD" and event.data["suppressed"] is True
    customer = (await crm_client.execute(CUSTOMER, {"id": ids.encode("Customer", sent["customer"])}))["node"]
    assert any("bounced" in e["node"]["subject"] for e in customer["activities"]["edges"])


async def test_the_bounce_route_refuses_what_it_cannot_take(web, crm_db):
    too_big = await web.post("/mail/bounces", content=b"x" * (10 * 1024 * 1024 + 1), headers=_bearer())
    empty = await web.post("/mail/bounces", content=b"", headers=_bearer())
    garbage = await web.post("/mail/bounces", content=b"\x00\xff not a mail \x00", headers=_bearer())
    assert (too_big.status_code, empty.status_code) == (413, 400)
    assert garbage.status_code == 202 and garbage.json()["kind"] == "OTHER"  # recorded, changes nothing
    assert await rows(crm_db, Suppression) == [] and len(await rows(crm_db, Inbound)) == 1


@pytest.mark.parametrize("extra_env", [{"CRM_MARKETING_INBOUND_SECRET": ""}])
async def test_without_a_secret_the_bounce_route_is_off(web, extra_env):
    answer = await web.post("/mail/bounces", content=b"From: x\r\n\r\n", headers=_bearer(""))
    assert answer.status_code == 404


def _inbound(kind: bounces.Kind, n: int, *, token: str | None = None, address: str = "full@example.com") -> bounces.Inbound:
    status = {bounces.Kind.SOFT: "4.2.2", bounces.Kind.HARD: "5.1.1"}.get(kind)
    return bounces.Inbound(kind, (address,), token, f"<dsn{n}@mta.example.com>", status, "mailbox full")


async def test_soft_bounces_suppress_at_the_threshold_and_auto_replies_change_nothing(crm_client, crm_db, runtime):
    sent = await sent_mail(crm_client, crm_db, "full@example.com")
    verp = tokens.verp_token(runtime.key, sent["recipient"])
    results = [await consent.apply_bounce(crm_db, runtime, _inbound(bounces.Kind.SOFT, n, token=verp)) for n in range(3)]
    assert [r.suppressed for r in results] == [(), (), ("full@example.com",)]  # the limit is 3 in 30 days
    (suppression,) = await rows(crm_db, Suppression)
    assert suppression.reason is SuppressionReason.SOFT_BOUNCES
    assert (await consent.apply_bounce(crm_db, runtime, _inbound(bounces.Kind.SOFT, 0, token=verp))).repeat

    vacation = await consent.apply_bounce(crm_db, runtime, _inbound(bounces.Kind.AUTO_REPLY, 9, address="x@example.com"))
    assert (vacation.kind, vacation.repeat, vacation.suppressed) == ("AUTO_REPLY", False, ())
    complaint = await consent.apply_bounce(crm_db, runtime, _inbound(bounces.Kind.COMPLAINT, 10, address="full@example.com"))
    assert complaint.recipient_id == sent["recipient"]  # found by address among recent recipients
    (suppression,) = await rows(crm_db, Suppression)
    assert suppression.reason is SuppressionReason.COMPLAINT  # a new opt-in can no longer lift it
    kinds = [e.kind for e in await rows(crm_db, Engagement)]
    assert kinds == [EngagementKind.SOFT_BOUNCED] * 3 + [EngagementKind.COMPLAINED]
    assert len(await rows(crm_db, Inbound)) == 5
