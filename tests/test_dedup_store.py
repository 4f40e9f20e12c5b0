"""The cluster store on a real Redis: joining, recurrence after close, manual decisions, one event each;
and clustering a page of cases at once (``assign_many``): the clusters one-by-one clustering makes,
recurrence within a page, concurrent pages, the page's odd inputs."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from casework import keys
from casework.clusters import ClusterConflict, ClusterQuery, ClusterSort, ClusterStore
from casework.dedup import BLOCK_FETCH
from casework.model import StoredCase
from casework.reference import Reference
from casework.store import CaseStore
from connectors import CaseRecord, Party, Place, UnifiedStatus

T0 = datetime(2026, 10, 1, 9, tzinfo=UTC)
FIRE_LANE = "东能华府消防通道被车辆堵塞，救护车开不进来，物业劝了不听，请尽快清理。"
TRADITIONAL = "能東華府的消防通道被車輛堵塞，救護車開不進來，請清理。"
GARBAGE = "东能华府楼下垃圾桶天天满溢，环卫车隔好几天才来一次。"
NOISE = "红星农贸市场凌晨四点就开始装卸货物，噪音很大，附近居民无法休息。"
PLACE = Place(street="玉塘街道", community="田寮社区")
MARKET = Place(street="公明街道", community="上村社区")


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.load()


@pytest.fixture
async def clusters(redis_client: Any, reference: Reference) -> ClusterStore:
    return ClusterStore(redis_client, CaseStore(redis_client, reference), reference)


def _record(channel: str, source_id: str, content: str = FIRE_LANE, *, hours: float = 0.0,
            status: UnifiedStatus = UnifiedStatus.SUBMITTED, phone: str = "13800000001",
            address: str | None = "光明大道270号东能华府", place: Place = PLACE,
            hint: str = "消防通道堵塞") -> CaseRecord:
    at = T0 + timedelta(hours=hours)
    return CaseRecord(channel=channel, source_id=source_id, title=content[:12], content=content,
                      category_hint=hint, place=place.model_copy(update={"address": address}),
                      parties=(Party(name="李四", phone=phone),), status=status, source_status="x",
                      received_at=at, updated_at=at)


async def _take(clusters: ClusterStore, record: CaseRecord) -> str:
    await clusters.cases.ingest(record)
    cluster_id = await clusters.assign(f"{record.channel}:{record.source_id}")
    assert cluster_id is not None
    return cluster_id


async def _event_types(clusters: ClusterStore) -> list[str]:
    return [fields["type"] for _, fields in await clusters.events.read("0-0", count=1000)]


async def test_same_incident_through_two_channels_is_one_cluster(clusters: ClusterStore) -> None:
    first = await _take(clusters, _record("hotline12345", "A1"))
    second = await _take(clusters, _record("mayor", "M1", TRADITIONAL,
                                           hours=5, phone="13900000002", address=None))
    assert first == second
    cluster = await clusters.get(first)
    assert cluster is not None
    assert cluster.case_count == 2
    assert cluster.channels == ("hotline12345", "mayor")
    assert cluster.merge_reasons[-1].by == "auto"
    assert cluster.merge_reasons[-1].signals["place"] == 1.0
    assert await clusters.assign("hotline12345:A1") == first  # idempotent
    assert await clusters.redis.scard(keys.CLUSTER_PENDING) == 0
    assert (await _event_types(clusters)).count("cluster.updated") == 1


async def test_a_join_event_names_the_case_that_joined_not_the_whole_cluster(clusters: ClusterStore) -> None:
    # a mass incident's cluster takes thousands of reports: an event listing them all for each join
    # would be as big as the cluster, and the log would grow with its square
    for n in range(4):
        await _take(clusters, _record("hotline12345", f"A{n}", hours=n, phone=f"1380000000{n}"))
    joins = [fields for _, fields in await clusters.events.read("0-0", count=100)
             if fields["type"] == "cluster.updated"]
    assert [(json.loads(e["cases"]), e["case"], e["case_count"]) for e in joins] == [
        (["hotline12345:A1"], "hotline12345:A1", "2"), (["hotline12345:A2"], "hotline12345:A2", "3"),
        (["hotline12345:A3"], "hotline12345:A3", "4")]


async def test_a_cluster_too_old_to_take_a_case_is_not_read(clusters: ClusterStore) -> None:
    # a report more than max_days (60) after a cluster's last one is never linked to it, so retrieval
    # skips that cluster rather than reading and scoring it; one within the window is read as before
    clusters.record_examined = True
    first = await _take(clusters, _record("hotline12345", "A1"))
    late = await _take(clusters, _record("mayor", "M1", hours=61 * 24, phone="13900000002"))
    again = await _take(clusters, _record("petition", "P1", hours=120 * 24, phone="13900000003"))
    assert late != first
    assert again == late  # the same words 59 days on: text_old links them
    assert clusters.examined == [0, 0, 1]


async def test_an_estate_with_more_buildings_reporting_than_retrieval_reads_keeps_one_cluster_each(
        clusters: ClusterStore) -> None:
    # a storm stops the lifts: every building of one estate reports within the hour, each its own
    # incident (the buildings differ: a veto); the estate's block then holds more open clusters than
    # retrieval reads (BLOCK_FETCH), and another resident's report of an early building must still find
    # its building's cluster, not start a second one
    buildings = range(1, BLOCK_FETCH + 5)

    def lift(source_id: str, building: int, minutes: int) -> CaseRecord:
        return _record("hotline12345", source_id, f"阳光花园{building}栋电梯坏了，停在半空不动。",
                       hours=minutes / 60, phone=f"13{ord(source_id[0])}000{building:0>4}", address=None,
                       hint="电梯故障")

    first = [await _take(clusters, lift(f"A{b}", b, b)) for b in buildings]
    again = [await _take(clusters, lift(f"B{b}", b, 30 + b)) for b in buildings]
    assert len(set(first)) == len(first)
    assert again == first


async def test_an_outage_reported_from_every_building_of_an_estate_is_one_cluster(
        clusters: ClusterStore) -> None:
    # the water main, not a building: each building's residents name their own, and all of it is one
    # incident (公用事业 is area_wide in the event dictionary)
    reports = [_record("hotline12345" if b % 2 else "mayor", f"W{b}",
                       f"阳光花园{b}栋从早上开始停水，到现在还没有来水，也没有任何通知。", hours=b / 60,
                       phone=f"13900{b:0>6}", address=None, hint="停水") for b in range(1, BLOCK_FETCH + 5)]
    assert len({await _take(clusters, report) for report in reports}) == 1


async def test_another_problem_at_the_same_place_is_another_cluster(clusters: ClusterStore) -> None:
    first = await _take(clusters, _record("hotline12345", "A1"))
    other = await _take(clusters, _record("hotline12345", "A2", GARBAGE,
                                          hours=2))
    assert first != other


async def test_a_report_after_close_starts_a_recurrence(clusters: ClusterStore) -> None:
    first = await _take(clusters, _record("hotline12345", "A1"))
    await clusters.set_status(first, UnifiedStatus.CLOSED, at=T0 + timedelta(hours=10))
    again = await _take(clusters, _record("open311", "O1", hours=30, address=None))
    assert again != first
    recurrence = await clusters.get(again)
    assert recurrence is not None
    assert recurrence.recurrence_of == first
    late_but_before_close = await _take(clusters, _record("mayor", "M1", hours=8, address=None))
    assert late_but_before_close == first


async def test_manual_decisions_stand(clusters: ClusterStore) -> None:
    first = await _take(clusters, _record("hotline12345", "A1"))
    await _take(clusters, _record("mayor", "M1", hours=3))
    alone = await clusters.split("mayor:M1", by="center")
    assert alone.manual
    assert await clusters.members(alone) == ["mayor:M1"]
    with pytest.raises(ClusterConflict):
        await clusters.split("mayor:M1", by="center")
    # a new report joins one of them; the split pair is never put back together automatically
    third = await _take(clusters, _record("open311", "O1", hours=4, address=None))
    assert third in {first, alone.id}
    assert await clusters.cluster_of("mayor:M1") == alone.id
    assert await clusters.cluster_of("hotline12345:A1") == first
    merged = await clusters.merge([first, alone.id], by="center")
    assert merged.case_count == 3
    assert await clusters.members(merged) == ["hotline12345:A1", "mayor:M1", "open311:O1"]  # oldest first
    assert merged.manual
    assert await clusters.get(alone.id if merged.id == first else first) is None
    types = await _event_types(clusters)
    assert types.count("cluster.split") == 1
    assert types.count("cluster.merged") == 1


async def test_a_crash_between_ingest_and_clustering_is_recovered(clusters: ClusterStore) -> None:
    await clusters.cases.ingest(_record("hotline12345", "A1"))
    assert await clusters.cluster_of("hotline12345:A1") is None
    assert await clusters.assign_pending() == 1
    assert await clusters.cluster_of("hotline12345:A1") is not None


async def test_dispatch_facts_feed_the_view(clusters: ClusterStore) -> None:

    first = await _take(clusters, _record("hotline12345", "A1"))
    other = await _take(clusters, _record("hotline12345", "A2", GARBAGE))
    await clusters.set_dispatch(first, department_id="d1", deadline=T0 + timedelta(days=3), overdue=True)
    await clusters.set_dispatch(other, department_id="d2", deadline=T0 + timedelta(days=1))
    by_deadline = await clusters.search(ClusterQuery(), ClusterSort.DEADLINE, first=10, after=None)
    assert by_deadline.ids == (other, first)
    overdue = await clusters.search(ClusterQuery(overdue=True), ClusterSort.NEWEST, first=10, after=None)
    assert overdue.ids == (first,)
    on_time = await clusters.search(ClusterQuery(overdue=False), ClusterSort.NEWEST, first=10, after=None)
    assert on_time.ids == (other,)
    department = await clusters.search(ClusterQuery(department_id="d2"), ClusterSort.NEWEST, first=10,
                                       after=None)
    assert department.ids == (other,)


async def test_the_view_filters_by_text_through_the_cases(clusters: ClusterStore) -> None:

    async def listed(text: str) -> tuple[str, ...]:
        page = await clusters.search(ClusterQuery(text=text), ClusterSort.NEWEST, first=10, after=None)
        assert page.total_count == len(page.ids)
        return page.ids

    fire = await _take(clusters, _record("hotline12345", "A1"))
    assert await _take(clusters, _record("mayor", "M1", TRADITIONAL, hours=5, phone="13900000002",
                                         address=None)) == fire
    garbage = await _take(clusters, _record("hotline12345", "A2", GARBAGE, hours=2))
    assert await listed("救护车") == (fire,)
    assert await listed("救護車開不進來") == (fire,)       # the second report's words, in traditional
    assert await listed("垃圾桶") == (garbage,)
    assert set(await listed("东能华府")) == {fire, garbage}
    assert await listed("环卫车 救护车") == ()          # every word in one report, as for cases
    assert await listed("消防通道") == (fire,)
    assert await listed("堵") == (fire,)                 # one character: in a report's title, as for cases
    # after a split, the report's words list the cluster it went to, and no longer the old one
    alone = await clusters.split("mayor:M1", by="center")
    assert await listed("開不進來") == (alone.id, fire)  # newest first; A1 says 开不进来 too
    assert await listed("请清理") == (alone.id,)


# -- a page at once ---------------------------------------------------------------------------

def _page() -> list[CaseRecord]:
    return [
        _record("hotline12345", "A1"),
        _record("mayor", "M1", TRADITIONAL, hours=5, phone="13900000002", address=None),
        _record("hotline12345", "A2", GARBAGE, hours=6, hint="垃圾清运"),
        _record("open311", "O1", NOISE, hours=7, address="红星农贸市场", place=MARKET, hint="噪声扰民"),
        _record("petition", "P1", FIRE_LANE, hours=9, phone="13700000003", address=None),
        _record("mayor", "M2", NOISE, hours=9.5, phone="13600000004", address=None, place=MARKET,
                hint="噪声扰民"),
    ]


async def _stored(clusters: ClusterStore, records: list[CaseRecord]) -> list[tuple[str, StoredCase | None]]:
    ingested = await clusters.cases.ingest_cases(records)
    return [(f"{r.channel}:{r.source_id}", case) for r, (_, case) in zip(records, ingested, strict=True)]


def _partition(keys_: list[str], cluster_ids: list[str | None]) -> set[frozenset[str]]:
    groups: dict[str | None, set[str]] = {}
    for key, cluster_id in zip(keys_, cluster_ids, strict=True):
        groups.setdefault(cluster_id, set()).add(key)
    return {frozenset(group) for group in groups.values()}


async def test_a_page_makes_the_clusters_one_by_one_clustering_makes(clusters: ClusterStore) -> None:
    records = _page()
    one_by_one = [await clusters.assign(key, case) for key, case in await _stored(clusters, records)]
    await clusters.redis.flushdb()

    items = await _stored(clusters, records)
    together = await clusters.assign_many(items)

    keys_ = [key for key, _ in items]
    assert _partition(keys_, together) == _partition(keys_, one_by_one)
    assert _partition(keys_, together) == {
        frozenset({"hotline12345:A1", "mayor:M1", "petition:P1"}), frozenset({"hotline12345:A2"}),
        frozenset({"open311:O1", "mayor:M2"})}
    fire = await clusters.get(together[0] or "")
    assert fire is not None
    assert await clusters.members(fire) == ["hotline12345:A1", "mayor:M1", "petition:P1"]
    assert [r.by for r in fire.merge_reasons] == ["auto"] * 3
    assert fire.merge_reasons[1].matched_key == "hotline12345:A1"
    assert fire.merge_reasons[1].signals["place"] == 1.0
    # one event per case, and every cluster filed where the dispatch view looks
    assert sorted(await _cluster_events(clusters)) == ["cluster.created"] * 3 + ["cluster.updated"] * 3
    by_mayor = await clusters.search(ClusterQuery(channels=("mayor",)), ClusterSort.NEWEST, first=10,
                                     after=None)
    assert set(by_mayor.ids) == {together[0], together[3]}
    assert await clusters.cluster_of("mayor:M2") == together[3]
    assert (await clusters.redis.hget(keys.CLUSTER_OF, "mayor:M2")).decode() == together[3]
    # a later report finds the page's clusters through their blocking keys
    [(key, case)] = await _stored(clusters, [_record("mayor", "M3", NOISE, hours=11, place=MARKET,
                                                     address="红星农贸市场", hint="噪声扰民")])
    assert await clusters.assign(key, case) == together[3]


async def test_a_page_is_clustered_once(clusters: ClusterStore) -> None:
    items = await _stored(clusters, _page())
    first = await clusters.assign_many(items)
    events = len(await _cluster_events(clusters))
    again = await clusters.assign_many([(key, None) for key, _ in items])
    assert again == first
    assert len(await _cluster_events(clusters)) == events
    assert await clusters.redis.scard(keys.CLUSTER_PENDING) == 0


async def test_a_page_after_a_close_starts_one_recurrence(clusters: ClusterStore) -> None:
    [(key, case)] = await _stored(clusters, [_record("hotline12345", "A1")])
    first = await clusters.assign(key, case)
    assert first is not None
    await clusters.set_status(first, UnifiedStatus.CLOSED, at=T0 + timedelta(hours=10))
    items = await _stored(clusters, [
        _record("mayor", "M1", TRADITIONAL, hours=8, address=None),       # before the close: joins
        _record("open311", "O1", hours=30, address=None),                  # after it: a recurrence
        _record("petition", "P1", hours=31, phone="13700000003"),           # … which it joins
    ])
    before, after, later = await clusters.assign_many(items)
    assert before == first
    assert after not in {None, first}
    assert later == after
    recurrence = await clusters.get(after or "")
    assert recurrence is not None
    assert recurrence.recurrence_of == first
    assert await clusters.members(recurrence) == ["open311:O1", "petition:P1"]


async def test_pages_clustered_at_once_into_one_cluster_lose_no_case(clusters: ClusterStore) -> None:
    [(key, case)] = await _stored(clusters, [_record("hotline12345", "A0")])
    seed = await clusters.assign(key, case)
    pages = [await _stored(clusters, [_record(channel, f"{channel}-{n}", hours=1 + n + side / 2,
                                              phone=f"139{side}{n:07d}")
                                      for n in range(4)])
             for side, channel in enumerate(("mayor", "open311"))]
    results = await asyncio.gather(*(clusters.assign_many(page) for page in pages))
    assert {cluster_id for found in results for cluster_id in found} == {seed}
    cluster = await clusters.get(seed or "")
    assert cluster is not None
    assert cluster.case_count == 9
    assert len(cluster.merge_reasons) == 9
    assert (await _cluster_events(clusters)).count("cluster.updated") == 8


async def test_a_page_with_a_case_twice_and_an_unknown_one(clusters: ClusterStore) -> None:
    (first, case), (second, _) = await _stored(clusters, [
        _record("hotline12345", "A1"), _record("mayor", "M1", TRADITIONAL, hours=5, address=None)])
    await clusters.redis.sadd(keys.CLUSTER_PENDING, "hotline12345:gone")
    found = await clusters.assign_many([(first, case), ("hotline12345:gone", None), (second, None),
                                        (first, None)])
    assert found[0] is not None
    assert found == [found[0], None, found[0], found[0]]
    cluster = await clusters.get(found[0])
    assert cluster is not None
    assert [reason.case_key for reason in cluster.merge_reasons] == [first, second]  # in the page's order
    assert await clusters.redis.scard(keys.CLUSTER_PENDING) == 0
    assert await _cluster_events(clusters) == ["cluster.created", "cluster.updated"]


async def test_a_join_writes_no_more_as_the_cluster_grows(clusters: ClusterStore) -> None:
    # a mass incident's cluster takes thousands of reports, each from its own resident: its record held
    # every case key and every resident's index key, read and written again at each join (0.28 ms a
    # report over the first 500 of 20,000, 0.80 ms over the last 500)
    found = {await _take(clusters, _record("hotline12345", f"A{n}", hours=n / 10, phone=f"1380000{n:04d}"))
             for n in range(12)}
    assert len(found) == 1
    cluster_id = found.pop()
    doc, ix = await clusters.redis.hmget(keys.cluster(cluster_id), "doc", "ix")
    assert "cases" not in json.loads(doc), "the record lists no case (its reasons, at most 50, do)"
    assert not [k for k in json.loads(ix) if ":cl:who:" in k], "nor any resident"
    cluster = await clusters.get(cluster_id)
    assert cluster is not None
    assert cluster.case_count == 12
    assert await clusters.members(cluster) == [f"hotline12345:A{n}" for n in range(12)]
    listed = [f"hotline12345:A{n}" for n in range(12)]
    assert await clusters.members_many([cluster_id, "c404"]) == [listed, []]
    # every resident still finds the cluster, and a split takes the resident it moves with the case
    resident = keys.cluster_index("who", clusters.cases.appellant_hashes(
        await clusters.cases.get("hotline12345:A5") or _missing())[0])
    assert await _listed_for(clusters, resident) == [cluster_id]
    alone = await clusters.split("hotline12345:A5", by="center")
    assert await _listed_for(clusters, resident) == [alone.id]
    assert await clusters.members(alone) == ["hotline12345:A5"]
    rest = await clusters.get(cluster_id)
    assert rest is not None
    assert rest.case_count == 11
    assert "hotline12345:A5" not in await clusters.members(rest)


async def test_a_record_written_with_its_case_list_is_read_and_moved_on(clusters: ClusterStore) -> None:
    # records written before the case lists moved out of them hold their keys and residents' index keys
    first = await _take(clusters, _record("hotline12345", "A1"))
    second = await _take(clusters, _record("mayor", "M1", TRADITIONAL, hours=5, phone="13900000002"))
    assert first == second
    raw_doc, raw_ix = await clusters.redis.hmget(keys.cluster(first), "doc", "ix")
    old_doc = json.loads(raw_doc)
    old_doc["cases"] = ["hotline12345:A1", "mayor:M1"]
    del old_doc["count"]
    residents = [keys.cluster_index("who", h) for key in old_doc["cases"]
                 for h in clusters.cases.appellant_hashes(await clusters.cases.get(key) or _missing())]
    old_ix = sorted(json.loads(raw_ix) + residents)
    await clusters.redis.hset(keys.cluster(first), mapping={"doc": json.dumps(old_doc, ensure_ascii=False),
                                                            "ix": json.dumps(old_ix)})
    await clusters.redis.delete(keys.cluster_cases(first))

    legacy = await clusters.get(first)
    assert legacy is not None
    assert legacy.case_count == 2
    assert await clusters.members_many([first]) == [["hotline12345:A1", "mayor:M1"]]
    third = await _take(clusters, _record("open311", "O1", hours=6, address=None, phone="13700000003"))
    assert third == first
    moved = await clusters.get(first)
    assert moved is not None
    assert moved.case_count == 3
    assert moved.legacy_cases is None
    assert await clusters.members(moved) == ["hotline12345:A1", "mayor:M1", "open311:O1"]
    assert await _listed_for(clusters, residents[0]) == [first], "the old residents stay filed"


def _missing() -> StoredCase:
    raise AssertionError("the case is not stored")


async def _listed_for(clusters: ClusterStore, scope_key: str) -> list[str]:
    page = await clusters.search(ClusterQuery(scope_keys=(scope_key,)), ClusterSort.NEWEST, first=10,
                                 after=None)
    return list(page.ids)


async def _cluster_events(clusters: ClusterStore) -> list[str]:
    return [kind for kind in await _event_types(clusters) if kind.startswith("cluster.")]


async def test_two_replicas_clustering_one_incident_at_once_make_one_cluster(
        redis_client: Any, reference: Reference) -> None:
    # two processes, each with its own store (and its own lock), taking other channels
    replicas = [ClusterStore(redis_client, CaseStore(redis_client, reference), reference) for _ in range(2)]
    pages = [await _stored(replicas[0], [_record(channel, f"{channel}-{n}", hours=n + side / 2,
                                                 phone=f"139{side}{n:07d}") for n in range(3)])
             for side, channel in enumerate(("hotline12345", "mayor"))]
    results = await asyncio.gather(*(replica.assign_many(page)
                                     for replica, page in zip(replicas, pages, strict=True)))
    assert len({cluster_id for found in results for cluster_id in found}) == 1


async def test_two_replicas_take_turns_rather_than_deciding_a_page_twice(
        redis_client: Any, reference: Reference, monkeypatch: pytest.MonkeyPatch) -> None:
    replicas = [ClusterStore(redis_client, CaseStore(redis_client, reference), reference) for _ in range(2)]
    pages = [await _stored(replicas[0], [_record(channel, f"{channel}-{n}", hours=n + side / 2,
                                                 phone=f"139{side}{n:07d}") for n in range(3)])
             for side, channel in enumerate(("hotline12345", "mayor"))]
    decisions = 0
    decide = ClusterStore._assign_once

    async def counted(store: ClusterStore, pipe: Any, batch: Any) -> dict[str, str]:
        nonlocal decisions
        decisions += 1
        return await decide(store, pipe, batch)

    monkeypatch.setattr(ClusterStore, "_assign_once", counted)
    results = await asyncio.gather(*(replica.assign_many(page)
                                     for replica, page in zip(replicas, pages, strict=True)))
    assert decisions == 2  # one per page: neither was thrown away because the other wrote first
    assert len({cluster_id for found in results for cluster_id in found}) == 1
    assert not await redis_client.exists(keys.CLUSTERING_LOCK)


async def test_a_lock_nobody_releases_delays_clustering_but_does_not_stop_it(
        clusters: ClusterStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr("casework.clusters.LOCK_SECONDS", 0.2)
    await clusters.redis.set(keys.CLUSTERING_LOCK, "a-replica-that-lost-its-way")  # no expiry at all
    [(key, case)] = await _stored(clusters, [_record("hotline12345", "A1")])
    [cluster_id] = await clusters.assign_many([(key, case)])
    assert cluster_id is not None
    assert await clusters.cluster_of(key) == cluster_id
    assert "clustering without the lock" in caplog.text
    assert await clusters.redis.get(keys.CLUSTERING_LOCK) == b"a-replica-that-lost-its-way"  # not ours
