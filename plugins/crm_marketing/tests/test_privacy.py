"""A customer's marketing data in a data subject access request, and gone after erasure (but for
the suppression entry that keeps them from being mailed again)."""

from __future__ import annotations

import sqlalchemy as sa

from crm_marketing import consent
from crm_marketing.models import ConsentRecord, Engagement, Recipient
from crm_marketing.runtime import runtime_of
from crm_marketing.sender import send_pending
from support import START, campaign, customers, mail_env, tag_segment

EXPORT = "mutation($id: ID!) { exportCustomerData(id: $id) { data errors { code message } } }"
ERASE = "mutation($id: ID!) { eraseCustomer(id: $id) { customer { id } errors { code message } } }"


async def test_export_and_erasure_cover_consent_campaigns_and_engagement(crm_client, crm_db, crm_settings, crm_plugins,
                                                                        smtp_sink, monkeypatch):
    mail_env(monkeypatch, smtp_sink.port, crm_plugins)
    (customer,) = await customers(crm_client, [{"email": "dana@example.com"}])
    cid = await campaign(crm_client, await tag_segment(crm_client))
    await crm_client.mutate(START, {"id": cid})
    await send_pending(crm_db, runtime_of(crm_settings, crm_plugins))
    runtime = runtime_of(crm_settings, crm_plugins)
    async with crm_db.reader() as session:
        recipient = await session.scalar(sa.select(Recipient.id))
    # Dana unsubscribes through her mail's link: a consent record, an engagement, a suppression.
    await consent.unsubscribe(crm_db, runtime, consent.unsubscribe_token(runtime, recipient_id=recipient), ip="192.0.2.7")

    exported = (await crm_client.mutate(EXPORT, {"id": customer}))["data"]["plugins"]["crm_marketing"]
    assert [(r["campaign"], r["email"], r["status"]) for r in exported["campaignsReceived"]] == [(cid, "dana@example.com", "SENT")]
    assert [(c["action"], c["ip"]) for c in exported["consents"]] == [("WITHDRAWN", "192.0.2.7")]
    assert [e["kind"] for e in exported["engagements"]] == ["UNSUBSCRIBED"]
    assert [s["reason"] for s in exported["suppressions"]] == ["UNSUBSCRIBED"]

    await crm_client.mutate(ERASE, {"id": customer})
    async with crm_db.reader() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(ConsentRecord)) == 0
        assert await session.scalar(sa.select(sa.func.count()).select_from(Engagement)) == 0
        assert list(await session.scalars(sa.select(Recipient.email))) == [f"erased-{recipient}@invalid"]
    still = (await crm_client.execute("query { suppressions(email: \"dana@example.com\") { reason } }"))["suppressions"]
    assert still == [{"reason": "UNSUBSCRIBED"}]
