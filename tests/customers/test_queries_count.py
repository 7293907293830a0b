"""The number of SQL statements of a nested list must not grow with the page size."""

from __future__ import annotations

from crm_graph.core.actor import SYSTEM
from crm_graph.activities import service as activities
from crm_graph.customers import service as customers

NESTED = """
query($n: Int!) {
  customers(first: $n) {
    totalCount
    edges { node {
      id displayName primaryEmail emails { address } phones { number } tags customFields
      organization { displayName }
      activities(first: 3) { totalCount edges { node { subject type customer { displayName } } } }
    } }
  }
}
"""


async def _populate(db, count: int) -> None:
    config = customers.ServiceConfig()
    async with db.writer() as session, session.begin():
        org = await customers.create_customer(session, actor=SYSTEM, config=config,
                                              data={"kind": "ORGANIZATION", "organizationName": "Org"})
        for i in range(count):
            person = await customers.create_customer(
                session, actor=SYSTEM, config=config,
                data={"kind": "PERSON", "lastName": f"P{i}", "organizationId": org.id, "tags": ["t"],
                      "emails": [{"address": f"p{i}@example.com"}], "phones": [{"number": "+4930123456"}]},
            )
            for j in range(4):
                await activities.log_activity(session, actor=SYSTEM,
                                              data={"customerId": person.id, "type": "NOTE", "subject": f"n{j}"})


async def test_statement_count_is_flat_in_page_size(client, db, sql_counter):
    await _populate(db, 100)
    await client.warm_up()
    counts = {}
    for n in (10, 100):
        sql_counter.count = 0
        data = await client.execute(NESTED, {"n": n})
        edges = data["customers"]["edges"]
        assert len(edges) == n
        assert all(len(e["node"]["activities"]["edges"]) == 3 for e in edges if e["node"]["displayName"] != "Org")
        assert all(e["node"]["activities"]["totalCount"] == 4 for e in edges if e["node"]["displayName"] != "Org")
        counts[n] = sql_counter.count
    assert counts[10] == counts[100], counts
    # page, count, emails, phones, tags, custom values, organizations, activities page and count
    # (the activities' customers come from the customer loader already primed by the organization)
    print(f"statements at N=10: {counts[10]}, at N=100: {counts[100]}")
    assert counts[10] <= 10, counts


CREATE_MANY = """
mutation($inputs: [CreateCustomerInput!]!) {
  createCustomers(inputs: $inputs) { results { customer { id } errors { field code } } }
}
"""
SEARCH = "query($q: String!) { search(query: $q, first: 100) { totalCount } }"


async def test_a_batch_of_creates_writes_each_table_once(client, db, sql_counter):
    """A batch is written set-based: its addresses are checked for duplicates at once, the
    custom field definitions are read once, each table's rows (emails, tags, events) go in one
    INSERT, and the search index is brought up to date once for the whole batch. Only SQLite
    inserts the customer rows one by one: it cannot hand back the ids of a multi-row insert in
    order, and the customer ids are needed for their rows."""
    await client.warm_up()
    counts = {}
    for n in (10, 50):
        inputs = [{"kind": "PERSON", "firstName": "Batch", "lastName": f"Size{n}x{i}",
                   "emails": [{"address": f"size{n}.{i}@batch.example"}], "tags": ["batch"]} for i in range(n)]
        sql_counter.count = 0
        results = (await client.execute(CREATE_MANY, {"inputs": inputs}))["createCustomers"]["results"]
        assert [r["errors"] for r in results] == [[]] * n
        counts[n] = sql_counter.count
        # Every one of them is found by search once the batch has committed.
        assert (await client.execute(SEARCH, {"q": f"Size{n}x"}))["search"]["totalCount"] == n
    print(f"statements of a createCustomers batch of 10 and of 50: {counts}")
    per_customer = 1 if db.engine.dialect.name == "sqlite" else 0
    assert counts[50] - counts[10] == 40 * per_customer, counts
    # address owners, definitions, the rows of each table, the index, the audit entry
    assert counts[10] <= 15 + 10 * per_customer, counts
