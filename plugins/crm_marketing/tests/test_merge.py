"""Merging duplicate customers (mergeCustomers) takes the marketing plugin's rows along through
``crm_merge_customers``: consent records and engagements follow the survivor; a recipient row of a
campaign the survivor received too stays with the merged customer, the record of that mail."""

from __future__ import annotations

import sqlalchemy as sa

from crm_graph.core.ids import decode_as
from crm_marketing import consent
from crm_marketing.models import ConsentRecord, Engagement, Recipient
from crm_marketing.runtime import runtime_of
from crm_marketing.sender import send_pending
from support import START, campaign, customers, mail_env, tag_segment

MERGE = """mutation($input: MergeCustomersInput!) {
  mergeCustomers(input: $input) { plan { plugins } customer { id } errors { field code message } }
}"""


async def test_consents_and_engagements_follow_the_survivor(crm_client, crm_db, crm_settings, crm_plugins, smtp_sink, monkeypatch):
    mail_env(monkeypatch, smtp_sink.port, crm_plugins)
    survivor, merged = await customers(crm_client, [{"email": "dana@example.com", "first_name": "Dana"},
                                                    {"email": "dana.w@example.com", "first_name": "Dana"}])
    survivor_pk, merged_pk = decode_as(survivor, "Customer"), decode_as(merged, "Customer")
    cid = await campaign(crm_client, await tag_segment(crm_client))
    await crm_client.mutate(START, {"id": cid})
    runtime = runtime_of(crm_settings, crm_plugins)
    await send_pending(crm_db, runtime)
    async with crm_db.reader() as session:
        merged_recipient = await session.scalar(sa.select(Recipient.id).where(Recipient.customer_id == merged_pk))
    # The second record unsubscribes: a consent record and an engagement on it.
    await consent.unsubscribe(crm_db, runtime, consent.unsubscribe_token(runtime, recipient_id=merged_recipient), ip="192.0.2.9")

    dry = await crm_client.mutate(MERGE, {"input": {"survivorId": survivor, "mergedIds": [merged], "dryRun": True}})
    assert dry["plan"]["plugins"]["crm_marketing"] == {"consents": 1, "engagements": 1}
    async with crm_db.reader() as session:
        assert await session.scalar(sa.select(ConsentRecord.customer_id)) == merged_pk  # the dry run wrote nothing

    done = await crm_client.mutate(MERGE, {"input": {"survivorId": survivor, "mergedIds": [merged]}})
    assert done["plan"]["plugins"]["crm_marketing"] == {"consents": 1, "engagements": 1}
    async with crm_db.reader() as session:
        consents = set(await session.scalars(sa.select(ConsentRecord.customer_id)))
        engagements = set(await session.scalars(sa.select(Engagement.customer_id)))
        recipients = dict((await session.execute(sa.select(Recipient.id, Recipient.customer_id))).all())
    assert consents == {survivor_pk} and engagements == {survivor_pk}
    # Both received the campaign: each recipient row stays the record of its own mail.
    assert recipients[merged_recipient] == merged_pk and survivor_pk in recipients.values()


async def test_a_campaign_only_the_merged_customer_received_moves_to_the_survivor(crm_client, crm_db, crm_settings, crm_plugins,
                                                                                 smtp_sink, monkeypatch):
    mail_env(monkeypatch, smtp_sink.port, crm_plugins)
    survivor, merged = await customers(crm_client, [{"email": "li@example.com", "first_name": "Li", "tags": ["vip"]},
                                                    {"email": "li.wei@example.com", "first_name": "Li"}])
    cid = await campaign(crm_client, await tag_segment(crm_client))  # the newsletter tag: only the second record
    await crm_client.mutate(START, {"id": cid})
    await send_pending(crm_db, runtime_of(crm_settings, crm_plugins))
    done = await crm_client.mutate(MERGE, {"input": {"survivorId": survivor, "mergedIds": [merged]}})
    assert done["plan"]["plugins"]["crm_marketing"] == {"recipients": 1}
    async with crm_db.reader() as session:
        assert list(await session.scalars(sa.select(Recipient.customer_id))) == [decode_as(survivor, "Customer")]
