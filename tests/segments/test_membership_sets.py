"""Membership changes as SQL over sets: snapshot refreshes and hand-made changes give the
members and the (batched) events a user expects, in a number of statements that does not
depend on how many customers move, within the record rules of the actor."""

from __future__ import annotations

import sqlalchemy as sa

from crm_graph.core.actor import SYSTEM
from crm_graph.core.ids import decode_as, encode
from crm_graph.customers.models import Customer
from crm_graph.segments import service
from crm_graph.testing.auth import bearer, make_key
from tests.customers.test_schema import create
from tests.segments.membership import bulk_customers, last_event_id, member_events, move, moved, stored
from tests.segments.test_segments import ADD, CREATE, REFRESH, REMOVE, SEGMENT, names


SHARE = 'mutation($level: SharingLevel!) { setSharingDefault(object: "customers", level: $level) { errors { code } } }'


def pk(customer: dict) -> int:
    return decode_as(customer["id"], "Customer")


async def test_snapshot_refresh_moves_exactly_who_changed_and_says_so_once(client, db):
    early = await create(client, kind="PERSON", lastName="Early", tags=["beta"])
    gone = await create(client, kind="PERSON", lastName="Gone", tags=["beta"])
    late = await create(client, kind="PERSON", lastName="Late")
    segment = (await client.mutate(CREATE, {"input": {"name": "Beta", "kind": "SNAPSHOT",
                                                      "filter": {"tags": {"containsAny": ["beta"]}}}}))["segment"]
    (created,) = await member_events(db)
    assert created == ("segment.member_added", {
        "segmentId": decode_as(segment["id"], "Segment"), "segmentName": "Beta", "segmentKind": "SNAPSHOT",
        "customerIds": sorted([pk(early), pk(gone)]), "changeId": created[1]["changeId"],
        "batch": 1, "batches": 1, "total": 2})

    # Early drops the tag, Late takes it, Gone is deleted: a deleted customer is no member.
    await client.mutate('mutation($id: ID!, $i: UpdateCustomerInput!) { updateCustomer(id: $id, input: $i) { customer { id } errors { code } } }',
                        {"id": early["id"], "i": {"tags": []}})
    await client.mutate('mutation($id: ID!, $i: UpdateCustomerInput!) { updateCustomer(id: $id, input: $i) { customer { id } errors { code } } }',
                        {"id": late["id"], "i": {"tags": ["beta"]}})
    await client.mutate('mutation($id: ID!) { deleteCustomer(id: $id) { customer { id } errors { code } } }', {"id": gone["id"]})
    mark = await last_event_id(db)
    assert (await client.mutate(REFRESH, {"id": segment["id"]}))["segment"]["size"] == 1
    assert names((await client.execute(SEGMENT, {"id": segment["id"]}))["segment"]) == ["Late"]
    events = await member_events(db, mark)
    assert [kind for kind, _ in events] == ["segment.member_added", "segment.member_removed"]
    assert moved(events) == {"segment.member_added": [pk(late)], "segment.member_removed": sorted([pk(early), pk(gone)])}
    assert await stored(db, decode_as(segment["id"], "Segment")) == {pk(late)}

    mark = await last_event_id(db)
    await client.mutate(REFRESH, {"id": segment["id"]})
    assert await member_events(db, mark) == []


async def test_static_changes_name_missing_customers_and_skip_what_is_already_so(client, db):
    a = await create(client, kind="PERSON", lastName="A")
    b = await create(client, kind="PERSON", lastName="B")
    segment = (await client.mutate(CREATE, {"input": {"name": "Picked", "kind": "STATIC"}}))["segment"]
    unknown = encode("Customer", 999_999)
    refused = (await client.execute(ADD, {"s": segment["id"], "c": [a["id"], unknown]}))["addCustomersToSegment"]
    assert refused["errors"] == [{"field": "customerIds.1", "code": "NOT_FOUND", "message": "The customer was not found."}]
    assert await member_events(db) == []

    await client.mutate(ADD, {"s": segment["id"], "c": [a["id"]]})
    mark = await last_event_id(db)
    assert (await client.mutate(ADD, {"s": segment["id"], "c": [a["id"], b["id"], b["id"]]}))["segment"]["size"] == 2
    assert moved(await member_events(db, mark))["segment.member_added"] == [pk(b)]
    mark = await last_event_id(db)
    assert (await client.mutate(REMOVE, {"s": segment["id"], "c": [b["id"], unknown]}))["segment"]["size"] == 1
    assert moved(await member_events(db, mark)) == {"segment.member_added": [], "segment.member_removed": [pk(b)]}

    too_many = (await client.execute(ADD, {"s": segment["id"], "c": [a["id"]] * 1001}))["addCustomersToSegment"]
    assert too_many["errors"][0]["code"] == "TOO_MANY"


async def _refresh(db, segment_id: int) -> None:
    async with db.writer() as session, session.begin():
        await service.refresh_segment(session, actor=SYSTEM, segment_id=segment_id)


async def test_snapshot_refresh_statements_do_not_grow_with_the_members(db, sql_counter):
    counts: dict[int, list[int]] = {}
    for n, country in ((50, "DE"), (2000, "FR")):
        async with db.writer() as session, session.begin():
            segment = await service.create_segment(session, actor=SYSTEM, data={
                "name": country, "kind": "SNAPSHOT", "filter": {"country": {"eq": country}}})
        ids = await bulk_customers(db, n, country=country, prefix=country)
        steps = []
        mark = await last_event_id(db)
        sql_counter.count = 0
        await _refresh(db, segment.id)  # n enter
        steps.append(sql_counter.count)
        events = await member_events(db, mark)
        assert len(events) == (n + 999) // 1000 and moved(events)["segment.member_added"] == ids
        assert [data["batch"] for _, data in events] == list(range(1, len(events) + 1))
        sql_counter.count = 0
        await _refresh(db, segment.id)  # nothing changed
        steps.append(sql_counter.count)
        await move(db, ids[::2], "XX")
        mark = await last_event_id(db)
        sql_counter.count = 0
        await _refresh(db, segment.id)  # half of them leave
        steps.append(sql_counter.count)
        assert moved(await member_events(db, mark))["segment.member_removed"] == ids[::2]
        assert await stored(db, segment.id) == set(ids[1::2])
        counts[n] = steps
    print(f"statements of a snapshot refresh (enter, no change, churn): {counts}")
    assert counts[50] == counts[2000], counts


async def test_static_adds_take_any_number_of_ids_in_the_same_statements(db, sql_counter):
    """40,000 ids: more than either database accepts as parameters of one statement."""
    async with db.writer() as session, session.begin():
        small = await service.create_segment(session, actor=SYSTEM, data={"name": "Small", "kind": "STATIC"})
        big = await service.create_segment(session, actor=SYSTEM, data={"name": "Big", "kind": "STATIC"})
    ids = await bulk_customers(db, 40_000, country="DE")
    counts = {}
    for segment, chosen in ((small, ids[:50]), (big, ids)):
        mark = await last_event_id(db)
        sql_counter.count = 0
        async with db.writer() as session, session.begin():
            await service.add_customers(session, actor=SYSTEM, segment_id=segment.id, customer_ids=chosen, limit=None)
        counts[len(chosen)] = sql_counter.count
        events = await member_events(db, mark)
        assert moved(events)["segment.member_added"] == chosen
        assert {data["total"] for _, data in events} == {len(chosen)} and len(events) == (len(chosen) + 999) // 1000
    assert counts[50] == counts[40_000], counts
    assert len(await stored(db, big.id)) == 40_000

    mark = await last_event_id(db)
    async with db.writer() as session, session.begin():
        await service.remove_customers(session, actor=SYSTEM, segment_id=big.id, customer_ids=ids[::2], limit=None)
    assert moved(await member_events(db, mark))["segment.member_removed"] == ids[::2]
    assert await stored(db, big.id) == set(ids[1::2])


async def _owned(db, ids: list[int], owner: int | None) -> None:
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(Customer).where(Customer.id.in_(ids)).values(owner_id=owner))


async def test_a_refresh_changes_only_what_the_actor_may_see_and_change(client, db, settings):
    key, user = await make_key(db, settings, role="MARKETING", email="m@example.com", team="North")
    mine = await bulk_customers(db, 2, country="DE", prefix="Mine")
    hidden = await bulk_customers(db, 2, country="DE", prefix="Hidden")
    await _owned(db, mine, user)
    segment = (await client.mutate(CREATE, {"input": {"name": "Germany", "kind": "SNAPSHOT",
                                                      "filter": {"country": {"eq": "DE"}}}}))["segment"]
    segment_id = decode_as(segment["id"], "Segment")
    assert await stored(db, segment_id) == set(mine + hidden)

    # With customers PRIVATE the marketer sees their own only: the others' changes are not
    # theirs to apply, and hidden members stay as they are.
    admin = dict(client.http.headers)
    await client.mutate(SHARE, {"level": "PRIVATE"})
    await move(db, [mine[0], hidden[0]], "FR")
    mark = await last_event_id(db)
    client.http.headers.update(bearer(key))
    assert (await client.mutate(REFRESH, {"id": segment["id"]}))["segment"]["size"] == 1
    assert moved(await member_events(db, mark)) == {"segment.member_added": [], "segment.member_removed": [mine[0]]}
    assert await stored(db, segment_id) == {mine[1], *hidden}

    # With PUBLIC_READ they see everyone but may change only their own: removing a customer
    # they may not change is refused, and nothing moves.
    client.http.headers.update(admin)
    await client.mutate(SHARE, {"level": "PUBLIC_READ"})
    client.http.headers.update(bearer(key))
    answer = await client.execute(REFRESH, {"id": segment["id"]})
    assert answer["refreshSegment"]["errors"][0]["code"] == "FORBIDDEN"
    assert await stored(db, segment_id) == {mine[1], *hidden}
