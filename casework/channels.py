"""The configured channels at run time: each one's connector, circuit breaker and sync health.

:class:`ChannelSet` builds one connector per entry of the channels file (through the
``minsheng.connectors`` entry points), enters them all and exits them all. Every upstream call
the gateway makes — a sync page, a batch of live records — goes through
:meth:`ChannelRuntime.call`, so the channel's :class:`CircuitBreaker` sees them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self, TypeVar

import httpx

from casework.model import ChannelHealth, HealthStatus
from casework.synclease import SyncState
from connectors import ChannelConfig, Connector, RateLimited, UpstreamUnavailable, registry, utc_now

__all__ = ["BreakerState", "ChannelRuntime", "ChannelSet", "CircuitBreaker"]

T = TypeVar("T")

MIN_LAG_ALERT_SECONDS = 60.0


class BreakerState(enum.StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class CircuitBreaker:
    """Stops calling a channel that keeps failing, and lets one trial call through now and then.

    ``failure_threshold`` consecutive failures open the circuit; after ``reset_timeout`` seconds it
    is half-open and admits a single trial call: its success closes the circuit, its failure opens
    it for another ``reset_timeout``.
    """

    def __init__(self, failure_threshold: int = 5, reset_timeout: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failure_threshold = max(1, failure_threshold)
        self.reset_timeout = reset_timeout
        self.clock = clock
        self.failures = 0
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self.clock() - self._opened_at >= self.reset_timeout:
            self._state = BreakerState.HALF_OPEN
            self._trial_in_flight = False
        return self._state

    def retry_in(self) -> float:
        """Seconds until an open circuit turns half-open (0 when it is not open)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.reset_timeout - (self.clock() - self._opened_at))

    def allow(self) -> bool:
        """May a call go through now? In the half-open state only one trial at a time does."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self.failures = 0
        self._state = BreakerState.CLOSED
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.failure_threshold:
            self._state = BreakerState.OPEN
            self._opened_at = self.clock()
        self._trial_in_flight = False

    def release(self) -> None:
        """The call ended with neither a success nor a failure that counts (e.g. a 4xx, a cancellation)."""
        self._trial_in_flight = False


class ChannelRuntime:
    """One configured channel: its connector (entered by the set), breaker and sync health."""

    def __init__(self, config: ChannelConfig, connector: Connector, breaker: CircuitBreaker | None = None, *,
                 now: Callable[[], datetime] = utc_now) -> None:
        self.config = config
        self.connector = connector
        self.breaker = breaker or CircuitBreaker()
        self.now = now
        self.last_sync_at: datetime | None = None
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.sync_attempts = 0
        self.settled_failure: str | None = None   # a refusal that will not cure itself (e.g. credentials)
        self.given_up_at_start = False            # the first pass could not finish: circuit open, or refused
        self.first_sync_done = asyncio.Event()
        self.synced_by: str | None = None         # another replica, while it holds the channel's sync lease
        self._holder_breaker_open = False         # that replica's breaker, as it last published it

    @property
    def key(self) -> str:
        return self.config.key

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one upstream call through the breaker.

        Raises:
            UpstreamUnavailable: ``"circuit open"`` without calling, while the circuit is open;
                or what ``fn`` raised. Only :class:`UpstreamUnavailable` counts as a failure —
                throttling (:class:`RateLimited`) and refusals (4xx) do not: the channel answered.
        """
        if not self.breaker.allow():
            raise UpstreamUnavailable("circuit open")
        try:
            result = await fn()
        except RateLimited:
            self.breaker.release()
            raise
        except UpstreamUnavailable as exc:
            self.breaker.record_failure()
            self.note_error(str(exc) or type(exc).__name__)
            raise
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.record_success()
        return result

    def note_error(self, message: str) -> None:
        self.last_error = message[:500]
        self.last_error_at = self.now()

    def note_synced(self) -> None:
        """A sync pass reached the end of the channel's changes."""
        self.last_sync_at = self.now()
        self.settled_failure = None
        self.first_sync_done.set()

    def sync_state(self, holder: str) -> SyncState:
        """What this replica, syncing the channel, tells the replicas that follow it."""
        return SyncState(holder=holder, last_sync_at=self.last_sync_at, last_error=self.last_error,
                         last_error_at=self.last_error_at, refused=self.settled_failure,
                         given_up_at_start=self.given_up_at_start,
                         breaker_open=self.breaker.state is BreakerState.OPEN)

    def follow(self, state: SyncState) -> None:
        """Another replica syncs the channel: take its view of the sync as this replica's own."""
        self.synced_by = state.holder
        self.last_sync_at = state.last_sync_at
        self.last_error, self.last_error_at = state.last_error, state.last_error_at
        self.settled_failure = state.refused
        self.given_up_at_start = self.given_up_at_start or state.given_up_at_start  # sticky, as here
        self._holder_breaker_open = state.breaker_open
        if state.last_sync_at is not None:
            self.first_sync_done.set()

    def lead(self) -> None:
        """This replica syncs the channel (again): its own breaker speaks for the channel."""
        self.synced_by = None
        self._holder_breaker_open = False

    @property
    def lag_seconds(self) -> float | None:
        """Seconds since the last complete sync pass (``None`` before the first)."""
        if self.last_sync_at is None:
            return None
        return max(0.0, (self.now() - self.last_sync_at).total_seconds())

    def note_failed_pass(self, *, refused: str | None = None) -> None:
        """A sync pass failed; once the circuit is open (or we are refused) start-up is over for it."""
        if refused is not None:
            self.settled_failure = refused
        if refused is not None or self.breaker.state is BreakerState.OPEN:
            self.given_up_at_start = True

    @property
    def settled(self) -> bool:
        """Done with start-up: synced once, or tried and known to be down or refusing us (sticky, so a
        half-open trial does not flip readiness back)."""
        return self.first_sync_done.is_set() or self.given_up_at_start

    def health(self, cases: int, quarantined: int) -> ChannelHealth:
        """UP; DEGRADED (errors since the last good pass, half-open breaker, high lag); DOWN (breaker
        open, or never synced and failing)."""
        state = self.breaker.state
        breaker_open = state is BreakerState.OPEN or self._holder_breaker_open
        failing = self._failing()
        if breaker_open or (self.last_sync_at is None and failing):
            status = HealthStatus.DOWN
        elif state is BreakerState.HALF_OPEN or failing or self._lagging():
            status = HealthStatus.DEGRADED
        else:
            status = HealthStatus.UP
        return ChannelHealth(status=status, last_sync_at=self.last_sync_at, lag_seconds=self.lag_seconds,
                             last_error=self.last_error, cases=cases, quarantined=quarantined,
                             breaker_open=breaker_open)

    def _failing(self) -> bool:
        """An error since the last complete pass (a pass that completes afterwards clears it)."""
        if self.last_error_at is None:
            return False
        return self.last_sync_at is None or self.last_error_at > self.last_sync_at

    def _lagging(self) -> bool:
        lag = self.lag_seconds
        return lag is not None and lag > max(MIN_LAG_ALERT_SECONDS, 5 * self.config.poll_interval)


ConnectorFactory = Callable[..., Connector]


class ChannelSet(Mapping[str, ChannelRuntime]):
    """Every configured channel, by key, in the channels file's order; an async context manager.

    Args:
        configs: the channels file's entries.
        transports: per channel key, an ``httpx`` transport to use instead of the network (tests).
        connector_classes: per connector name, a class to use instead of the entry point (tests,
            embedding); anything not named here is loaded through ``connectors.registry``.
        breaker: builds each channel's breaker (defaults: 5 failures, 30 s).
    """

    def __init__(self, configs: Sequence[ChannelConfig], *,
                 transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
                 connector_classes: Mapping[str, ConnectorFactory] | None = None,
                 breaker: Callable[[], CircuitBreaker] = CircuitBreaker) -> None:
        transports = transports or {}
        classes = connector_classes or {}
        self._runtimes: dict[str, ChannelRuntime] = {}
        for config in configs:
            factory = classes.get(config.connector) or registry.load(config.connector)
            connector = factory(config, transport=transports.get(config.key))
            self._runtimes[config.key] = ChannelRuntime(config, connector, breaker())
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            for runtime in self._runtimes.values():
                await stack.enter_async_context(runtime.connector)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    def __getitem__(self, key: str) -> ChannelRuntime:
        return self._runtimes[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._runtimes)

    def __len__(self) -> int:
        return len(self._runtimes)
