"""The ``marketingEngagement`` customer filter, as a client uses it: in ``customers(filter:)``
(alone and inside ``and``/``or``/``not``) and in a stored dynamic segment, with engagement rows
written the way tracking writes them; bad input is a clear GraphQL error or a segment's
INVALID_FILTER, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from crm_graph.core import ids
from crm_marketing.models import Campaign, CampaignStatus, Engagement, EngagementKind

CUSTOMER = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } errors { code } } }"
LIST = "query($f: CustomerFilter) { customers(filter: $f, first: 100) { totalCount edges { node { lastName } } } }"
SEGMENT = """mutation($i: CreateSegmentInput!) {
  createSegment(input: $i) { segment { id size filter } errors { field code message } } }"""
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)  # crm_clock's start


@pytest.fixture
async def people(crm_client, crm_app, crm_clock):  # noqa: ANN001, ANN201
    """Five customers and two campaigns: Ana opened and clicked A lately; Bo opened A 100 days ago
    and unsubscribed; Cy clicked B; Di bounced and complained on B; Ed never engaged."""
    made = {}
    for name in ("Ana", "Bo", "Cy", "Di", "Ed"):
        data = await crm_client.mutate(CUSTOMER, {"i": {"kind": "PERSON", "lastName": name}})
        made[name] = ids.decode(data["customer"]["id"])[1]
    async with crm_app.state.db.writer() as session, session.begin():
        campaigns = [Campaign(name=n, subject=n, from_address="shop@example.com", segment_id=1, html="<p/>", track_opens=True,
                              track_clicks=True, status=CampaignStatus.SENT, created_by="test", created_at=NOW, updated_at=NOW)
                     for n in ("A", "B")]
        session.add_all(campaigns)
        await session.flush()
        a, b = (c.id for c in campaigns)

        def e(who: str, kind: EngagementKind, campaign: int, days_ago: float) -> Engagement:
            return Engagement(kind=kind, campaign_id=campaign, recipient_id=None, customer_id=made[who],
                              at=NOW - timedelta(days=days_ago))

        session.add_all([
            e("Ana", EngagementKind.OPENED, a, 2), e("Ana", EngagementKind.OPENED, a, 1), e("Ana", EngagementKind.CLICKED, a, 1),
            e("Bo", EngagementKind.OPENED, a, 100), e("Bo", EngagementKind.UNSUBSCRIBED, a, 100),
            e("Cy", EngagementKind.CLICKED, b, 10),
            e("Di", EngagementKind.BOUNCED, b, 5), e("Di", EngagementKind.COMPLAINED, b, 5),
            Engagement(kind=EngagementKind.OPENED, campaign_id=b, recipient_id=None, customer_id=None, at=NOW),
        ])
    return {"A": ids.encode("Campaign", a), "B": ids.encode("Campaign", b)}


async def names(client, condition) -> list[str]:  # noqa: ANN001
    data = await client.execute(LIST, {"f": condition})
    assert data["customers"]["totalCount"] == len(data["customers"]["edges"])
    return sorted(edge["node"]["lastName"] for edge in data["customers"]["edges"])


async def test_customers_are_found_by_what_they_did_with_marketing_mail(crm_client, people):
    def m(**value) -> dict:  # noqa: ANN003
        return {"marketingEngagement": value}

    assert await names(crm_client, m(kind="OPENED")) == ["Ana", "Bo"]
    assert await names(crm_client, m(kind="CLICKED", campaignId=people["A"])) == ["Ana"]
    assert await names(crm_client, m(kind="CLICKED", campaignId=people["B"])) == ["Cy"]
    assert await names(crm_client, m(kind="OPENED", withinDays=90)) == ["Ana"]
    # "No opens in 90 days": everyone without a recent open, including who never engaged.
    assert await names(crm_client, m(kind="OPENED", withinDays=90, none=True)) == ["Bo", "Cy", "Di", "Ed"]
    assert await names(crm_client, m(kind="UNSUBSCRIBED")) == ["Bo"]
    assert await names(crm_client, m(kind="BOUNCED", campaignId=people["B"], withinDays=7)) == ["Di"]
    assert await names(crm_client, m(kind="COMPLAINED", withinDays=4)) == []
    # Combined with the rest of the filter language.
    either = {"or": [m(kind="CLICKED", campaignId=people["B"]), m(kind="COMPLAINED")]}
    assert await names(crm_client, either) == ["Cy", "Di"]
    engaged_not_clicked = {"and": [m(kind="OPENED"), {"not": m(kind="CLICKED")}]}
    assert await names(crm_client, engaged_not_clicked) == ["Bo"]
    assert await names(crm_client, {"lastName": {"startsWith": "a"}, **m(kind="OPENED", none=True)}) == []


async def test_a_dynamic_segment_stores_the_condition_and_follows_new_engagement(crm_client, crm_app, people):
    lapsed = {"marketingEngagement": {"kind": "OPENED", "withinDays": 90, "none": True}}
    made = await crm_client.mutate(SEGMENT, {"i": {"name": "Lapsed readers", "kind": "DYNAMIC", "filter": lapsed}})
    assert made["segment"]["size"] == 4 and made["segment"]["filter"] == lapsed  # plain data, enum by name
    async with crm_app.state.db.writer() as session, session.begin():
        ed = await session.scalar(sa.text("SELECT id FROM customers WHERE last_name = 'Ed'"))
        session.add(Engagement(kind=EngagementKind.OPENED, campaign_id=None, recipient_id=None, customer_id=ed, at=NOW))
    members = await crm_client.execute(
        "query($id: ID!) { node(id: $id) { ... on Segment { size customers(first: 10) { edges { node { lastName } } } } } }",
        {"id": made["segment"]["id"]})
    assert members["node"]["size"] == 3
    assert sorted(e["node"]["lastName"] for e in members["node"]["customers"]["edges"]) == ["Bo", "Cy", "Di"]
    clicked = {"marketingEngagement": {"kind": "CLICKED", "campaignId": people["A"]}}
    made = await crm_client.mutate(SEGMENT, {"i": {"name": "Clicked A", "kind": "DYNAMIC", "filter": clicked}})
    assert made["segment"]["size"] == 1


@pytest.mark.parametrize(("value", "says"), [
    ('{kind: OPENED, campaignId: "not-an-id"}', "filter.marketingEngagement.campaignId: not a Campaign ID"),
    ('{kind: OPENED, campaignId: "Q3VzdG9tZXI6MQ"}', "is a Customer ID, not a Campaign ID"),
    ("{kind: OPENED, withinDays: 0}", "withinDays is a whole number of days from 1 to 3650"),
    ("{kind: OPENED, withinDays: 3651}", "withinDays is a whole number of days from 1 to 3650"),
    ("{kind: SOFT_BOUNCED}", "SOFT_BOUNCED"),  # not one of the filter's kinds: GraphQL validation says so
    ("{withinDays: 3}", "kind"),
])
async def test_bad_input_is_a_clear_error(crm_client, value, says):
    body = await crm_client.post(f"{{ customers(filter: {{marketingEngagement: {value}}}) {{ totalCount }} }}")
    assert body.get("data") is None or body["data"].get("customers") is None
    assert says in body["errors"][0]["message"], body["errors"]


async def test_a_stored_segment_with_bad_input_is_refused_with_its_path(crm_client):
    bad = {"marketingEngagement": {"kind": "OPENED", "withinDays": 5000}}
    body = await crm_client.execute(SEGMENT, {"i": {"name": "Bad", "kind": "DYNAMIC", "filter": bad}})
    (error,) = body["createSegment"]["errors"]
    assert error["code"] == "INVALID_FILTER" and "withinDays" in error["message"]
    assert body["createSegment"]["segment"] is None
