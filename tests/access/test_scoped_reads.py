"""Scoped reads: the same statements as an administrator's, with the rules inside them.

A representative of team North sees their own customers and their team's (TEAM sharing), never
team South's: in the list, its count, the page after a cursor, nested lists and ``node``. The
number of statements of the nested customers query does not grow with the page size, and is the
same as an administrator's.
"""

from __future__ import annotations

import sqlalchemy as sa

from crm_graph.auth.models import Team, User
from crm_graph.customers.models import Customer
from crm_graph.testing.auth import bearer, make_key, share
from tests.customers.test_queries_count import NESTED, _populate


async def _split(db, north_user: int, south_user: int) -> tuple[set[int], set[int]]:
    """Odd customers to the North representative, even ones to the South one."""
    async with db.writer() as session, session.begin():
        teams = dict((await session.execute(sa.select(User.id, User.team_id))).all())
        ids = list((await session.execute(sa.select(Customer.id).order_by(Customer.id))).scalars())
        north = {i for i in ids if i % 2}
        for pk in ids:
            owner = north_user if pk in north else south_user
            await session.execute(sa.update(Customer).where(Customer.id == pk).values(owner_id=owner, team_id=teams[owner]))
    return north, set(ids) - north


async def test_team_sharing_in_lists_counts_cursors_and_nodes(client, db, settings):
    await _populate(db, 30)
    north_key, north_id = await make_key(db, settings, role="SALES", email="n@example.com", team="North")
    _, north_mate = await make_key(db, settings, role="SALES", email="n2@example.com", team="North")
    _, south_id = await make_key(db, settings, role="SALES", email="s@example.com", team="South")
    await share(db, "TEAM", "customers")
    north, south = await _split(db, north_id, south_id)
    client.http.headers.update(bearer(north_key))
    page = await client.execute("{ customers(first: 10) { totalCount pageInfo { endCursor } edges { node { id } } } }")
    assert page["customers"]["totalCount"] == len(north)
    rest = await client.execute(
        "query($a: String) { customers(first: 100, after: $a) { edges { node { id } } } }",
        {"a": page["customers"]["pageInfo"]["endCursor"]},
    )
    from crm_graph.core import ids

    seen = {ids.decode(e["node"]["id"])[1] for e in page["customers"]["edges"] + rest["customers"]["edges"]}
    assert seen == north
    hidden = ids.encode("Customer", min(south))
    body = await client.post("query($id: ID!) { node(id: $id) { id } customer(id: $id) { id } }", {"id": hidden})
    assert body["data"] == {"node": None, "customer": None}
    # A team mate's record is the team's: with TEAM sharing it is visible and writable.
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(Customer).where(Customer.id == min(south)).values(owner_id=north_mate,
                              team_id=await session.scalar(sa.select(Team.id).where(Team.name == "North"))))
    changed = await client.mutate(
        'mutation($id: ID!) { updateCustomer(id: $id, input: {jobTitle: "Buyer"}) { customer { jobTitle } errors { code } } }',
        {"id": hidden},
    )
    assert changed["customer"]["jobTitle"] == "Buyer"


async def test_public_read_lets_others_read_but_not_write(client, db, settings):
    await _populate(db, 4)
    a_key, a_id = await make_key(db, settings, role="SALES", email="a@example.com", team="North")
    # B manages team South: the role may change and delete customers, the record says no.
    b_key, b_id = await make_key(db, settings, role="MANAGER", email="b@example.com", team="South")
    await share(db, "PUBLIC_READ", "customers")
    await _split(db, a_id, a_id)
    client.http.headers.update(bearer(b_key))
    listed = await client.execute("{ customers { totalCount edges { node { id version } } } }")
    assert listed["customers"]["totalCount"] == 5
    target = listed["customers"]["edges"][0]["node"]
    answer = await client.execute(
        'mutation($id: ID!) { updateCustomer(id: $id, input: {jobTitle: "x"}) { customer { id } errors { code } } }',
        {"id": target["id"]},
    )
    assert answer["updateCustomer"] == {"customer": None, "errors": [{"code": "FORBIDDEN"}]}
    deleted = await client.execute(
        "mutation($id: ID!) { deleteCustomer(id: $id) { customer { id } errors { code } } }", {"id": target["id"]}
    )
    assert deleted["deleteCustomer"]["errors"] == [{"code": "FORBIDDEN"}]
    after = await client.execute("{ customers { totalCount edges { node { id version } } } }")
    assert after == listed  # nothing was written
    client.http.headers.update(bearer(a_key))
    own = await client.mutate(
        'mutation($id: ID!) { updateCustomer(id: $id, input: {jobTitle: "x"}) { customer { jobTitle } errors { code } } }',
        {"id": target["id"]},
    )
    assert own["customer"]["jobTitle"] == "x"


async def test_statement_count_is_flat_and_the_same_as_an_administrators(client, db, settings, sql_counter):
    await _populate(db, 100)
    key, user_id = await make_key(db, settings, role="SALES", email="rep@example.com", team="North")
    await share(db, "TEAM", "customers")
    await _split(db, user_id, user_id)
    counts: dict[str, dict[int, int]] = {}
    for who, headers in (("admin", dict(client.http.headers)), ("rep", bearer(key))):
        client.http.headers.update(headers)
        await client.warm_up()
        counts[who] = {}
        for n in (10, 100):
            sql_counter.count = 0
            data = await client.execute(NESTED, {"n": n})
            assert len(data["customers"]["edges"]) == n
            counts[who][n] = sql_counter.count
    print(f"nested customers query, statements: {counts}")
    assert counts["rep"][10] == counts["rep"][100] == counts["admin"][10] == counts["admin"][100], counts
