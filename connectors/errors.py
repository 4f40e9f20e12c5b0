"""Typed errors raised by connectors, classified by what the gateway should do.

The tree, with when each is raised::

    ConnectorError                 base of everything a connector raises on purpose
    ├── ConfigError                the channel's configuration is wrong (lists every problem at once)
    ├── UpstreamError              the channel system did not give a usable answer
    │   ├── UpstreamUnavailable    network error, timeout, 5xx, or the channel is down: retry later,
    │   │   │                      count towards the circuit breaker
    │   │   └── RateLimited        429 (or the channel's own throttle word): retry after ``retry_after``
    │   └── UpstreamRejected       the channel refused the request (4xx): do not retry as is
    │       └── AuthenticationFailed   the channel refused our service credentials
    ├── BadRecord                  one record cannot be normalised: quarantine it, carry on
    └── WebhookRejected            a pushed request failed signature, timestamp or replay checks

Errors from libraries below (httpx, XML parsers, JSON decoding) are translated into this
tree once, at the boundary (see :mod:`connectors.http`), so the gateway never sees them.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "BadRecord",
    "ConfigError",
    "ConnectorError",
    "RateLimited",
    "UpstreamError",
    "UpstreamRejected",
    "UpstreamUnavailable",
    "WebhookRejected",
]


class ConnectorError(Exception):
    """Base class of every error a connector raises on purpose."""


class ConfigError(ConnectorError):
    """Raised when a channel's configuration is invalid; ``problems`` lists every one found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) or "invalid configuration")


class UpstreamError(ConnectorError):
    """Raised when the channel system did not give a usable answer."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class UpstreamUnavailable(UpstreamError):
    """Raised on network errors, timeouts, 5xx answers or a channel that is down. Retryable."""


class RateLimited(UpstreamUnavailable):
    """Raised when the channel throttles us; retry after ``retry_after`` seconds."""

    def __init__(self, message: str = "rate limited", *, retry_after: float = 1.0,
                 status: int | None = 429) -> None:
        self.retry_after = max(0.0, float(retry_after))
        super().__init__(message, status=status)


class UpstreamRejected(UpstreamError):
    """Raised when the channel refuses the request (4xx other than 429). Not retryable as is."""


class AuthenticationFailed(UpstreamRejected):
    """Raised when the channel refuses the gateway's service credentials."""


class BadRecord(ConnectorError):
    """Raised (or collected) when one record cannot be normalised.

    Args:
        source_id: the channel's id of the record, or ``None`` when even that is unreadable.
        reason: a short human-readable reason, shown to operators in the quarantine.
        raw: the record as the channel sent it (truncated by the gateway when stored).
    """

    def __init__(self, source_id: str | None, reason: str, raw: object = None) -> None:
        self.source_id = source_id
        self.reason = reason
        self.raw = raw
        super().__init__(f"{source_id or '?'}: {reason}")


class WebhookRejected(ConnectorError):
    """Raised when a pushed request fails signature, timestamp or replay checks."""
