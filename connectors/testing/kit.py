"""The conformance kit: the standard tests every connector must pass, in one line for its author.

::

    from connectors.testing import Upstream, connector_test_class

    TestMine = connector_test_class(MyConnector, upstream=Upstream(
        app=lambda: create_my_sandbox(),                      # a fresh ASGI app per test
        config=lambda url: ChannelConfig(key="mine", connector="mine", name="我的渠道", base_url=url,
                                         credentials={"api_key": "demo"}),
        small_pages={"page_size": 5},                        # so paging is exercised
    ))

The tests run against the author's sandbox served by a real uvicorn; faults (429 with Retry-After,
5xx, other 4xx, timeouts) are injected by the kit's transport, so the sandbox needs no fault knobs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import pytest

from connectors.base import ChannelConfig, Connector, ConnectorInfo
from connectors.errors import (
    AuthenticationFailed,
    ConfigError,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
    WebhookRejected,
)
from connectors.records import CaseRecord, ChangePage, WriteBackAction, WriteBackKind, utc_now
from connectors.testing.server import KitTransport, serve_app

__all__ = ["ConformanceTests", "Upstream", "connector_test_class"]

MAX_PAGES = 10_000
T = TypeVar("T")


@dataclass(frozen=True)
class Upstream:
    """How the kit reaches a connector's sandbox, and what it may expect of it.

    Args:
        app: builds a fresh ASGI app of the channel's sandbox (each test gets its own state).
        config: the channel's configuration for a sandbox answering at ``base_url``.
        small_pages: options that make pages small, so that paging and resuming are exercised.
        bad_config: a configuration with at least ``bad_config_problems`` problems (none: skipped).
        bad_config_problems: how many problems ``bad_config`` has.
        received_at: source id → the instant the channel received it (checks time zones).
        webhook: ``now`` → (headers, body) of a push the channel would sign and send.
        write_back: the kind of write-back the kit sends twice (idempotency).
        unknown_id: a source id the channel does not know.
        max_rejected: how many records of the sandbox may be quarantined (a hostile one has some).
    """

    app: Callable[[], Any]
    config: Callable[[str], ChannelConfig]
    small_pages: Mapping[str, Any] = field(default_factory=dict)
    bad_config: Callable[[str], ChannelConfig] | None = None
    bad_config_problems: int = 2
    received_at: Mapping[str, datetime] | None = None
    webhook: Callable[[datetime], tuple[Mapping[str, str], bytes]] | None = None
    write_back: WriteBackKind = WriteBackKind.REPLY
    unknown_id: str = "KIT-NO-SUCH-ID-0"
    max_rejected: int = 0


def _run(coroutine: Awaitable[T]) -> T:
    """Each test runs its own event loop: the kit does not depend on the author's async plugin."""
    async def main() -> T:
        return await coroutine
    return asyncio.run(main())


class ConformanceTests:
    """The standard tests; :func:`connector_test_class` binds them to a connector and its upstream."""

    __test__ = False  # collected only through the classes connector_test_class makes
    connector: ClassVar[type[Connector]]
    upstream: ClassVar[Upstream]

    # -- helpers ---------------------------------------------------------------------------------

    def make(self, url: str, *, small: bool = False) -> tuple[Connector, KitTransport]:
        config = self.upstream.config(url)
        if small:
            config = dataclasses.replace(config, options={**config.options, **self.upstream.small_pages})
        transport = KitTransport()
        return self.connector(config, transport=transport), transport

    def with_upstream(self, check: Callable[[str], Awaitable[None]]) -> None:
        with serve_app(self.upstream.app()) as url:
            _run(check(url))

    @staticmethod
    async def drain(connector: Connector, cursor: str | None = None) -> list[ChangePage]:
        pages: list[ChangePage] = []
        async for page in connector.changes(cursor):
            pages.append(page)
            assert len(pages) < MAX_PAGES, "changes() does not end"
        return pages

    @staticmethod
    def ids(pages: Sequence[ChangePage]) -> list[str]:
        return [record.source_id for page in pages for record in page.records]

    # -- the standard tests ---------------------------------------------------------------------

    def test_config_problems_are_listed_at_once(self) -> None:
        if self.upstream.bad_config is None:
            pytest.skip("no bad_config given")
        with pytest.raises(ConfigError) as caught:
            self.connector(self.upstream.bad_config("http://127.0.0.1:9"))
        problems = caught.value.problems
        assert len(problems) >= self.upstream.bad_config_problems, problems
        assert all(isinstance(p, str) and p.strip() for p in problems)

    def test_describe(self) -> None:
        connector, _ = self.make("http://127.0.0.1:9")
        info = connector.describe()
        assert isinstance(info, ConnectorInfo)
        assert info.key == connector.config.key
        assert info.name
        assert info.kind
        assert info.capabilities.batch_limit >= 1
        assert info.capabilities.pull or info.capabilities.push

    def test_paging_ends_and_resumes_from_a_cursor(self) -> None:
        async def check(url: str) -> None:
            connector, _ = self.make(url, small=True)
            async with connector:
                whole = await self.drain(connector)
                assert whole
                assert all(isinstance(p.cursor, str) and p.cursor for p in whole)
                if self.upstream.small_pages:
                    assert len(whole) >= 2, "small_pages should give more than one page"
                again = await self.drain(connector, whole[-1].cursor)
            assert self.ids(again) == [], "nothing new after the last cursor"
            restarted, _ = self.make(url, small=True)
            async with restarted:  # a new instance, as after a gateway restart
                rest = await self.drain(restarted, whole[0].cursor)
            assert set(self.ids(whole[:1])) | set(self.ids(rest)) == set(self.ids(whole))
            assert not set(self.ids(whole[:1])) & set(self.ids(rest)), "resumed pages repeat records"

        self.with_upstream(check)

    def test_every_normalised_record_is_valid(self) -> None:
        async def check(url: str) -> None:
            connector, _ = self.make(url)
            async with connector:
                pages = await self.drain(connector)
            records = [r for p in pages for r in p.records]
            assert records, "the sandbox should serve some records"
            for record in records:
                assert CaseRecord.model_validate(record.model_dump()) == record
                assert record.channel == connector.config.key
                assert record.received_at <= record.updated_at, record.source_id
            rejected = [bad for p in pages for bad in p.rejected]
            assert len(rejected) <= self.upstream.max_rejected, [str(bad) for bad in rejected]

        self.with_upstream(check)

    def test_times_come_out_in_utc(self) -> None:
        async def check(url: str) -> None:
            connector, _ = self.make(url)
            async with connector:
                records = [r for p in await self.drain(connector) for r in p.records]
            for record in records:
                assert record.received_at.utcoffset() is not None
                assert record.received_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
                assert record.updated_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
            expected = self.upstream.received_at or {}
            checked = [r for r in records if r.source_id in expected]
            assert not expected or checked, "none of received_at's ids came through"
            for record in checked:
                assert record.received_at == expected[record.source_id], record.source_id

        self.with_upstream(check)

    def test_batch_answers_every_id_in_order_within_the_limit(self) -> None:
        async def check(url: str) -> None:
            connector, transport = self.make(url)
            async with connector:
                known = self.ids(await self.drain(connector))
                if not connector.describe().capabilities.batch_get:
                    pytest.skip("the channel has no batch get")
                asked = [*reversed(list(dict.fromkeys(known))), self.upstream.unknown_id]
                before = transport.requests
                found = await connector.get_many(asked)
                calls = transport.requests - before
            assert list(found) == asked, "answers come in the order asked"
            assert found[self.upstream.unknown_id] is None
            assert all(found[i] is not None and found[i].source_id == i for i in asked[:-1])  # type: ignore[union-attr]
            limit = connector.describe().capabilities.batch_limit
            assert calls <= math.ceil(len(asked) / limit) + 2, f"{calls} requests for {len(asked)} ids"

        self.with_upstream(check)

    @pytest.mark.parametrize(("fault", "error"), [
        (429, RateLimited), (503, UpstreamUnavailable), (500, UpstreamUnavailable),
        (400, UpstreamRejected), (401, AuthenticationFailed), ("timeout", UpstreamUnavailable)])
    def test_errors_are_classified(self, fault: int | str, error: type[UpstreamError]) -> None:
        async def check(url: str) -> None:
            connector, transport = self.make(url)
            transport.fault = fault
            async with connector:
                with pytest.raises(error) as caught:
                    await self.drain(connector)
                if fault == 429:
                    assert isinstance(caught.value, RateLimited)
                    assert caught.value.retry_after == transport.retry_after
                if fault in (503, 500, "timeout"):
                    assert not isinstance(caught.value, RateLimited)
                if connector.describe().capabilities.batch_get:
                    with pytest.raises(error):
                        await connector.get_many([self.upstream.unknown_id])

        self.with_upstream(check)

    def test_webhook_signatures_are_checked(self) -> None:
        async def check(url: str) -> None:
            connector, _ = self.make(url)
            now = utc_now()
            async with connector:
                if not connector.describe().capabilities.push:
                    with pytest.raises(WebhookRejected):
                        await connector.parse_webhook({}, b"{}", now)
                    return
                assert self.upstream.webhook is not None, "a pushing channel needs Upstream.webhook"
                headers, body = self.upstream.webhook(now)
                page = await connector.parse_webhook(headers, body, now)
                assert page.records
                assert all(r.channel == connector.config.key for r in page.records)
                fresh_headers, fresh_body = self.upstream.webhook(now)
                with pytest.raises(WebhookRejected):
                    await connector.parse_webhook(fresh_headers, fresh_body + b" ", now)
                with pytest.raises(WebhookRejected):
                    await connector.parse_webhook({}, fresh_body, now)

        self.with_upstream(check)

    def test_write_back_is_idempotent(self) -> None:
        async def check(url: str) -> None:
            connector, _ = self.make(url)
            async with connector:
                records = [r for p in await self.drain(connector) for r in p.records]
                if not connector.describe().capabilities.write_back:
                    with pytest.raises((NotImplementedError, UpstreamRejected)):
                        await connector.write_back(_action(records[0].source_id, self.upstream.write_back))
                    return
                open_ones = [r for r in records if r.status.value not in ("CLOSED", "RESOLVED", "REJECTED")]
                target = (open_ones or records)[0].source_id
                action = _action(target, self.upstream.write_back)
                first = await connector.write_back(action)
                second = await connector.write_back(action)
            assert first.accepted
            assert second.accepted
            assert (first.action_id, second.action_id) == (action.action_id, action.action_id)
            assert not first.duplicate
            assert second.duplicate or second.source_status == first.source_status

        self.with_upstream(check)


def _action(source_id: str, kind: WriteBackKind) -> WriteBackAction:
    return WriteBackAction(action_id=f"kit-{uuid.uuid4().hex[:12]}", source_id=source_id, kind=kind,
                           message="一致性测试：已收到，正在办理", actor="conformance-kit",
                           department="测试部门",
                           at=utc_now())


def connector_test_class(connector: type[Connector], *, upstream: Upstream) -> type[ConformanceTests]:
    """The standard tests for ``connector`` against ``upstream``; assign it to a ``Test…`` name.

    Args:
        connector: the connector class under test.
        upstream: how to serve and configure its sandbox.

    Returns:
        A test class pytest collects (marked ``conformance``).
    """
    cls = type(f"Conformance{connector.__name__}", (ConformanceTests,),
               {"connector": connector, "upstream": upstream, "__test__": True})
    return pytest.mark.conformance(cls)
