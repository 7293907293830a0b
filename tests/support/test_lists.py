"""Ticket lists: filters compiled to SQL, keyset pages, the customer's tickets, and a flat
number of SQL statements whatever the page size."""

from __future__ import annotations

from crm_graph.core.actor import SYSTEM
from crm_graph.customers import service as customers
from crm_graph.support import service
from tests.support.conftest import (
    create_customer,
    create_ticket,
    reply,
    set_status,
)

NESTED = """
query($n: Int!) {
  tickets(first: $n) {
    totalCount
    edges { node {
      number status tags
      customer { displayName }
      sla { policy { name } firstResponseStatus resolutionStatus resolutionDueAt }
      comments(first: 2) { totalCount edges { node { body authorKind } } }
    } }
  }
}
"""


def numbers(data: dict) -> list[str]:
    (connection,) = data.values()
    return [e["node"]["number"] for e in connection["edges"]]


async def test_filters_and_ordering(client, clock):
    acme = await create_customer(client, kind="ORGANIZATION", organizationName="Acme")
    bob = await create_customer(client, firstName="Bob", lastName="Jones")
    t1 = await create_ticket(client, acme["id"], subject="Broken login", channel="WEB", priority="HIGH", tags=["login"])
    clock.advance(hours=1)
    t2 = await create_ticket(client, bob["id"], subject="Refund please", channel="PHONE", priority="LOW",
                             tags=["billing", "vip"], assignee="kim")
    clock.advance(hours=1)
    t3 = await create_ticket(client, acme["id"], subject="Login slow", channel="CHAT", priority="URGENT", tags=["login", "vip"])
    await reply(client, t3["id"])
    clock.advance(minutes=1)
    await set_status(client, t2["id"], "RESOLVED")

    async def query(filter: str, order: str = "") -> list[str]:
        data = await client.execute(f"{{ tickets(filter: {filter} {order}) {{ edges {{ node {{ number }} }} }} }}")
        return numbers(data)

    n1, n2, n3 = t1["number"], t2["number"], t3["number"]
    assert await query("{}") == [n3, n2, n1]  # newest first
    assert await query("{status: {in: [NEW, OPEN]}}") == [n3, n1]
    assert await query("{priority: {eq: LOW}}") == [n2]
    assert await query("{channel: {neq: WEB}}") == [n3, n2]
    assert await query("{assignee: {isNull: true}}") == [n3, n1]
    assert await query("{tags: {containsAll: [\"LOGIN\", \"vip\"]}}") == [n3]
    assert await query("{tags: {containsAny: [\"billing\"]}}") == [n2]
    assert await query("{subject: {contains: \"LOGIN\"}}") == [n3, n1]
    assert await query(f"{{customerId: {{eq: \"{acme['id']}\"}}}}") == [n3, n1]
    assert await query(f"{{number: {{in: [\"{n1.lower()}\", \"{n3}\"]}}}}") == [n3, n1]
    assert await query(f"{{createdAt: {{gte: \"{t2['createdAt']}\"}}}}") == [n3, n2]
    assert await query("{or: [{priority: {eq: LOW}}, {not: {tags: {isEmpty: false}}}]}") == [n2]
    assert await query("{resolvedAt: {isNull: false}}") == [n2]
    assert await query("{}", ", orderBy: [{field: NUMBER, direction: ASC}]") == [n1, n2, n3]
    assert await query("{}", ", orderBy: [{field: UPDATED_AT, direction: DESC}]") == [n2, n3, n1]

    # The customer's own tickets, with the same filter language.
    data = await client.execute(
        "query($id: ID!) { customer(id: $id) { tickets(filter: {tags: {containsAny: [\"vip\"]}}) { totalCount edges { node { number } } } } }",
        {"id": acme["id"]},
    )
    assert data["customer"]["tickets"]["totalCount"] == 1 and numbers(data["customer"]) == [n3]

    # A deleted customer's tickets leave the lists.
    await client.mutate("mutation($id: ID!) { deleteCustomer(id: $id) { customer { id } errors { code } } }", {"id": bob["id"]})
    assert await query("{}") == [n3, n1]
    assert (await client.execute("query($id: ID!) { ticket(id: $id) { number } }", {"id": t2["id"]}))["ticket"] is None


async def test_pages_and_bad_arguments(client):
    customer = await create_customer(client)
    created = [await create_ticket(client, customer["id"], subject=f"Question {i}") for i in range(5)]
    first = await client.execute("{ tickets(first: 2, orderBy: [{field: NUMBER, direction: ASC}]) { totalCount pageInfo { hasNextPage endCursor } edges { node { number } } } }")
    page = first["tickets"]
    assert page["totalCount"] == 5 and page["pageInfo"]["hasNextPage"] is True
    second = await client.execute(
        "query($after: String!) { tickets(first: 3, after: $after, orderBy: [{field: NUMBER, direction: ASC}]) { pageInfo { hasNextPage } edges { node { number } } } }",
        {"after": page["pageInfo"]["endCursor"]},
    )
    assert numbers(first) + numbers(second) == [t["number"] for t in created]
    assert second["tickets"]["pageInfo"]["hasNextPage"] is False

    for query in (
        '{ tickets(after: "not-a-cursor") { totalCount } }',
        "{ tickets(first: 101) { totalCount } }",
        '{ tickets(filter: {customerId: {eq: "garbage"}}) { totalCount } }',
        '{ tickets(filter: {number: {eq: "T-12x"}}) { totalCount } }',
        '{ customers { edges { node { tickets(filter: {number: {eq: "T-12x"}}) { totalCount } } } } }',
    ):
        body = await client.post(query)
        assert body["errors"] and body["errors"][0]["extensions"]["code"] != "INTERNAL_SERVER_ERROR", body
        assert "Traceback" not in str(body)


async def _populate(db, count: int) -> None:
    config = customers.ServiceConfig()
    async with db.writer() as session, session.begin():
        await service.create_sla_policy(session, actor=SYSTEM, data={"name": "Default", "firstResponseMinutes": 60,
                                                                     "resolutionMinutes": 600})
        owners = [
            await customers.create_customer(session, actor=SYSTEM, config=config, data={"kind": "PERSON", "lastName": f"C{i}"})
            for i in range(10)
        ]
        for i in range(count):
            ticket = await service.create_ticket(session, actor=SYSTEM, data={
                "customerId": owners[i % 10].id, "subject": f"Question {i}", "channel": "EMAIL", "tags": ["t"]})
            for body in ("Thanks, looking into it.", "Fixed now?", "Yes, thanks"):
                author = "CUSTOMER" if body.startswith("Yes") else "AGENT"
                await service.reply_to_ticket(session, actor=SYSTEM, ticket_id=ticket.id, data={"body": body, "from": author})


async def test_statement_count_is_flat_in_page_size(client, db, sql_counter, clock):
    await _populate(db, 100)
    clock.advance(minutes=30)
    await client.warm_up()
    counts = {}
    for n in (10, 100):
        sql_counter.count = 0
        data = await client.execute(NESTED, {"n": n})
        edges = data["tickets"]["edges"]
        assert len(edges) == n
        assert all(e["node"]["comments"]["totalCount"] == 3 and len(e["node"]["comments"]["edges"]) == 2 for e in edges)
        assert all(e["node"]["sla"]["policy"]["name"] == "Default" and e["node"]["customer"] for e in edges)
        counts[n] = sql_counter.count
    print(f"statements at N=10: {counts[10]}, at N=100: {counts[100]}")
    assert counts[10] == counts[100], counts
    # tickets page and count, customers, policies, tags, comments page and count
    assert counts[10] <= 7, counts
