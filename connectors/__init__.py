"""The connector SDK: everything an integrator needs to bring a channel into Minsheng.

Build against the names in ``__all__`` only; they are pinned by ``tests/test_connectors_sdk.py``
and change only with a CHANGELOG entry. In short:

* the contract — :class:`Connector` (``describe``, ``changes``, ``get_many``, ``parse_webhook``,
  ``write_back``, ``deadlines``), :class:`ChannelConfig`, :class:`ConnectorInfo`,
  :class:`Capabilities`, :class:`SourceRecord`;
* the records — :class:`CaseRecord`, :class:`ChangePage`, :class:`Party`, :class:`Place`,
  :class:`UnifiedStatus`, :class:`WriteBackAction`, :class:`WriteBackKind`, :class:`WriteBackResult`,
  :class:`Deadline`;
* the errors — the tree drawn in :mod:`connectors.errors`;
* the response executor — :func:`send` acts on the :class:`Action` that :func:`classify` gives an
  answer (retry, rate-limited, refresh token, fail, skip record), see :mod:`connectors.http`;
* upstream auth flows — :class:`ApiKey`, :class:`BearerToken`, :class:`ClientCredentials`,
  :class:`HmacSigner`.

Beside it: :mod:`connectors.declarative` (a channel as a YAML spec) and :mod:`connectors.testing`
(the conformance kit, a pytest plugin).
"""

from __future__ import annotations

from connectors.auth import ApiKey, BearerToken, ClientCredentials, HmacSigner
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
from connectors.http import Action, classify, retry_after_seconds, send
from connectors.records import (
    CaseRecord,
    ChangePage,
    Deadline,
    Party,
    Place,
    UnifiedStatus,
    WriteBackAction,
    WriteBackKind,
    WriteBackResult,
    utc_now,
)

__all__ = [
    "Action",
    "ApiKey",
    "AuthenticationFailed",
    "BadRecord",
    "BearerToken",
    "Capabilities",
    "CaseRecord",
    "ChangePage",
    "ChannelConfig",
    "ClientCredentials",
    "ConfigError",
    "Connector",
    "ConnectorError",
    "ConnectorInfo",
    "Deadline",
    "HmacSigner",
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
    "classify",
    "retry_after_seconds",
    "send",
    "utc_now",
]
