"""Double opt-in through the public form, as a visitor and their mail program meet it: the form
answers at once, the outbox mails the link to a real SMTP server on loopback (aiosmtpd), and
following the link makes the customer OPTED_IN with the whole consent record. Forged, expired and
replayed links, the robot trap, the rate limit and bad input get clear answers and change nothing."""

from __future__ import annotations

import re
import time
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from itsdangerous import TimestampSigner

from crm_graph.core import ids
from crm_graph.core.clock import utcnow
from crm_graph.core.events import DeliveryStatus, EventDelivery
from crm_graph.customers.models import Customer
from crm_graph.plugins import make_plugin_manager
from crm_marketing import consent, tokens
from crm_marketing.engage import suppress, suppressed
from crm_marketing.models import ConsentAction, ConsentRecord, MarketingList, SuppressionReason
from crm_marketing.runtime import runtime_of

CONFIRM = re.compile(r"https://crm\.shop\.test/mail/confirm/([A-Za-z0-9._-]+)")
CUSTOMER = """query($id: ID!) { node(id: $id) { ... on Customer { displayName source emails { address }
  emailConsent { status source at } activities { edges { node { type subject } } } } } }"""
CREATE = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } errors { code message } } }"


@pytest.fixture
def extra_env() -> dict[str, str]:
    return {}


@pytest.fixture
def crm_plugins(crm_settings, smtp_sink, monkeypatch, extra_env):
    """The plugin's settings point at the test's sink before the app (and its runtime) exist."""
    env = {"CRM_SMTP_HOST": "127.0.0.1", "CRM_SMTP_PORT": str(smtp_sink.port), "CRM_MAIL_FROM": "Shop News <news@shop.test>",
           "CRM_PUBLIC_URL": "https://crm.shop.test", "CRM_MARKETING_RETURN_DOMAIN": "bounces.shop.test",
           "CRM_MARKETING_POLICY_TEXT": "Shop News, at most weekly; unsubscribe at any time. Policy v3.", **extra_env}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return make_plugin_manager(crm_settings)


def visitor(app: Any, ip: str = "198.51.100.20", agent: str = "Browser/1.0") -> httpx.AsyncClient:
    """A client without credentials, from ``ip``, as a browser on the public site."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://localhost", headers={"User-Agent": agent})


def html_form(**fields: str) -> dict[str, Any]:
    return {"data": fields, "headers": {"Accept": "text/html,application/xhtml+xml"}}


async def records(db: Any, email: str) -> list[ConsentRecord]:
    async with db.reader() as session:
        return list(await session.scalars(sa.select(ConsentRecord).where(ConsentRecord.email == email)
                                          .order_by(ConsentRecord.id)))


def link_of(raw: bytes) -> str:
    msg = message_from_bytes(raw, policy=default_policy)
    found = CONFIRM.search(msg.get_body(("plain",)).get_content())
    assert found, msg
    return found.group(1)


async def test_a_signup_confirmed_by_its_link_makes_an_opted_in_customer_with_the_consent_record(
        crm_app, crm_client, crm_db, crm_events, smtp_sink):
    async with visitor(crm_app) as web:
        answer = await web.post("/mail/subscribe?utm_source=newsletter&utm_medium=email",
                                **html_form(email="  Ada.Lovelace@Example.COM ", name="Ada Lovelace", utm_campaign="spring"))
    assert answer.status_code == 200 and "text/html" in answer.headers["content-type"]
    assert "check your inbox" in answer.text
    assert smtp_sink.messages == []  # mailed from the outbox, not inside the request

    (requested,) = await records(crm_db, "ada.lovelace@example.com")
    assert requested.action is ConsentAction.REQUESTED
    assert (requested.ip, requested.user_agent, requested.form) == ("198.51.100.20", "Browser/1.0", "subscribe form")
    assert requested.policy_text == "Shop News, at most weekly; unsubscribe at any time. Policy v3."
    assert requested.utm == {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring"}
    gid = ids.encode("Customer", requested.customer_id)
    before = (await crm_client.execute(CUSTOMER, {"id": gid}))["node"]
    assert before["displayName"] == "Ada Lovelace" and before["source"] == "WEB"
    assert before["emailConsent"]["status"] == "UNKNOWN"
    assert "marketing.subscribed" in await crm_events.types("marketing.*")

    await crm_events.deliver()
    (mail,) = smtp_sink.messages
    assert mail.rcpt_tos == ("ada.lovelace@example.com",) and mail.mail_from == "bounces@bounces.shop.test"
    msg = message_from_bytes(mail.raw, policy=default_policy)
    assert msg["From"] == "Shop News <news@shop.test>" and "ada.lovelace@example.com" in msg["To"]
    assert msg["Subject"] == "Please confirm your subscription" and msg["Date"] and msg["Message-ID"]
    assert msg["Auto-Submitted"] == "auto-generated" and "List-Unsubscribe" not in msg
    token = link_of(mail.raw)

    # A redelivered event (its acknowledgement lost) finds the mail sent and sends nothing.
    async with crm_db.writer() as session, session.begin():
        await session.execute(sa.update(EventDelivery).where(EventDelivery.subscriber == "marketing:confirm")
                              .values(status=DeliveryStatus.PENDING, delivered_at=None, claim_token=None))
    await crm_events.deliver()
    assert len(smtp_sink.messages) == 1

    async with visitor(crm_app, ip="203.0.113.9", agent="Phone Mail/2.1") as phone:
        confirmed = await phone.get(f"/mail/confirm/{token}")
        assert confirmed.status_code == 200 and "Subscription confirmed" in confirmed.text
        assert confirmed.headers["referrer-policy"] == "no-referrer"
        again = await phone.get(f"/mail/confirm/{token}")
    assert again.status_code == 200 and "Already confirmed" in again.text

    after = (await crm_client.execute(CUSTOMER, {"id": gid}))["node"]
    assert after["emailConsent"]["status"] == "OPTED_IN" and after["emailConsent"]["source"] == "subscribe form"
    assert after["emailConsent"]["at"]
    assert any(e["node"]["type"] == "EMAIL" and "Confirmed" in e["node"]["subject"] for e in after["activities"]["edges"])
    requested_again, confirmation = await records(crm_db, "ada.lovelace@example.com")  # the replay wrote nothing
    assert confirmation.action is ConsentAction.CONFIRMED and requested_again.confirmed_at is not None
    assert (confirmation.ip, confirmation.user_agent, confirmation.form) == ("203.0.113.9", "Phone Mail/2.1", "subscribe form")
    assert confirmation.policy_text == requested.policy_text and confirmation.utm == requested.utm
    assert (await crm_events.types("marketing.*")).count("marketing.confirmed") == 1


async def test_forged_expired_and_misused_confirm_links_are_refused_and_change_nothing(crm_app, crm_client, crm_db,
                                                                                        crm_events, crm_plugins,
                                                                                        crm_settings, smtp_sink):
    async with visitor(crm_app) as web:
        assert (await web.post("/mail/subscribe", data={"email": "grace@example.com"})).status_code == 200
        await crm_events.deliver()
        token = link_of(smtp_sink.messages[0].raw)
        runtime = runtime_of(crm_settings, crm_plugins)
        (requested,) = await records(crm_db, "grace@example.com")

        signer_of_last_week = type("Old", (TimestampSigner,), {"get_timestamp": lambda self: int(time.time()) - 8 * 86400})
        old = tokens._serializer(runtime.key, "confirm")  # the same key and purpose, signed 8 days ago
        old.signer = signer_of_last_week
        expired = old.dumps({"c": requested.id, "n": requested.nonce})
        other_purpose = tokens.make(runtime.key, "unsubscribe", {"c": requested.id, "n": requested.nonce})
        tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
        wrong_nonce = consent.confirm_token(runtime, requested.id, "not-the-nonce")

        for bad, status in ((tampered, 400), ("nonsense", 400), (other_purpose, 400), (wrong_nonce, 400), (expired, 410)):
            answer = await web.get(f"/mail/confirm/{bad}")
            assert answer.status_code == status, (bad, answer.text)
            assert "location" not in answer.headers
        assert "expired" in answer.text  # the last one

    (still,) = await records(crm_db, "grace@example.com")
    assert still.confirmed_at is None
    customer = (await crm_client.execute(CUSTOMER, {"id": ids.encode("Customer", requested.customer_id)}))["node"]
    assert customer["emailConsent"]["status"] == "UNKNOWN"
    assert "marketing.confirmed" not in await crm_events.types("marketing.*")


async def test_the_trap_field_gets_the_usual_answer_and_stores_nothing(crm_app, crm_db, crm_events, smtp_sink):
    async with visitor(crm_app) as web:
        robot = await web.post("/mail/subscribe", data={"email": "bot@example.com", "website": "http://spam.test"})
        person = await web.post("/mail/subscribe", data={"email": "kim@example.com", "website": ""})
    assert robot.status_code == person.status_code == 200 and robot.json() == person.json()
    assert await records(crm_db, "bot@example.com") == [] and len(await records(crm_db, "kim@example.com")) == 1
    async with crm_db.reader() as session:
        assert await session.scalar(sa.select(sa.func.count(Customer.id))) == 1  # kim
    await crm_events.deliver()
    assert [m.rcpt_tos for m in smtp_sink.messages] == [("kim@example.com",)]


@pytest.mark.parametrize("extra_env", [{"CRM_MARKETING_FORM_RATE": "3"}])
async def test_a_flood_of_signups_from_one_address_is_turned_away_with_retry_after(crm_app, crm_db, extra_env):
    async with visitor(crm_app, ip="192.0.2.66") as flood, visitor(crm_app, ip="192.0.2.77") as neighbour:
        answers = [await flood.post("/mail/subscribe", json={"email": f"p{i}@example.com"}) for i in range(5)]
        other = await neighbour.post("/mail/subscribe", json={"email": "n@example.com"})
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert 0 < int(answers[3].headers["retry-after"]) <= 3601
    assert answers[3].json()["errors"][0]["code"] == "RATE_LIMITED"
    assert await records(crm_db, "p3@example.com") == [] and other.status_code == 200


async def test_bad_input_gets_field_errors_not_a_500(crm_app, crm_db):
    async with crm_db.writer() as session, session.begin():  # lists are made through the API elsewhere
        session.add(MarketingList(key="offers", name="Offers", created_at=utcnow()))
    async with visitor(crm_app) as web:
        invalid = await web.post("/mail/subscribe", json={"email": "not an address"})
        missing = await web.post("/mail/subscribe", data={"name": "Nobody"})
        typed = await web.post("/mail/subscribe", json={"email": ["a@example.com"]})
        unknown = await web.post("/mail/subscribe", json={"email": "x@example.com", "list": "nope"})
        garbage = await web.post("/mail/subscribe", content=b"{oops", headers={"Content-Type": "application/json"})
        huge = await web.post("/mail/subscribe", data={"email": "y@example.com", "name": "z" * 70_000})
        page = await web.post("/mail/subscribe", **html_form(email="<script>alert(1)</script>"))
        listed = await web.post("/mail/subscribe", json={"email": "ok@example.com", "list": "offers"})
    for answer in (invalid, missing, typed):
        assert answer.status_code == 400
        (error,) = answer.json()["errors"]
        assert error["field"] == "email" and error["code"] == "INVALID_EMAIL" and error["message"]
    assert unknown.status_code == 400 and unknown.json()["errors"][0] == {
        "field": "list", "code": "UNKNOWN_LIST", "message": "There is no mailing list 'nope'."}
    assert garbage.status_code == 400 and huge.status_code == 413
    assert page.status_code == 400 and "<script>" not in page.text and "&lt;script&gt;" in page.text
    assert listed.status_code == 200 and (await records(crm_db, "ok@example.com"))[0].list_key == "offers"
    assert await records(crm_db, "x@example.com") == []


async def test_an_existing_customer_is_matched_by_any_of_their_addresses(crm_app, crm_client, crm_db, crm_events,
                                                                         crm_plugins, crm_settings, smtp_sink):
    made = await crm_client.mutate(CREATE, {"i": {"kind": "PERSON", "firstName": "Lin", "lastName": "Wu", "emails": [
        {"address": "lin@work.example.org", "primary": True}, {"address": "lin@home.example.org"}]}})
    lin = ids.decode_as(made["customer"]["id"], "Customer")
    opted = await crm_client.mutate(CREATE, {"i": {"kind": "PERSON", "firstName": "Bo", "emails": [
        {"address": "bo@example.com"}], "emailConsent": {"status": "OPTED_IN", "source": "shop checkout"}}})
    runtime = runtime_of(crm_settings, crm_plugins)

    async with visitor(crm_app) as web:
        assert (await web.post("/mail/subscribe", data={"email": "LIN@Home.example.org", "name": "Someone Else"})).status_code == 200
        assert (await web.post("/mail/subscribe", data={"email": "bo@example.com"})).status_code == 200
    (record,) = await records(crm_db, "lin@home.example.org")
    assert record.customer_id == lin  # matched by the second address; the name on file stays
    assert (await crm_client.execute(CUSTOMER, {"id": made["customer"]["id"]}))["node"]["displayName"] == "Lin Wu"
    assert await records(crm_db, "bo@example.com") == []  # opted in already: nothing to confirm
    result = await consent.subscribe(crm_db, runtime, email="bo@example.com")
    assert result.status == "ALREADY_OPTED_IN" and result.customer_id == ids.decode_as(opted["customer"]["id"], "Customer")
    await crm_events.deliver()
    assert [m.rcpt_tos for m in smtp_sink.messages] == [("lin@home.example.org",)]


async def test_a_complaint_keeps_an_address_suppressed_and_a_new_opt_in_lifts_an_unsubscribe(
        crm_app, crm_db, crm_events, crm_plugins, crm_settings, smtp_sink):
    runtime = runtime_of(crm_settings, crm_plugins)
    async with crm_db.writer() as session, session.begin():
        await suppress(session, email="angry@example.com", reason=SuppressionReason.COMPLAINT)
        await suppress(session, email="back@example.com", reason=SuppressionReason.UNSUBSCRIBED)
    async with visitor(crm_app) as web:
        complained = await web.post("/mail/subscribe", data={"email": "angry@example.com"})
        returning = await web.post("/mail/subscribe", data={"email": "back@example.com"})
    assert complained.status_code == returning.status_code == 200 and complained.json() == returning.json()
    assert await records(crm_db, "angry@example.com") == []  # nothing written, nothing will be sent
    assert (await consent.subscribe(crm_db, runtime, email="angry@example.com")).status == "SUPPRESSED"
    await crm_events.deliver()
    assert [m.rcpt_tos for m in smtp_sink.messages] == [("back@example.com",)]
    async with visitor(crm_app) as web:
        assert (await web.get(f"/mail/confirm/{link_of(smtp_sink.messages[0].raw)}")).status_code == 200
    async with crm_db.reader() as session:
        assert await suppressed(session, ["angry@example.com", "back@example.com"]) == {"angry@example.com"}
