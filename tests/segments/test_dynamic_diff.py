"""DYNAMIC segments announce who entered and who left: a periodic diff of the filter against the
membership it last saw, once per change however many processes run it; reads stay live."""

from __future__ import annotations

import asyncio

import pytest

from crm_graph.core.actor import SYSTEM
from crm_graph.core.ids import decode_as, encode
from crm_graph.core.jobs import Scheduler, default_jobs, diff_dynamic_segments
from crm_graph.segments import service
from crm_graph.settings import Settings
from tests.segments.membership import bulk_customers, last_event_id, member_events, move, moved, stored
from tests.segments.test_segments import CREATE, REFRESH, SEGMENT, names

SEGMENTS_OF = "query($id: ID!) { customer(id: $id) { segments { name } } }"


async def test_refreshing_a_dynamic_segment_announces_entries_and_exits_once(client, db):
    a, b = await bulk_customers(db, 2, country="DE", prefix="In")
    (c,) = await bulk_customers(db, 1, country="FR", prefix="Out")
    segment = (await client.mutate(CREATE, {"input": {"name": "Germany", "kind": "DYNAMIC",
                                                      "filter": {"country": {"eq": "DE"}}}}))["segment"]
    segment_id = decode_as(segment["id"], "Segment")
    # Creating it starts the membership its events count from.
    assert moved(await member_events(db)) == {"segment.member_added": [a, b], "segment.member_removed": []}

    await move(db, [b], "FR")
    await move(db, [c], "DE")
    # Before any diff, every read follows the filter, not the stored rows.
    live = (await client.execute(SEGMENT, {"id": segment["id"]}))["segment"]
    assert live["size"] == 2 and names(live) == ["In0", "Out0"]
    assert (await client.execute(SEGMENTS_OF, {"id": encode("Customer", c)}))["customer"]["segments"] == [{"name": "Germany"}]
    assert (await client.execute(SEGMENTS_OF, {"id": encode("Customer", b)}))["customer"]["segments"] == []
    assert await stored(db, segment_id) == {a, b}

    mark = await last_event_id(db)
    await client.mutate(REFRESH, {"id": segment["id"]})
    events = await member_events(db, mark)
    assert moved(events) == {"segment.member_added": [c], "segment.member_removed": [b]}
    assert {data["segmentKind"] for _, data in events} == {"DYNAMIC"}
    assert await stored(db, segment_id) == {a, c}

    mark = await last_event_id(db)
    assert await diff_dynamic_segments(db) == "1 dynamic segments diffed: 0 entered, 0 left"
    assert await member_events(db, mark) == []


async def test_the_periodic_diff_runs_as_a_job_and_wakes_the_dispatcher(client, db, settings):
    ids = await bulk_customers(db, 1500, country="DE")
    segment = (await client.mutate(CREATE, {"input": {"name": "Germany", "kind": "DYNAMIC",
                                                      "filter": {"country": {"eq": "DE"}}}}))["segment"]
    await client.mutate('mutation($id: ID!) { deleteCustomer(id: $id) { customer { id } errors { code } } }',
                        {"id": encode("Customer", ids[0])})
    await move(db, ids[1:1201], "FR")
    woken: list[int] = []
    (job,) = [j for j in default_jobs(db, settings, lambda: woken.append(1)) if j.name == "segment-diff"]
    assert job.interval == 300.0
    mark = await last_event_id(db)
    assert await Scheduler.run_once(job) == "1 dynamic segments diffed: 0 entered, 1201 left"
    events = await member_events(db, mark)
    assert [(data["batch"], data["batches"], len(data["customerIds"])) for _, data in events] == [(1, 2, 1000), (2, 2, 201)]
    assert len({data["changeId"] for _, data in events}) == 1
    assert moved(events)["segment.member_removed"] == ids[:1201] and woken == [1]
    assert (await client.execute(SEGMENT, {"id": segment["id"]}))["segment"]["size"] == 299

    await client.mutate('mutation($id: ID!) { restoreCustomer(id: $id) { customer { id } errors { code } } }',
                        {"id": encode("Customer", ids[0])})
    mark = await last_event_id(db)
    assert await Scheduler.run_once(job) == "1 dynamic segments diffed: 1 entered, 0 left"
    assert moved(await member_events(db, mark))["segment.member_added"] == [ids[0]]
    assert await Scheduler.run_once(job) == "1 dynamic segments diffed: 0 entered, 0 left" and woken == [1, 1]


async def test_an_invalid_dynamic_segment_keeps_what_it_last_saw(client, db):
    ids = await bulk_customers(db, 3, country="DE")
    vips = (await client.mutate(CREATE, {"input": {"name": "Picked", "kind": "STATIC"}}))["segment"]
    others = (await client.mutate(CREATE, {"input": {"name": "Not picked", "kind": "DYNAMIC",
                                                     "filter": {"segment": {"notIn": [vips["id"]]}}}}))["segment"]
    others_id = decode_as(others["id"], "Segment")
    assert await stored(db, others_id) == set(ids)
    await client.mutate("mutation($id: ID!) { deleteSegment(id: $id) { segment { id } errors { code } } }", {"id": vips["id"]})
    mark = await last_event_id(db)
    # Its filter refers to a deleted segment: no members now, but no mass exit either.
    assert await diff_dynamic_segments(db) == "0 dynamic segments diffed: 0 entered, 0 left, 1 skipped (invalid or busy)"
    assert await member_events(db, mark) == [] and await stored(db, others_id) == set(ids)
    refused = (await client.execute(REFRESH, {"id": others["id"]}))["refreshSegment"]["errors"]
    assert refused[0]["code"] == "INVALID_FILTER"
    await client.mutate("mutation($id: ID!) { restoreSegment(id: $id) { segment { id } errors { code } } }", {"id": vips["id"]})
    assert await diff_dynamic_segments(db) == "1 dynamic segments diffed: 0 entered, 0 left"


async def test_diffs_and_adds_running_at_once_announce_each_change_once(db):
    ids = await bulk_customers(db, 300, country="FR")
    async with db.writer() as session, session.begin():
        segment = await service.create_segment(session, actor=SYSTEM, data={
            "name": "Germany", "kind": "DYNAMIC", "filter": {"country": {"eq": "DE"}}})
        picked = await service.create_segment(session, actor=SYSTEM, data={"name": "Picked", "kind": "STATIC"})
    await move(db, ids[:200], "DE")
    mark = await last_event_id(db)

    async def refresh() -> None:
        async with db.writer() as session, session.begin():
            await service.refresh_segment(session, actor=SYSTEM, segment_id=segment.id)

    async def add(chosen: list[int]) -> None:
        async with db.writer() as session, session.begin():
            await service.add_customers(session, actor=SYSTEM, segment_id=picked.id, customer_ids=chosen)

    await asyncio.gather(diff_dynamic_segments(db), diff_dynamic_segments(db), refresh(), diff_dynamic_segments(db),
                         add(ids[:150]), add(ids[100:]))
    events = await member_events(db, mark)
    by_segment = {sid: [e for e in events if e[1]["segmentId"] == sid] for sid in (segment.id, picked.id)}
    assert sorted(moved(by_segment[segment.id])["segment.member_added"]) == ids[:200]
    assert sorted(moved(by_segment[picked.id])["segment.member_added"]) == ids
    assert await stored(db, segment.id) == set(ids[:200]) and await stored(db, picked.id) == set(ids)


def test_the_diff_interval_setting():
    assert Settings.from_env({}).segment_diff_interval == 300.0
    assert Settings.from_env({"CRM_SEGMENT_DIFF_INTERVAL": "60"}).segment_diff_interval == 60.0
    off = Settings.from_env({"CRM_SEGMENT_DIFF_INTERVAL": "0"})
    assert "segment-diff" not in [j.name for j in default_jobs(None, off)]  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="CRM_SEGMENT_DIFF_INTERVAL"):
        Settings.from_env({"CRM_SEGMENT_DIFF_INTERVAL": "-1"})
