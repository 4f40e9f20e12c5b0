"""The case store against a real Redis: idempotent ingest, indexes, search and paging, quarantine, cursors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from casework import keys
from casework.events import CASE_CREATED, CASE_UPDATED, EventLog
from casework.model import CaseQuery, IngestOutcome
from casework.reference import Reference
from casework.store import CaseStore
from connectors import BadRecord, CaseRecord, Party, Place, UnifiedStatus

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
TIANLIAO, YUTANG, GONGMING = "440311005002", "440311005", "440311002"
PHONE, ID_NUMBER = "13812345678", "44030619900101105X"


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.load()


@pytest.fixture
def store(redis_client: aioredis.Redis, reference: Reference) -> CaseStore:
    return CaseStore(redis_client, reference, hash_key=b"test-key")


def record(source_id: str, *, channel: str = "hotline12345", minutes: int = 0, **changes: Any) -> CaseRecord:
    fields: dict[str, Any] = {
        "channel": channel, "source_id": source_id, "title": "小区门口占道经营",
        "content": "每天晚上都有流动摊贩摆摊，影响通行。", "category_hint": "占道经营",
        "place": Place(street="玉塘街道", community="田寮社区", address="田寮路1号"),
        "parties": (Party(name="张三", phone=PHONE, id_number=ID_NUMBER),),
        "status": UnifiedStatus.ACCEPTED, "source_status": "2",
        "received_at": T0 + timedelta(minutes=minutes), "updated_at": T0 + timedelta(minutes=minutes)}
    fields.update(changes)
    return CaseRecord(**fields)


async def events_of(store: CaseStore) -> list[dict[str, str]]:
    return [fields for _id, fields in await store.events.read(count=1000)]


async def search_keys(store: CaseStore, first: int = 100, **filters: Any) -> list[str]:
    page = await store.search(CaseQuery(**filters), first=first, after=None)
    return [case.key for case in page.cases]


async def test_ingesting_the_same_record_twice_changes_nothing(store: CaseStore,
                                                               redis_client: aioredis.Redis) -> None:
    assert await store.ingest(record("GD1")) is IngestOutcome.CREATED
    snapshot = await redis_client.hgetall(keys.case("hotline12345:GD1"))
    assert await store.ingest(record("GD1")) is IngestOutcome.UNCHANGED
    assert await redis_client.hgetall(keys.case("hotline12345:GD1")) == snapshot
    assert [e["type"] for e in await events_of(store)] == [CASE_CREATED]
    case = await store.get("hotline12345:GD1")
    assert case is not None
    assert (case.region_id, case.category_id) == (TIANLIAO, "01010101")
    assert case.parties[0].phone == PHONE, "personal data is stored whole; masking happens above"


async def test_an_update_moves_the_indexes_and_appends_one_event(store: CaseStore) -> None:
    await store.ingest(record("GD1"))
    first = await store.get("hotline12345:GD1")
    changed = record("GD1", status=UnifiedStatus.RESOLVED, source_status="4", title="垃圾清运不及时",
                     content="垃圾桶满溢没人清理", category_hint=None,
                     place=Place(street="公明街道"), updated_at=T0 + timedelta(hours=3))
    assert await store.ingest(changed) is IngestOutcome.UPDATED
    assert await search_keys(store, statuses=(UnifiedStatus.ACCEPTED,)) == []
    assert await search_keys(store, statuses=(UnifiedStatus.RESOLVED,)) == ["hotline12345:GD1"]
    assert await search_keys(store, region_id=YUTANG) == []
    assert await search_keys(store, region_id=GONGMING) == ["hotline12345:GD1"]
    assert await search_keys(store, category_id="01010101") == []
    assert await search_keys(store, category_id="01010102") == ["hotline12345:GD1"]
    assert await search_keys(store, text="占道") == []
    assert await search_keys(store, text="垃圾") == ["hotline12345:GD1"]
    updated = await store.get("hotline12345:GD1")
    assert first is not None
    assert updated is not None
    assert updated.ingested_at == first.ingested_at, "the first intake time is kept"
    events = await events_of(store)
    assert [e["type"] for e in events] == [CASE_CREATED, CASE_UPDATED]
    assert events[1]["status"] == "RESOLVED"
    assert events[1]["case"] == "hotline12345:GD1"


async def test_concurrent_writers_of_one_record_append_one_event(store: CaseStore) -> None:
    outcomes = await asyncio.gather(*(store.ingest(record("GD7")) for _ in range(8)))
    assert sorted(outcomes) == sorted([IngestOutcome.CREATED] + [IngestOutcome.UNCHANGED] * 7)
    assert len(await events_of(store)) == 1


async def test_a_page_is_ingested_as_its_records_one_by_one(store: CaseStore) -> None:
    await store.ingest(record("GD1"))
    page = [record("GD1"), record("GD2", minutes=1), record("GD2", minutes=1, title="垃圾清运不及时"),
            record("GD3", minutes=2), record("GD1", minutes=5)]
    assert await store.ingest_many(page) == [
        IngestOutcome.UNCHANGED, IngestOutcome.CREATED, IngestOutcome.UPDATED, IngestOutcome.CREATED,
        IngestOutcome.UPDATED]
    assert await store.ingest_many(page[2:]) == [IngestOutcome.UNCHANGED] * 3
    assert await store.ingest_many([]) == []
    assert [(e["type"], e["case"]) for e in await events_of(store)] == [
        (CASE_CREATED, "hotline12345:GD1"), (CASE_CREATED, "hotline12345:GD2"),
        (CASE_UPDATED, "hotline12345:GD2"), (CASE_CREATED, "hotline12345:GD3"),
        (CASE_UPDATED, "hotline12345:GD1")]
    assert await search_keys(store, text="垃圾") == ["hotline12345:GD2"]
    assert await search_keys(store) == ["hotline12345:GD1", "hotline12345:GD3", "hotline12345:GD2"]


async def test_a_page_hands_back_each_case_as_it_reads_back(store: CaseStore) -> None:
    # clustering takes these instead of reading the cases again: they must be what a read returns
    await store.ingest(record("GE1"))
    page = [record("GE1"), record("GE2", minutes=1), record("GE1", minutes=3, title="垃圾清运不及时")]
    ingested = await store.ingest_cases(page)
    assert [outcome for outcome, _ in ingested] == [
        IngestOutcome.UNCHANGED, IngestOutcome.CREATED, IngestOutcome.UPDATED]
    assert ingested[0][1] is None
    assert ingested[1][1] == await store.get("hotline12345:GE2")
    assert ingested[2][1] == await store.get("hotline12345:GE1")


async def test_concurrent_pages_of_one_record_append_one_event(store: CaseStore) -> None:
    pages = [[record(f"P{n}"), record("GD7")] for n in range(8)]
    outcomes = await asyncio.gather(*(store.ingest_many(page) for page in pages))
    assert sorted(o[1] for o in outcomes) == sorted([IngestOutcome.CREATED] + [IngestOutcome.UNCHANGED] * 7)
    assert all(o[0] is IngestOutcome.CREATED for o in outcomes)
    assert len(await events_of(store)) == 9


async def test_region_and_category_filters_include_everything_beneath(store: CaseStore) -> None:
    await store.ingest(record("A", place=Place(community="田寮社区", grid="第二网格")))
    await store.ingest(record("B", place=Place(street="玉塘街道")))
    await store.ingest(record("C", place=Place(community="公明社区"), title="工地夜间施工噪音扰民",
                              content="晚上十二点还在打桩", category_hint=None))
    await store.ingest(record("D", place=Place(), title="你好", content="谢谢", category_hint=None))
    assert sorted(await search_keys(store, region_id="440311")) == [f"hotline12345:{k}" for k in "ABC"]
    assert sorted(await search_keys(store, region_id=YUTANG)) == ["hotline12345:A", "hotline12345:B"]
    assert await search_keys(store, region_id=TIANLIAO) == ["hotline12345:A"]
    assert await search_keys(store, region_id="44031100500202") == ["hotline12345:A"]
    assert sorted(await search_keys(store, category_id="01")) == [f"hotline12345:{k}" for k in "ABC"]
    assert await search_keys(store, category_id="0102") == ["hotline12345:C"]
    assert await search_keys(store, category_id="01020101") == ["hotline12345:C"]
    unresolved = await store.get("hotline12345:D")
    assert unresolved is not None
    assert (unresolved.region_id, unresolved.category_id) == (None, None), "stored all the same"


async def test_text_search_in_chinese_simplified_and_traditional(store: CaseStore) -> None:
    await store.ingest(record("N1", title="工地夜間施工噪音擾民", content="晚上十二點還在打樁，吵得睡不着。"))
    await store.ingest(record("N2", title="楼上邻居家漏水", content="渗到我家天花板。"))
    await store.ingest(record("N3", title="小区停车场乱收费", content="停车费比备案价格高。"))
    assert await search_keys(store, text="施工噪音") == ["hotline12345:N1"]
    assert await search_keys(store, text="施工噪音擾民") == ["hotline12345:N1"]
    assert await search_keys(store, text="打桩 睡不着") == ["hotline12345:N1"], "words of a query all count"
    assert await search_keys(store, text="漏水，天花板！") == ["hotline12345:N2"], "punctuation is ignored"
    assert await search_keys(store, text="停車場") == ["hotline12345:N3"]
    assert await search_keys(store, text="楼") == ["hotline12345:N2"], "one character: titles"
    assert await search_keys(store, text="火锅") == []
    assert await search_keys(store, text="噪音", statuses=(UnifiedStatus.CLOSED,)) == []


async def test_keyset_paging_is_stable_newest_first_with_total_count(store: CaseStore) -> None:
    for n in range(7):  # P5 and P6 share a received time: ties are ordered by key, descending
        await store.ingest(record(f"P{n}", minutes=min(n, 5)))
    seen: list[str] = []
    after, arrivals = None, 0
    while True:
        page = await store.search(CaseQuery(channels=("hotline12345",)), first=3, after=after)
        assert page.total_count == 7 + arrivals, "a fresh count: a change invalidates the cached result"
        seen += [case.key for case in page.cases]
        # A newer and an older arrival between pages: neither shifts what the next page shows.
        await store.ingest(record(f"NEWER{arrivals}", minutes=100))
        await store.ingest(record(f"OLDER{arrivals}", minutes=-100 - arrivals))
        arrivals += 2
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert seen[:7] == [f"hotline12345:P{n}" for n in (6, 5, 4, 3, 2, 1, 0)]
    assert len(seen) == len(set(seen))
    assert all("OLDER" in key for key in seen[7:])
    page = await store.search(CaseQuery(), first=0, after=None)
    assert (page.cases, page.total_count, page.has_next_page) == ((), 7 + arrivals, True)
    with pytest.raises(ValueError, match="cursor"):
        await store.search(CaseQuery(), first=3, after="not-a-cursor")


async def test_ties_across_page_boundaries(store: CaseStore) -> None:
    for name in ("T1", "T2", "T3"):
        await store.ingest(record(name))
    seen, after = [], None
    for _ in range(3):
        page = await store.search(CaseQuery(statuses=(UnifiedStatus.ACCEPTED,)), first=1, after=after)
        seen += [case.source_id for case in page.cases]
        after = page.end_cursor
    assert seen == ["T3", "T2", "T1"]
    assert not page.has_next_page


async def test_time_window_channels_and_case_keys(store: CaseStore) -> None:
    for n in range(5):
        await store.ingest(record(f"W{n}", minutes=10 * n))
    await store.ingest(record("M1", channel="mayor", minutes=15))
    window = CaseQuery(received_after=T0 + timedelta(minutes=10), received_before=T0 + timedelta(minutes=30))
    page = await store.search(window, first=2, after=None)
    assert [c.key for c in page.cases] == ["hotline12345:W2", "mayor:M1"]
    assert page.total_count == 3, "after is inclusive, before exclusive"
    rest = await store.search(window, first=2, after=page.end_cursor)
    assert [c.key for c in rest.cases] == ["hotline12345:W1"]
    assert not rest.has_next_page
    assert await search_keys(store, channels=("mayor",)) == ["mayor:M1"]
    assert len(await search_keys(store, channels=("mayor", "hotline12345"))) == 6
    assert await search_keys(store, case_keys=("mayor:M1", "hotline12345:W0", "nope:1")) == [
        "mayor:M1", "hotline12345:W0"]
    assert await search_keys(store, case_keys=()) == []
    assert await store.count_by_channel() == {"hotline12345": 5, "mayor": 1}


async def test_get_many_in_order_with_gaps(store: CaseStore) -> None:
    await store.ingest(record("G1"))
    await store.ingest(record("G2"))
    cases = await store.get_many(["hotline12345:G2", "hotline12345:missing", "hotline12345:G1"])
    assert [c.source_id if c else None for c in cases] == ["G2", None, "G1"]
    assert await store.get_many([]) == []


async def test_identity_index_uses_keyed_hashes_only(store: CaseStore, redis_client: aioredis.Redis) -> None:
    await store.ingest(record("I1"))
    await store.ingest(record("I2", channel="petition", parties=(
        Party(name="张三", phone="+86 138-1234-5678"), Party(role="被申请人", phone="13900000000"))))
    await store.ingest(record("I3", parties=(Party(name="李四", id_number="44030619900101105x"),)))
    assert await store.case_keys_for_identity(PHONE, None) == ["hotline12345:I1", "petition:I2"]
    assert await store.case_keys_for_identity(None, ID_NUMBER) == ["hotline12345:I1", "hotline12345:I3"]
    assert await store.case_keys_for_identity("13900000000", None) == [], "the other side is not indexed"
    # legal aid calls the other side 对方当事人: no 被 in it, and still not the case's own resident
    await store.ingest(record("I4", channel="legalaid", parties=(
        Party(role="申请人", name="王五"), Party(role="对方当事人", phone="13700000000"))))
    assert await store.case_keys_for_identity("13700000000", None) == []
    names = [k.decode() if isinstance(k, bytes) else str(k) for k in await redis_client.keys("*")]
    assert any(name.startswith("ms:{ix}:who:") for name in names)
    assert not any(PHONE in name or ID_NUMBER in name for name in names), "never a plain value in a key"
    other = CaseStore(redis_client, store.reference, hash_key=b"another-key")
    assert await other.case_keys_for_identity(PHONE, None) == []


async def test_quarantine_keeps_reason_and_counts_each_record_once(store: CaseStore) -> None:
    raw = {"gdbh": "GD9", "bt": "", "nr": "x" * 10_000}
    for _ in range(2):  # a re-read page brings the same reject again
        await store.quarantine("hotline12345", BadRecord("GD9", "标题为空", raw))
    await store.quarantine("mayor", BadRecord(None, "unreadable JSON", b"\xff{not json"))
    assert await store.quarantine_count("hotline12345") == 1
    [kept] = await store.list_quarantine("hotline12345")
    assert (kept.channel, kept.source_id, kept.reason) == ("hotline12345", "GD9", "标题为空")
    assert len(kept.raw.encode()) <= 4096
    assert kept.raw.startswith('{"gdbh": "GD9"')
    everything = await store.list_quarantine()
    assert [r.channel for r in everything] == ["mayor", "hotline12345"], "newest first"
    assert await store.quarantine_count("court") == 0


async def test_quarantine_list_is_capped(redis_client: aioredis.Redis, reference: Reference) -> None:
    store = CaseStore(redis_client, reference, quarantine_cap=3)
    for n in range(5):
        await store.quarantine("court", BadRecord(f"C{n}", "案号格式错误", None))
    assert [r.source_id for r in await store.list_quarantine("court")] == ["C4", "C3", "C2"]
    assert await store.quarantine_count("court") == 5


async def test_cursors_persist_per_channel(store: CaseStore, redis_client: aioredis.Redis,
                                          reference: Reference) -> None:
    assert await store.load_cursor("mayor") is None
    await store.save_cursor("mayor", '{"page": 3}')
    await store.save_cursor("court", "2026-11-01T00:00:00Z")
    again = CaseStore(redis_client, reference)
    assert await again.load_cursor("mayor") == '{"page": 3}'
    await again.save_cursor("mayor", None)
    assert await store.load_cursor("mayor") is None
    assert await store.load_cursor("court") == "2026-11-01T00:00:00Z"


async def test_source_cache_is_dropped_when_the_case_changes(store: CaseStore) -> None:
    await store.ingest(record("S1"))
    await store.cache_sources("hotline12345", {"S1": '{"source_id": "S1"}', "S2": '{"source_id": "S2"}'})
    cached = await store.cached_sources("hotline12345", ["S1", "S2", "S3"])
    assert set(cached) == {"S1", "S2"}
    assert cached["S1"][0] == '{"source_id": "S1"}'
    assert cached["S1"][1].tzinfo is not None
    await store.ingest(record("S1"))
    assert set(await store.cached_sources("hotline12345", ["S1"])) == {"S1"}, "unchanged: still fresh"
    await store.ingest(record("S1", status=UnifiedStatus.CLOSED, source_status="4"))
    assert await store.cached_sources("hotline12345", ["S1", "S2"]) == {"S2": cached["S2"]}


async def test_events_can_be_read_after_a_position(redis_client: aioredis.Redis,
                                                   reference: Reference) -> None:
    events = EventLog(redis_client, maxlen=1000)
    store = CaseStore(redis_client, reference, events=events)
    await store.ingest(record("E1"))
    [(first_id, _)] = await events.read()
    await store.ingest(record("E2"))
    later = await events.read(after=first_id)
    assert [fields["source_id"] for _id, fields in later] == ["E2"]
    assert await events.last_id() == later[0][0]
    assert await events.length() == 2


async def test_the_embedded_store_behaves_alike(reference: Reference) -> None:
    """``make up`` without REDIS_URL runs on fakeredis: the same transactions, set algebra and streams."""
    import fakeredis

    store = CaseStore(fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer()), reference)
    await store.ingest(record("F1", minutes=1))
    await store.ingest(record("F2", title="楼上邻居家漏水", content="渗到我家天花板", category_hint=None))
    assert await store.ingest(record("F1", minutes=1)) is IngestOutcome.UNCHANGED
    await store.ingest(record("F1", minutes=1, status=UnifiedStatus.CLOSED, source_status="4"))
    page = await store.search(CaseQuery(region_id=YUTANG, text="漏水"), first=1, after=None)
    assert ([c.source_id for c in page.cases], page.total_count) == (["F2"], 1)
    page = await store.search(CaseQuery(statuses=(UnifiedStatus.CLOSED, UnifiedStatus.ACCEPTED)), first=1,
                              after=None)
    rest = await store.search(CaseQuery(statuses=(UnifiedStatus.CLOSED, UnifiedStatus.ACCEPTED)), first=1,
                              after=page.end_cursor)
    assert [c.source_id for c in page.cases + rest.cases] == ["F1", "F2"]
    assert [e["type"] for e in await events_of(store)] == [CASE_CREATED, CASE_CREATED, CASE_UPDATED]
