"""Campaigns through the API: templates checked when written, the audience a snapshot, pause /
resume / cancel, scheduled starts, previews and test sends, who may do what, DKIM signatures a
receiver verifies."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crm_graph.core.clock import utcnow
from crm_marketing.runtime import runtime_of
from crm_marketing.sender import send_pending
from support import CREATE_CAMPAIGN, START, STATS, campaign, customers, mail_env, tag_segment

MOVE = "mutation($id: ID!) {{ {name}(id: $id) {{ campaign {{ status }} errors {{ field code message }} }} }}"
PREVIEW = "query($id: ID!, $c: ID) { campaignPreview(id: $id, customerId: $c) { recipient subject html text } }"
TEST_SEND = ("mutation($id: ID!, $a: [String!]!) { testSendCampaign(id: $id, addresses: $a) { results { address sent error } "
             "errors { field code message } } }")


@pytest.fixture
async def audience(crm_client, crm_plugins, smtp_sink, monkeypatch):
    mail_env(monkeypatch, smtp_sink.port, crm_plugins)
    people = [{"email": f"p{i}@example.com", "first_name": f"P{i}"} for i in range(6)]
    people.append({"email": "no-consent@example.com", "consent": "UNKNOWN"})
    ids = await customers(crm_client, people)
    return await tag_segment(crm_client), ids


async def _move(client, name: str, cid: str) -> dict:
    return (await client.execute(MOVE.format(name=name), {"id": cid}))[name]


@pytest.mark.parametrize(("html", "code", "words"), [
    ("<p>{% if customer.first_name %}Hi</p>", "TEMPLATE_SYNTAX", "line 1"),
    ("<p>{{ secret_key }}</p>", "UNKNOWN_VARIABLE", "secret_key"),
    ("<p>{{ ''.__class__.__mro__[1].__subclasses__() }}</p>", "UNSAFE_TEMPLATE", "unsafe"),
    ("<p>{{ customer.first_name | nosuchfilter }}</p>", "TEMPLATE_SYNTAX", "nosuchfilter"),
])
async def test_bad_templates_are_refused_with_the_part_and_a_reason(crm_client, audience, html, code, words):
    segment, _ = audience
    made = (await crm_client.execute(CREATE_CAMPAIGN, {"input": {"name": "x", "subject": "s", "segmentId": segment,
                                                                   "html": html}}))["createCampaign"]
    assert made["campaign"] is None
    (error,) = made["errors"]
    assert (error["field"], error["code"]) == ("html", code) and words in error["message"]


async def test_bad_fields_get_field_errors(crm_client, audience):
    segment, _ = audience
    made = (await crm_client.execute(CREATE_CAMPAIGN, {"input": {
        "name": "", "subject": "ok", "segmentId": "not-an-id", "html": "<p>x</p>", "fromAddress": "nobody",
        "replyTo": "also not", "list": "no-such-list"}}))["createCampaign"]
    codes = {(e["field"], e["code"]) for e in made["errors"]}
    assert codes == {("segmentId", "INVALID_VALUE")}  # an ID that is not one stops before the rest
    made = (await crm_client.execute(CREATE_CAMPAIGN, {"input": {
        "name": "", "subject": "ok", "segmentId": segment, "html": "<p>x</p>", "fromAddress": "nobody",
        "replyTo": "also not", "list": "no-such-list"}}))["createCampaign"]
    codes = {(e["field"], e["code"]) for e in made["errors"]}
    assert codes == {("name", "REQUIRED"), ("fromAddress", "INVALID_EMAIL"), ("replyTo", "INVALID_EMAIL"), ("list", "NOT_FOUND")}


async def test_a_segment_with_nobody_opted_in_is_refused_and_stays_a_draft(crm_client, crm_plugins, smtp_sink, monkeypatch):
    mail_env(monkeypatch, smtp_sink.port, crm_plugins)
    await customers(crm_client, [{"email": "x@example.com", "consent": "OPTED_OUT", "tags": ["cold"]}])
    cid = await campaign(crm_client, await tag_segment(crm_client, "cold"))
    started = (await crm_client.execute(START, {"id": cid}))["startCampaign"]
    assert started["errors"][0]["code"] == "NO_RECIPIENTS" and started["errors"][0]["field"] == "segmentId"
    assert (await crm_client.execute(STATS, {"id": cid}))["node"]["status"] == "DRAFT"
    assert smtp_sink.messages == []


async def test_pause_resume_and_cancel(crm_client, crm_db, crm_settings, crm_plugins, audience, smtp_sink):
    segment, _ = audience
    runtime = runtime_of(crm_settings, crm_plugins)
    cid = await campaign(crm_client, segment)
    assert (await _move(crm_client, "pauseCampaign", cid))["errors"][0]["code"] == "INVALID_STATE"  # a draft
    await crm_client.mutate(START, {"id": cid})
    assert (await _move(crm_client, "pauseCampaign", cid))["campaign"]["status"] == "PAUSED"
    assert (await send_pending(crm_db, runtime)).sent == 0  # paused: nothing goes out
    assert (await _move(crm_client, "resumeCampaign", cid))["campaign"]["status"] == "SENDING"
    assert (await send_pending(crm_db, runtime)).sent == 6
    assert (await _move(crm_client, "cancelCampaign", cid))["errors"][0]["code"] == "INVALID_STATE"  # SENT

    other = await campaign(crm_client, segment, name="Second")
    await crm_client.mutate(START, {"id": other})
    assert (await _move(crm_client, "cancelCampaign", other))["campaign"]["status"] == "CANCELLED"
    assert (await send_pending(crm_db, runtime)).sent == 0
    stats = (await crm_client.execute(STATS, {"id": other}))["node"]["stats"]
    assert (stats["recipients"], stats["sent"], stats["skipped"], stats["pending"]) == (6, 0, 6, 0)
    assert len(smtp_sink.messages) == 6


async def test_an_address_suppressed_after_the_snapshot_is_skipped(crm_client, crm_db, crm_settings, crm_plugins,
                                                                   audience, smtp_sink):
    segment, _ = audience
    cid = await campaign(crm_client, segment)
    await crm_client.mutate(START, {"id": cid})
    await crm_client.mutate("mutation { addSuppression(email: \"P2@Example.com\") { suppression { email reason } errors { code } } }")
    summary = await send_pending(crm_db, runtime_of(crm_settings, crm_plugins))
    assert (summary.sent, summary.skipped) == (5, 1)
    assert "p2@example.com" not in {r for m in smtp_sink.messages for r in m.rcpt_tos}


async def test_a_scheduled_campaign_starts_when_its_time_comes(crm_client, crm_db, crm_settings, crm_plugins, audience, crm_clock):
    segment, _ = audience
    cid = await campaign(crm_client, segment, scheduledAt=(utcnow() + timedelta(hours=1)).isoformat())
    assert (await crm_client.mutate(START, {"id": cid}))["campaign"]["status"] == "SCHEDULED"
    runtime = runtime_of(crm_settings, crm_plugins)
    assert (await send_pending(crm_db, runtime)).sent == 0
    crm_clock.advance(hours=1, seconds=1)
    summary = await send_pending(crm_db, runtime)
    assert summary.started and summary.sent == 6
    assert (await crm_client.execute(STATS, {"id": cid}))["node"]["status"] == "SENT"


async def test_preview_and_test_send(crm_client, audience, smtp_sink):
    segment, ids = audience
    cid = await campaign(crm_client, segment)
    preview = (await crm_client.execute(PREVIEW, {"id": cid, "c": ids[3]}))["campaignPreview"]
    assert preview["recipient"] == "p3@example.com" and preview["subject"] == "Hello P3"
    assert "Hi P3," in preview["html"] and "Hi P3," in preview["text"]
    sample = (await crm_client.execute(PREVIEW, {"id": cid}))["campaignPreview"]
    assert sample["subject"] == "Hello Ada"

    sent = (await crm_client.execute(TEST_SEND, {"id": cid, "a": ["me@example.com", "Me@Example.com"]}))["testSendCampaign"]
    assert sent["results"] == [{"address": "me@example.com", "sent": True, "error": None}]
    (message,) = smtp_sink.messages
    assert message_from_bytes(message.raw, policy=default_policy)["Subject"] == "[Test] Hello Ada"
    bad = (await crm_client.execute(TEST_SEND, {"id": cid, "a": ["nope"] + [f"a{i}@example.com" for i in range(11)]}))
    assert {e["code"] for e in bad["testSendCampaign"]["errors"]} == {"TOO_MANY", "INVALID_EMAIL"}
    assert len(smtp_sink.messages) == 1


async def test_who_may_run_campaigns(crm_client_for, audience):
    segment, _ = audience
    sales = await crm_client_for("SALES")
    refused = await sales.post(CREATE_CAMPAIGN, {"input": {"name": "x", "subject": "s", "segmentId": segment, "html": "<p>x</p>"}})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    marketing = await crm_client_for("MARKETING")
    made = await marketing.mutate(CREATE_CAMPAIGN, {"input": {"name": "x", "subject": "s", "segmentId": segment, "html": "<p>x</p>"}})
    listed = await sales.post("{ campaigns(first: 5) { totalCount } }")
    assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await marketing.execute("{ campaigns(first: 5) { totalCount } }"))["campaigns"]["totalCount"] == 1
    assert made["campaign"]["status"] == "DRAFT"


async def test_dkim_signs_the_unsubscribe_headers_and_a_receiver_verifies_it(crm_client, crm_db, crm_settings, crm_plugins,
                                                                            audience, smtp_sink, monkeypatch, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    (tmp_path / "dkim.pem").write_bytes(pem)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + __import__("base64").b64encode(public)
    mail_env(monkeypatch, smtp_sink.port, crm_plugins, CRM_MARKETING_DKIM_DOMAIN="example.com",
             CRM_MARKETING_DKIM_SELECTOR="crm", CRM_MARKETING_DKIM_KEY_FILE=str(tmp_path / "dkim.pem"))
    segment, _ = audience
    cid = await campaign(crm_client, segment)
    await crm_client.mutate(START, {"id": cid})
    await send_pending(crm_db, runtime_of(crm_settings, crm_plugins))

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"crm._domainkey.example.com." else b""

    raw = smtp_sink.messages[0].raw
    assert dkim.verify(raw, dnsfunc=dns)
    signature = message_from_bytes(raw, policy=default_policy)["DKIM-Signature"]
    signed = {h.strip().lower() for h in signature.split("h=")[1].split(";")[0].split(":")}
    assert {"from", "to", "subject", "message-id", "list-unsubscribe", "list-unsubscribe-post"} <= signed
    tampered = raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: nothing")
    assert not dkim.verify(tampered, dnsfunc=dns)
