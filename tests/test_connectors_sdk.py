"""The connector SDK's public surface is pinned: integrators build against it, so a change to a name
or a contract signature must be deliberate (update this test and the CHANGELOG together)."""

from __future__ import annotations

import inspect

import httpx
import pytest

import connectors
from connectors import Action, Connector, classify, errors

SURFACE = [
    "Action", "ApiKey", "AuthenticationFailed", "BadRecord", "BearerToken", "Capabilities", "CaseRecord",
    "ChangePage", "ChannelConfig", "ClientCredentials", "ConfigError", "Connector", "ConnectorError",
    "ConnectorInfo", "Deadline", "HmacSigner", "Party", "Place", "RateLimited", "SourceRecord",
    "UnifiedStatus", "UpstreamError", "UpstreamRejected", "UpstreamUnavailable", "WebhookRejected",
    "WriteBackAction", "WriteBackKind", "WriteBackResult", "classify", "retry_after_seconds", "send",
    "utc_now",
]
CONTRACT = {
    "describe": "(self) -> 'ConnectorInfo'",
    "deadlines": "(self) -> 'tuple[Deadline, ...]'",
    "changes": "(self, cursor: 'str | None') -> 'AsyncIterator[ChangePage]'",
    "get_many": "(self, source_ids: 'Sequence[str]') -> 'Mapping[str, SourceRecord | None]'",
    "parse_webhook": "(self, headers: 'Mapping[str, str]', body: 'bytes', now: 'datetime | None' = None) "
                     "-> 'ChangePage'",
    "write_back": "(self, action: 'WriteBackAction') -> 'WriteBackResult'",
    "__init__": "(self, config: 'ChannelConfig', *, transport: 'httpx.AsyncBaseTransport | None' = None) "
                "-> 'None'",
}


def test_the_public_names_are_pinned() -> None:
    assert sorted(connectors.__all__) == sorted(SURFACE)
    assert all(hasattr(connectors, name) for name in SURFACE)


@pytest.mark.parametrize("name", SURFACE)
def test_every_public_name_is_documented(name: str) -> None:
    doc = inspect.getdoc(getattr(connectors, name))
    assert doc, name
    assert len(doc) > 20, name


def test_the_contract_signatures_are_pinned() -> None:
    assert {name: str(inspect.signature(getattr(Connector, name))) for name in CONTRACT} == CONTRACT
    assert Connector.__abstractmethods__ == frozenset({"changes", "get_many"})


def test_the_error_tree_is_drawn_in_the_errors_module() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        assert name in doc, f"{name} is missing from the tree in connectors/errors.py"
    assert issubclass(connectors.RateLimited, connectors.UpstreamUnavailable)
    assert issubclass(connectors.AuthenticationFailed, connectors.UpstreamRejected)


@pytest.mark.parametrize(("status", "refreshable", "record", "action"), [
    (200, False, False, Action.OK), (304, False, False, Action.OK),
    (429, False, False, Action.RATE_LIMITED), (401, True, False, Action.REFRESH_TOKEN),
    (401, False, False, Action.AUTH_FAILED), (403, True, False, Action.AUTH_FAILED),
    (404, False, True, Action.SKIP_RECORD), (404, False, False, Action.FAIL),
    (503, False, False, Action.RETRY), (408, False, False, Action.RETRY), (422, False, False, Action.FAIL)])
def test_answers_are_classified_into_actions(status: int, refreshable: bool, record: bool,
                                             action: Action) -> None:
    response = httpx.Response(status, request=httpx.Request("GET", "http://channel/x"))
    assert classify(response, refreshable=refreshable, record=record) is action


def test_juzhang_promises_in_its_spec_agree_with_the_deadline_policies() -> None:
    """局长信箱's promises are declared in its channel spec and in casework's policy data: the same."""
    import yaml

    from casework.deadlines import DEFAULT_PATH
    from connectors.declarative import load_spec
    from gateway.settings import DEFAULT_CHANNELS_FILE

    spec = load_spec({"spec_file": str(DEFAULT_CHANNELS_FILE.parent / "channels.d" / "juzhang.yaml")})
    policy = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))["channels"]["juzhang"]
    declared = {d.step: {d.unit: d.within} for d in spec.deadlines}
    assert declared == {"sign": {"minutes": 10}, "contact": {"minutes": 30}, "first_feedback": {"days": 4}}
    assert {step: policy[step] for step in declared} == declared
