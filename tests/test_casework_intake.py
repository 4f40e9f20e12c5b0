"""Intake over HTTP: a small in-test channel system and connector, a real Redis, real uvicorn.

Sync passes page to the end and persist the cursor after each page; rejects are quarantined;
a crash or a cancellation mid-pass loses and duplicates nothing; the sync loops back off, honour
throttling and let readiness settle while a channel is down; webhooks are verified.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from casework.channels import ChannelSet, CircuitBreaker
from casework.intake import Intake
from casework.model import CaseQuery, HealthStatus
from casework.reference import Reference
from casework.store import CaseStore
from connectors import (
    BadRecord,
    CaseRecord,
    ChangePage,
    ChannelConfig,
    Connector,
    ConnectorInfo,
    Place,
    SourceRecord,
    UnifiedStatus,
    WebhookRejected,
)
from connectors.base import Capabilities
from connectors.http import send
from tests.servers import serve

T0 = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
STATUS = {"待受理": UnifiedStatus.SUBMITTED, "处理中": UnifiedStatus.IN_PROGRESS,
          "已办结": UnifiedStatus.RESOLVED}


def ticket(seq: int, *, ticket_id: str | None = None, title: str = "小区门口占道经营",
           status: str = "处理中") -> dict[str, Any]:
    return {"seq": seq, "id": ticket_id or f"TOY{seq:04d}", "title": title,
            "content": "晚上流动摊贩摆摊，影响通行", "status": status, "street": "玉塘街道",
            "community": "田寮社区", "time": (T0 + timedelta(minutes=seq)).isoformat()}


class Upstream:
    """A channel system: ``GET /changes?after=<seq>&limit=n``; knobs for down, 429s and holding a page."""

    def __init__(self, tickets: list[dict[str, Any]]) -> None:
        self.tickets = tickets
        self.down = False
        self.refuse = False
        self.throttled = 0
        self.hold_from: int | None = None
        self.holding = threading.Event()
        self.release = threading.Event()
        self.requests = 0

    async def changes(self, request: Request) -> JSONResponse:
        self.requests += 1
        if self.down:
            return JSONResponse({"error": "维护中"}, status_code=503)
        if self.refuse:
            return JSONResponse({"error": "凭证无效"}, status_code=401)
        if self.throttled:
            self.throttled -= 1
            return JSONResponse({"error": "请求过于频繁"}, status_code=429, headers={"Retry-After": "0"})
        after, limit = int(request.query_params["after"]), int(request.query_params["limit"])
        if self.hold_from is not None and after >= self.hold_from:
            self.holding.set()
            await asyncio.to_thread(self.release.wait, 30)
        return JSONResponse({"items": [t for t in self.tickets if t["seq"] > after][:limit]})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/changes", self.changes)])


class ToyConnector(Connector):
    """Pages of three by sequence number; the cursor is the last sequence number read."""

    info = ConnectorInfo(key="toy", name="测试渠道", kind="test", capabilities=Capabilities(push=True))

    async def changes(self, cursor: str | None) -> AsyncIterator[ChangePage]:
        after = int(cursor or 0)
        while True:
            response = await send(self.client, "GET", "/changes", params={"after": after, "limit": 3})
            items = response.json()["items"]
            if not items:
                return
            yield self._page(items)
            after = items[-1]["seq"]

    def _page(self, items: list[dict[str, Any]]) -> ChangePage:
        records, rejected = [], []
        for item in items:
            try:
                records.append(self._record(item))
            except ValidationError as exc:
                rejected.append(BadRecord(item.get("id"), f"字段不合规: {exc.errors()[0]['loc'][0]}", item))
        return ChangePage(records=tuple(records), rejected=tuple(rejected), cursor=str(items[-1]["seq"]))

    def _record(self, item: dict[str, Any]) -> CaseRecord:
        at = datetime.fromisoformat(item["time"])
        return CaseRecord(channel=self.config.key, source_id=item["id"], title=item["title"],
                          content=item["content"], status=STATUS[item["status"]],
                          source_status=item["status"],
                          place=Place(street=item["street"], community=item["community"]),
                          received_at=at, updated_at=at)

    async def get_many(self, source_ids: Sequence[str]) -> Mapping[str, SourceRecord | None]:
        return dict.fromkeys(source_ids)

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes,
                            now: datetime | None = None) -> ChangePage:
        if headers.get("x-toy-token") != self.config.credentials.get("webhook_token"):
            raise WebhookRejected("bad token")
        return self._page(json.loads(body)["items"])


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.load()


@pytest.fixture
def store(redis_client: aioredis.Redis, reference: Reference) -> CaseStore:
    return CaseStore(redis_client, reference)


@pytest.fixture
def upstream() -> Iterator[tuple[Upstream, str]]:
    tickets = [ticket(n) for n in range(1, 9)]
    tickets[4]["title"] = ""  # TOY0005 cannot be normalised
    system = Upstream(tickets)
    with serve(system.app()) as url:
        yield system, url
    system.release.set()


def channel_set(*urls: tuple[str, str], **breaker: Any) -> ChannelSet:
    configs = [ChannelConfig(key=key, connector="toy", name=f"测试渠道{key}", base_url=url, timeout=5,
                             poll_interval=0.05, credentials={"webhook_token": "s3cret"})
               for key, url in urls]
    return ChannelSet(configs, connector_classes={"toy": ToyConnector},
                      breaker=lambda: CircuitBreaker(**(breaker or {"failure_threshold": 5})))


async def source_ids(store: CaseStore) -> list[str]:
    page = await store.search(CaseQuery(), first=100, after=None)
    return sorted(case.source_id for case in page.cases)


EXPECTED = [f"TOY{n:04d}" for n in (1, 2, 3, 4, 6, 7, 8)]


async def test_a_pass_pages_to_the_end_quarantines_rejects_and_saves_the_cursor(
        store: CaseStore, upstream: tuple[Upstream, str]) -> None:
    system, url = upstream
    async with channel_set(("toy", url)) as channels:
        intake = Intake(store, channels)
        assert not intake.ready()
        report = await intake.sync_once("toy")
        assert (report.pages, report.created, report.quarantined, report.cursor) == (3, 7, 1, "8")
        assert await store.load_cursor("toy") == "8"
        assert await source_ids(store) == EXPECTED
        [bad] = await store.list_quarantine("toy")
        assert (bad.source_id, bad.reason) == ("TOY0005", "字段不合规: title")
        assert intake.ready()
        assert intake.readiness() == {"toy": "synced"}
        assert channels["toy"].health(7, 1).status is HealthStatus.UP

        system.tickets.append(ticket(9, ticket_id="TOY0002", status="已办结"))  # a change to a known ticket
        again = await intake.sync_once("toy")
        assert (again.pages, again.created, again.updated, again.cursor) == (1, 0, 1, "9")
        case = await store.get("toy:TOY0002")
        assert case is not None
        assert case.status is UnifiedStatus.RESOLVED
    assert await store.quarantine_count("toy") == 1
    assert len(await store.events.read(count=100)) == 8, "seven created, one updated"


class CrashingStore(CaseStore):
    """Dies once while saving the cursor of its second page: after that page's ingest, before its cursor."""

    saves = 0

    async def save_cursor(self, channel: str, cursor: str | None) -> None:
        self.saves += 1
        if self.saves == 2:
            raise ConnectionError("the process died here")
        await super().save_cursor(channel, cursor)


async def test_a_crash_between_ingest_and_cursor_loses_and_duplicates_nothing(
        redis_client: aioredis.Redis, reference: Reference, store: CaseStore,
        upstream: tuple[Upstream, str]) -> None:
    _, url = upstream
    async with channel_set(("toy", url)) as channels:
        with pytest.raises(ConnectionError):
            await Intake(CrashingStore(redis_client, reference), channels).sync_once("toy")
        assert await store.load_cursor("toy") == "3"
        assert len(await source_ids(store)) == 5, "the second page was ingested, its cursor not saved"
        report = await Intake(store, channels).sync_once("toy")
    assert (report.created, report.unchanged) == (2, 2), "the second page is read again, harmlessly"
    assert await source_ids(store) == EXPECTED
    assert len(await store.events.read(count=100)) == 7, "one event per case"
    assert await store.quarantine_count("toy") == 1


async def test_a_pass_cancelled_mid_way_resumes_after_a_restart(
        store: CaseStore, upstream: tuple[Upstream, str]) -> None:
    system, url = upstream
    system.hold_from = 6  # the third page hangs until released
    async with channel_set(("toy", url)) as channels:
        task = asyncio.create_task(Intake(store, channels).sync_once("toy"))
        assert await asyncio.to_thread(system.holding.wait, 15)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not channels["toy"].first_sync_done.is_set()
    assert await store.load_cursor("toy") == "6"
    system.release.set()
    async with channel_set(("toy", url)) as channels:  # a restarted gateway
        report = await Intake(store, channels).sync_once("toy")
    assert (report.pages, report.created) == (1, 2)
    assert await source_ids(store) == EXPECTED
    assert len(await store.events.read(count=100)) == 7


async def test_loops_back_off_and_readiness_settles_while_a_channel_is_down(
        store: CaseStore, upstream: tuple[Upstream, str]) -> None:
    system, url = upstream
    dead = Upstream([ticket(1, ticket_id="DEAD1")])
    dead.down = True
    system.throttled = 3  # more 429s than the connector retries: the loop waits Retry-After
    with serve(dead.app()) as dead_url:
        async with channel_set(("toy", url), ("dead", dead_url), failure_threshold=2,
                               reset_timeout=0.2) as channels:
            intake = Intake(store, channels, backoff_base=0.01, backoff_cap=0.05)
            loops = asyncio.create_task(intake.run())
            try:
                await _until(intake.ready)
                assert intake.readiness() == {"toy": "synced", "dead": "down"}
                dead_health = channels["dead"].health(0, 0)
                assert dead_health.status is HealthStatus.DOWN
                assert "503" in (dead_health.last_error or "")
                assert await source_ids(store) == EXPECTED
                dead.down = False  # it comes back: the half-open trial lets the loop through
                await _until(channels["dead"].first_sync_done.is_set)
                assert intake.ready()
                assert channels["dead"].health(1, 0).status is HealthStatus.UP
            finally:
                loops.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await loops
    assert "toy:TOY0001" in [c.key for c in (await store.search(CaseQuery(), first=100, after=None)).cases]
    assert await store.get("dead:DEAD1") is not None
    assert dead.requests >= 2


async def test_a_channel_refusing_our_credentials_settles_as_refused(
        store: CaseStore, upstream: tuple[Upstream, str]) -> None:
    system, url = upstream
    system.refuse = True
    async with channel_set(("toy", url)) as channels:
        intake = Intake(store, channels, backoff_base=0.01, backoff_cap=30)
        loops = asyncio.create_task(intake.run())
        try:
            await _until(intake.ready)
        finally:
            loops.cancel()
            with pytest.raises(asyncio.CancelledError):
                await loops
        assert intake.readiness() == {"toy": "refused"}
        health = channels["toy"].health(0, 0)
        assert health.status is HealthStatus.DOWN
        assert not health.breaker_open, "a refusal is not an outage"
        assert "AuthenticationFailed" in (health.last_error or "")
    assert system.requests == 1, "no hammering with rejected credentials"


async def _until(condition: Any, seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{condition} did not come true in {seconds}s")


async def test_webhooks_are_verified_then_taken_in(store: CaseStore, upstream: tuple[Upstream, str]) -> None:
    _, url = upstream
    body = json.dumps({"items": [ticket(20, ticket_id="PUSH1"), ticket(21, title="")]}).encode()
    async with channel_set(("toy", url)) as channels:
        intake = Intake(store, channels)
        with pytest.raises(WebhookRejected):
            await intake.receive_webhook("toy", {"x-toy-token": "wrong"}, body)
        with pytest.raises(WebhookRejected):
            await intake.receive_webhook("nope", {"x-toy-token": "s3cret"}, body)
        report = await intake.receive_webhook("toy", {"x-toy-token": "s3cret"}, body)
        again = await intake.receive_webhook("toy", {"x-toy-token": "s3cret"}, body)
    assert (report.created, report.quarantined, again.unchanged) == (1, 1, 1)
    assert await source_ids(store) == ["PUSH1"]
    assert await store.quarantine_count("toy") == 1
    assert await store.load_cursor("toy") is None, "webhooks never move the cursor"
