"""The cluster store on a real Redis: joining, recurrence after close, manual decisions, one event each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from casework import keys
from casework.clusters import ClusterConflict, ClusterStore
from casework.reference import Reference
from casework.store import CaseStore
from connectors import CaseRecord, Party, Place, UnifiedStatus

T0 = datetime(2026, 10, 1, 9, tzinfo=UTC)
FIRE_LANE = "东能华府消防通道被车辆堵塞，救护车开不进来，物业劝了不听，请尽快清理。"
TRADITIONAL = "能東華府的消防通道被車輛堵塞，救護車開不進來，請清理。"
GARBAGE = "东能华府楼下垃圾桶天天满溢，环卫车隔好几天才来一次。"
PLACE = Place(street="玉塘街道", community="田寮社区")


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.load()


@pytest.fixture
async def clusters(redis_client: Any, reference: Reference) -> ClusterStore:
    return ClusterStore(redis_client, CaseStore(redis_client, reference), reference)


def _record(channel: str, source_id: str, content: str = FIRE_LANE, *, hours: float = 0.0,
            status: UnifiedStatus = UnifiedStatus.SUBMITTED, phone: str = "13800000001",
            address: str | None = "光明大道270号东能华府") -> CaseRecord:
    at = T0 + timedelta(hours=hours)
    return CaseRecord(channel=channel, source_id=source_id, title=content[:12], content=content,
                      category_hint="消防通道堵塞", place=PLACE.model_copy(update={"address": address}),
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
    assert alone.case_keys == ("mayor:M1",)
    with pytest.raises(ClusterConflict):
        await clusters.split("mayor:M1", by="center")
    # a new report joins one of them; the split pair is never put back together automatically
    third = await _take(clusters, _record("open311", "O1", hours=4, address=None))
    assert third in {first, alone.id}
    assert await clusters.cluster_of("mayor:M1") == alone.id
    assert await clusters.cluster_of("hotline12345:A1") == first
    merged = await clusters.merge([first, alone.id], by="center")
    assert merged.case_count == 3
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
    from casework.clusters import ClusterQuery, ClusterSort

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
    from casework.clusters import ClusterQuery, ClusterSort

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
