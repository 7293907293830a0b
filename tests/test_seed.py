"""Demo data: realistic, varied, and idempotent."""

from __future__ import annotations

from crm_graph.seed import seed_demo


async def test_seed_is_idempotent_and_varied(settings, client):
    assert await seed_demo(settings, count=60) == 60
    assert await seed_demo(settings, count=60) == 0
    assert await seed_demo(settings, count=60, only_demo_data=True) == 0  # demo data only: completed, nothing new

    data = await client.execute("""{
      all: customers { totalCount }
      orgs: customers(filter: {kind: {eq: ORGANIZATION}}) { totalCount }
      optedIn: customers(filter: {consentStatus: {eq: OPTED_IN}}) { totalCount }
      tagged: customers(filter: {tags: {isEmpty: false}}) { totalCount }
      withContacts: customers(filter: {kind: {eq: ORGANIZATION}}, first: 100) { edges { node { contacts { totalCount } } } }
      activities { totalCount }
      openTasks: activities(filter: {type: {eq: TASK}, completedAt: {isNull: true}}) { totalCount }
      page: customers(first: 5) { edges { node { displayName primaryEmail primaryPhone country } } }
    }""")
    assert data["all"]["totalCount"] == 60
    assert 0 < data["orgs"]["totalCount"] < 60
    assert 0 < data["optedIn"]["totalCount"] < 60
    assert data["tagged"]["totalCount"] > 0
    assert sum(e["node"]["contacts"]["totalCount"] for e in data["withContacts"]["edges"]) > 0
    assert data["activities"]["totalCount"] > 60
    assert data["openTasks"]["totalCount"] > 0
    for edge in data["page"]["edges"]:
        node = edge["node"]
        assert node["displayName"] and node["primaryEmail"] and node["primaryPhone"].startswith("+") and node["country"]


async def test_demo_data_is_never_mixed_into_real_data(settings, client):
    await client.mutate(
        'mutation { createCustomer(input: {kind: PERSON, lastName: "Real"}) { customer { id } errors { field code message } } }'
    )
    assert await seed_demo(settings, count=10, only_demo_data=True) is None
    assert (await client.execute("{ customers { totalCount } }"))["customers"]["totalCount"] == 1
