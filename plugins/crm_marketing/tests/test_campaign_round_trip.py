"""A campaign's whole round trip with real programs on loopback: sent through exim, a rejected
recipient's real DSN comes back to the VERP address and suppresses the address; the one-click
unsubscribe and the tracked link of a mail as received work; a sign-up through the form with the
campaign's utm_campaign, confirmed by its mailed link, is an OPTED_IN customer whose order shows
in the campaign's stats."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.policy import default as default_policy
from urllib.parse import urlsplit

import httpx
import pytest

from crm_marketing.runtime import runtime_of
from crm_marketing.sender import send_pending
from support import START, STATS, campaign, customers, mail_env, tag_segment

SECRET = "inbound-secret-for-the-mta"
SUPPRESSIONS = "query($e: String) { suppressions(email: $e) { email reason list } }"
ORDER = ("mutation($i: CreateOrderInput!) { createOrder(input: $i) { order { id total { amount currency } } "
         "errors { field code message } } }")
CUSTOMER = "query($id: ID!) { node(id: $id) { ... on Customer { emailConsent { status } marketingConsents { action form ip utm } } } }"


def _public(app) -> httpx.AsyncClient:  # noqa: ANN001
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 50000)),
                             base_url="http://localhost", headers={"User-Agent": "MailClient/2.0"})


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


async def test_a_real_bounce_from_exim_suppresses_the_rejected_address(crm_client, crm_app, crm_db, crm_settings, crm_plugins,
                                                                      exim, monkeypatch):
    exim.reset()
    mail_env(monkeypatch, exim.port, crm_plugins, CRM_MARKETING_RETURN_DOMAIN=exim.bounce_domain,
             CRM_MARKETING_INBOUND_SECRET=SECRET)
    await customers(crm_client, [{"email": f"r{i}@example.com"} for i in range(4)])
    exim.reject("r2@example.com")
    cid = await campaign(crm_client, await tag_segment(crm_client))
    await crm_client.mutate(START, {"id": cid})
    summary = await send_pending(crm_db, runtime_of(crm_settings, crm_plugins))
    assert summary.sent == 4  # exim took all four; the remote refuses one later

    await exim.receiver.wait_for(3, timeout=20)
    (dsn,) = await exim.catcher.wait_for(1, timeout=20)
    assert dsn.rcpt_tos[0].startswith("bounces+r") and dsn.rcpt_tos[0].endswith(f"@{exim.bounce_domain}")
    async with _public(crm_app) as http:
        answer = await http.post("/mail/bounces", content=dsn.raw, headers={"Authorization": f"Bearer {SECRET}"})
        assert answer.status_code == 202, answer.text
        again = await http.post("/mail/bounces", content=dsn.raw, headers={"Authorization": f"Bearer {SECRET}"})
        assert again.status_code == 202  # the same DSN twice counts once
        forged = await http.post("/mail/bounces", content=dsn.raw, headers={"Authorization": "Bearer guess"})
        assert forged.status_code == 401

    suppressed = (await crm_client.execute(SUPPRESSIONS, {"e": "r2@example.com"}))["suppressions"]
    assert [(s["email"], s["reason"], s["list"]) for s in suppressed] == [("r2@example.com", "HARD_BOUNCE", None)]
    stats = (await crm_client.execute(STATS, {"id": cid}))["node"]["stats"]
    assert (stats["sent"], stats["bounced"]) == (4, 1)

    # The next campaign to the same segment leaves the address out.
    second = await campaign(crm_client, await tag_segment(crm_client), name="Second")
    assert (await crm_client.mutate(START, {"id": second}))["campaign"]["audience"] == 3


async def test_one_click_unsubscribe_and_a_tracked_click_from_the_mail_as_received(crm_client, crm_app, crm_db, crm_settings,
                                                                                 crm_plugins, smtp_sink, monkeypatch):
    mail_env(monkeypatch, smtp_sink.port, crm_plugins)
    await customers(crm_client, [{"email": "reader@example.com"}, {"email": "other@example.com"}])
    cid = await campaign(crm_client, await tag_segment(crm_client), trackClicks=True, trackOpens=True)
    await crm_client.mutate(START, {"id": cid})
    await send_pending(crm_db, runtime_of(crm_settings, crm_plugins))
    mail = next(m for m in smtp_sink.messages if m.rcpt_tos == ("reader@example.com",))
    msg = message_from_bytes(mail.raw, policy=default_policy)
    html = msg.get_body(("html",)).get_content()
    click = re.search(r'href="(https://crm\.example\.com/mail/c/[^"]+)"', html).group(1)
    pixel = re.search(r'src="(https://crm\.example\.com/mail/o/[^"]+)"', html).group(1)
    unsubscribe = str(msg["List-Unsubscribe"]).strip("<>")

    async with _public(crm_app) as http:
        assert (await http.get(_path(pixel))).headers["content-type"] == "image/gif"
        followed = await http.get(_path(click))
        assert followed.status_code == 302 and followed.headers["location"] == "https://shop.example.com/spring?x=1&y=2"
        token = _path(click).rsplit("/", 1)[1]
        tampered = await http.get(f"/mail/c/{token[:-3]}{'AAA' if not token.endswith('AAA') else 'BBB'}")
        assert tampered.status_code == 400 and "location" not in tampered.headers
        # A link scanner's GET changes nothing; the mail program's one-click POST unsubscribes.
        assert (await http.get(_path(unsubscribe))).status_code == 200
        assert (await crm_client.execute(SUPPRESSIONS, {"e": "reader@example.com"}))["suppressions"] == []
        posted = await http.post(_path(unsubscribe), content=b"List-Unsubscribe=One-Click",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert posted.status_code == 200
    (entry,) = (await crm_client.execute(SUPPRESSIONS, {"e": "reader@example.com"}))["suppressions"]
    assert entry["reason"] == "UNSUBSCRIBED"
    stats = (await crm_client.execute(STATS, {"id": cid}))["node"]["stats"]
    assert (stats["opened"], stats["clicked"], stats["clicks"], stats["unsubscribed"]) == (1, 1, 1, 1)
    assert stats["links"] == [{"url": "https://shop.example.com/spring?x=1&y=2", "clicks": 1, "uniqueClicks": 1}]


async def test_a_confirmed_signup_from_a_campaign_and_its_order_show_in_the_campaign_stats(
        crm_client, crm_app, crm_events, crm_plugins, smtp_sink, monkeypatch):
    mail_env(monkeypatch, smtp_sink.port, crm_plugins)
    await customers(crm_client, [{"email": "someone@example.com"}])
    cid = await campaign(crm_client, await tag_segment(crm_client))
    number = cid and (await crm_client.execute("query($id: ID!) { node(id: $id) { id } }", {"id": cid}))["node"]["id"]
    async with _public(crm_app) as http:
        signed = await http.post("/mail/subscribe", data={"email": "New.Lead@Example.com", "name": "Nia Lead",
                                                          "utm_source": "newsletter", "utm_campaign": number})
        assert signed.status_code in (200, 201, 202), signed.text
    await crm_events.deliver()  # the outbox mails the confirmation link
    (mail,) = [m for m in smtp_sink.messages if m.rcpt_tos == ("new.lead@example.com",)]
    text = message_from_bytes(mail.raw, policy=default_policy).get_body(("plain",)).get_content()
    link = re.search(r"https://crm\.example\.com(/mail/confirm/\S+)", text).group(1)
    async with _public(crm_app) as http:
        assert (await http.get(link)).status_code == 200

    found = (await crm_client.execute("{ customers(filter: {email: {eq: \"new.lead@example.com\"}}, first: 1) "
                                      "{ edges { node { id } } } }"))["customers"]["edges"]
    customer = found[0]["node"]["id"]
    state = (await crm_client.execute(CUSTOMER, {"id": customer}))["node"]
    assert state["emailConsent"]["status"] == "OPTED_IN"
    assert [c["action"] for c in state["marketingConsents"]] == ["REQUESTED", "CONFIRMED"]
    assert state["marketingConsents"][0]["ip"] == "203.0.113.9"
    assert state["marketingConsents"][0]["utm"]["utm_campaign"] == number

    await crm_client.mutate(ORDER, {"i": {"customerId": customer, "currency": "EUR", "status": "CONFIRMED", "lineItems": [
        {"description": "Starter kit", "quantity": "1", "unitPrice": {"amount": "49.00", "currency": "EUR"}}]}})
    attributed = (await crm_client.execute(STATS, {"id": cid}))["node"]["stats"]["attributed"]
    assert (attributed["leads"], attributed["orders"]) == (1, 1)
    assert attributed["revenue"] == [{"amount": "49.00", "currency": "EUR"}]
