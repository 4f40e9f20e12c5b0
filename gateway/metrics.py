"""Prometheus metrics: HTTP requests, GraphQL operations and errors, upstream calls, channel state.

One :class:`Metrics` per app (its own registry, so several apps can live in one test process).
Counters are bumped where things happen; channel gauges (health, breaker, counts) are refreshed
from the live state when ``/metrics`` is scraped.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from casework.channels import BreakerState, ChannelSet
from casework.clusters import ClusterStore
from casework.intake import Intake, SyncedElsewhere, SyncReport
from casework.model import HealthStatus
from casework.store import CaseStore
from casework.synclease import SyncLeases
from connectors import ConnectorError, RateLimited, UpstreamUnavailable

if TYPE_CHECKING:
    from resolvers.context import Resources

__all__ = ["MeteredIntake", "Metrics", "MetricsMiddleware", "OperationMetrics"]

_ROUTES = ("/graphql", "/hooks", "/healthz", "/readyz", "/metrics", "/sandbox", "/auth")


class Metrics:
    """The gateway's metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("minsheng_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=r)
        self.request_seconds = Histogram("minsheng_http_request_seconds", "HTTP request duration",
                                         ["route"], registry=r)
        self.operations = Counter("minsheng_graphql_operations", "GraphQL operations executed",
                                  ["type"], registry=r)
        self.errors = Counter("minsheng_graphql_errors", "GraphQL errors answered, by extensions.code",
                              ["code"], registry=r)
        self.upstream = Counter("minsheng_upstream_calls", "Calls to channel systems made for queries",
                                ["channel", "outcome"], registry=r)
        self.webhooks = Counter("minsheng_webhooks", "Webhook requests received", ["channel", "outcome"],
                                registry=r)
        self.sync_passes = Counter("minsheng_sync_passes", "Sync passes by outcome (ok, unavailable, "
                                   "rate_limited, refused, error)", ["channel", "outcome"], registry=r)
        self.sync_pages = Counter("minsheng_sync_pages", "Pages of changes taken in", ["channel"], registry=r)
        self.sync_records = Counter("minsheng_sync_records", "Records taken in, by ingest outcome",
                                    ["channel", "outcome"], registry=r)
        self.sync_quarantined = Counter("minsheng_sync_quarantined", "Records quarantined while taking in",
                                        ["channel"], registry=r)
        self.breaker_state = Gauge("minsheng_channel_breaker_state", "1 for the breaker's current state",
                                   ["channel", "state"], registry=r)
        self.channel_up = Gauge("minsheng_channel_status", "Channel health: 1 for the current status",
                                ["channel", "status"], registry=r)
        self.breaker_open = Gauge("minsheng_channel_breaker_open", "1 while the channel's circuit is open",
                                  ["channel"], registry=r)
        self.lag = Gauge("minsheng_channel_sync_lag_seconds", "Seconds since the last successful sync",
                         ["channel"], registry=r)
        self.cases = Gauge("minsheng_channel_cases", "Cases stored per channel", ["channel"], registry=r)
        self.quarantined = Gauge("minsheng_channel_quarantined", "Records quarantined per channel",
                                 ["channel"], registry=r)

    def observe_upstream(self, channel: str, outcome: str) -> None:
        self.upstream.labels(channel, outcome).inc()

    def observe_report(self, report: SyncReport) -> None:
        """Count what one sync pass or webhook took in."""
        channel = report.channel
        self.sync_pages.labels(channel).inc(report.pages)
        for outcome in ("created", "updated", "unchanged"):
            self.sync_records.labels(channel, outcome).inc(getattr(report, outcome))
        self.sync_quarantined.labels(channel).inc(report.quarantined)

    async def refresh(self, resources: Resources) -> None:
        """Set the channel gauges from the live state (called on scrape)."""
        counts = await resources.store.count_by_channel()
        for runtime in resources.channels.values():
            key = runtime.config.key
            quarantined = await resources.store.quarantine_count(key)
            health = runtime.health(counts.get(key, 0), quarantined)
            for status in HealthStatus:
                self.channel_up.labels(key, status.value).set(1 if health.status is status else 0)
            self.breaker_open.labels(key).set(1 if health.breaker_open else 0)
            current = runtime.breaker.state
            for state in BreakerState:
                self.breaker_state.labels(key, state.value).set(1 if state is current else 0)
            if health.lag_seconds is not None:
                self.lag.labels(key).set(health.lag_seconds)
            self.cases.labels(key).set(health.cases)
            self.quarantined.labels(key).set(health.quarantined)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _failure_outcome(exc: Exception) -> str:
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, UpstreamUnavailable):
        return "unavailable"
    return "refused" if isinstance(exc, ConnectorError) else "error"


class MeteredIntake(Intake):
    """The intake, counting every sync pass and webhook into the metrics."""

    def __init__(self, store: CaseStore, channels: ChannelSet, metrics: Metrics,
                 clusters: ClusterStore | None = None, leases: SyncLeases | None = None) -> None:
        super().__init__(store, channels, clusters=clusters, leases=leases)
        self.metrics = metrics

    async def sync_once(self, channel: str) -> SyncReport:
        try:
            report = await super().sync_once(channel)
        except SyncedElsewhere:
            raise  # not a pass: another replica syncs the channel
        except Exception as exc:
            self.metrics.sync_passes.labels(channel, _failure_outcome(exc)).inc()
            raise
        self.metrics.sync_passes.labels(channel, "ok").inc()
        self.metrics.observe_report(report)
        return report

    async def receive_webhook(self, channel: str, headers: Mapping[str, str], body: bytes, *,
                              accept: Callable[[], Awaitable[None]] | None = None) -> SyncReport:
        report = await super().receive_webhook(channel, headers, body, accept=accept)
        self.metrics.observe_report(report)
        return report


def route_label(path: str) -> str:
    """A bounded label for a request path: its first segment when known, ``/`` or ``other``."""
    if path == "/":
        return "/"
    for route in _ROUTES:
        if path == route or path.startswith(route + "/"):
            return route
    return "other"


class MetricsMiddleware:
    """Counts every HTTP request by method, route and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_label(scope["path"])
        status = 500
        started = time.perf_counter()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)


class OperationMetrics(SchemaExtension):
    """Counts GraphQL operations by type and their errors by ``extensions.code``."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context
        try:
            kind = context.operation_type.value
        except Exception:  # no operation could be determined (e.g. a syntax error)
            kind = "invalid"
        self.metrics.operations.labels(kind).inc()
        result: Any = context.result
        for error in getattr(result, "errors", None) or ():
            code = (error.extensions or {}).get("code", "INTERNAL_SERVER_ERROR")
            self.metrics.errors.labels(str(code)).inc()
