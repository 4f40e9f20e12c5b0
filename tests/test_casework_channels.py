"""Channels at run time: the circuit breaker, calls through it, health, and the channel set's lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from casework.channels import BreakerState, ChannelRuntime, ChannelSet, CircuitBreaker
from casework.model import HealthStatus
from connectors import (
    ChangePage,
    ChannelConfig,
    ConfigError,
    Connector,
    ConnectorInfo,
    RateLimited,
    SourceRecord,
    UpstreamRejected,
    UpstreamUnavailable,
)
from connectors.base import Capabilities


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Quiet(Connector):
    info = ConnectorInfo(key="quiet", name="静默渠道", kind="test", capabilities=Capabilities())

    async def changes(self, cursor: str | None) -> AsyncIterator[ChangePage]:
        for _ in ():
            yield ChangePage()

    async def get_many(self, source_ids: Sequence[str]) -> Mapping[str, SourceRecord | None]:
        return dict.fromkeys(source_ids)


CONFIG = ChannelConfig(key="quiet", connector="quiet", name="静默渠道", base_url="http://127.0.0.1:9",
                       poll_interval=5)


def test_breaker_opens_half_opens_and_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=30, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # a success in between starts the count again
    breaker.record_failure()
    breaker.record_failure()
    assert (breaker.state, breaker.allow()) == (BreakerState.CLOSED, True)
    breaker.record_failure()
    assert (breaker.state, breaker.allow()) == (BreakerState.OPEN, False)
    assert breaker.retry_in() == 30
    clock.now += 29.9
    assert breaker.allow() is False
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow() is True, "one trial"
    assert breaker.allow() is False, "only one at a time"
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN, "a failed trial opens it again"
    clock.now += 15
    assert breaker.state is BreakerState.OPEN, "for a full timeout from the failed trial"
    clock.now += 15
    assert breaker.allow() is True
    breaker.release()  # the trial ended without a verdict: another may go
    assert breaker.allow() is True
    breaker.record_success()
    assert (breaker.state, breaker.failures, breaker.retry_in()) == (BreakerState.CLOSED, 0, 0)


async def test_calls_count_only_unavailability() -> None:
    clock = Clock()
    runtime = ChannelRuntime(CONFIG, Quiet(CONFIG), CircuitBreaker(2, 10, clock=clock))

    async def fails(error: Exception) -> None:
        raise error

    for error in (RateLimited(retry_after=3), UpstreamRejected("400"), ValueError("bug")):
        with pytest.raises(type(error)):
            await runtime.call(lambda error=error: fails(error))  # type: ignore[misc]
    assert runtime.breaker.failures == 0
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await runtime.call(lambda: fails(UpstreamUnavailable("503")))
    assert runtime.breaker.state is BreakerState.OPEN
    assert runtime.last_error == "503"
    called = []

    async def works() -> str:
        called.append(1)
        return "ok"

    with pytest.raises(UpstreamUnavailable, match="circuit open"):
        await runtime.call(works)
    assert called == []
    clock.now += 10
    assert await runtime.call(works) == "ok"
    assert runtime.breaker.state is BreakerState.CLOSED


def test_health_from_breaker_errors_and_lag() -> None:
    clock, now = Clock(), [datetime(2026, 11, 1, tzinfo=UTC)]
    runtime = ChannelRuntime(CONFIG, Quiet(CONFIG), CircuitBreaker(1, 30, clock=clock), now=lambda: now[0])
    health = runtime.health(cases=3, quarantined=1)
    assert (health.status, health.cases, health.quarantined) == (HealthStatus.UP, 3, 1)
    assert health.lag_seconds is None
    runtime.note_error("UpstreamUnavailable: connect refused")
    assert runtime.health(0, 0).status is HealthStatus.DOWN, "never synced and failing"
    runtime.note_synced()
    assert runtime.health(0, 0).status is HealthStatus.UP
    now[0] += timedelta(seconds=10)
    runtime.note_error("UpstreamUnavailable: 503")
    assert runtime.health(0, 0).status is HealthStatus.DEGRADED, "a recent error"
    now[0] += timedelta(seconds=61)
    runtime.note_synced()
    assert runtime.health(0, 0).status is HealthStatus.UP
    now[0] += timedelta(seconds=120)
    lagging = runtime.health(0, 0)
    assert (lagging.status, lagging.lag_seconds) == (HealthStatus.DEGRADED, 120)
    runtime.breaker.record_failure()
    down = runtime.health(0, 0)
    assert (down.status, down.breaker_open) == (HealthStatus.DOWN, True)
    assert down.last_error == "UpstreamUnavailable: 503"
    clock.now += 30
    assert runtime.health(0, 0).status is HealthStatus.DEGRADED, "half-open"


async def test_channel_set_enters_and_exits_every_connector() -> None:
    other = ChannelConfig(key="quiet2", connector="quiet", name="另一个", base_url="http://127.0.0.1:9")
    channels = ChannelSet([CONFIG, other], connector_classes={"quiet": Quiet},
                          breaker=lambda: CircuitBreaker(7, 1.0))
    assert list(channels) == list(channels.keys()) == ["quiet", "quiet2"]
    assert len(channels) == 2
    assert channels.get("nope") is None
    with pytest.raises(RuntimeError, match="outside"):
        _ = channels["quiet"].connector.client
    async with channels:
        assert all(runtime.connector.client is not None for runtime in channels.values())
        assert channels["quiet2"].breaker.failure_threshold == 7
        assert channels["quiet2"].connector.describe().name == "另一个"
    with pytest.raises(RuntimeError, match="outside"):
        _ = channels["quiet"].connector.client


def test_an_unknown_connector_is_a_config_error() -> None:
    config = ChannelConfig(key="x", connector="no-such-connector", name="x", base_url="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="no-such-connector"):
        ChannelSet([config])
