"""A campaign to a segment of 500 customers through a real SMTP server on loopback (aiosmtpd):
exactly the OPTED_IN, unsuppressed members get it, once each, with RFC 8058 headers and a VERP
return path; a sender killed halfway (SIGKILL, a real process) and started again sends the rest
and nobody twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import sqlalchemy as sa

from crm_graph.testing.auth import TEST_SECRET
from crm_marketing.models import Recipient, RecipientStatus
from crm_marketing.runtime import runtime_of
from crm_marketing.sender import send_pending
from support import START, STATS, campaign, customers, mail_env, tag_segment

SUPPRESS = "mutation($e: String!, $l: String) { addSuppression(email: $e, list: $l) { suppression { email } errors { code } } }"
LIST = "mutation($i: CreateMailingListInput!) { createMailingList(input: $i) { mailingList { key } errors { code } } }"


def _people(n: int) -> list[dict[str, object]]:
    # Every 5th has given no consent, every 7th withdrew it: neither may get marketing mail.
    out = []
    for i in range(n):
        consent = "UNKNOWN" if i % 5 == 0 else "OPTED_OUT" if i % 7 == 0 else "OPTED_IN"
        out.append({"email": f"member{i:03d}@example.com", "consent": consent, "first_name": f"M{i}"})
    return out


async def _audience(crm_client, n: int, suppressed_globally: list[int], suppressed_for_list: list[int]) -> tuple[str, set[str]]:
    people = _people(n)
    await customers(crm_client, people)
    await crm_client.mutate(LIST, {"i": {"key": "offers", "name": "Offers"}})
    for i in suppressed_globally:
        await crm_client.mutate(SUPPRESS, {"e": people[i]["email"]})
    for i in suppressed_for_list:
        await crm_client.mutate(SUPPRESS, {"e": people[i]["email"], "l": "offers"})
    expected = {p["email"] for i, p in enumerate(people) if p["consent"] == "OPTED_IN"
                and i not in suppressed_globally and i not in suppressed_for_list}
    return await tag_segment(crm_client), expected


def _check_headers(raw: bytes, envelope_from: str) -> None:
    msg = message_from_bytes(raw, policy=default_policy)
    unsubscribe = str(msg["List-Unsubscribe"])
    assert unsubscribe.startswith("<https://crm.example.com/mail/u/") and unsubscribe.endswith(">"), unsubscribe
    assert str(msg["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert msg["Message-ID"] and msg["Date"] and "Auto-Submitted" not in msg
    assert envelope_from.startswith("bounces+r") and envelope_from.endswith("@bounces.example.com")
    assert msg.get_content_type() == "multipart/alternative"
    html = msg.get_body(("html",)).get_content()
    assert '<p style="color: #333;">' in html  # the stylesheet inlined
    assert "Unsubscribe" in msg.get_body(("plain",)).get_content()


async def test_a_campaign_reaches_exactly_the_opted_in_unsuppressed_members_once(crm_client, crm_settings, crm_plugins,
                                                                                  crm_db, smtp_sink, monkeypatch):
    mail_env(monkeypatch, smtp_sink.port, crm_plugins)
    segment, expected = await _audience(crm_client, 500, suppressed_globally=[1, 2, 3], suppressed_for_list=[4, 6])
    cid = await campaign(crm_client, segment, list="offers")
    started = await crm_client.mutate(START, {"id": cid})
    assert started["campaign"]["status"] == "SENDING" and started["campaign"]["audience"] == len(expected)

    # The audience is a snapshot: a customer joining the segment now is not added.
    await customers(crm_client, [{"email": "latecomer@example.com"}])
    summary = await send_pending(crm_db, runtime_of(crm_settings, crm_plugins))
    assert summary.sent == len(expected) and summary.failed == summary.unconfirmed == 0

    got = Counter(rcpt for m in smtp_sink.messages for rcpt in m.rcpt_tos)
    assert set(got) == expected and set(got.values()) == {1}
    for m in smtp_sink.messages[:25]:
        _check_headers(m.raw, m.mail_from)
    first = message_from_bytes(smtp_sink.messages[0].raw, policy=default_policy)
    number = first["To"].addresses[0].addr_spec.removeprefix("member").split("@")[0]
    assert first["Subject"] == f"Hello M{int(number)}"

    stats = (await crm_client.execute(STATS, {"id": cid}))["node"]
    assert stats["status"] == "SENT"
    assert (stats["stats"]["recipients"], stats["stats"]["sent"], stats["stats"]["pending"]) == (len(expected), len(expected), 0)

    # Sending again finds nothing to do.
    again = await send_pending(crm_db, runtime_of(crm_settings, crm_plugins))
    assert again.sent == 0 and len(smtp_sink.messages) == len(expected)


def _sender(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(Path(sys.executable).parent / "crm-graph"), "marketing", "send"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


async def test_a_sender_killed_halfway_and_started_again_sends_the_rest_and_nobody_twice(crm_client, crm_settings, crm_db,
                                                                                         smtp_sink, monkeypatch):
    mail_env(monkeypatch, smtp_sink.port)
    segment, expected = await _audience(crm_client, 500, suppressed_globally=[], suppressed_for_list=[])
    cid = await campaign(crm_client, segment)
    await crm_client.mutate(START, {"id": cid})

    # A real sender process, paced (100 messages a second) so it is mid-campaign when killed.
    env = {**os.environ, "CRM_DATABASE_URL": crm_settings.database_url, "CRM_SECRET_KEY": TEST_SECRET,
           "CRM_MARKETING_RATE": "100", "CRM_MARKETING_LEASE": "2", "CRM_MARKETING_BATCH_SIZE": "20",
           "CRM_MARKETING_CONCURRENCY": "4", "CRM_MARKETING_CHUNK_SIZE": "5"}
    first = _sender(env)
    try:
        deadline = time.monotonic() + 60
        while len(smtp_sink.messages) < len(expected) // 3 and first.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert first.poll() is None, first.communicate()[0].decode()
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait()
    halfway = len(smtp_sink.messages)
    assert 0 < halfway < len(expected)

    await asyncio.sleep(2.5)  # the dead sender's lease ends
    second = subprocess.run([str(Path(sys.executable).parent / "crm-graph"), "marketing", "send"],
                            env={**env, "CRM_MARKETING_RATE": "0"}, capture_output=True, timeout=120)
    assert second.returncode == 0, second.stdout.decode() + second.stderr.decode()

    got = Counter(rcpt for m in smtp_sink.messages for rcpt in m.rcpt_tos)
    assert max(got.values()) == 1, [a for a, n in got.items() if n > 1]  # nobody twice
    async with crm_db.reader() as session:
        statuses = dict((await session.execute(sa.select(Recipient.email, Recipient.status))).all())
    unconfirmed = {e for e, s in statuses.items() if s is RecipientStatus.UNCONFIRMED}
    # Everyone got it, but for the messages the dead process had marked as being sent (at most a
    # chunk per connection: 4 x 5): those are UNCONFIRMED, never sent again.
    assert set(got) | unconfirmed == expected and len(unconfirmed) <= 20
    assert {s for e, s in statuses.items() if e not in unconfirmed} == {RecipientStatus.SENT}
    assert len(smtp_sink.messages) > halfway


async def test_refusals_deferrals_and_a_connection_lost_mid_message(crm_client, crm_settings, crm_plugins, crm_db,
                                                                     smtp_sink, monkeypatch, crm_clock):
    mail_env(monkeypatch, smtp_sink.port, crm_plugins, CRM_MARKETING_CHUNK_SIZE="20", CRM_MARKETING_CONCURRENCY="1")
    people = [{"email": f"f{i}@example.com"} for i in range(6)]
    await customers(crm_client, people)
    smtp_sink.reject("f1@example.com")  # 550 at RCPT: refused for good
    smtp_sink.defer("f3@example.com")  # 451: try later
    cid = await campaign(crm_client, await tag_segment(crm_client))
    await crm_client.mutate(START, {"id": cid})
    runtime = runtime_of(crm_settings, crm_plugins)

    # The server takes the first message and drops the connection before answering: maybe
    # delivered. That one is never sent again; the others go out on a new connection.
    smtp_sink.drop_after_data(1)
    first = await send_pending(crm_db, runtime)
    assert (first.sent, first.failed, first.retried, first.unconfirmed) == (3, 1, 1, 1)
    assert (await crm_client.execute("query { suppressions(email: \"f1@example.com\") { reason } }"))["suppressions"] == \
        [{"reason": "HARD_BOUNCE"}]
    assert (await send_pending(crm_db, runtime)).sent == 0  # f3 waits for its backoff

    crm_clock.advance(minutes=20)
    smtp_sink.clear()  # and the server takes f3 now
    assert (await send_pending(crm_db, runtime)).sent == 1
    assert [m.rcpt_tos for m in smtp_sink.messages] == [("f3@example.com",)]
    stats = (await crm_client.execute(STATS, {"id": cid}))["node"]
    assert stats["status"] == "SENT"
    figures = stats["stats"]
    assert (figures["sent"], figures["failed"], figures["unconfirmed"], figures["bounced"], figures["pending"]) == (4, 1, 1, 1, 0)
