"""Intake over HTTP: a small in-test channel system and connector, a real Redis, real uvicorn.

Sync passes page to the end and persist the cursor after each page; rejects are quarantined;
a crash or a cancellation mid-pass loses and duplicates nothing; the sync loops back off, honour
throttling and let readiness settle while a channel is down; webhooks are verified.

Several replicas (two :class:`Intake` s with their own channel sets, as two processes have, on one
Redis): each channel is synced by the one replica holding its lease, as the plan deals them out; the
holder publishes its sync state and the follower reports the same readiness and health; a replica
that stops hands its channels over at once, one that dies once its lease lapses; a holder that lost
its lease in the middle of a slow page does not move the cursor.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from casework import keys
from casework.channels import ChannelSet, CircuitBreaker
from casework.intake import Intake, SyncedElsewhere
from casework.model import CaseQuery, HealthStatus
from casework.reference import Reference
from casework.store import CaseStore
from casework.synclease import LOAD_UNIT, SyncLeases, SyncState, channel_weight, plan, replica_name
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


# -- several replicas: one sync lease per channel ------------------------------------------------

A, B = "网关甲", "网关乙"


async def _until_true(condition: Callable[[], Awaitable[bool]], seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{condition} did not come true in {seconds}s")


async def _stop(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_lease_belongs_to_one_replica_until_released_or_lapsed(redis_client: aioredis.Redis) -> None:
    first, second = SyncLeases(redis_client, holder=A, ttl=0.2), SyncLeases(redis_client, holder=B, ttl=0.2)
    assert await first.hold("toy")
    assert not await second.hold("toy")
    assert await second.holder_of("toy") == A
    assert await first.hold("toy", pause=30)
    assert await redis_client.pttl(keys.sync_lease("toy")) > 29_000, "renewed over the pause"
    assert not await second.release("toy"), "a replica never releases another's lease"
    assert await first.release("toy")
    assert await second.hold("toy"), "released: taken at once"
    await asyncio.sleep(0.4)
    assert await first.hold("toy"), "lapsed: the next replica that asks takes it"
    assert not await second.hold("toy")
    assert replica_name().endswith(f":{os.getpid()}")
    with pytest.raises(ValueError, match="positive"):
        SyncLeases(redis_client, holder=A, ttl=0)


async def test_the_published_state_reads_back(redis_client: aioredis.Redis) -> None:
    leases = SyncLeases(redis_client, holder=A)
    assert await leases.state("toy") is None
    state = SyncState(holder=A, last_sync_at=datetime(2026, 11, 23, 8, tzinfo=UTC),
                      last_error="UpstreamUnavailable: 503 维护中", last_error_at=None, refused=None,
                      given_up_at_start=False, breaker_open=True)
    await leases.publish("toy", state)
    assert await SyncLeases(redis_client, holder=B).state("toy") == state


def test_the_plan_deals_the_channels_out_evenly_and_alike_everywhere() -> None:
    channels = ["hotline12345", "mayor", "court", "legalaid", "petition", "open311", "shuji", "juzhang"]
    two = plan(channels, [B, A])
    assert set(two) == set(channels)
    assert sorted(Counter(two.values()).values()) == [4, 4]
    assert plan(reversed(channels), [A, B, A]) == two, "the same whatever order they are seen in"
    three = plan(channels, ["网关丙", A, B])
    assert sorted(Counter(three.values()).values()) == [2, 3, 3]
    assert set(plan(channels, [A]).values()) == {A}
    assert plan(channels, []) == {}


def test_the_plan_weighs_the_channels_by_the_cases_they_bring() -> None:
    counts = (0, LOAD_UNIT, round(1.19 * LOAD_UNIT), 2 * LOAD_UNIT, 100 * LOAD_UNIT)
    assert [channel_weight(n) for n in counts] == [10, 10, 12, 20, 905]
    # the bench's world: the 12345 hotline brings 38 % of the cases
    cases = {"hotline12345": 3776, "mayor": 1259, "petition": 1215, "open311": 1124, "legalaid": 1076,
             "court": 909, "shuji": 359, "juzhang": 282}
    weights = {key: channel_weight(count) for key, count in cases.items()}
    two = plan(cases, [A, B], weights)
    shares = Counter({replica: 0 for replica in (A, B)})
    for key, replica in two.items():
        shares[replica] += cases[key]
    assert max(shares.values()) < 0.53 * sum(cases.values()), shares  # by count alone: 73 % on one
    hotline_mates = [key for key, replica in two.items() if replica == two["hotline12345"]]
    assert len(hotline_mates) < 4
    assert plan(reversed(list(cases)), [B, A], weights) == two, "the same whatever order they are seen in"
    # below a unit every channel weighs the same: an even split by count, as without weights
    small = {key: channel_weight(count // 20) for key, count in cases.items()}
    assert plan(cases, [A, B], small) == plan(cases, [A, B])


async def test_a_replica_plans_with_the_stored_counts(redis_client: aioredis.Redis, store: CaseStore) -> None:
    leases = SyncLeases(redis_client, holder=A, ttl=10)
    await SyncLeases(redis_client, holder=B, ttl=10).beat()
    await leases.beat()
    channels = channel_set(("toy", "http://127.0.0.1:9"), ("oth", "http://127.0.0.1:9"),
                           ("three", "http://127.0.0.1:9"))
    intake = Intake(store, channels, leases=leases)
    even = {key: await intake._planned_holder(leases, key) for key in ("toy", "oth", "three")}
    assert sorted(Counter(even.values()).values()) == [1, 2]
    # the store says toy brings thousands of cases: the other two share the other replica
    await redis_client.sadd(keys.CHANNELS, "toy")
    await redis_client.sadd(keys.channel_index("toy"), *(f"toy:{n}" for n in range(8 * LOAD_UNIT)))
    planned = {key: await intake._planned_holder(leases, key) for key in ("toy", "oth", "three")}
    assert planned["oth"] == planned["three"] != planned["toy"]


async def test_replicas_beat_and_leave(redis_client: aioredis.Redis) -> None:
    first, second = SyncLeases(redis_client, holder=A, ttl=0.3), SyncLeases(redis_client, holder=B, ttl=30)
    assert await first.beat() == [A]
    assert await second.beat() == sorted([A, B])
    assert plan(["toy", "oth"], await first.live()).get("toy") in (A, B)
    await asyncio.sleep(0.5)
    assert await second.live() == [B], "a replica that stopped beating drops out"
    assert plan(["toy", "oth"], await first.live()).get("toy") == B
    await second.leave()
    assert await first.live() == []


async def test_two_replicas_split_the_channels_and_report_the_same_readiness(
        redis_client: aioredis.Redis, reference: Reference, store: CaseStore,
        upstream: tuple[Upstream, str]) -> None:
    _, url = upstream
    other = Upstream([ticket(n, ticket_id=f"OTH{n:04d}") for n in range(1, 4)])
    with serve(other.app()) as other_url:
        urls = (("toy", url), ("oth", other_url))
        async with channel_set(*urls) as mine, channel_set(*urls) as theirs:
            first = Intake(store, mine, leases=SyncLeases(redis_client, holder=A, ttl=10))
            second = Intake(CaseStore(redis_client, reference), theirs,
                            leases=SyncLeases(redis_client, holder=B, ttl=10))
            loops = asyncio.create_task(first.run()), asyncio.create_task(second.run())
            try:
                await _until(lambda: first.ready() and second.ready())
                await _until_true(lambda: _split(first, ("toy", "oth")))  # one channel each, as planned
                before = {key: _attempts(mine, theirs, key) for key in ("toy", "oth")}
                await asyncio.sleep(0.5)  # ten poll intervals: each channel is polled by its holder only
                for key in ("toy", "oth"):
                    after = _attempts(mine, theirs, key)
                    grew = [now > earlier for now, earlier in zip(after, before[key], strict=True)]
                    assert grew in ([True, False], [False, True]), f"{key}: {before[key]} → {after}"
                    holder, follower = (A, theirs) if grew[0] else (B, mine)
                    assert follower[key].synced_by == holder
                    health = follower[key].health(0, 0)
                    assert health.status is HealthStatus.UP
                    assert health.last_sync_at is not None
                assert first.readiness() == second.readiness() == {"toy": "synced", "oth": "synced"}
            finally:
                await _stop(*loops)
    assert await source_ids(store) == sorted([*EXPECTED, "OTH0001", "OTH0002", "OTH0003"])
    assert len(await store.events.read(count=100)) == 10, "one event per case, whoever synced it"


def _attempts(mine: ChannelSet, theirs: ChannelSet, key: str) -> tuple[int, int]:
    return mine[key].sync_attempts, theirs[key].sync_attempts


async def _split(intake: Intake, channels: tuple[str, ...]) -> bool:
    assert intake.leases is not None
    holders = [await intake.leases.holder_of(key) for key in channels]
    return None not in holders and len(set(holders)) == len(channels)


class DyingLeases(SyncLeases):
    """A replica killed outright: it never gets to release anything or to leave."""

    async def release(self, channel: str) -> bool:
        return False

    async def leave(self) -> None:
        return None


@pytest.mark.parametrize(("leases", "ttl"), [(SyncLeases, 600.0), (DyingLeases, 0.5)], ids=["stops", "dies"])
async def test_a_replica_that_stops_or_dies_hands_its_channels_over(
        redis_client: aioredis.Redis, reference: Reference, store: CaseStore,
        upstream: tuple[Upstream, str], leases: type[SyncLeases], ttl: float) -> None:
    """Stopping releases the lease (the long time to live shows nobody waited for it to lapse);
    dying leaves it to lapse, and meanwhile the next replica is ready on the dead one's last pass."""
    system, url = upstream
    async with channel_set(("toy", url)) as mine, channel_set(("toy", url)) as theirs:
        first = Intake(store, mine, leases=leases(redis_client, holder=A, ttl=ttl))
        loop = asyncio.create_task(first.run())
        await _until(first.ready)
        await _stop(loop)
        left = await redis_client.get(keys.sync_lease("toy"))
        assert (left is None) == (leases is SyncLeases), "released on the way out, unless killed"
        system.tickets.append(ticket(9))
        second = Intake(CaseStore(redis_client, reference), theirs,
                        leases=SyncLeases(redis_client, holder=B, ttl=ttl))
        loop = asyncio.create_task(second.run())
        try:
            await _until(second.ready)
            assert second.readiness() == {"toy": "synced"}
            await _until_true(lambda: _stored(store, "toy:TOY0009"))
        finally:
            await _stop(loop)
        assert theirs["toy"].synced_by is None, "it syncs the channel itself now"
    assert await source_ids(store) == [*EXPECTED, "TOY0009"]


async def test_a_holder_that_lost_its_lease_mid_page_leaves_the_cursor_to_the_new_holder(
        redis_client: aioredis.Redis, store: CaseStore, upstream: tuple[Upstream, str]) -> None:
    system, url = upstream
    system.hold_from = 6  # the third page hangs until released
    async with channel_set(("toy", url)) as mine:
        first = Intake(store, mine, leases=SyncLeases(redis_client, holder=A, ttl=0.2))
        task = asyncio.create_task(first.sync_once("toy"))
        assert await asyncio.to_thread(system.holding.wait, 15)
        await asyncio.sleep(0.4)  # the slow page outlasts the lease ...
        assert await SyncLeases(redis_client, holder=B, ttl=60).hold("toy")  # ... and B takes over
        system.release.set()
        with pytest.raises(SyncedElsewhere):
            await task
    assert await store.load_cursor("toy") == "6", "the page read after the lease was lost moves nothing"
    assert await source_ids(store) == EXPECTED, "what it ingested is kept (ingest is idempotent)"


async def _stored(store: CaseStore, key: str) -> bool:
    return await store.get(key) is not None
