"""Duplicate rules through the API: email, phone, similar names (Latin and Chinese), each with a
score and reasons; the caller's scope; the createCustomer warning; dismissing a pair; and the
cost of ``possibleDuplicates`` on a page of customers."""

from __future__ import annotations

import sqlalchemy as sa

from crm_graph.core.actor import SYSTEM
from crm_graph.customers import service as customers
from crm_graph.dedupe import service as dedupe
from crm_graph.dedupe.models import DuplicateCandidate
from crm_graph.testing.auth import bearer, make_key, share

CREATE = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    customer { id displayName }
    possibleDuplicates { score reasons { rule field values score } customer { id displayName } }
    errors { field code message }
  }
}
"""
CANDIDATES = """
query($first: Int, $after: String) {
  duplicateCandidates(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { score reasons { rule field values score similarity } customer { id displayName } duplicate { id displayName } } }
  }
}
"""
POSSIBLE = """
query($id: ID!) { customer(id: $id) { possibleDuplicates { score reasons { rule field values } customer { id displayName } } } }
"""


async def _create(client, **data):
    data.setdefault("kind", "PERSON")
    return await client.mutate(CREATE, {"input": data})


def _pairs(data):
    return {
        frozenset((e["node"]["customer"]["displayName"], e["node"]["duplicate"]["displayName"])): e["node"]
        for e in data["duplicateCandidates"]["edges"]
    }


async def test_same_normalised_email_and_same_phone_are_candidates_with_reasons(client):
    await _create(client, firstName="Ada", lastName="Lovelace", emails=[{"address": "Ada.Lovelace+crm@gmail.com"}])
    warned = await _create(client, firstName="Augusta", lastName="King", emails=[{"address": "adalovelace@googlemail.com"}])
    (dupe,) = warned["possibleDuplicates"]
    assert dupe["customer"]["displayName"] == "Ada Lovelace"
    assert dupe["score"] == 95
    assert dupe["reasons"] == [
        {"rule": "EMAIL", "field": "emails", "values": ["adalovelace@googlemail.com", "ada.lovelace+crm@gmail.com"], "score": 95}
    ]
    assert warned["customer"]["displayName"] == "Augusta King"  # a warning: the customer was created

    await _create(client, lastName="Babbage", phones=[{"number": "+44 20 7946 0018"}])
    await _create(client, lastName="Menabrea", phones=[{"number": "+442079460018"}])
    pairs = _pairs(await client.execute(CANDIDATES))
    phone = pairs[frozenset(("Babbage", "Menabrea"))]
    assert phone["score"] == 90 and [r["rule"] for r in phone["reasons"]] == ["PHONE"]
    assert phone["reasons"][0]["values"] == ["+442079460018", "+442079460018"]
    email = pairs[frozenset(("Ada Lovelace", "Augusta King"))]
    assert email["score"] == 95
    # Best score first.
    assert [e["node"]["score"] for e in (await client.execute(CANDIDATES))["duplicateCandidates"]["edges"]] == [95, 90]


async def test_latin_names_match_across_accents_case_and_order_within_a_city(client):
    await _create(client, firstName="Jürgen", lastName="Müller", city="München")
    await _create(client, firstName="juergen", lastName="MUELLER", city="Muenchen")
    await _create(client, firstName="Muller", lastName="Jurgen", city="MÜNCHEN")
    await _create(client, firstName="Jürgen", lastName="Müller", city="Hamburg")  # another city: not compared
    await _create(client, firstName="Hans", lastName="Meier", city="München")  # another name
    pairs = _pairs(await client.execute(CANDIDATES))
    assert set(pairs) == {
        frozenset(("Jürgen Müller", "juergen MUELLER")),
        frozenset(("Jürgen Müller", "Muller Jurgen")),
        frozenset(("juergen MUELLER", "Muller Jurgen")),
    }
    for node in pairs.values():
        (reason,) = node["reasons"]
        assert reason["rule"] == "NAME_IN_CITY" and reason["field"] == "name"
        assert reason["similarity"] == 100.0 and node["score"] == 80


async def test_similar_names_in_one_organization_and_a_typo(client):
    org = (await _create(client, kind="ORGANIZATION", organizationName="Analytical Engines"))["customer"]["id"]
    await _create(client, firstName="John", lastName="Smith", organizationId=org)
    warned = await _create(client, firstName="Jon", lastName="Smith", organizationId=org)
    (dupe,) = warned["possibleDuplicates"]
    (reason,) = dupe["reasons"]
    assert reason["rule"] == "NAME_IN_ORGANIZATION" and reason["values"] == ["Jon Smith", "John Smith"]
    assert 68 <= dupe["score"] < 80
    # Without a shared organization or city, names are not compared.
    assert (await _create(client, firstName="John", lastName="Smith"))["possibleDuplicates"] == []


async def test_chinese_names_with_and_without_a_space_and_in_pinyin(client):
    first = await _create(client, firstName="伟", lastName="张", city="北京")
    assert first["customer"]["displayName"] == "张伟"
    spaced = await _create(client, lastName="张 伟", city="北京")
    (dupe,) = spaced["possibleDuplicates"]
    assert dupe["customer"]["displayName"] == "张伟" and dupe["score"] == 85
    assert dupe["reasons"][0]["rule"] == "NAME_IN_CITY"
    latin = await _create(client, firstName="Wei", lastName="Zhang", city="Beijing")  # 北京 read as pinyin too
    assert [(d["customer"]["displayName"], d["score"]) for d in latin["possibleDuplicates"]] == [("张伟", 80), ("张伟", 80)]
    # Other characters of the same sound score lower than the same characters (a Latin
    # spelling cannot tell them apart, so Wei Zhang still scores 80).
    homophone = await _create(client, firstName="伟", lastName="章", city="北京")
    scores = {(d["customer"]["displayName"], d["score"]) for d in homophone["possibleDuplicates"]}
    assert scores == {("张伟", 60), ("Wei Zhang", 80)}
    assert (await _create(client, firstName="芳", lastName="王", city="北京"))["possibleDuplicates"] == []


async def test_hidden_customers_never_appear(client, db, settings):
    await share(db, "PRIVATE", "customers")
    rep_a, _ = await make_key(db, settings, role="SALES", email="a@example.com", team="North")
    rep_b, _ = await make_key(db, settings, role="SALES", email="b@example.com", team="South")
    client.http.headers.update(bearer(rep_a))
    mine = (await _create(client, lastName="Hopper", phones=[{"number": "+4930901820"}]))["customer"]
    client.http.headers.update(bearer(rep_b))
    theirs = await _create(client, lastName="Hoper", phones=[{"number": "+4930901820"}])
    assert theirs["possibleDuplicates"] == []  # rep A's customer is hidden from rep B
    assert (await client.execute(CANDIDATES))["duplicateCandidates"] == {
        "totalCount": 0, "pageInfo": {"hasNextPage": False, "endCursor": None}, "edges": []}
    client.http.headers.update(bearer(rep_a))
    assert (await client.execute(POSSIBLE, {"id": mine["id"]}))["customer"]["possibleDuplicates"] == []
    # An administrator sees the pair.
    client.http.headers.pop("authorization", None)
    admin, _ = await make_key(db, settings, role="ADMIN", email="root@example.com")
    client.http.headers.update(bearer(admin))
    assert (await client.execute(CANDIDATES))["duplicateCandidates"]["totalCount"] == 1


async def test_dismissed_pairs_are_not_proposed_again(client):
    a = (await _create(client, lastName="Curie", emails=[{"address": "marie@example.com"}]))["customer"]["id"]
    b = (await _create(client, lastName="Sklodowska", emails=[{"address": "Marie+lab@example.com"}]))["customer"]["id"]
    assert (await client.execute(CANDIDATES))["duplicateCandidates"]["totalCount"] == 1
    dismissed = await client.mutate(
        "mutation($a: ID!, $b: ID!) { dismissDuplicate(input: {customerId: $a, otherId: $b}) "
        "{ customer { id } other { id } errors { code } } }", {"a": b, "b": a})
    assert dismissed["customer"]["id"] == b
    assert (await client.execute(CANDIDATES))["duplicateCandidates"]["totalCount"] == 0
    assert (await client.execute(POSSIBLE, {"id": a}))["customer"]["possibleDuplicates"] == []
    # Changing a customer does not bring the pair back.
    await client.mutate("mutation($id: ID!) { updateCustomer(id: $id, input: {jobTitle: \"Chemist\"}) { errors { code } } }", {"id": a})
    assert (await client.execute(CANDIDATES))["duplicateCandidates"]["totalCount"] == 0
    same = await client.execute(
        "mutation($a: ID!) { dismissDuplicate(input: {customerId: $a, otherId: $a}) { errors { field code } } }", {"a": a})
    assert same["dismissDuplicate"]["errors"] == [{"field": "otherId", "code": "INVALID_VALUE"}]


async def test_candidates_page_by_score_with_cursors(client):
    for i in range(3):
        await _create(client, lastName=f"Phone{i}a", phones=[{"number": f"+49309018200{i}"}])
        await _create(client, lastName=f"Phone{i}b", phones=[{"number": f"+49309018200{i}"}])
    first = (await client.execute(CANDIDATES, {"first": 2}))["duplicateCandidates"]
    assert first["totalCount"] == 3 and first["pageInfo"]["hasNextPage"] is True and len(first["edges"]) == 2
    rest = (await client.execute(CANDIDATES, {"first": 2, "after": first["pageInfo"]["endCursor"]}))["duplicateCandidates"]
    assert len(rest["edges"]) == 1 and rest["pageInfo"]["hasNextPage"] is False
    bad = await client.post(CANDIDATES, {"after": "nonsense"})
    assert "Malformed cursor" in bad["errors"][0]["message"]


async def test_find_duplicates_for_an_importer(db):
    config = customers.ServiceConfig()
    async with db.writer() as session, session.begin():
        old = await customers.create_customer(session, actor=SYSTEM, config=config,
                                              data={"kind": "PERSON", "lastName": "Turing", "phones": [{"number": "+441619999999"}]})
        await dedupe.refresh_changed(session)
        new = await customers.create_customer(session, actor=SYSTEM, config=config,
                                              data={"kind": "PERSON", "lastName": "Turing", "phones": [{"number": "+441619999999"}]})
        found = await dedupe.find_duplicates(session, customer_ids=[new.id, old.id])
    assert [c.customer_id for c in found[new.id]] == [old.id]
    assert [r.rule for r in found[new.id][0].reasons] == ["PHONE"]
    assert [c.customer_id for c in found[old.id]] == [new.id]  # the batch is compared with itself too


async def test_a_bulk_refresh_pairs_every_customer_once(db, monkeypatch):
    """What `crm-graph duplicates refresh` does after an import: every customer, in batches."""
    monkeypatch.setattr(dedupe, "BATCH", 7)
    monkeypatch.setattr(dedupe, "REFRESH_LIMIT", 14)
    config = customers.ServiceConfig()
    async with db.writer() as session, session.begin():
        for i in range(20):
            for _ in range(2):
                await customers.create_customer(session, actor=SYSTEM, config=config, data={
                    "kind": "PERSON", "lastName": f"Twin{i}", "phones": [{"number": f"+4930555{i:04d}"}]})
    assert await dedupe.refresh_all(db) == 40
    async with db.reader() as session:
        pairs = (await session.execute(sa.select(DuplicateCandidate.customer_a_id, DuplicateCandidate.customer_b_id))).all()
    assert len(pairs) == 20 and all(b == a + 1 for a, b in pairs)
    assert await dedupe.refresh_all(db) == 0  # nothing changed since


POSSIBLE_PAGE = """
query($n: Int!) { customers(first: $n) { edges { node { id possibleDuplicates { score reasons { rule } customer { id displayName } } } } } }
"""


async def test_possible_duplicates_cost_a_constant_number_of_statements(client, db, sql_counter):
    config = customers.ServiceConfig()
    async with db.writer() as session, session.begin():
        for i in range(30):
            for _ in ("a", "b"):
                await customers.create_customer(session, actor=SYSTEM, config=config, data={
                    "kind": "PERSON", "firstName": "Grace", "lastName": f"Hopper{i}", "city": "Arlington",
                    "phones": [{"number": f"+1703555{i:04d}"}]})
    await client.warm_up()
    await client.execute(POSSIBLE_PAGE, {"n": 2})  # the first read brings the stored keys up to date
    counts = {}
    for n in (4, 40):
        sql_counter.count = 0
        edges = (await client.execute(POSSIBLE_PAGE, {"n": n}))["customers"]["edges"]
        assert len(edges) == n
        assert all(e["node"]["possibleDuplicates"] and e["node"]["possibleDuplicates"][0]["score"] >= 90 for e in edges)
        counts[n] = sql_counter.count
    assert counts[4] == counts[40], counts
    print(f"possibleDuplicates: {counts[4]} statements for 4 customers, {counts[40]} for 40")


async def test_find_duplicates_with_a_scope_on_an_unscoped_session(db):
    """An import job's session sees everything; the importer's scope still hides what its user may not read."""
    from crm_graph.core.access import Scope, Sharing
    from crm_graph.core.actor import Actor

    config = customers.ServiceConfig()
    async with db.writer() as session, session.begin():
        other = await customers.create_customer(session, actor=SYSTEM, config=config, data={
            "kind": "PERSON", "lastName": "Noether", "phones": [{"number": "+4955112345"}]})
        await dedupe.refresh_changed(session)
        new = await customers.create_customer(session, actor=SYSTEM, config=config, data={
            "kind": "PERSON", "lastName": "Noether", "phones": [{"number": "+4955112345"}]})
        rep = Actor(kind="user", id="99", role="SALES", permissions=frozenset({"customers:read"}), user_id=99, team_id=None)
        hidden = await dedupe.find_duplicates(session, scope=Scope(rep, sharing={"customers": Sharing.PRIVATE}), customer_ids=[new.id])
        shown = await dedupe.find_duplicates(session, customer_ids=[new.id])
    assert hidden == {new.id: []}
    assert [c.customer_id for c in shown[new.id]] == [other.id]


async def test_concurrent_reads_refresh_the_stored_pairs_once(client, db):
    """Every read brings the stored keys up to date first; reads arriving together must not both
    write the same keys (on PostgreSQL the second skips while the first holds the refresh lock)."""
    import asyncio

    from crm_graph.customers.models import Customer
    import sqlalchemy as sa

    for i in range(12):
        await _create(client, firstName="Ana", lastName=f"Reddy{i % 3}", emails=[{"address": f"ana.reddy{i % 6}+{i}@example.com"}])
    # Let the stored keys lag behind every customer again, as after a bulk import.
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(Customer).values(updated_at=sa.func.coalesce(Customer.updated_at, Customer.created_at)))
        from crm_graph.dedupe.models import DuplicateRefreshState

        await session.execute(sa.delete(DuplicateRefreshState))
    answers = await asyncio.gather(*(client.post(CANDIDATES, {"first": 50}) for _ in range(8)))
    assert all("errors" not in a for a in answers), [a.get("errors") for a in answers]
    final = await client.execute(CANDIDATES, {"first": 50})
    assert final["duplicateCandidates"]["totalCount"] >= 6  # the same mailbox, written with a +tag
