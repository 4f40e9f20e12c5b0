"""社区吹哨·部门报到: numbered orders, reports, late departments, refusals (real Redis, a moved clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from casework.assignments import InvalidInput, InvalidTransition, UnknownObject
from casework.events import EventLog
from casework.reference import Reference
from casework.whistles import WhistleBook
from casework.workdays import MovableClock


@pytest.fixture
def book(redis_client: Any) -> WhistleBook:
    clock = MovableClock(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))
    return WhistleBook(redis_client, Reference.load(), EventLog(redis_client), clock=clock)


async def test_a_whistle_is_numbered_and_flags_the_department_that_comes_late(book: WhistleBook) -> None:
    clock = book.clock
    assert isinstance(clock, MovableClock)
    meeting = clock() + timedelta(hours=2)
    first = await book.issue(
        departments=["dept-urban", "dept-eco"],
        place="田寮社区党群服务中心",
        report_by=meeting,
        summary="商铺油烟扰民，多部门联合处置",
        actor="community-tianliao",
    )
    second = await book.issue(
        departments=["dept-urban"],
        place="玉律社区",
        report_by=meeting,
        summary="占道经营",
        actor="community-yulv",
    )
    assert (first.number, second.number) == ("光明吹哨〔2026〕1号", "光明吹哨〔2026〕2号")

    clock.advance(timedelta(hours=1))
    on_time = await book.report(str(first.sequence), "dept-urban", "区城管局")
    clock.advance(timedelta(hours=2))
    late = await book.report(str(first.sequence), "dept-eco", "区生态环境分局")
    urban, eco = late.summons
    assert not urban.late(late.report_by, clock())
    assert eco.late(late.report_by, clock())
    assert on_time.summoned("dept-urban").reported_by == "区城管局"
    # a department that never reports is late once the time has passed
    pending = await book.get(str(second.sequence))
    assert pending is not None
    assert pending.summons[0].late(pending.report_by, clock())
    events = [fields["type"] for _, fields in await book.events.read(count=100)]
    assert events == ["whistle.issued", "whistle.issued", "whistle.reported", "whistle.reported"]


async def test_whistle_refusals(book: WhistleBook) -> None:
    soon = book.clock() + timedelta(hours=1)
    with pytest.raises(InvalidInput):
        await book.issue(departments=["dept-nowhere"], place="x", report_by=soon, summary="x", actor="a")
    with pytest.raises(InvalidInput):
        await book.issue(
            departments=["dept-urban"], place="x", report_by=book.clock(), summary="x", actor="a"
        )
    whistle = await book.issue(departments=["dept-urban"], place="x", report_by=soon, summary="x", actor="a")
    with pytest.raises(InvalidInput):  # not summoned
        await book.report(str(whistle.sequence), "dept-eco", "区生态环境分局")
    await book.report(str(whistle.sequence), "dept-urban", "区城管局")
    with pytest.raises(InvalidTransition):
        await book.report(str(whistle.sequence), "dept-urban", "区城管局")
    with pytest.raises(UnknownObject):
        await book.report("999", "dept-urban", "区城管局")
