"""The connector SDK: everything an integrator needs to bring a channel into Minsheng.

Build against the names in ``__all__`` only; they are pinned by a test.
"""

from __future__ import annotations

from connectors.base import Capabilities, ChannelConfig, Connector, ConnectorInfo, SourceRecord
from connectors.errors import (
    AuthenticationFailed,
    BadRecord,
    ConfigError,
    ConnectorError,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
    WebhookRejected,
)
from connectors.records import (
    CaseRecord,
    ChangePage,
    Party,
    Place,
    UnifiedStatus,
    WriteBackAction,
    WriteBackKind,
    WriteBackResult,
    utc_now,
)

__all__ = [
    "AuthenticationFailed",
    "BadRecord",
    "Capabilities",
    "CaseRecord",
    "ChangePage",
    "ChannelConfig",
    "ConfigError",
    "Connector",
    "ConnectorError",
    "ConnectorInfo",
    "Party",
    "Place",
    "RateLimited",
    "SourceRecord",
    "UnifiedStatus",
    "UpstreamError",
    "UpstreamRejected",
    "UpstreamUnavailable",
    "WebhookRejected",
    "WriteBackAction",
    "WriteBackKind",
    "WriteBackResult",
    "utc_now",
]
