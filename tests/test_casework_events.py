"""The event log's vocabulary, its append API and its reader side (cursors, retention)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis

from casework import events as ev
from casework.events import (
    ASSIGNMENT_DISPATCHED,
    CASE_CREATED,
    EVENT_TYPES,
    BadCursor,
    CursorExpired,
    Event,
    EventLog,
    compare_ids,
    event_fields,
)


@pytest.fixture(params=["redis", "embedded"])
async def client(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Any]:
    if request.param == "redis":
        real = aioredis.from_url(redis_url)
        await real.delete("ms:events", "ms:events:trimmed")
        yield real
        await real.delete("ms:events", "ms:events:trimmed")
        await real.aclose()
    else:
        yield fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())


def test_every_type_constant_is_in_the_vocabulary() -> None:
    constants = {value for name, value in vars(ev).items() if name.isupper() and isinstance(value, str)
                 and "." in value and " " not in value}
    assert constants == EVENT_TYPES
    assert len(EVENT_TYPES) == 18
    named = {name for name, value in vars(ev).items() if isinstance(value, str) and value in EVENT_TYPES}
    assert set(ev.__all__) >= named


def test_event_fields_carry_the_filterable_facts_as_json_lists() -> None:
    fields = event_fields(cases=["court:(2024)粤0311民诉前调1号", "mayor:9"], cluster="CL1",
                          departments=["D-labor", "D-labor"], regions=["R-yutang", None],
                          channels=["court", "mayor"], parties=["h1"], actor="u1",
                          at=datetime(2026, 11, 23, tzinfo=UTC), assignment="A1", status="SIGNED")
    assert fields["case"] == "court:(2024)粤0311民诉前调1号"
    assert json.loads(fields["departments"]) == ["D-labor"]
    assert json.loads(fields["regions"]) == ["R-yutang"]
    assert "respondents" not in fields
    event = Event.parse("5-0", {"type": ASSIGNMENT_DISPATCHED, **fields})
    assert event.cases == ("court:(2024)粤0311民诉前调1号", "mayor:9")
    assert (event.cluster, event.departments, event.channels) == ("CL1", ("D-labor",), ("court", "mayor"))
    assert event.detail() == {"assignment": "A1", "status": "SIGNED"}
    assert event.cursor == "5-0"
    assert event.at.startswith("2026-11-23")


def test_older_cluster_type_names_read_as_the_canonical_type() -> None:
    event = Event.parse("2-0", {"type": "cluster.dispatch", "cluster": "c1", "department_id": "dept-labor"})
    assert (event.type, event.departments) == (ev.CLUSTER_UPDATED, ("dept-labor",))
    assert event.fields["type"] == "cluster.dispatch"


def test_older_case_events_parse_alike() -> None:
    event = Event.parse(b"1-1", {b"type": b"case.created", b"case": b"mayor:1", b"channel": b"mayor",
                                 b"region_id": b"R1", b"status": b"ACCEPTED"})
    assert (event.cases, event.channels, event.regions, event.departments) == (
        ("mayor:1",), ("mayor",), ("R1",), ())


def test_ids_compare_as_numbers_not_text() -> None:
    assert compare_ids("10-0", "9-5") == 1
    assert compare_ids("9-10", "9-9") == 1
    assert compare_ids("7-0", "7-0") == 0


async def test_unknown_types_are_refused(client: Any) -> None:
    log = EventLog(client)
    with pytest.raises(ValueError, match="unknown event type"):
        await log.append("case.exploded", {})
    assert await log.length() == 0


async def test_read_after_a_cursor_pages_in_order(client: Any) -> None:
    log = EventLog(client)
    ids = [await log.append(CASE_CREATED, event_fields(cases=[f"mayor:{n}"])) for n in range(5)]
    first = await log.read_after("0-0", count=2)
    assert [e.id for e in first] == ids[:2]
    rest = await log.read_after(first[-1].cursor)
    assert [e.cases[0] for e in rest] == ["mayor:2", "mayor:3", "mayor:4"]
    assert await log.read_after(ids[-1]) == []


async def test_malformed_and_future_cursors_are_bad(client: Any) -> None:
    log = EventLog(client)
    last = await log.append(CASE_CREATED, event_fields(cases=["mayor:1"]))
    with pytest.raises(BadCursor):
        await log.read_after("yesterday")
    ms, _, _ = last.partition("-")
    with pytest.raises(BadCursor, match="ahead"):
        await log.read_after(f"{int(ms) + 60_000}-0")


async def test_retention_by_count_expires_exactly_the_cursors_that_would_miss_events(client: Any) -> None:
    log = EventLog(client, maxlen=3)
    ids = [await log.append(CASE_CREATED, event_fields(cases=[f"mayor:{n}"])) for n in range(6)]
    assert await log.trim() == 3
    assert await log.length() == 3
    assert [e.id for e in await log.read_after(ids[2])] == ids[3:], "the newest removed: nothing missed"
    with pytest.raises(CursorExpired) as caught:
        await log.read_after(ids[1])
    assert caught.value.code == "CURSOR_EXPIRED"
    assert caught.value.trimmed_through == ids[2]
    with pytest.raises(CursorExpired):
        await log.read_after("0-0")


async def test_retention_by_age_and_an_emptied_stream(client: Any) -> None:
    log = EventLog(client, retention_seconds=60)
    ids = [await log.append(CASE_CREATED, event_fields(cases=[f"mayor:{n}"])) for n in range(2)]
    assert await log.trim() == 0, "all young"
    assert await log.trim(now=datetime.now(UTC) + timedelta(minutes=5)) == 2
    assert await log.read_after(ids[1]) == [], "the last cursor handed out is still good"
    with pytest.raises(CursorExpired):
        await log.read_after(ids[0])
    later = await log.append(CASE_CREATED, event_fields(cases=["mayor:9"]))
    assert [e.id for e in await log.read_after(ids[1])] == [later]


def test_the_graph_names_every_type() -> None:
    from schema.events import CaseEventType

    assert {member.value for member in CaseEventType} == EVENT_TYPES
